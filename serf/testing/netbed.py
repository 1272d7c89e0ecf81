"""A multi-host test bed: N network namespaces joined by a user-space router with faults.

How this works: :class:`NetBed` creates one network namespace per host (``ip netns add``,
names unique per process and bed, so parallel test workers never collide), opens a TUN device
for each in the root namespace, moves it into the host's namespace as ``bed0`` and gives it the
host's addresses (IPv4 ``10.77.0.<i+1>/16``, IPv6 ``fd77::<i+1>/64``, or both) and default
routes through it (``default via <gateway> dev bed0 onlink``, IPv4 and IPv6; the IPv4 one is
set even on an IPv6-only bed because go-sockaddr finds the default interface from ``ip route``),
so an agent started with default flags finds the host's private address the way Go serf does.
The TUN fds stay with a :class:`~serf.testing.router.Router` thread in this process, which
forwards packets between hosts by destination address and applies delay, jitter, loss,
duplication and (asymmetric) partitions, changeable while the cluster runs. Nothing is routed
to any address outside the bed.

Processes run inside a host with :meth:`Host.popen` (``ip netns exec``); sockets are opened
inside a host with :meth:`Host.socket` / :meth:`Host.connect` (a short-lived thread that
``setns``-es into the namespace), e.g. to talk to an agent's RPC on the host's loopback.
Leaving the ``with`` block kills every process the bed started and anything else still in its
namespaces, stops the router, closes the TUN devices and deletes the namespaces, also when the
test failed; namespaces (and their processes) left by a test process that died without
cleaning up are removed by the next bed.

Needs root, ``ip`` (iproute2) and ``/dev/net/tun``: :func:`netbed_unavailable` says why not,
:func:`netbed_or_skip` skips a test (or fails it when ``SERF_REQUIRE_NETNS=1``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socket import socket as Socket
from types import TracebackType
from typing import Any, Literal, TypeVar

from serf.testing.router import LinkFaults, Router, open_tun

__all__ = [
    "Host",
    "LinkFaults",
    "NetBed",
    "NetBedError",
    "in_namespace",
    "netbed_or_skip",
    "netbed_required",
    "netbed_unavailable",
]

Family = Literal["ipv4", "ipv6", "dual"]
T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
_PREFIX = "pyserf-"
_CLONE_NEWNET = 0x40000000
_IPV4_NET = "10.77"
_IPV4_GATEWAY = "10.77.255.254"
_IPV6_NET = "fd77::"
_IPV6_GATEWAY = "fd77::fffe"
MAX_HOSTS = 250
_bed_ids = itertools.count(1)


class NetBedError(RuntimeError):
    """Setting up or driving the bed failed; the message carries the command's output."""


def netbed_unavailable() -> str | None:
    """Why a bed cannot be built here (``None`` when it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the multi-host net bed needs root (network namespaces, TUN devices)"
    if shutil.which("ip") is None:
        return "the multi-host net bed needs the ip command (iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "the multi-host net bed needs /dev/net/tun"
    probe = f"{_PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"network namespaces are unavailable: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    try:
        fd, _name = open_tun()
    except OSError as exc:
        return f"cannot open a TUN device: {exc}"
    os.close(fd)
    return None


def netbed_required() -> bool:
    """True when ``SERF_REQUIRE_NETNS`` is set: an unavailable bed is then a failure."""
    return os.environ.get("SERF_REQUIRE_NETNS", "").strip().lower() not in ("", "0", "false", "no")


def netbed_or_skip() -> None:
    """Skip the calling test when no bed can be built (fail it with ``SERF_REQUIRE_NETNS=1``)."""
    import pytest

    reason = netbed_unavailable()
    if reason is None:
        return
    if netbed_required():
        pytest.fail(f"SERF_REQUIRE_NETNS=1 but {reason}")
    pytest.skip(reason)


def _ip(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetBedError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


def _delete_namespace(netns: str) -> None:
    """SIGKILL every process still inside ``netns`` (``ip netns pids``), then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _sweep_stale_namespaces() -> None:
    """Delete namespaces (and kill their processes) left by bed processes that are gone."""
    if not NETNS_DIR.is_dir():
        return
    for entry in NETNS_DIR.iterdir():
        parts = entry.name.split("-")
        if len(parts) < 3 or parts[0] + "-" != _PREFIX or not parts[1].isdigit():
            continue
        if not Path(f"/proc/{parts[1]}").exists():
            _delete_namespace(entry.name)


