"""QuicTransport passes the whole conformance suite, plus QUIC-specific checks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serf.testing.conformance import CHECKS, QuicFactory, run_check
from serf.transport import Address, QuicTransport, Stream
from serf.transport.quic import DATAGRAM_PAYLOAD_LIMIT

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None

LOOPS: dict[str, LoopFactory] = {"asyncio": None}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
@pytest.mark.parametrize(
    "check_name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name == "large_stream_payload" else name
        for name in sorted(CHECKS)
    ],
)
def test_quic_conformance(check_name: str, loop_name: str) -> None:
    run_check(CHECKS[check_name], lambda: QuicFactory("127.0.0.1"), 60.0, LOOPS[loop_name])


def _run(coro_fn: Callable[[], object], loop_name: str = "asyncio") -> None:
    async def main() -> None:
        await asyncio.wait_for(coro_fn(), 30.0)  # type: ignore[arg-type]

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_one_connection_per_peer_for_packets_and_streams(loop_name: str) -> None:
    """Datagram-sized and stream-sized packets and a stream share one QUIC connection, and
    the self-signed default certificate works when peers do not verify."""

    async def body() -> None:
        got: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()

        async def echo(stream: Stream) -> None:
            stream.write(await stream.read(-1))
            stream.write_eof()

        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0))
            b = QuicTransport(Address("127.0.0.1", 0))
            b.set_handlers(on_packet=lambda d, src, t: got.put_nowait((d, src)), on_stream=echo)
            for t in (a, b):
                await t.start()
                stack.push_async_callback(t.close)
            small = b"s" * DATAGRAM_PAYLOAD_LIMIT
            big = b"B" * (DATAGRAM_PAYLOAD_LIMIT + 1)
            a.send_packet(b.local_address, small)
            a.send_packet(b.local_address, big)
            received = {await asyncio.wait_for(got.get(), 5) for _ in range(2)}
            assert received == {(small, a.local_address), (big, a.local_address)}
            stream = await a.open_stream(b.local_address, timeout=5)
            stream.write(b"hi")
            stream.write_eof()
            assert await stream.read(-1, timeout=5) == b"hi"
            await stream.close()
            assert len(a._connections) == 1
            assert len(b._connections) == 1

    _run(body, loop_name)


def test_handshake_timeout_is_refused_quickly() -> None:
    async def body() -> None:
        a = QuicTransport(Address("127.0.0.1", 0), handshake_timeout=0.3)
        await a.start()
        try:
            target = await QuicFactory().unused_address()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ConnectionRefusedError):
                await a.open_stream(target, timeout=5)
            assert loop.time() - started < 1.5
            assert not a._by_peer
        finally:
            await a.close()

    _run(body)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="together"):
        QuicTransport(Address("127.0.0.1", 0), private_key=object())
    with pytest.raises(ValueError, match="handshake_timeout"):
        QuicTransport(Address("127.0.0.1", 0), handshake_timeout=0)


def _ca_and_leaf(tmp_path: Path) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA (written to a PEM file) and a leaf for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serf test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file, leaf, key


def test_verify_peer_with_a_ca(tmp_path: Path) -> None:
    """Nodes with CA-signed certificates talk; a self-signed listener is refused."""
    ca_file, leaf, key = _ca_and_leaf(tmp_path)

    async def reply(stream: Stream) -> None:
        stream.write(b"re:" + await stream.read(-1))
        stream.write_eof()

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(
                Address("127.0.0.1", 0), certificate=leaf, private_key=key, verify_peer=ca_file
            )
            b = QuicTransport(
                Address("127.0.0.1", 0), certificate=leaf, private_key=key, verify_peer=ca_file
            )
            rogue = QuicTransport(Address("127.0.0.1", 0))  # self-signed
            for t in (a, b, rogue):
                t.set_handlers(on_stream=reply)
                await t.start()
                stack.push_async_callback(t.close)
            stream = await a.open_stream(b.local_address, timeout=5)
            stream.write(b"x")
            stream.write_eof()
            assert await stream.read(-1, timeout=5) == b"re:x"
            await stream.close()
            with pytest.raises(ConnectionRefusedError):
                await a.open_stream(rogue.local_address, timeout=5)

    _run(body)


def test_idle_connections_close_and_redial() -> None:
    """An idle connection is closed by QUIC's idle timeout and dropped from the cache; the
    next packet dials a new one."""

    async def body() -> None:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0), idle_timeout=0.3)
            b = QuicTransport(Address("127.0.0.1", 0), idle_timeout=0.3)
            b.set_handlers(on_packet=lambda d, src, t: got.put_nowait(d))
            for t in (a, b):
                await t.start()
                stack.push_async_callback(t.close)
            a.send_packet(b.local_address, b"one")
            assert await asyncio.wait_for(got.get(), 5) == b"one"
            assert len(a._connections) == 1
            for _ in range(50):
                if not a._connections and not b._connections:
                    break
                await asyncio.sleep(0.1)
            assert not a._connections and not b._connections
            assert not a._cids and not b._cids
            a.send_packet(b.local_address, b"two")
            assert await asyncio.wait_for(got.get(), 5) == b"two"

    _run(body)


def test_connection_cache_is_bounded() -> None:
    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0), max_connections=2)
            peers = [QuicTransport(Address("127.0.0.1", 0)) for _ in range(4)]
            for t in (a, *peers):
                await t.start()
                stack.push_async_callback(t.close)
            for peer in peers:
                stream = await a.open_stream(peer.local_address, timeout=5)
                await stream.close()
                assert len([c for c in a._connections if not c.closing]) <= 2

    _run(body)


def test_aioquic_warnings_go_to_debug_and_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    """aioquic logs a WARNING for every failed handshake (a peer that speaks another ALPN
    here); the transport logs it at DEBUG on serf.transport.quic.aioquic and counts it."""
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with contextlib.AsyncExitStack() as stack:
            a = QuicTransport(Address("127.0.0.1", 0))
            b = QuicTransport(Address("127.0.0.1", 0), alpn="not-serf")
            for t in (a, b):
                await t.start()
                stack.push_async_callback(t.close)
            with pytest.raises(ConnectionRefusedError, match="ALPN"):
                await a.open_stream(b.local_address, timeout=5)
            for _ in range(100):
                if b.quic_warnings:
                    break
                await asyncio.sleep(0.01)
            assert b.quic_warnings == 1

    _run(body)
    lines = [r for r in caplog.records if "ALPN" in r.getMessage()]
    assert any(r.name == "serf.transport.quic.aioquic" for r in lines)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "aioquic" in r.name)
    assert not [r for r in caplog.records if r.name == "quic"]
