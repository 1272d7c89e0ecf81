"""The transport conformance suite: every transport (memory included) must pass it.

How this works: a check is a plain ``async def check_x(factory) -> None`` that raises
AssertionError (or anything else) on failure. ``factory`` is a `TransportFactory`: it makes
unstarted transports on fresh (or given) addresses and names an address nobody listens on.
`CHECKS` lists every check by name; a test runner runs each one on its own event loop with a
time bound (see `run_check`). Each check closes every transport it made, pass or fail.

The stream checks use a tiny request protocol: the dialer writes its request and half-closes
(``write_eof``); the listener reads to EOF and replies. The framed variant sends a 4-byte
big-endian length first, so garbage on the wire makes the handler fail (which the transport
must count and survive).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from serf.transport.base import (
    Address,
    PacketTooLargeError,
    Stream,
    StreamHandler,
    Transport,
)
from serf.transport.memory import MemoryNetwork
from serf.transport.net import NetTransport
from serf.transport.tls import TlsConfig

__all__ = [
    "CHECKS",
    "MemoryFactory",
    "NetFactory",
    "QuicFactory",
    "TransportFactory",
    "ipv6_loopback_available",
    "run_check",
]

Check = Callable[["TransportFactory"], Awaitable[None]]

#: Bound on a single wait inside a check (a packet to arrive, a reply to come back).
STEP_TIMEOUT = 5.0
#: Bound on moving the large payload one way: a hang bound, not a speed claim (the pure-Python
#: QUIC path needs several seconds for 5 MB on a loaded machine; speed lives in bench/).
BULK_TIMEOUT = 45.0


class TransportFactory(Protocol):
    """Makes transports for the suite."""

    def new(self, bind: Address | None = None) -> Transport:
        """An unstarted transport on ``bind``, or on a fresh address if None."""
        ...

    async def unused_address(self) -> Address:
        """An address nobody listens on (for the connection-refused check)."""
        ...


class NetFactory:
    """`NetTransport` on a loopback host (``127.0.0.1`` or ``::1``), port 0 by default;
    with ``tls``, every transport it makes runs its streams over TLS with that config."""

    def __init__(self, host: str = "127.0.0.1", tls: TlsConfig | None = None) -> None:
        self.host = host
        self.tls = tls

    def new(self, bind: Address | None = None) -> Transport:
        """A NetTransport on ``bind`` or ``host:0``."""
        return NetTransport(bind or Address(self.host, 0), tls=self.tls)

    async def unused_address(self) -> Address:
        """A port the kernel just handed out and we released (TCP, so nothing listens)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((self.host, 0))
            port = int(sock.getsockname()[1])
        return Address(self.host, port)


class QuicFactory:
    """`QuicTransport` on a loopback host, port 0 by default; all share one self-signed
    certificate (made once per factory, so each check does not pay for key generation)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        from serf.transport.quic import self_signed_certificate  # the quic extra

        self.host = host
        self._certificate, self._private_key = self_signed_certificate(host)

    def new(self, bind: Address | None = None) -> Transport:
        """A QuicTransport on ``bind`` or ``host:0``."""
        from serf.transport.quic import QuicTransport

        return QuicTransport(
            bind or Address(self.host, 0),
            certificate=self._certificate,
            private_key=self._private_key,
        )

    async def unused_address(self) -> Address:
        """A UDP port the kernel just handed out and we released (nothing listens)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((self.host, 0))
            port = int(sock.getsockname()[1])
        return Address(self.host, port)


class MemoryFactory:
    """`MemoryTransport` nodes ``10.0.0.N:7946`` on one `MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork | None = None) -> None:
        self.network = network or MemoryNetwork()
        self._next = 1

    def new(self, bind: Address | None = None) -> Transport:
        """A MemoryTransport on ``bind`` or the next ``10.0.0.N:7946``."""
        if bind is None:
            bind = Address(f"10.0.{self._next // 250}.{self._next % 250 + 1}", 7946)
            self._next += 1
        return self.network.transport(bind)

    async def unused_address(self) -> Address:
        """An address on a host nobody was given."""
        return Address("10.255.255.254", 7946)


def ipv6_loopback_available() -> bool:
    """Whether ``::1`` can be bound here (UDP and TCP)."""
    if not socket.has_ipv6:
        return False
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET6, kind) as sock:
                sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def run_check(
    check: Check,
    factory: Callable[[], TransportFactory],
    timeout: float = 60.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run one check on a new event loop, bounded by ``timeout`` seconds."""

    async def main() -> None:
        await asyncio.wait_for(check(factory()), timeout)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