_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread that has entered the network namespace ``netns`` (a name
    under ``/run/netns``) and return its result; sockets it creates stay in that namespace."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"netbed-setns-{netns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class Host:
    """One host of the bed: its namespace, addresses, and processes started in it."""

    def __init__(self, index: int, netns: str, ipv4: str | None, ipv6: str | None) -> None:
        #: position in :attr:`NetBed.hosts` (the router's port index)
        self.index = index
        #: a short name, ``h<index>``
        self.name = f"h{index}"
        #: the network namespace (``ip netns exec <netns> ...``)
        self.netns = netns
        #: the host's IPv4 address, if the bed has IPv4
        self.ipv4 = ipv4
        #: the host's IPv6 address, if the bed has IPv6
        self.ipv6 = ipv6
        self._procs: list[subprocess.Popen[Any]] = []

    @property
    def address(self) -> str:
        """The host's address: IPv4 when it has one, else IPv6."""
        addr = self.ipv4 or self.ipv6
        assert addr is not None
        return addr

    def hostport(self, port: int, *, ipv6: bool | None = None) -> str:
        """``address:port`` for this host (IPv6 in brackets); ``ipv6`` picks the family."""
        addr = self.ipv6 if ipv6 else (self.ipv4 if ipv6 is False else self.address)
        if addr is None:
            raise NetBedError(f"{self.name} has no {'IPv6' if ipv6 else 'IPv4'} address")
        return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the host (own session, so its children die with it)."""
        kwargs.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.command(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host to completion; its output as text."""
        return subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=check
        )

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> Socket:
        """A socket that lives in this host's namespace (bind/connect it as usual)."""
        return in_namespace(self.netns, lambda: socket.socket(family, type))

    def connect(self, host: str, port: int, timeout: float = 5.0) -> Socket:
        """A TCP connection made from inside this host (e.g. to its own 127.0.0.1 RPC)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return sock

    def kill_all(self) -> None:
        """SIGKILL every process (session) this host started, and reap them."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._procs.clear()

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.ipv4 or ''} {self.ipv6 or ''})".replace("  ", " ")


