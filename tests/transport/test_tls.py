"""NetTransport with TLS streams: who is let in, who is refused, and what is logged/counted.

The conformance suite runs on TLS too (tests/transport/test_conformance.py, ``net-tls``);
these tests are about authentication: a peer with a certificate from another CA, an expired
one or none is refused in both directions (as dialer and as listener), with one WARNING
naming the peer and the reason and a count in ``stats.peers_refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from serf.testing.certs import TestCA
from serf.transport import Address, NetTransport, Stream
from serf.transport.tls import TlsConfig, TlsConfigError

LOCAL = Address("127.0.0.1", 0)


async def _echo(stream: Stream) -> None:
    stream.write(b"re:" + await stream.read(-1))
    stream.write_eof()


def _run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 30.0)

    asyncio.run(main())


async def _ask(dialer: NetTransport, listener: NetTransport) -> bytes:
    stream = await dialer.open_stream(listener.local_address, timeout=5)
    try:
        stream.write(b"x")
        stream.write_eof()
        return await stream.read(-1, timeout=5)
    finally:
        await stream.close()


async def _started(stack: contextlib.AsyncExitStack, tls: TlsConfig | None) -> NetTransport:
    t = NetTransport(LOCAL, tls=tls)
    t.set_handlers(on_stream=_echo)
    await t.start()
    stack.push_async_callback(t.close)
    return t


def test_mutual_tls_from_files_and_from_memory(tmp_path: Path) -> None:
    ca = TestCA()
    ca_file, cert_file, key_file = ca.write(tmp_path, "a")

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            a = await _started(
                stack, TlsConfig.from_files(str(ca_file), str(cert_file), str(key_file))
            )
            b = await _started(stack, ca.tls("b"))
            assert await _ask(a, b) == b"re:x"
            assert await _ask(b, a) == b"re:x"
            assert a.stats.peers_refused == b.stats.peers_refused == 0

    _run(body)


def test_server_name_is_checked_when_set() -> None:
    ca = TestCA()

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            listener = await _started(stack, ca.tls("node-b"))
            right = await _started(stack, ca.tls("a", server_name="node-b"))
            wrong = await _started(stack, ca.tls("a", server_name="node-c"))
            assert await _ask(right, listener) == b"re:x"
            with pytest.raises(ConnectionRefusedError, match="node-c"):
                await _ask(wrong, listener)
            assert wrong.stats.peers_refused == 1

    _run(body)


def _other_ca_intruder(ca: TestCA) -> TlsConfig:
    """Trusts our (public) CA, but holds a certificate from another CA."""
    forged = TestCA("another CA").issue("intruder")
    return TlsConfig(
        ca_pem=ca.pem(), certificate=forged.certificate, private_key=forged.private_key
    )


INTRUDERS: dict[str, Callable[[TestCA], TlsConfig]] = {
    "other-ca": _other_ca_intruder,
    "expired": lambda ca: ca.tls("intruder", expired=True),
}


async def _counted(t: NetTransport, refused: int) -> None:
    """Wait (bounded) until ``t`` counted ``refused`` refusals: an inbound refusal is counted
    when the listener's handshake task ends, which may be after the dialer gave up."""
    for _ in range(250):
        if t.stats.peers_refused >= refused:
            break
        await asyncio.sleep(0.02)
    assert t.stats.peers_refused == refused


REASONS = {
    "other-ca": "unable to get local issuer certificate",
    "expired": "certificate has expired",
}


@pytest.mark.parametrize("kind", sorted(INTRUDERS))
def test_intruder_is_refused_both_ways(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """The intruder dials us (refused inbound) and we dial it (refused outbound)."""
    ca = TestCA()
    caplog.set_level(logging.DEBUG, logger="serf.transport.net")

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            good = await _started(stack, ca.tls("good"))
            intruder = await _started(stack, INTRUDERS[kind](ca))
            # inbound: the intruder's certificate fails our check (TLS 1.3: it may only
            # learn on its first read)
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                answer = await _ask(intruder, good)
                assert answer != b"re:x"
                raise ConnectionError("no answer")
            await _counted(good, 1)
            # outbound: the intruder's certificate fails our dialer's check
            with pytest.raises(ConnectionRefusedError, match=REASONS[kind]):
                await _ask(good, intruder)
            assert good.stats.peers_refused == 2
            assert good.stats.errors >= 2

    _run(body)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        m.startswith("refused inbound TLS peer 127.0.0.1:") and REASONS[kind] in m for m in warnings
    ), warnings
    assert any(
        m.startswith("refused outbound TLS peer 127.0.0.1:") and REASONS[kind] in m
        for m in warnings
    ), warnings