# -- helpers ---------------------------------------------------------------------------------


class _Node:
    """A started transport plus a queue of the packets it received."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.packets: asyncio.Queue[tuple[bytes, Address, float]] = asyncio.Queue()

    def on_packet(self, data: bytes, addr: Address, received_at: float) -> None:
        self.packets.put_nowait((data, addr, received_at))

    @property
    def address(self) -> Address:
        return self.transport.local_address

    async def next_packet(self) -> tuple[bytes, Address, float]:
        return await asyncio.wait_for(self.packets.get(), STEP_TIMEOUT)


async def _node(
    factory: TransportFactory,
    stack: contextlib.AsyncExitStack,
    on_stream: StreamHandler | None = None,
    bind: Address | None = None,
) -> _Node:
    transport = factory.new(bind)
    node = _Node(transport)
    transport.set_handlers(on_packet=node.on_packet, on_stream=on_stream)
    await transport.start()
    stack.push_async_callback(transport.close)
    return node


async def _reply_handler(stream: Stream) -> None:
    """Reads the request to EOF, answers ``b"re:" + request`` and half-closes."""
    request = await stream.read(-1)
    stream.write(b"re:" + request)
    await stream.drain()
    stream.write_eof()


async def _framed_handler(stream: Stream) -> None:
    """Reads ``[len32][body]``, answers ``[len32][sha256(body)]``. Garbage makes it raise."""
    (length,) = struct.unpack(">I", await stream.readexactly(4))
    if length > 64 * 1024 * 1024:
        raise ValueError(f"frame too large: {length}")
    body = await stream.readexactly(length)
    digest = hashlib.sha256(body).digest()
    stream.write(struct.pack(">I", len(digest)) + digest)
    await stream.drain()


async def _request(
    transport: Transport, addr: Address, payload: bytes, timeout: float = STEP_TIMEOUT
) -> bytes:
    stream = await transport.open_stream(addr, timeout=STEP_TIMEOUT)
    try:
        stream.write(payload)
        await stream.drain(timeout=timeout)
        stream.write_eof()
        return await stream.read(-1, timeout=timeout)
    finally:
        await stream.close()


async def _framed_request(
    transport: Transport, addr: Address, body: bytes, timeout: float = STEP_TIMEOUT
) -> bytes:
    stream = await transport.open_stream(addr, timeout=STEP_TIMEOUT)
    try:
        stream.write(struct.pack(">I", len(body)) + body)
        await stream.drain(timeout=timeout)
        (length,) = struct.unpack(">I", await stream.readexactly(4, timeout=timeout))
        return await stream.readexactly(length, timeout=timeout)
    finally:
        await stream.close()


async def _quiet(node: _Node, seconds: float) -> None:
    """Assert nothing arrives at ``node`` for ``seconds``."""
    await asyncio.sleep(seconds)
    assert node.packets.empty(), f"unexpected packet {node.packets.get_nowait()!r}"


# -- checks ----------------------------------------------------------------------------------


async def check_packet_round_trip(factory: TransportFactory) -> None:
    """A packet goes a -> b and b -> a, with the sender's address and a receive time."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack)
        assert a.address != b.address
        loop = asyncio.get_running_loop()
        a.transport.send_packet(b.address, b"ping")
        data, src, received_at = await b.next_packet()
        assert (data, src) == (b"ping", a.address)
        assert isinstance(received_at, float)
        assert abs(received_at - loop.time()) < STEP_TIMEOUT
        b.transport.send_packet(src, b"ack")
        data, src, _ = await a.next_packet()
        assert (data, src) == (b"ack", b.address)
        assert a.transport.stats.packets_sent == 1
        assert a.transport.stats.packets_received == 1
        assert b.transport.stats.packets_received == 1


