"""QuicTransport with ``tls=``: every connection, dialed or accepted, proves its peer holds a
certificate from the cluster CA; other CA, expired or no certificate is refused both ways,
logged and counted. Also: the aioquic internals this relies on are where we expect them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import pytest

from serf.testing.certs import TestCA
from serf.transport import Address, QuicTransport, Stream
from serf.transport.tls import TlsConfig

LOCAL = Address("127.0.0.1", 0)


async def _echo(stream: Stream) -> None:
    stream.write(b"re:" + await stream.read(-1))
    stream.write_eof()


def _run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 30.0)

    asyncio.run(main())


async def _started(
    stack: contextlib.AsyncExitStack,
    tls: TlsConfig | None,
    packets: asyncio.Queue[bytes] | None = None,
) -> QuicTransport:
    t = QuicTransport(LOCAL, tls=tls, handshake_timeout=3.0)
    on_packet = None if packets is None else (lambda d, src, at: packets.put_nowait(d))
    t.set_handlers(on_packet=on_packet, on_stream=_echo)
    await t.start()
    stack.push_async_callback(t.close)
    return t


async def _ask(dialer: QuicTransport, listener: QuicTransport) -> bytes:
    stream = await dialer.open_stream(listener.local_address, timeout=5)
    try:
        stream.write(b"x")
        stream.write_eof()
        return await stream.read(-1, timeout=5)
    finally:
        await stream.close()


async def _counted(t: QuicTransport, refused: int) -> None:
    """Wait (bounded) until ``t`` counted ``refused`` refusals."""
    for _ in range(250):
        if t.stats.peers_refused >= refused:
            break
        await asyncio.sleep(0.02)
    assert t.stats.peers_refused == refused


def test_mutual_quic_carries_streams_and_packets_both_ways() -> None:
    ca = TestCA()

    async def body() -> None:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        async with contextlib.AsyncExitStack() as stack:
            a = await _started(stack, ca.tls("a"), got)
            b = await _started(stack, ca.tls("b"), got)
            assert await _ask(a, b) == b"re:x"
            assert await _ask(b, a) == b"re:x"
            a.send_packet(b.local_address, b"ping")
            assert await asyncio.wait_for(got.get(), 5) == b"ping"
            assert a.stats.peers_refused == b.stats.peers_refused == 0
            # an accepted connection is authenticated, so it is reused for sending
            assert len(a._connections) == len(b._connections) == 1

    _run(body)


def _other_ca(ca: TestCA) -> TlsConfig:
    forged = TestCA("another CA").issue("intruder")
    return TlsConfig(
        ca_pem=ca.pem(), certificate=forged.certificate, private_key=forged.private_key
    )


INTRUDERS: dict[str, Callable[[TestCA], TlsConfig | None]] = {
    "other-ca": _other_ca,
    "expired": lambda ca: ca.tls("intruder", expired=True),
    "self-signed": lambda ca: None,  # a QuicTransport without tls (its own certificate)
}


@pytest.mark.parametrize("kind", sorted(INTRUDERS))
def test_intruder_is_refused_both_ways(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    ca = TestCA()
    caplog.set_level(logging.DEBUG, logger="serf.transport.quic")

    async def body() -> None:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        async with contextlib.AsyncExitStack() as stack:
            good = await _started(stack, ca.tls("good"), got)
            intruder = await _started(stack, INTRUDERS[kind](ca))
            # inbound: the intruder dials us; nothing of it is delivered
            intruder.send_packet(good.local_address, b"let me in")
            with pytest.raises((ConnectionError, TimeoutError)):
                assert await _ask(intruder, good) != b"re:x"
                raise ConnectionError("no answer")
            await _counted(good, 1)
            assert got.empty() and good.stats.streams_accepted == 0
            # outbound: we dial the intruder and refuse its certificate
            with pytest.raises(ConnectionRefusedError, match="refused"):
                await _ask(good, intruder)
            assert good.stats.peers_refused == 2

    _run(body)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("refused inbound TLS peer 127.0.0.1:") for m in warnings), warnings
    assert any(m.startswith("refused outbound TLS peer 127.0.0.1:") for m in warnings), warnings


def test_dialer_without_certificate_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    ca = TestCA()
    caplog.set_level(logging.DEBUG, logger="serf.transport.quic")

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            good = await _started(stack, ca.tls("good"))
            bare = await _started(stack, None)
            assert bare._client_config is not None
            bare._client_config.certificate = None  # answers the request with no certificate
            bare._client_config.private_key = None
            with pytest.raises((ConnectionError, TimeoutError)):
                assert await _ask(bare, good) != b"re:x"
                raise ConnectionError("no answer")
            await _counted(good, 1)

    _run(body)
    assert any(
        "refused inbound TLS peer" in r.getMessage() and "no certificate" in r.getMessage()
        for r in caplog.records
    )


def test_server_only_quic_lets_any_dialer_in() -> None:
    ca = TestCA()

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            listener = await _started(stack, ca.tls("b", mutual=False))
            stranger = await _started(
                stack,
                TlsConfig(
                    ca_pem=ca.pem(),
                    certificate=TestCA("x").issue("s").certificate,
                    private_key=TestCA("x").issue("s").private_key,
                    mutual=False,
                ),
            )
            assert await _ask(stranger, listener) == b"re:x"
            assert listener.stats.peers_refused == 0

    _run(body)


def test_tls_replaces_the_certificate_arguments() -> None:
    ca = TestCA()
    with pytest.raises(ValueError, match="tls replaces"):
        QuicTransport(LOCAL, tls=ca.tls(), verify_peer=True)
    with pytest.raises(TypeError, match="TlsConfig"):
        QuicTransport(LOCAL, tls="ca.pem")  # type: ignore[arg-type]