def test_peer_without_certificate_is_refused_both_ways(caplog: pytest.LogCaptureFixture) -> None:
    """Inbound: a TLS dialer with no certificate; outbound: a listener with no TLS at all."""
    ca = TestCA()
    caplog.set_level(logging.DEBUG, logger="serf.transport.net")

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            good = await _started(stack, ca.tls("good"))
            plain = NetTransport(LOCAL)  # no TLS: reads a byte it cannot parse, hangs up

            async def unparsable(stream: Stream) -> None:
                await stream.read(1)

            plain.set_handlers(on_stream=unparsable)
            await plain.start()
            stack.push_async_callback(plain.close)
            bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            bare.check_hostname = False
            bare.load_verify_locations(cadata=ca.pem().decode())
            host, port = good.local_address.host, good.local_address.port
            reader, writer = await asyncio.open_connection(host, port, ssl=bare)
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            await _counted(good, 1)
            with pytest.raises(ConnectionRefusedError, match="TLS handshake"):
                await _ask(good, plain)
            assert good.stats.peers_refused == 2

    _run(body)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused inbound TLS peer" in m and "certificate" in m for m in warnings), warnings
    assert any("refused outbound TLS peer" in m for m in warnings), warnings


def test_server_only_tls_lets_any_dialer_in_but_still_checks_listeners() -> None:
    ca = TestCA()

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            listener = await _started(stack, ca.tls("b", mutual=False))
            stranger = await _started(stack, TestCA("another CA").tls("x", mutual=False))
            # the stranger's certificate is not checked by a server-only listener ...
            stranger_ok = TlsConfig(
                ca_pem=ca.pem(),
                certificate=stranger._tls.certificate,  # type: ignore[union-attr]
                private_key=stranger._tls.private_key,  # type: ignore[union-attr]
                mutual=False,
            )
            dialer = await _started(stack, stranger_ok)
            assert await _ask(dialer, listener) == b"re:x"
            assert listener.stats.peers_refused == 0
            # ... but every dialer checks the listener against its CA
            with pytest.raises(ConnectionRefusedError):
                await _ask(listener, stranger)
            assert listener.stats.peers_refused == 1

    _run(body)


def test_repeated_refusals_warn_once_and_count_each(caplog: pytest.LogCaptureFixture) -> None:
    ca = TestCA()
    caplog.set_level(logging.DEBUG, logger="serf.transport.net")

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            good = await _started(stack, ca.tls("good"))
            intruder = await _started(stack, TestCA("another CA").tls("x"))
            for _ in range(3):
                with pytest.raises(ConnectionRefusedError):
                    await _ask(good, intruder)
            assert good.stats.peers_refused == 3

    _run(body)
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused outbound")]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_bad_tls_config_fails_before_binding(tmp_path: Path) -> None:
    ca = TestCA()
    with pytest.raises(TlsConfigError, match="ca_file / ca_pem"):
        TlsConfig(certificate=b"x", private_key=b"y")
    with pytest.raises(TlsConfigError, match="no such file"):
        TlsConfig.from_files(str(tmp_path / "nope.pem"), "c", "k")
    with pytest.raises(TlsConfigError, match="certificate"):
        TlsConfig(ca_pem=ca.pem())
    garbage = TlsConfig(ca_pem=ca.pem(), certificate=b"not pem", private_key=b"nor this")

    async def body() -> None:
        t = NetTransport(LOCAL, tls=garbage)
        with pytest.raises(TlsConfigError, match="certificate/key"):
            await t.start()
        await t.close()

    _run(body)
    with pytest.raises(TypeError, match="TlsConfig"):
        NetTransport(LOCAL, tls="yes")  # type: ignore[arg-type]