async def check_packet_size_limit(factory: TransportFactory) -> None:
    """A packet at max_packet_size arrives; one byte more is refused with PacketTooLargeError."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack)
        limit = a.transport.max_packet_size
        big = bytes(range(256)) * (limit // 256) + b"x" * (limit % 256)
        assert len(big) == limit
        a.transport.send_packet(b.address, big)
        data, _, _ = await b.next_packet()
        assert data == big
        try:
            a.transport.send_packet(b.address, big + b"!")
        except PacketTooLargeError as exc:
            assert str(limit) in str(exc)
        else:
            raise AssertionError("oversized packet was not refused")
        assert a.transport.stats.packets_sent == 1


async def check_many_packets(factory: TransportFactory) -> None:
    """200 small packets all arrive (loopback / memory do not lose them)."""
    count = 200
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack)
        expected = {f"packet-{i:04d}".encode() * 4 for i in range(count)}
        for i, payload in enumerate(sorted(expected)):
            a.transport.send_packet(b.address, payload)
            if i % 50 == 49:
                await asyncio.sleep(0)
        got = set()
        for _ in range(count):
            data, src, _ = await b.next_packet()
            assert src == a.address
            got.add(data)
        assert got == expected


async def check_packet_handler_error_is_counted(factory: TransportFactory) -> None:
    """An on_packet callback that raises is counted in stats.errors; delivery goes on."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        transport = factory.new()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        def on_packet(data: bytes, addr: Address, received_at: float) -> None:
            if data == b"boom":
                raise RuntimeError("handler bug")
            received.put_nowait(data)

        transport.set_handlers(on_packet=on_packet)
        await transport.start()
        stack.push_async_callback(transport.close)
        a.transport.send_packet(transport.local_address, b"boom")
        a.transport.send_packet(transport.local_address, b"fine")
        assert await asyncio.wait_for(received.get(), STEP_TIMEOUT) == b"fine"
        assert transport.stats.errors >= 1


async def check_stream_request_response(factory: TransportFactory) -> None:
    """Request, half-close, reply, EOF; addresses and counters are right."""
    seen: list[Address] = []

    async def handler(stream: Stream) -> None:
        seen.append(stream.remote_address)
        await _reply_handler(stream)
        # After the reply the peer has half-closed: read gives EOF.
        assert await stream.read(10) == b""

    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=handler)
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        assert stream.remote_address == b.address
        stream.write(b"hello ")
        stream.write(b"world")
        await stream.drain()
        stream.write_eof()
        assert await stream.readexactly(3, timeout=STEP_TIMEOUT) == b"re:"
        assert await stream.read(-1, timeout=STEP_TIMEOUT) == b"hello world"
        assert await stream.read(5, timeout=STEP_TIMEOUT) == b""
        try:
            await stream.readexactly(1, timeout=STEP_TIMEOUT)
        except asyncio.IncompleteReadError as exc:
            assert exc.partial == b""
        else:
            raise AssertionError("readexactly past EOF did not raise IncompleteReadError")
        await stream.close()
        await stream.close()  # idempotent
        assert seen == [stream.local_address]
        assert seen[0].host == a.address.host
        assert a.transport.stats.streams_opened == 1
        await asyncio.sleep(0.05)
        assert b.transport.stats.streams_accepted == 1


async def check_stream_refused(factory: TransportFactory) -> None:
    """Dialing an address with no listener raises ConnectionRefusedError (or OSError) quickly."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        target = await factory.unused_address()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await a.transport.open_stream(target, timeout=STEP_TIMEOUT)
        except OSError:
            pass
        else:
            raise AssertionError(f"open_stream to {target} did not fail")
        assert loop.time() - started < STEP_TIMEOUT - 1


async def check_stream_read_timeout(factory: TransportFactory) -> None:
    """A read with nothing coming raises TimeoutError after its timeout; the stream's default
    timeout applies when none is given."""
    release = asyncio.Event()

    async def silent(stream: Stream) -> None:
        await release.wait()

    async with contextlib.AsyncExitStack() as stack:
        stack.callback(release.set)
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=silent)
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        stack.push_async_callback(stream.close)
        loop = asyncio.get_running_loop()
        for use_default in (False, True):
            started = loop.time()
            try:
                if use_default:
                    stream.timeout = 0.2
                    await stream.readexactly(1)
                else:
                    await stream.read(1, timeout=0.2)
            except TimeoutError:
                pass
            else:
                raise AssertionError("read did not time out")
            elapsed = loop.time() - started
            assert 0.1 < elapsed < 2.0, elapsed


async def check_close_stops_delivery_and_frees_address(factory: TransportFactory) -> None:
    """After close() nothing is delivered; a new transport can bind the same address."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=_reply_handler)
        a.transport.send_packet(b.address, b"before")
        assert (await b.next_packet())[0] == b"before"
        assert await _request(a.transport, b.address, b"x") == b"re:x"
        address = b.address
        await b.transport.close()
        await b.transport.close()  # idempotent
        received = b.transport.stats.packets_received
        for _ in range(3):
            a.transport.send_packet(address, b"after")
        await _quiet(b, 0.2)
        assert b.transport.stats.packets_received == received
        try:
            await a.transport.open_stream(address, timeout=STEP_TIMEOUT)
        except OSError:
            pass
        else:
            raise AssertionError("closed transport still accepts streams")
        c = await _node(factory, stack, on_stream=_reply_handler, bind=address)
        assert c.address == address
        a.transport.send_packet(address, b"again")
        data, src, _ = await c.next_packet()
        assert (data, src) == (b"again", a.address)
        assert await _request(a.transport, address, b"y") == b"re:y"


