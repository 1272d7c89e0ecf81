"""TrioNetTransport: the net transport on trio (UDP packets, TCP and TLS streams), and its wire
against the asyncio NetTransport (plain and TLS) in both directions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

trio = pytest.importorskip("trio")

from serf.testing.certs import TestCA  # noqa: E402
from serf.transport.base import Address, Stream  # noqa: E402
from serf.transport.net import NetTransport  # noqa: E402
from serf.transport.tls import TlsConfig  # noqa: E402
from serf.transport.trio_net import TrioNetTransport  # noqa: E402

LOOPBACK = Address("127.0.0.1", 0)


def _run(body: Callable[[Any], Awaitable[None]], limit: float = 20.0) -> None:
    async def main() -> None:
        with trio.fail_after(limit):
            async with trio.open_nursery() as nursery:
                await body(nursery)
                nursery.cancel_scope.cancel()

    trio.run(main)


async def _echo(stream: Stream) -> None:
    """Read the request to EOF, answer ``re:`` + it."""
    data = await stream.read(-1)
    stream.write(b"re:" + data)
    await stream.drain()


async def _ask(transport: Any, to: Address, payload: bytes = b"x") -> bytes:
    stream = await transport.open_stream(to, timeout=5)
    try:
        stream.write(payload)
        await stream.drain()
        stream.write_eof()
        return bytes(await stream.read(-1))
    finally:
        await stream.close()


async def _started(nursery: Any, tls: TlsConfig | None = None, **handlers: Any) -> Any:
    t = TrioNetTransport(LOOPBACK, stream_timeout=5, tls=tls)
    t.set_handlers(**handlers)
    await t.start(nursery)
    return t


def test_packets_round_trip_with_the_trio_clock() -> None:
    async def body(nursery: Any) -> None:
        got: list[tuple[bytes, Address, float]] = []
        arrived = trio.Event()

        def on_packet(data: bytes, addr: Address, at: float) -> None:
            got.append((data, addr, at))
            arrived.set()

        a = await _started(nursery)
        b = await _started(nursery, on_packet=on_packet)
        before = trio.current_time()
        a.send_packet(b.local_address, b"ping")
        await arrived.wait()
        assert got[0][0] == b"ping"
        assert got[0][1] == a.local_address
        assert before <= got[0][2] <= trio.current_time()
        assert (a.stats.packets_sent, b.stats.packets_received) == (1, 1)
        await a.close()
        await b.close()

    _run(body)


def test_stream_request_reply_with_half_close() -> None:
    async def body(nursery: Any) -> None:
        a = await _started(nursery)
        b = await _started(nursery, on_stream=_echo)
        assert await _ask(a, b.local_address, b"hello" * 50_000) == b"re:" + b"hello" * 50_000
        assert (a.stats.streams_opened, b.stats.streams_accepted) == (1, 1)
        await a.close()
        await b.close()

    _run(body)


def test_refused_timeout_and_handler_error_are_reported() -> None:
    async def body(nursery: Any) -> None:
        async def silent(stream: Stream) -> None:
            await trio.sleep(30)

        async def broken(stream: Stream) -> None:
            raise ValueError("bad handler")

        a = await _started(nursery)
        quiet = await _started(nursery, on_stream=silent)
        bad = await _started(nursery, on_stream=broken)
        gone = await _started(nursery)
        gone_addr = gone.local_address
        await gone.close()
        with pytest.raises(ConnectionRefusedError):
            await a.open_stream(gone_addr, timeout=2)
        stream = await a.open_stream(quiet.local_address)
        with pytest.raises(TimeoutError):
            await stream.read(10, timeout=0.2)
        await stream.close()
        try:  # the handler failed: the connection ends (reset, as it left data unread)
            assert await _ask(a, bad.local_address) == b""
        except ConnectionResetError:
            pass
        with trio.fail_after(5):
            while bad.stats.errors < 1:
                await trio.sleep(0.01)
        assert bad.stats.errors == 1
        for t in (a, quiet, bad):
            await t.close()

    _run(body)


def test_close_stops_delivery_and_frees_the_address() -> None:
    async def body(nursery: Any) -> None:
        got: list[bytes] = []
        a = await _started(nursery)
        b = await _started(nursery, on_packet=lambda d, _a, _t: got.append(d))
        addr = b.local_address
        await b.close()
        await b.close()  # idempotent
        a.send_packet(addr, b"late")
        await trio.sleep(0.1)
        assert got == []
        with pytest.raises(RuntimeError):
            b.send_packet(a.local_address, b"x")
        again = TrioNetTransport(addr)
        await again.start(nursery)  # UDP and TCP are free again
        assert again.local_address == addr
        await again.close()
        await a.close()

    _run(body)


def test_tls_streams_and_an_intruder_refused_both_ways(caplog: pytest.LogCaptureFixture) -> None:
    ca = TestCA()
    forged = TestCA("another CA").issue("intruder")
    intruder_tls = TlsConfig(
        ca_pem=ca.pem(), certificate=forged.certificate, private_key=forged.private_key
    )
    caplog.set_level(logging.DEBUG, logger="serf.transport.net")

    async def body(nursery: Any) -> None:
        a = await _started(nursery, ca.tls("a"))
        b = await _started(nursery, ca.tls("b"), on_stream=_echo)
        assert await _ask(a, b.local_address, b"y" * 3_000_000) == b"re:" + b"y" * 3_000_000
        intruder = await _started(nursery, intruder_tls, on_stream=_echo)
        # inbound: the intruder's certificate fails b's check (TLS 1.3: the dialer may learn
        # only on its first read)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            answer = await _ask(intruder, b.local_address)
            assert answer != b"re:x"
            raise ConnectionError("no answer")
        with trio.fail_after(5):
            while b.stats.peers_refused < 1:
                await trio.sleep(0.01)
        # outbound: a's dialer refuses the intruder's certificate
        with pytest.raises(ConnectionRefusedError, match="unable to get local issuer"):
            await _ask(a, intruder.local_address)
        assert (a.stats.peers_refused, b.stats.peers_refused) == (1, 1)
        for t in (a, b, intruder):
            await t.close()

    _run(body)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("refused inbound TLS peer 127.0.0.1:") for m in warnings), warnings
    assert any(m.startswith("refused outbound TLS peer 127.0.0.1:") for m in warnings), warnings


class _AsyncioPeer:
    """An asyncio NetTransport serving ``_echo`` on a loop in its own thread."""

    def __init__(self, tls: TlsConfig | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.transport = NetTransport(LOOPBACK, stream_timeout=5, tls=tls)
        self.transport.set_handlers(on_stream=_echo)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.transport.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=20)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.transport.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.mark.parametrize("secure", [False, True], ids=["tcp", "tls"])
def test_trio_and_asyncio_transports_talk_both_ways(secure: bool) -> None:
    ca = TestCA() if secure else None
    peer = _AsyncioPeer(ca.tls("asyncio") if ca is not None else None)
    payload = b"z" * 2_500_000
    try:

        async def body(nursery: Any) -> None:
            t = await _started(nursery, ca.tls("trio") if ca is not None else None, on_stream=_echo)
            # trio dials asyncio
            assert await _ask(t, peer.transport.local_address, payload) == b"re:" + payload
            # asyncio dials trio (in its own thread while trio serves)
            answer = await trio.to_thread.run_sync(
                peer.call, _ask(peer.transport, t.local_address, payload)
            )
            assert answer == b"re:" + payload
            await t.close()

        _run(body)
    finally:
        peer.close()
