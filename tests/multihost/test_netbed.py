"""The multi-host bed itself: namespaces with their own addresses and default routes, UDP and
TCP across the router on IPv4 and IPv6, and each fault (loss, duplication, delay, one-way
block, partition, heal) doing exactly what it says. Every wait is bounded by a socket
timeout."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from serf.testing.bedagent import wait_until
from serf.testing.netbed import NETNS_DIR, LinkFaults, NetBed

pytestmark = [pytest.mark.integration, pytest.mark.netns]


def _udp_pair(bed: NetBed, a: int, b: int, ipv6: bool) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    rx = bed.hosts[b].socket(family, socket.SOCK_DGRAM)
    rx.bind(("::" if ipv6 else "0.0.0.0", 9000))
    rx.settimeout(5.0)  # a packet that should arrive gets 5 s (a loaded machine); lost = never
    tx = bed.hosts[a].socket(family, socket.SOCK_DGRAM)
    return tx, rx


def _received(rx: socket.socket, quiet: float = 0.5) -> list[bytes]:
    """What arrives until ``quiet`` seconds pass without a packet."""
    rx.settimeout(quiet)
    got = []
    while True:
        try:
            got.append(rx.recv(2048))
        except TimeoutError:
            return got


def _target(bed: NetBed, b: int, ipv6: bool) -> tuple[str, int]:
    host = bed.hosts[b]
    addr = host.ipv6 if ipv6 else host.ipv4
    assert addr is not None
    return addr, 9000


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_hosts_have_their_own_address_and_a_default_route(family: str) -> None:
    with NetBed(2, family=family) as bed:  # type: ignore[arg-type]
        names = {h.netns for h in bed.hosts}
        assert names <= {p.name for p in NETNS_DIR.iterdir()}
        for host in bed.hosts:
            addrs = host.run(["ip", "-o", "addr", "show", "dev", "bed0"], check=True).stdout
            assert host.address in addrs
            # go-sockaddr reads `ip route` for "default via X dev IF": it must be there
            v4 = host.run(["ip", "route"], check=True).stdout
            assert v4.startswith("default via ") and " dev bed0" in v4
            if family == "ipv6":
                assert host.ipv4 is None and "inet " not in addrs
                v6 = host.run(["ip", "-6", "route"], check=True).stdout
                assert "default via" in v6
    assert not names & {p.name for p in NETNS_DIR.iterdir()}, "namespaces left behind"


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_udp_and_tcp_cross_the_router(ipv6: bool) -> None:
    with NetBed(3, family="dual") as bed:
        tx, rx = _udp_pair(bed, 0, 2, ipv6)
        tx.sendto(b"ping", _target(bed, 2, ipv6))
        data, peer = rx.recvfrom(100)
        assert data == b"ping"
        assert peer[0] == (bed.hosts[0].ipv6 if ipv6 else bed.hosts[0].ipv4)

        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        listener = bed.hosts[1].socket(family, socket.SOCK_STREAM)
        listener.bind(("::" if ipv6 else "0.0.0.0", 9001))
        listener.listen()
        listener.settimeout(5)
        addr = bed.hosts[1].ipv6 if ipv6 else bed.hosts[1].ipv4
        assert addr is not None
        client = bed.hosts[0].connect(addr, 9001)
        conn, _ = listener.accept()
        conn.settimeout(5)
        payload = bytes(range(256)) * 400  # 100 KB: many segments, windowing, acks
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := conn.recv(65536):
            got += chunk
        assert got == payload
        assert bed.router.counts["forwarded"] > 70
        for s in (tx, rx, listener, client, conn):
            s.close()


def test_loss_duplication_and_delay() -> None:
    with NetBed(2, seed=7) as bed:
        tx, rx = _udp_pair(bed, 0, 1, False)
        target = _target(bed, 1, False)

        bed.set_faults(loss=1.0)
        for i in range(5):
            tx.sendto(b"%d" % i, target)
        assert _received(rx) == []
        assert bed.router.counts["lost"] == 5

        bed.set_faults(duplicate=1.0)
        tx.sendto(b"twice", target)
        rx.settimeout(5.0)
        assert [rx.recv(100), rx.recv(100)] == [b"twice", b"twice"]
        assert _received(rx) == []

        bed.set_faults(delay=0.2, jitter=0.05)
        echo = bed.hosts[0].socket(socket.AF_INET, socket.SOCK_DGRAM)
        echo.settimeout(5)
        sent = time.monotonic()
        echo.sendto(b"late", target)
        rx.settimeout(5)
        assert rx.recv(100) == b"late"
        # a lower bound only: the router holds a packet at least delay - jitter
        assert time.monotonic() - sent >= 0.15
        bed.clear_faults()
        assert bed.router.faults(0, 1) == LinkFaults()


def test_one_way_block_partition_and_heal() -> None:
    with NetBed(4) as bed:
        bed.block([0], [1])
        fwd_tx, fwd_rx = _udp_pair(bed, 0, 1, False)
        fwd_tx.bind(("0.0.0.0", 9003))
        fwd_tx.sendto(b"a->b", _target(bed, 1, False))
        assert _received(fwd_rx) == [], "blocked direction delivered"
        back = bed.hosts[1].socket(socket.AF_INET, socket.SOCK_DGRAM)
        back.bind(("0.0.0.0", 9002))
        fwd_tx.settimeout(5)
        assert bed.hosts[0].ipv4 is not None
        back.sendto(b"b->a", (bed.hosts[0].ipv4, 9003))
        assert fwd_tx.recv(100) == b"b->a", "the other direction must still carry"

        bed.heal()
        bed.partition([0, 1], [2, 3])
        assert bed.router.is_blocked(1, 2) and bed.router.is_blocked(3, 0)
        assert not bed.router.is_blocked(0, 1) and not bed.router.is_blocked(2, 3)
        bed.heal()
        fwd_tx.sendto(b"healed", _target(bed, 1, False))
        fwd_rx.settimeout(5)
        assert fwd_rx.recv(100) == b"healed"
        for s in (fwd_tx, fwd_rx, back):
            s.close()


def test_processes_die_and_namespaces_go_when_the_test_fails(tmp_path: Path) -> None:
    bed = NetBed(2)
    with pytest.raises(RuntimeError, match="boom"), bed:
        proc = bed.hosts[0].popen(["sleep", "300"], stdout=subprocess.DEVNULL)
        netns = bed.hosts[0].netns
        raise RuntimeError("boom")
    assert proc.poll() is not None
    assert not (NETNS_DIR / netns).exists()


def test_bad_faults_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="loss"):
        LinkFaults(loss=1.5)
    with pytest.raises(ValueError, match="delay"):
        LinkFaults(delay=-1)
    with pytest.raises(ValueError, match="hosts"):
        NetBed(0)


def _pid_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # killed, not (yet) reaped by init


def test_escaped_processes_and_stale_namespaces_are_cleaned_up() -> None:
    with NetBed(1) as bed:
        # a process that left the host's session (as a daemonising handler would)
        out = bed.hosts[0].run(["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"])
        escaped = int(out.stdout.strip())
    # SIGKILL is delivered at once but the exit is asynchronous: a bounded wait
    wait_until(lambda: _pid_gone(escaped), 10, "the escaped process killed")

    # a namespace left by a test process that died (its pid is gone), with a process inside
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"pyserf-{dead.pid}-9-0"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    orphan = subprocess.Popen(
        ["ip", "netns", "exec", stale, "sleep", "300"], start_new_session=True
    )
    try:
        with NetBed(1):
            pass
        assert not (NETNS_DIR / stale).exists()
        assert orphan.wait(timeout=10) == -9
    finally:
        orphan.kill()
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