async def check_bind_conflict(factory: TransportFactory) -> None:
    """Starting a second transport on a bound address raises OSError."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        other = factory.new(a.address)
        try:
            await other.start()
        except OSError:
            pass
        else:
            await other.close()
            raise AssertionError("second bind on the same address succeeded")


async def check_concurrent_streams(factory: TransportFactory) -> None:
    """20 streams in flight at once each get their own reply."""
    gate = asyncio.Event()
    arrived = 0

    async def handler(stream: Stream) -> None:
        nonlocal arrived
        request = await stream.read(-1)
        arrived += 1
        if arrived == 20:
            gate.set()
        await gate.wait()  # every request is in before anyone answers
        stream.write(b"re:" + request)
        await stream.drain()

    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=handler)
        payloads = [f"request {i} ".encode() * (i + 1) for i in range(20)]
        replies = await asyncio.gather(*(_request(a.transport, b.address, p) for p in payloads))
        assert replies == [b"re:" + p for p in payloads]
        assert a.transport.stats.streams_opened == 20


async def check_large_stream_payload(factory: TransportFactory) -> None:
    """5 MB goes each way intact."""
    payload = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32)

    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=_reply_handler)
        reply = await _request(a.transport, b.address, payload, BULK_TIMEOUT)
        assert len(reply) == len(payload) + 3
        assert reply == b"re:" + payload
        c = await _node(factory, stack, on_stream=_framed_handler)
        digest = await _framed_request(a.transport, c.address, payload, BULK_TIMEOUT)
        assert digest == hashlib.sha256(payload).digest()


async def check_listener_survives_bad_peers(factory: TransportFactory) -> None:
    """Immediate disconnects and garbage are counted; the listener serves the next stream."""
    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=_framed_handler)
        # Immediate disconnect, without sending anything.
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        await stream.close()
        # Garbage: an absurd length, then EOF.
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        stream.write(b"\xff\xff\xff\xffgarbage")
        stream.write_eof()
        assert await stream.read(-1, timeout=STEP_TIMEOUT) == b""
        await stream.close()
        # A truncated frame, then EOF.
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        stream.write(struct.pack(">I", 100) + b"short")
        stream.write_eof()
        assert await stream.read(-1, timeout=STEP_TIMEOUT) == b""
        await stream.close()
        # The listener still works.
        for body in (b"", b"ok", b"z" * 10_000):
            assert await _framed_request(a.transport, b.address, body) == (
                hashlib.sha256(body).digest()
            )
        await asyncio.sleep(0.05)
        assert b.transport.stats.errors >= 2
        assert b.transport.stats.streams_accepted == 6


async def check_close_cancels_stream_handlers(factory: TransportFactory) -> None:
    """close() ends handlers still running; the dialer sees EOF or a reset, not a hang."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(stream: Stream) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with contextlib.AsyncExitStack() as stack:
        a = await _node(factory, stack)
        b = await _node(factory, stack, on_stream=stuck)
        stream = await a.transport.open_stream(b.address, timeout=STEP_TIMEOUT)
        stack.push_async_callback(stream.close)
        await asyncio.wait_for(started.wait(), STEP_TIMEOUT)
        await asyncio.wait_for(b.transport.close(), STEP_TIMEOUT)
        assert cancelled.is_set()
        with contextlib.suppress(ConnectionError):
            assert await stream.read(-1, timeout=STEP_TIMEOUT) == b""


CHECKS: dict[str, Callable[[TransportFactory], Coroutine[Any, Any, None]]] = {
    "packet_round_trip": check_packet_round_trip,
    "packet_size_limit": check_packet_size_limit,
    "many_packets": check_many_packets,
    "packet_handler_error_is_counted": check_packet_handler_error_is_counted,
    "stream_request_response": check_stream_request_response,
    "stream_refused": check_stream_refused,
    "stream_read_timeout": check_stream_read_timeout,
    "close_stops_delivery_and_frees_address": check_close_stops_delivery_and_frees_address,
    "bind_conflict": check_bind_conflict,
    "concurrent_streams": check_concurrent_streams,
    "large_stream_payload": check_large_stream_payload,
    "listener_survives_bad_peers": check_listener_survives_bad_peers,
    "close_cancels_stream_handlers": check_close_cancels_stream_handlers,
}
"""Every conformance check by name."""
