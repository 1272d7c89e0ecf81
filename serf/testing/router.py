"""A user-space IP router between TUN devices, with per-link faults (the net bed's wire).

How this works: each host of a :class:`~serf.testing.netbed.NetBed` has one TUN device (layer
3, no packet-info header) whose file descriptor the router holds. One thread polls every fd;
each IP packet read from host ``s`` is routed by its destination address (IPv4 bytes 16-20,
IPv6 bytes 24-40) to the host ``d`` that owns it, and the directed link ``(s, d)`` decides its
fate: dropped while blocked (a partition), dropped with probability ``loss``, written twice
with probability ``duplicate``, and delivered after ``delay`` plus a uniform jitter in
``[-jitter, +jitter]`` (so packets reorder, as netem's jitter does). Delayed packets wait in a
heap ordered by due time; the poll timeout is the next due time. Packets for addresses no host
owns (multicast, router solicitations) are counted and dropped, so nothing leaves the bed.
Because whole IP packets are forwarded, UDP and TCP (and anything else) cross unchanged.

Faults are plain values swapped under a lock and read per packet, so they change while the
cluster runs. Randomness comes from one seeded :class:`random.Random`.
"""

from __future__ import annotations

import fcntl
import heapq
import ipaddress
import os
import random
import select
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LinkFaults", "Router", "open_tun"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_MAX_PACKET = 65535
_READS_PER_WAKE = 64


def open_tun(name_pattern: str = "pnb%d") -> tuple[int, str]:
    """Open a new TUN device (layer 3, no packet info); returns ``(fd, interface name)``.

    ``name_pattern`` may hold ``%d`` for the kernel to pick a free number. The fd is
    non-blocking; the device lives until the fd is closed.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        ifr = struct.pack("16sH22x", name_pattern.encode(), _IFF_TUN | _IFF_NO_PI)
        out = fcntl.ioctl(fd, _TUNSETIFF, ifr)
    except BaseException:
        os.close(fd)
        raise
    return fd, out[:16].rstrip(b"\0").decode()


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """What one directed link does to packets: ``delay`` and ``jitter`` in seconds, ``loss``
    and ``duplicate`` as probabilities in [0, 1]."""

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0:
            raise ValueError(f"delay and jitter must be >= 0, got {self.delay}, {self.jitter}")
        for name in ("loss", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


_CLEAN = LinkFaults()


class Router:
    """Forwards IP packets between TUN fds (ports) by destination address, applying faults.

    Add every port with :meth:`add_port` before :meth:`start`. Counters (``forwarded``,
    ``lost``, ``blocked``, ``duplicated``, ``unroutable``, ``write_errors``) are in
    :attr:`counts`.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._ports: list[int] = []  # port index -> fd
        self._owner: dict[bytes, int] = {}  # packed address -> port index
        self._lock = threading.Lock()
        self._default = _CLEAN
        self._links: dict[tuple[int, int], LinkFaults] = {}
        self._blocked: frozenset[tuple[int, int]] = frozenset()
        self._queue: list[tuple[float, int, int, bytes]] = []  # (due, seq, port, packet)
        self._seq = 0
        self.counts: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.error: BaseException | None = None

    # -- topology -----------------------------------------------------------------------

    def add_port(self, fd: int, addresses: Iterable[str]) -> int:
        """Attach a TUN fd owning ``addresses``; returns its port index."""
        if self._thread is not None:
            raise RuntimeError("add every port before start()")
        index = len(self._ports)
        self._ports.append(fd)
        for addr in addresses:
            packed = ipaddress.ip_address(addr).packed
            if packed in self._owner:
                raise ValueError(f"address {addr} is already owned by port {self._owner[packed]}")
            self._owner[packed] = index
        return index

    # -- faults -------------------------------------------------------------------------

    def set_faults(
        self, faults: LinkFaults, links: Iterable[tuple[int, int]] | None = None
    ) -> None:
        """Apply ``faults`` to the given directed links, or to every link (the default)."""
        with self._lock:
            if links is None:
                self._default = faults
                self._links = {}
            else:
                updated = dict(self._links)
                for link in links:
                    updated[link] = faults
                self._links = updated

    def block(self, links: Iterable[tuple[int, int]]) -> None:
        """Drop every packet on these directed links until :meth:`unblock` or :meth:`heal`."""
        with self._lock:
            self._blocked = self._blocked | frozenset(links)

    def unblock(self, links: Iterable[tuple[int, int]]) -> None:
        """Let these directed links carry packets again."""
        with self._lock:
            self._blocked = self._blocked - frozenset(links)

    def heal(self) -> None:
        """Remove every block (delay, loss and duplication stay)."""
        with self._lock:
            self._blocked = frozenset()

    def faults(self, src: int, dst: int) -> LinkFaults:
        """The faults the directed link ``src -> dst`` applies now."""
        return self._links.get((src, dst), self._default)

    def is_blocked(self, src: int, dst: int) -> bool:
        """Whether ``src -> dst`` drops everything now."""
        return (src, dst) in self._blocked

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the forwarding thread."""
        if self._thread is not None:
            raise RuntimeError("router already started")
        self._thread = threading.Thread(target=self._run, name="netbed-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the forwarding thread (packets still queued are dropped). Idempotent."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # kept for the bed to report; the thread must not vanish
            self.error = exc

    def _loop(self) -> None:
        poller = select.poll()
        by_fd = {fd: index for index, fd in enumerate(self._ports)}
        for fd in self._ports:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        queue = self._queue
        while not self._stopping:
            now = time.monotonic()
            timeout_ms = max(0, int((queue[0][0] - now) * 1000) + 1) if queue else 1000
            for fd, _event in poller.poll(timeout_ms):
                if fd == self._wake_r:
                    continue
                src = by_fd[fd]
                for _ in range(_READS_PER_WAKE):
                    try:
                        packet = os.read(fd, _MAX_PACKET)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        self.counts["read_errors"] += 1
                        break
                    self._route(src, packet)
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _due, _seq, dst, packet = heapq.heappop(queue)
                self._write(dst, packet)

    def _route(self, src: int, packet: bytes) -> None:
        version = packet[0] >> 4 if packet else 0
        if version == 4 and len(packet) >= 20:
            dst = self._owner.get(packet[16:20])
        elif version == 6 and len(packet) >= 40:
            dst = self._owner.get(packet[24:40])
        else:
            dst = None
        if dst is None or dst == src:
            self.counts["unroutable"] += 1
            return
        if (src, dst) in self._blocked:
            self.counts["blocked"] += 1
            return
        faults = self._links.get((src, dst), self._default)
        rng = self._rng
        if faults.loss and rng.random() < faults.loss:
            self.counts["lost"] += 1
            return
        copies = 2 if faults.duplicate and rng.random() < faults.duplicate else 1
        if copies == 2:
            self.counts["duplicated"] += 1
        for _ in range(copies):
            delay = faults.delay
            if faults.jitter:
                delay = max(0.0, delay + rng.uniform(-faults.jitter, faults.jitter))
            if delay <= 0.0:
                self._write(dst, packet)
            else:
                self._seq += 1
                heapq.heappush(self._queue, (time.monotonic() + delay, self._seq, dst, packet))

    def _write(self, dst: int, packet: bytes) -> None:
        try:
            os.write(self._ports[dst], packet)
        except OSError:  # the host's interface is gone or its queue is full: a lost packet
            self.counts["write_errors"] += 1
            return
        self.counts["forwarded"] += 1
