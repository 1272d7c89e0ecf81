"""MemoryNetwork / MemoryTransport specifics: link models, no real sockets, TCP-like pipes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from serf.transport.base import Address, Stream
from serf.transport.memory import MemoryNetwork, MemoryTransport, deliver_once

A = Address("10.0.0.1", 7946)
B = Address("10.0.0.2", 7946)


def run(coro_fn: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(coro_fn(), timeout)

    asyncio.run(main())


class Node:
    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.packets: list[tuple[bytes, Address, float]] = []
        self.arrived = asyncio.Event()

    def on_packet(self, data: bytes, addr: Address, at: float) -> None:
        self.packets.append((data, addr, at))
        self.arrived.set()


async def node(
    net: MemoryNetwork,
    addr: Address,
    on_stream: Callable[[Stream], Awaitable[None]] | None = None,
) -> Node:
    n = Node(net.transport(addr))
    n.transport.set_handlers(n.on_packet, on_stream)
    await n.transport.start()
    return n


def test_never_touches_real_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        def no_sockets(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a real socket was created")

        monkeypatch.setattr(socket, "socket", no_sockets)
        net = MemoryNetwork()
        a = await node(net, A)
        received = asyncio.Queue[bytes]()

        async def on_stream(stream: Stream) -> None:
            received.put_nowait(await stream.read(-1))

        b = await node(net, B, on_stream)
        a.transport.send_packet(B, b"hi")
        await asyncio.wait_for(b.arrived.wait(), 5)
        stream = await a.transport.open_stream(B)
        stream.write(b"stream")
        stream.write_eof()
        assert await asyncio.wait_for(received.get(), 5) == b"stream"
        await stream.close()
        await a.transport.close()
        await b.transport.close()
        monkeypatch.undo()

    run(main)


def test_packets_are_asynchronous_and_carry_the_source() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a, b = await node(net, A), await node(net, B)
        a.transport.send_packet(B, b"x")
        assert b.packets == []  # never delivered synchronously
        await asyncio.wait_for(b.arrived.wait(), 5)
        assert b.packets[0][:2] == (b"x", A)

    run(main)


def test_link_model_drop_delay_duplicate() -> None:
    async def main() -> None:
        seen: list[tuple[Address, Address, bytes]] = []

        def model(src: Address, dst: Address, data: bytes) -> list[float]:
            seen.append((src, dst, data))
            if data == b"drop":
                return []
            if data == b"dup":
                return [0.0, 0.1]
            if data == b"late":
                return [0.2]
            return deliver_once(src, dst, data)

        net = MemoryNetwork(model)
        a, b = await node(net, A), await node(net, B)
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        for payload in (b"drop", b"dup", b"late", b"plain"):
            a.transport.send_packet(B, payload)
        await asyncio.sleep(0.35)
        assert [data for data, _src, _at in b.packets] == [b"dup", b"plain", b"dup", b"late"]
        delays = [at - sent_at for _data, _src, at in b.packets]
        assert delays[2] >= 0.09
        assert delays[3] >= 0.19
        assert net.dropped == 1
        assert seen[0] == (A, B, b"drop")
        assert a.transport.stats.packets_sent == 4
        assert b.transport.stats.packets_received == 4

    run(main)


def test_link_model_can_be_swapped_at_run_time() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a, b = await node(net, A), await node(net, B)
        net.link_model = lambda src, dst, data: [] if dst == B else [0.0]
        a.transport.send_packet(B, b"lost")
        b.transport.send_packet(A, b"kept")
        await asyncio.wait_for(a.arrived.wait(), 5)
        await asyncio.sleep(0.01)
        assert b.packets == []
        assert net.dropped == 1

    run(main)


def test_in_flight_packet_to_closed_node_is_dropped() -> None:
    async def main() -> None:
        net = MemoryNetwork(lambda s, d, p: [0.05])
        a, b = await node(net, A), await node(net, B)
        a.transport.send_packet(B, b"x")
        await b.transport.close()
        await asyncio.sleep(0.1)
        assert b.packets == []
        assert net.dropped == 1
        a.transport.send_packet(Address("10.9.9.9", 1), b"nobody")
        await asyncio.sleep(0.1)
        assert net.dropped == 2

    run(main)


def test_port_zero_and_bind_conflicts() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        t1 = net.transport(Address("10.0.0.1", 0))
        t2 = net.transport(Address("10.0.0.1", 0))
        await t1.start()
        await t2.start()
        assert t1.local_address.port != 0
        assert t1.local_address != t2.local_address
        assert net.is_bound(t1.local_address)
        dup = net.transport(t1.local_address)
        with pytest.raises(OSError):
            await dup.start()
        await t1.close()
        assert not net.is_bound(t1.local_address)

    run(main)


def test_stream_eof_semantics_match_tcp() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        server_side: asyncio.Queue[Stream] = asyncio.Queue()
        done = asyncio.Event()

        async def on_stream(stream: Stream) -> None:
            server_side.put_nowait(stream)
            await done.wait()

        a, _b = await node(net, A), await node(net, B, on_stream)
        client = await a.transport.open_stream(B)
        server = await asyncio.wait_for(server_side.get(), 5)
        assert server.remote_address == client.local_address
        assert client.remote_address == B
        # Half close: the server reads the data then EOF, and can still reply.
        client.write(b"abc")
        client.write_eof()
        with pytest.raises(RuntimeError):
            client.write(b"more")
        assert await server.read(2) == b"ab"
        assert await server.read(-1) == b"c"
        assert await server.read(1) == b""
        server.write(b"reply")
        await server.drain()
        await server.close()
        assert await client.readexactly(5) == b"reply"
        with pytest.raises(asyncio.IncompleteReadError):
            await client.readexactly(1)
        # Writes to a peer that closed are discarded; drain reports the reset.
        await client.close()
        done.set()

    run(main)


def test_drain_applies_backpressure_and_reports_reset() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        server_side: asyncio.Queue[Stream] = asyncio.Queue()
        done = asyncio.Event()

        async def on_stream(stream: Stream) -> None:
            server_side.put_nowait(stream)
            await done.wait()

        a, _b = await node(net, A), await node(net, B, on_stream)
        client = await a.transport.open_stream(B)
        server = await asyncio.wait_for(server_side.get(), 5)
        client.write(b"x" * 1_000_000)
        with pytest.raises(TimeoutError):
            await client.drain(timeout=0.05)
        assert len(await server.read(1_000_000)) == 1_000_000
        await client.drain(timeout=1)
        client.write(b"unread")
        await server.close()
        with pytest.raises(ConnectionResetError):
            await client.drain(timeout=1)
        client.write(b"after close")  # discarded, not raised
        assert await client.read(-1) == b""
        await client.close()
        done.set()

    run(main)


def test_connection_refused_and_stream_counters() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a = await node(net, A)
        with pytest.raises(ConnectionRefusedError):
            await a.transport.open_stream(B)
        b = await node(net, B)  # no on_stream: accepted, then closed
        stream = await a.transport.open_stream(B)
        assert await stream.read(-1, timeout=1) == b""
        await stream.close()
        assert a.transport.stats.streams_opened == 1
        assert b.transport.stats.streams_accepted == 1

    run(main)
