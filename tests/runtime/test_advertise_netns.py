"""The advertise rule and the wildcard sockets on real interfaces, in network namespaces.

Each test makes its own namespace (``ip netns add``) holding a veth pair whose ``eth0`` carries
the addresses of the case and a default route, so nothing leaves it. In-process checks run an
event loop on a thread that entered the namespace (``setns`` is per thread); agent checks run
``serf agent`` with default flags through ``ip netns exec``, ours and Go serf v0.11.0's, and
compare what ``serf members`` and ``ss -lun`` show. Needs root (``netbed_or_skip``). The
cases need addresses the multi-host bed does not give its hosts (TEST-NET, public only), so
the namespaces are made here; entering one reuses the bed's ``setns`` thread.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from serf.address import Address
from serf.config import MemberlistConfig, SerfConfig, lan
from serf.runtime.memberlist import Memberlist
from serf.runtime.serf import Serf
from serf.testing.gopeer import go_serf_or_skip
from serf.testing.netbed import in_namespace, netbed_or_skip
from serf.transport.base import Stream
from serf.transport.net import NetTransport

pytestmark = [pytest.mark.netns, pytest.mark.integration]

T = TypeVar("T")
SERF = [sys.executable, "-P", "-m", "serf.cli.main"]
_COUNTER = itertools.count()


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


NetnsFactory = Callable[..., str]


@pytest.fixture
def netns() -> Iterator[NetnsFactory]:
    """Make namespaces: ``netns(addrs, v4_gateway=..., v6_gateway=...)`` -> its name."""
    netbed_or_skip()
    made: list[str] = []

    def make(
        addrs: tuple[str, ...], v4_gateway: str | None = None, v6_gateway: str | None = None
    ) -> str:
        name = f"pyserf-{os.getpid()}-adv{next(_COUNTER)}"  # swept by the bed if left behind
        try:
            _ip("netns", "add", name)
        except RuntimeError as exc:
            pytest.skip(f"cannot create a network namespace: {exc}")
        made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "eth1", "up")
        for addr in addrs:
            _ip("-n", name, "addr", "add", addr, "dev", "eth0", *(["nodad"] if ":" in addr else []))
        if v4_gateway:
            _ip("-n", name, "route", "add", "default", "via", v4_gateway, "dev", "eth0")
        if v6_gateway:
            _ip("-n", name, "-6", "route", "add", "default", "via", v6_gateway, "dev", "eth0")
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


def run_in_netns(name: str, main: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Run ``main()`` on a fresh event loop, on a thread inside namespace ``name``."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await main()

    return in_namespace(name, lambda: asyncio.run(bounded()))


# -- in-process: the facades and the transport on a wildcard bind ------------------------


def test_serf_facade_wildcard_bind_advertises_the_private_ipv4(netns: NetnsFactory) -> None:
    # on main before the shared rule, this advertised 127.0.0.1
    ns = netns(("10.77.0.2/24", "fd77::2/64"), v4_gateway="10.77.0.1")

    async def main() -> tuple[str, str]:
        config = SerfConfig(node_name="a", memberlist=MemberlistConfig("a", bind_port=0))
        serf = await Serf.create(config)
        ml = await Memberlist.create(MemberlistConfig("b", bind_port=0))
        try:
            return str(serf.local_member.address.host), ml.address.host
        finally:
            await ml.shutdown()
            await serf.shutdown()

    assert run_in_netns(ns, main) == ("10.77.0.2", "10.77.0.2")


def test_facade_wildcard_bind_without_a_private_address_asks_for_advertise(
    netns: NetnsFactory,
) -> None:
    ns = netns(("11.0.0.2/24",), v4_gateway="11.0.0.1")

    async def main() -> None:
        await Serf.create(SerfConfig(node_name="a", memberlist=lan("a")))

    with pytest.raises(ValueError, match="no private IP address found"):
        run_in_netns(ns, main, timeout=10.0)


def test_wildcard_bind_is_dual_stack_as_go(netns: NetnsFactory) -> None:
    ns = netns(())

    async def main() -> None:
        got: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        streams: asyncio.Queue[Address] = asyncio.Queue()
        transport = NetTransport(Address("0.0.0.0", 0))

        async def on_stream(stream: Stream) -> None:
            await streams.put(stream.remote_address)

        transport.set_handlers(
            on_packet=lambda data, src, _at: got.put_nowait((data, src)), on_stream=on_stream
        )
        await transport.start()
        try:
            sock = transport._udp.get_extra_info("socket")  # type: ignore[union-attr]
            assert sock.family == socket.AF_INET6
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
            port = transport.local_address.port
            loop = asyncio.get_running_loop()
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                with socket.socket(family, socket.SOCK_DGRAM) as peer:
                    peer.bind((host, 0))
                    peer.setblocking(False)
                    peer.sendto(b"ping", (host, port))
                    data, src = await got.get()
                    assert (data, src) == (b"ping", Address(host, peer.getsockname()[1]))
                    transport.send_packet(src, b"pong")  # an IPv4 target on a v6 socket
                    assert await loop.sock_recv(peer, 16) == b"pong"
                reader, writer = await asyncio.open_connection(host, port)
                assert (await streams.get()).host == host
                writer.close()
                del reader
        finally:
            await transport.close()

    run_in_netns(ns, main, timeout=10.0)


# -- subprocess agents with default flags, ours beside Go's ------------------------------


def _exec(ns: str, *cmd: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout
    )


def agent_view(ns: str, serf: list[str], *flags: str, log: Path) -> tuple[str, str, str]:
    """Run ``serf agent -node n FLAGS`` in ``ns``: (its ``members`` address, or its error
    output when it exited; the local UDP sockets on its port as ``ss -lun`` shows them; the
    banner's bind address)."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *serf, "agent", "-node", "n", *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        end = time.monotonic() + 20.0
        while time.monotonic() < end:
            if proc.poll() is not None:
                return "exited: " + log.read_text(), "", ""
            members = _exec(ns, *serf, "members")
            if members.returncode == 0 and members.stdout.strip():
                sockets = _exec(ns, "ss", "-Hlun").stdout.split()
                ours = " ".join(s for s in sockets if s.endswith(":7946"))
                banner = re.search(r"Bind addr: '([^']*)'", log.read_text())
                return members.stdout.split()[1], ours, banner[1] if banner else "no banner"
            time.sleep(0.2)
        raise AssertionError(f"agent in {ns} never answered: {log.read_text()}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


CASES = {
    # addresses on eth0, IPv4 gateway, IPv6 gateway, extra flags -> what Go's agent shows
    "rfc1918+ula": (("10.77.0.2/24", "fd77::2/64"), "10.77.0.1", "fd77::1", (), "10.77.0.2:7946"),
    "testnet+ula": (("192.0.2.2/24", "fd77::2/64"), "192.0.2.1", "fd77::1", (), "[fd77::2]:7946"),
    "ula-only": (("fd77::2/64",), None, "fd77::1", (), "[fd77::2]:7946"),
    "advertise-v6": (
        ("10.77.0.2/24",), "10.77.0.1", None, ("-advertise", "[fd77::5]:7000"), "[fd77::5]:7000"
    ),
    "public-only": (("11.0.0.2/24",), "11.0.0.1", None, (), "no private IP address found"),
    "iface": (("11.0.0.2/24",), "11.0.0.1", None, ("-iface", "eth0"), "11.0.0.2:7946"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.go
@pytest.mark.parametrize("case", list(CASES))
def test_agent_default_flags_advertise_as_go(
    case: str, netns: NetnsFactory, tmp_path: Path
) -> None:
    addrs, gw4, gw6, flags, expected = CASES[case]
    go = [str(go_serf_or_skip())]
    ns = netns(addrs, v4_gateway=gw4, v6_gateway=gw6)
    ours, our_sockets, our_bind = agent_view(ns, SERF, *flags, log=tmp_path / "py.log")
    theirs, their_sockets, their_bind = agent_view(ns, go, *flags, log=tmp_path / "go.log")
    if expected.startswith("no private"):
        assert expected in ours and expected in theirs
        # the start error as Go words it, and once (not "Failed to start ... Failed to start")
        assert ours.count("Failed to start the Serf agent: Error creating Serf: ") == 1
        return
    assert theirs == expected  # the reference, as observed
    assert ours == expected
    wildcard = not flags or flags[0] == "-advertise"
    assert our_sockets == their_sockets == ("*:7946" if wildcard else expected)
    assert our_bind == their_bind == ("0.0.0.0:7946" if wildcard else expected)
