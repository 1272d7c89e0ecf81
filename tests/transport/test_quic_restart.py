"""QUIC when a peer restarts on the same address: deterministic checks of each mechanism.

A peer that crashes (no CONNECTION_CLOSE goes out) and comes back on its address knows
nothing of the connections its previous process had. These tests stop a transport as a
killed process would, start a new one on the same port and check what the survivor's
packets, streams and abandoned dials do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from serf.transport import Address, QuicTransport, Stream
from serf.transport.quic import self_signed_certificate

CERT, KEY = self_signed_certificate()


def _run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 30.0)

    asyncio.run(main())


async def _crash(t: QuicTransport) -> None:
    """Stop ``t`` as a killed process would: its connections vanish without a word."""
    for conn in list(t._connections):
        conn.dead = True
    await t.close()


async def _until(cond: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {limit} s")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("first_dialer", ["survivor", "restarted"])
def test_packets_sent_right_after_a_peer_restart_reach_the_new_process(first_dialer: str) -> None:
    """Packets the survivor sends just after the peer came back (still on the connection to
    the dead process) all arrive at the new process, whichever side dialed first."""

    async def body() -> None:
        got: list[bytes] = []
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0), certificate=CERT, private_key=KEY)
            b = QuicTransport(Address("127.0.0.1", 0), certificate=CERT, private_key=KEY)
            a_got: list[bytes] = []
            a.set_handlers(on_packet=lambda d, src, t: a_got.append(d))
            b.set_handlers(on_packet=lambda d, src, t: got.append(d))
            await a.start()
            stack.push_async_callback(a.close)
            await b.start()
            if first_dialer == "survivor":
                a.send_packet(b.local_address, b"hello")
                await _until(lambda: got == [b"hello"], "first packet")
            else:
                b.send_packet(a.local_address, b"hello")
                await _until(lambda: a_got == [b"hello"], "first packet")
            port = b.local_address.port
            await _crash(b)
            b2 = QuicTransport(Address("127.0.0.1", port), certificate=CERT, private_key=KEY)
            got2: list[bytes] = []
            b2.set_handlers(on_packet=lambda d, src, t: got2.append(d))
            await b2.start()
            stack.push_async_callback(b2.close)
            sent = [f"p{i}".encode() for i in range(10)]
            for data in sent:
                a.send_packet(b2.local_address, data)
            await _until(lambda: set(sent) <= set(got2), f"10 packets at the new process: {got2}")

    _run(body)


@pytest.mark.parametrize("first_dialer", ["survivor", "restarted"])
def test_a_stream_opened_right_after_a_peer_restart_reaches_the_new_process(
    first_dialer: str,
) -> None:
    """A stream the survivor opens just after the peer came back is answered by the new
    process, instead of going into the connection to the dead one (where it would wait for
    its timeout: a push/pull or fallback ping lost, the peer suspected)."""

    async def echo(stream: Stream) -> None:
        stream.write(await stream.read(-1))
        stream.write_eof()

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0), certificate=CERT, private_key=KEY)
            b = QuicTransport(Address("127.0.0.1", 0), certificate=CERT, private_key=KEY)
            a.set_handlers(on_stream=echo)
            b.set_handlers(on_stream=echo)
            await a.start()
            stack.push_async_callback(a.close)
            await b.start()
            dialer, listener = (a, b) if first_dialer == "survivor" else (b, a)
            s = await dialer.open_stream(listener.local_address, timeout=5)
            s.write(b"x")
            s.write_eof()
            assert await s.read(-1, timeout=5) == b"x"
            await s.close()
            port = b.local_address.port
            await _crash(b)
            b2 = QuicTransport(Address("127.0.0.1", port), certificate=CERT, private_key=KEY)
            b2.set_handlers(on_stream=echo)
            await b2.start()
            stack.push_async_callback(b2.close)
            s = await a.open_stream(b2.local_address, timeout=5)
            s.write(b"after restart")
            s.write_eof()
            assert await s.read(-1, timeout=5) == b"after restart"
            await s.close()

    _run(body)


def test_an_abandoned_dial_sends_nothing_a_restarted_peer_would_refuse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dial whose peer never answered ends silently. It used to send CONNECTION_CLOSE in
    an Initial packet without a CRYPTO frame; a process that came back on that address
    meanwhile took it for a new connection and aioquic refused it ('Packet contains no
    CRYPTO frame', counted in quic_warnings): the line logged after each restart."""

    caplog.set_level(logging.DEBUG, logger="serf.transport.quic.aioquic")

    async def body() -> None:
        void = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the peer while it is down
        void.bind(("127.0.0.1", 0))
        void.setblocking(False)
        port = void.getsockname()[1]
        a = QuicTransport(
            Address("127.0.0.1", 0), certificate=CERT, private_key=KEY, handshake_timeout=0.2
        )
        await a.start()
        try:
            with pytest.raises(ConnectionRefusedError):
                await a.open_stream(Address("127.0.0.1", port), timeout=5)
            assert not a._by_peer
            sent: list[bytes] = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    sent.append(void.recv(65536))
            assert sent, "the dial sent its Initial"
            void.close()
            # the peer comes back; the first thing it sees is the dial's last packet
            b = QuicTransport(Address("127.0.0.1", port), certificate=CERT, private_key=KEY)
            await b.start()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                    sender.sendto(sent[-1], ("127.0.0.1", port))
                    await _until(lambda: bool(b._connections), "the peer took the packet")
                assert b.quic_warnings == 0
                refused = [r for r in caplog.records if "no CRYPTO frame" in r.getMessage()]
                assert not refused, [r.getMessage() for r in refused]
            finally:
                await b.close()
        finally:
            void.close()
            await a.close()

    _run(body)


def test_a_survivor_joins_a_restarted_node_at_once() -> None:
    """Serf over QUIC: right after a node crashed and came back on its address, a survivor's
    join to it (a push/pull stream) completes, instead of waiting on the connection to the
    dead process until the stream timeout and failing."""
    from serf import MemberStatus, Serf, SerfConfig
    from serf.config import loopback
    from serf.testing import eventually
    from serf.testing.gopeer import free_port

    def config(name: str, port: int) -> SerfConfig:
        ml = loopback(name, transport="quic", bind_port=port, tcp_timeout=3.0)
        return SerfConfig(node_name=name, memberlist=ml)

    async def body() -> None:
        pa, pb = free_port(), free_port()
        a = await Serf.create(config("a", pa))
        b = await Serf.create(config("b", pb))
        b2: Serf | None = None
        try:
            await b.join([f"127.0.0.1:{pa}"])
            await eventually(lambda: len(a.members(MemberStatus.ALIVE)) == 2)
            await _crash(b._driver.transport)  # type: ignore[union-attr, arg-type]
            await b.shutdown()
            b2 = await Serf.create(config("b", pb))
            assert await a.join([f"127.0.0.1:{pb}"]) == 1
            await eventually(lambda: len(b2.members(MemberStatus.ALIVE)) == 2)
        finally:
            for node in (a, b, b2):
                if node is not None:
                    await node.shutdown()

    _run(body)
