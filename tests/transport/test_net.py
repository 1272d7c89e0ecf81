"""NetTransport specifics (UDP + TCP on one port) and the base types (Address, resolvers)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import serf.transport.net as net_module
from serf.transport.base import (
    Address,
    AddressLike,
    DnsResolver,
    PacketTooLargeError,
    StaticResolver,
    TransportStats,
)
from serf.transport.net import NetTransport, install_uvloop

LOCAL = Address("127.0.0.1", 0)


def run(coro_fn: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(coro_fn(), timeout)

    asyncio.run(main())


# -- Address -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:7946", "127.0.0.1", 7946),
        ("[::1]:7946", "::1", 7946),
        ("[fe80::1]:0", "fe80::1", 0),
        ("node.example:65535", "node.example", 65535),
        (" 10.0.0.1:1 ", "10.0.0.1", 1),
    ],
)
def test_address_parse(text: str, host: str, port: int) -> None:
    addr = Address.parse(text)
    assert addr == Address(host, port)
    assert Address.parse(str(addr)) == addr


def test_address_str() -> None:
    assert str(Address("127.0.0.1", 7946)) == "127.0.0.1:7946"
    assert str(Address("::1", 7946)) == "[::1]:7946"


def test_address_default_port() -> None:
    assert Address.parse("10.0.0.1", default_port=7946) == Address("10.0.0.1", 7946)
    assert Address.parse("::1", default_port=1) == Address("::1", 1)
    assert Address.parse("[::1]", default_port=2) == Address("::1", 2)


@pytest.mark.parametrize(
    "text", ["", "127.0.0.1", "127.0.0.1:", "1.2.3.4:x", "1.2.3.4:70000", "[::1", "[::1]x", ":80"]
)
def test_address_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Address.parse(text)


def test_address_is_frozen_and_slotted() -> None:
    addr = Address("127.0.0.1", 1)
    with pytest.raises(AttributeError):
        addr.port = 2  # type: ignore[misc]
    assert not hasattr(addr, "__dict__")
    assert isinstance(addr, AddressLike)
    assert hash(addr) == hash(Address("127.0.0.1", 1))


@given(
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    st.integers(min_value=0, max_value=65535),
)
def test_address_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    addr = Address(str(ip), port)
    assert Address.parse(str(addr)) == addr


def test_address_of_custom_type() -> None:
    class MyAddr:
        host = "10.1.2.3"
        port = 99

    assert Address.of(MyAddr()) == Address("10.1.2.3", 99)


# -- resolvers -----------------------------------------------------------------------------


def test_static_resolver() -> None:
    async def main() -> None:
        resolver = StaticResolver({"seed": [Address("10.0.0.1", 7946), Address("10.0.0.2", 1)]})
        assert await resolver.resolve("seed") == [Address("10.0.0.1", 7946), Address("10.0.0.2", 1)]
        assert await resolver.resolve("10.9.9.9") == [Address("10.9.9.9", 7946)]
        assert await resolver.resolve("[::1]:5") == [Address("::1", 5)]
        with pytest.raises(LookupError):
            await resolver.resolve("nowhere")

    run(main)


def test_dns_resolver() -> None:
    async def main() -> None:
        resolver = DnsResolver(default_port=7946)
        assert await resolver.resolve("127.0.0.1") == [Address("127.0.0.1", 7946)]
        assert await resolver.resolve("127.0.0.1:80") == [Address("127.0.0.1", 80)]
        found = await resolver.resolve("localhost:1234")
        assert found
        assert all(ipaddress.ip_address(a.host).is_loopback and a.port == 1234 for a in found)

    run(main)


# -- NetTransport --------------------------------------------------------------------------


def test_udp_and_tcp_share_the_port() -> None:
    async def main() -> None:
        packets: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        accepted = asyncio.Event()

        async def on_stream(stream: Any) -> None:
            assert await stream.read(-1) == b"raw tcp"
            accepted.set()

        t = NetTransport(LOCAL)
        t.set_handlers(lambda d, a, _t: packets.put_nowait((d, a)), on_stream)
        await t.start()
        try:
            port = t.local_address.port
            assert port != 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", 0))
                udp.sendto(b"raw udp", ("127.0.0.1", port))
                data, src = await asyncio.wait_for(packets.get(), 5)
                assert data == b"raw udp"
                assert src == Address("127.0.0.1", udp.getsockname()[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"raw tcp")
            writer.write_eof()
            await asyncio.wait_for(accepted.wait(), 5)
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        finally:
            await t.close()

    run(main)


def test_lifecycle_misuse_raises() -> None:
    async def main() -> None:
        t = NetTransport(LOCAL)
        with pytest.raises(RuntimeError):
            _ = t.local_address
        with pytest.raises(RuntimeError):
            t.send_packet(Address("127.0.0.1", 9), b"x")
        with pytest.raises(RuntimeError):
            await t.open_stream(Address("127.0.0.1", 9))
        await t.start()
        with pytest.raises(RuntimeError):
            t.set_handlers()
        with pytest.raises(RuntimeError):
            await t.start()
        await t.close()
        with pytest.raises(RuntimeError):
            t.send_packet(Address("127.0.0.1", 9), b"x")

    run(main)


def test_max_packet_size_is_configurable() -> None:
    async def main() -> None:
        t = NetTransport(LOCAL, max_packet_size=1400)
        await t.start()
        try:
            assert t.max_packet_size == 1400
            t.send_packet(t.local_address, b"x" * 1400)
            with pytest.raises(PacketTooLargeError, match="1401 bytes exceeds"):
                t.send_packet(t.local_address, b"x" * 1401)
        finally:
            await t.close()
        with pytest.raises(ValueError):
            NetTransport(LOCAL, max_packet_size=70_000)

    run(main)


def test_send_failure_is_counted_not_raised() -> None:
    async def main() -> None:
        t = NetTransport(LOCAL)
        await t.start()
        try:
            # An IPv6 destination from an IPv4 socket cannot be sent to.
            t.send_packet(Address("::1", 9), b"x")
            with pytest.raises(ValueError, match="IP literal"):
                t.send_packet(Address("localhost", 9), b"x")
            await asyncio.sleep(0.05)
            assert t.stats.errors >= 1
        finally:
            await t.close()

    run(main)


def test_tcp_port_taken_is_retried_on_port_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    real_bound_socket = net_module._bound_socket
    calls: list[int] = []

    def flaky_bound_socket(bind: Address, kind: socket.SocketKind) -> socket.socket:
        if kind == socket.SOCK_STREAM:
            calls.append(bind.port)
            if len(calls) == 1:
                raise OSError(errno.EADDRINUSE, "address already in use")
        return real_bound_socket(bind, kind)

    monkeypatch.setattr(net_module, "_bound_socket", flaky_bound_socket)

    async def main() -> None:
        t = NetTransport(LOCAL)
        await t.start()
        try:
            assert len(calls) == 2
            assert t.local_address.port == calls[1]
        finally:
            await t.close()
        # The first UDP socket was released.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", calls[0]))

    run(main)


def test_explicit_port_with_tcp_taken_fails_cleanly() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            tcp.listen()
            port = tcp.getsockname()[1]
            t = NetTransport(Address("127.0.0.1", port))
            with pytest.raises(OSError, match="cannot bind TCP"):
                await t.start()
            # The UDP socket on that port was released.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))

    run(main)


def test_datagram_sources_share_one_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each datagram source is one cached Address (same text as uncached), the cache bounded."""
    monkeypatch.setattr(net_module, "_SOURCES_MAX", 3)
    monkeypatch.setattr(net_module, "_sources", {})
    first = net_module._source_address(("127.0.0.1", 7946))
    assert first == Address("127.0.0.1", 7946)
    assert net_module._source_address(("127.0.0.1", 7946)) is first
    mapped = net_module._source_address(("::ffff:10.0.0.1", 1, 0, 0))
    assert mapped == Address("10.0.0.1", 1)
    assert net_module._source_address(("fe80::1%lo", 2, 0, 1)) == Address("fe80::1", 2)
    assert len(net_module._sources) == 3
    assert net_module._source_address(("127.0.0.2", 3)) == Address("127.0.0.2", 3)
    assert len(net_module._sources) == 1  # cleared when full, then the new source kept


def test_stats_object() -> None:
    stats = TransportStats()
    assert (stats.packets_sent, stats.packets_received, stats.errors) == (0, 0, 0)
    assert (stats.streams_opened, stats.streams_accepted) == (0, 0)


def test_received_datagram_handler_errors_are_counted() -> None:
    async def main() -> None:
        t = NetTransport(LOCAL)

        def boom(data: bytes, addr: Address, at: float) -> None:
            raise ValueError("bad")

        t.set_handlers(on_packet=boom)
        await t.start()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(b"x", ("127.0.0.1", t.local_address.port))
            for _ in range(100):
                if t.stats.errors:
                    break
                await asyncio.sleep(0.01)
            assert t.stats.errors == 1
            assert t.stats.packets_received == 1
        finally:
            await t.close()

    run(main)


def test_install_uvloop() -> None:
    pytest.importorskip("uvloop")
    import uvloop

    before = asyncio.get_event_loop_policy()
    try:
        assert install_uvloop() is True
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)


def test_library_does_not_install_a_policy() -> None:
    import serf.transport  # noqa: F401

    policy = asyncio.get_event_loop_policy()
    assert type(policy).__module__.startswith("asyncio")