class NetBed:
    """``n`` hosts in their own network namespaces, linked through a faulty router.

    Use as a context manager::

        with NetBed(8, family="ipv4") as bed:
            proc = bed.hosts[0].popen(["serf", "agent", "-node", "a"])
            bed.partition(range(0, 4), range(4, 8))
            bed.heal()

    ``family`` is ``"ipv4"``, ``"ipv6"`` or ``"dual"``; ``seed`` fixes the fault randomness.
    Hosts are named by index or :class:`Host` in every fault method.
    """

    def __init__(self, n: int, *, family: Family = "ipv4", seed: int | None = None) -> None:
        if not 1 <= n <= MAX_HOSTS:
            raise ValueError(f"a bed has 1 to {MAX_HOSTS} hosts, got {n}")
        if family not in ("ipv4", "ipv6", "dual"):
            raise ValueError(f"family must be ipv4, ipv6 or dual, got {family!r}")
        self.family: Family = family
        self.router = Router(seed)
        self.hosts: list[Host] = []
        self._n = n
        self._tun_fds: list[int] = []
        self._bed_id = f"{os.getpid()}-{next(_bed_ids)}"

    # -- lifetime -----------------------------------------------------------------------

    def __enter__(self) -> NetBed:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _build(self) -> None:
        reason = netbed_unavailable()
        if reason is not None:
            raise NetBedError(reason)
        _sweep_stale_namespaces()
        for i in range(self._n):
            ipv4 = f"{_IPV4_NET}.0.{i + 1}" if self.family != "ipv6" else None
            ipv6 = f"{_IPV6_NET}{i + 1:x}" if self.family != "ipv4" else None
            host = Host(i, f"{_PREFIX}{self._bed_id}-{i}", ipv4, ipv6)
            _ip("netns", "add", host.netns)
            self.hosts.append(host)
            fd, tun = open_tun()
            self._tun_fds.append(fd)
            _ip("link", "set", "dev", tun, "netns", host.netns)
            lines = [
                f"link set dev {tun} name bed0",
                # no IPv6 link-local address: no DAD, router solicitations or MLD reports
                "link set dev bed0 addrgenmode none",
                "link set dev lo up",
                "link set dev bed0 mtu 1500 up",
                f"route add default via {_IPV4_GATEWAY} dev bed0 onlink",
            ]
            if ipv4:
                lines.insert(3, f"addr add {ipv4}/16 dev bed0")
            if ipv6:
                lines.append(f"addr add {ipv6}/64 dev bed0 nodad")
                lines.append(f"route add ::/0 via {_IPV6_GATEWAY} dev bed0 onlink")
            _ip("-n", host.netns, "-batch", "-", stdin="\n".join(lines) + "\n")
            self.router.add_port(fd, [a for a in (ipv4, ipv6) if a])
        self.router.start()

    def close(self) -> None:
        """Kill the hosts' processes, stop the router, delete the namespaces. Idempotent."""
        for host in self.hosts:
            host.kill_all()
        self.router.stop()
        for fd in self._tun_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._tun_fds.clear()
        for host in self.hosts:  # anything that left the hosts' sessions (handlers) goes too
            _delete_namespace(host.netns)
        self.hosts.clear()

    def check(self) -> None:
        """Raise if the router thread died (call it from long waits)."""
        if self.router.error is not None:
            raise NetBedError(f"the bed's router failed: {self.router.error!r}")

    # -- faults -------------------------------------------------------------------------

    def _index(self, host: int | Host) -> int:
        index = host.index if isinstance(host, Host) else int(host)
        if not 0 <= index < len(self.hosts):
            raise IndexError(f"no host {index} in a bed of {len(self.hosts)}")
        return index

    def _links(
        self, src: Iterable[int | Host] | None, dst: Iterable[int | Host] | None
    ) -> list[tuple[int, int]]:
        every = range(len(self.hosts))
        sources = [self._index(h) for h in src] if src is not None else list(every)
        targets = [self._index(h) for h in dst] if dst is not None else list(every)
        return [(s, d) for s in sources for d in targets if s != d]

    def set_faults(
        self,
        faults: LinkFaults | None = None,
        *,
        src: Iterable[int | Host] | None = None,
        dst: Iterable[int | Host] | None = None,
        **fields: float,
    ) -> None:
        """Set delay/jitter/loss/duplicate on links from ``src`` to ``dst`` (default: all).

        Pass a :class:`LinkFaults` or its fields: ``bed.set_faults(loss=0.15, delay=0.05,
        jitter=0.01)``. Setting every link (no ``src``/``dst``) replaces per-link settings.
        """
        value = faults if faults is not None else LinkFaults(**fields)
        if src is None and dst is None:
            self.router.set_faults(value)
        else:
            self.router.set_faults(value, self._links(src, dst))

    def clear_faults(self) -> None:
        """Every link clean again (blocks stay until :meth:`heal`)."""
        self.router.set_faults(LinkFaults())

    def block(self, src: Iterable[int | Host], dst: Iterable[int | Host]) -> None:
        """Drop every packet from ``src`` hosts to ``dst`` hosts (one direction only)."""
        self.router.block(self._links(src, dst))

    def partition(self, *groups: Iterable[int | Host]) -> None:
        """Cut every link between different groups, both directions; hosts in no group keep
        their links."""
        sets = [[self._index(h) for h in group] for group in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                self.router.block(self._links(a, b))
                self.router.block(self._links(b, a))

    def isolate(self, host: int | Host) -> None:
        """Cut one host off from all others, both directions."""
        index = self._index(host)
        others = [h for h in range(len(self.hosts)) if h != index]
        self.partition([index], others)

    def heal(self) -> None:
        """Remove every block (delay, jitter, loss and duplication stay)."""
        self.router.heal()

    def owner(self, address: str) -> Host:
        """The host that owns ``address``."""
        packed = ipaddress.ip_address(address)
        for host in self.hosts:
            if packed in {ipaddress.ip_address(a) for a in (host.ipv4, host.ipv6) if a}:
                return host
        raise KeyError(address)
