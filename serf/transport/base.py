"""Transport protocols shared by every transport (net, memory, quic).

How this works: a transport moves opaque bytes between addresses in two ways, as memberlist
does (reference/go-serf.md 2.9-2.10):

* packets: best-effort datagrams, fire and forget (`Transport.send_packet`). Received packets
  are delivered to a synchronous callback ``on_packet(data, from_addr, received_at)``
  registered with `Transport.set_handlers` *before* `Transport.start`; ``received_at`` is the
  running loop's clock (``loop.time()``) when the packet arrived.
* streams: reliable, ordered byte streams carrying one request each (`Transport.open_stream`).
  Accepted streams are handed to an async callback ``on_stream(stream)``, also registered with
  `Transport.set_handlers`; the transport runs one task per accepted stream and closes the
  stream when the callback returns. An exception raised by a callback is counted in
  ``stats.errors`` and logged, never propagated: bad bytes from a peer are the peer's fault.

Timeouts on streams raise the builtin `TimeoutError`; a stream that ends early raises
`asyncio.IncompleteReadError` from `Stream.readexactly`; dialing an address nobody listens on
raises `ConnectionRefusedError`. Every transport behaves the same way here, and
`serf.testing.conformance` checks it.

Addresses: `Address` is the default (host, port) value; a user may pass any object with
``host`` and ``port`` attributes (`AddressLike`) to `send_packet` / `open_stream`. Transports
report peers as `Address`. Names are turned into addresses by an `AddressResolver`
(`StaticResolver`, `DnsResolver`); transports themselves take IP literals only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from serf.address import Address, AddressLike

__all__ = [
    "TransportBase",
    "UdpEndpoint",
    "DEFAULT_STREAM_TIMEOUT",
    "LISTEN_BACKLOG",
    "MAX_PACKET_SIZE",
    "Address",
    "AddressLike",
    "AddressResolver",
    "DnsResolver",
    "PacketHandler",
    "PacketTooLargeError",
    "StaticResolver",
    "Stream",
    "StreamHandler",
    "Transport",
    "TransportStats",
]

log = logging.getLogger(__name__)

#: The largest UDP payload over IPv4 (65,535 - 8 bytes UDP header - 20 bytes IP header).
#: Every transport refuses bigger packets, so code that works on one works on all.
MAX_PACKET_SIZE = 65_507

#: Default per-operation stream timeout in seconds (memberlist's TCPTimeout is 10 s).
DEFAULT_STREAM_TIMEOUT = 10.0

#: The backlog of the stream listeners, as Go's ``net.Listen`` asks for: the kernel's maximum
#: (Go reads ``net.core.somaxconn`` and caps it at 65535; the kernel caps what we ask for at the
#: same sysctl). With asyncio's default of 100 (trio's 128 here) the kernel drops the SYNs of
#: a join storm beyond that (127 agents through one seed) and the clients retry after 1, 3, 7 s.
LISTEN_BACKLOG = 65535


class PacketTooLargeError(ValueError):
    """A packet is bigger than the transport's ``max_packet_size``: split or use a stream."""


@dataclass(slots=True)
class TransportStats:
    """Counters kept by a transport. ``errors`` counts every dropped or failed operation;
    ``peers_refused`` the connections (either direction) refused because the peer failed
    authentication (TLS, authenticated QUIC): each is in ``errors`` too."""

    packets_sent: int = 0
    packets_received: int = 0
    streams_opened: int = 0
    streams_accepted: int = 0
    errors: int = 0
    peers_refused: int = 0


class Stream(Protocol):
    """One reliable, ordered, bidirectional byte stream (a TCP connection or a memory pipe).

    ``timeout`` is the default per-operation timeout in seconds (None: wait forever); each
    waiting method also takes ``timeout=`` to override it. A timeout raises `TimeoutError`.
    After the peer's `write_eof` or `close`, `read` returns ``b""``.
    """

    timeout: float | None

    @property
    def remote_address(self) -> Address:
        """The peer's address."""
        ...

    @property
    def local_address(self) -> Address:
        """This end's address."""
        ...

    async def read(self, n: int = -1, *, timeout: float | None = None) -> bytes:
        """Up to ``n`` bytes (``b""`` at EOF); ``n = -1`` reads until EOF."""
        ...

    async def readexactly(self, n: int, *, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or `asyncio.IncompleteReadError` if EOF comes first."""
        ...

    def write(self, data: bytes) -> None:
        """Queue ``data``; call `drain` to wait for the buffer to empty."""
        ...

    async def drain(self, *, timeout: float | None = None) -> None:
        """Wait until the write buffer is below its high-water mark."""
        ...

    def write_eof(self) -> None:
        """Half close: the peer reads EOF; this end may still read."""
        ...

    async def close(self) -> None:
        """Close both directions. Idempotent."""
        ...


PacketHandler = Callable[[bytes, Address, float], None]
"""``on_packet(data, from_addr, received_at)``: called synchronously on the loop."""

StreamHandler = Callable[[Stream], Awaitable[None]]
"""``on_stream(stream)``: run as its own task; the stream is closed when it returns."""


class UdpEndpoint(asyncio.DatagramProtocol):
    """The protocol of a transport's UDP socket: each datagram goes to ``on_datagram``; ICMP
    errors for earlier sends (port unreachable and the like) are counted in ``stats``."""

    def __init__(
        self, on_datagram: Callable[[bytes, Any], None], stats: TransportStats, name: str
    ) -> None:
        self._on_datagram = on_datagram
        self._stats = stats
        self._name = name
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the socket is really closed (asyncio closes it a loop turn later)."""
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.shield(self.closed)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._stats.errors += 1
        log.debug("%s error: %r", self._name, exc)


class TransportBase:
    """What every transport shares: receive handlers, counters, the packet size limit, and the
    tasks running stream handlers. Subclasses bind, send and dial."""

    def __init__(
        self,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
    ) -> None:
        if not 0 < max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(f"max_packet_size must be in 1..{MAX_PACKET_SIZE}")
        self._max_packet_size = max_packet_size
        self._stream_timeout = stream_timeout
        self._stats = TransportStats()
        self._on_packet: PacketHandler | None = None
        self._on_stream: StreamHandler | None = None
        self._local: Address | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False

    @property
    def local_address(self) -> Address:
        """The bound address (with the real port). RuntimeError before start."""
        if self._local is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._local

    @property
    def stats(self) -> TransportStats:
        """Live counters."""
        return self._stats

    @property
    def max_packet_size(self) -> int:
        """The largest payload `send_packet` accepts."""
        return self._max_packet_size

    def set_handlers(
        self,
        on_packet: PacketHandler | None = None,
        on_stream: StreamHandler | None = None,
    ) -> None:
        """Register the receive callbacks. Must be called before `start`."""
        if self._started:
            raise RuntimeError("set_handlers must be called before start")
        self._on_packet = on_packet
        self._on_stream = on_stream

    def _check_packet_size(self, data: bytes) -> None:
        if len(data) > self._max_packet_size:
            raise PacketTooLargeError(
                f"packet of {len(data)} bytes exceeds max_packet_size {self._max_packet_size}"
            )

    def _deliver_packet(self, data: bytes, src: Address) -> None:
        """Count a received packet and hand it to ``on_packet`` (its errors are counted)."""
        if self._closed:
            return
        self._stats.packets_received += 1
        handler = self._on_packet
        if handler is None:
            return
        try:
            assert self._loop is not None
            handler(data, src, self._loop.time())
        except Exception:
            self._stats.errors += 1
            log.exception("on_packet handler failed")

    async def _run_stream_handler(self, stream: Stream) -> None:
        """Run ``on_stream`` for an accepted stream, count its failure, always close it."""
        try:
            if self._on_stream is not None:
                await self._on_stream(stream)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self._stats.errors += 1
            log.debug("stream handler for %s failed: %r", stream.remote_address, exc)
        finally:
            with contextlib.suppress(Exception):
                await stream.close()

    async def _cancel_tasks(self) -> None:
        """Cancel the running stream handlers and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class Transport(Protocol):
    """A packet + stream transport. Register handlers, then `start`, then use; `close` ends it.

    `send_packet` is synchronous and best effort: a failure is counted in ``stats.errors``,
    not raised, except caller misuse (a packet over ``max_packet_size`` raises
    `PacketTooLargeError`; use before `start` or after `close` raises RuntimeError).
    """

    @property
    def local_address(self) -> Address:
        """The bound address (with the real port once started). RuntimeError before start."""
        ...

    @property
    def stats(self) -> TransportStats:
        """Live counters."""
        ...

    @property
    def max_packet_size(self) -> int:
        """The largest payload `send_packet` accepts."""
        ...

    def set_handlers(
        self,
        on_packet: PacketHandler | None = None,
        on_stream: StreamHandler | None = None,
    ) -> None:
        """Register the receive callbacks. Must be called before `start`."""
        ...

    async def start(self) -> None:
        """Bind and begin delivering to the handlers."""
        ...

    def send_packet(self, addr: AddressLike, data: bytes) -> None:
        """Send one datagram to ``addr``: fire and forget."""
        ...

    async def open_stream(self, addr: AddressLike, timeout: float | None = None) -> Stream:
        """Dial ``addr``. ConnectionRefusedError when nobody listens; TimeoutError on timeout."""
        ...

    async def close(self) -> None:
        """Stop delivery, cancel stream handlers and free the address. Idempotent."""
        ...


class AddressResolver(Protocol):
    """Turns a name (``host``, ``host:port``, ``[v6]:port``) into addresses."""

    async def resolve(self, name: str) -> list[Address]:
        """All addresses for ``name``; LookupError/OSError when there are none."""
        ...


class StaticResolver:
    """Resolves names from a fixed mapping; IP literals (``ip:port``) resolve to themselves."""

    def __init__(
        self,
        mapping: Mapping[str, Iterable[Address]] | None = None,
        default_port: int = 7946,
    ) -> None:
        self._mapping = {name: list(addrs) for name, addrs in (mapping or {}).items()}
        self._default_port = default_port

    async def resolve(self, name: str) -> list[Address]:
        """The mapped addresses, or the literal itself; LookupError for unknown names."""
        found = self._mapping.get(name)
        if found is not None:
            return list(found)
        try:
            addr = Address.parse(name, self._default_port)
            ipaddress.ip_address(addr.host)
        except ValueError:
            raise LookupError(f"unknown name {name!r}") from None
        return [addr]


class DnsResolver:
    """Resolves names with the running loop's ``getaddrinfo`` (no blocking in the loop)."""

    def __init__(self, default_port: int = 7946, family: int = socket.AF_UNSPEC) -> None:
        self._default_port = default_port
        self._family = family

    async def resolve(self, name: str) -> list[Address]:
        """Every distinct address, in resolver order. Raises OSError (gaierror) on failure."""
        addr = Address.parse(name, self._default_port)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            addr.host, addr.port, family=self._family, type=socket.SOCK_DGRAM
        )
        out: list[Address] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            found = Address(str(sockaddr[0]).split("%", 1)[0], int(sockaddr[1]))
            if found not in out:
                out.append(found)
        if not out:
            raise LookupError(f"no addresses for {name!r}")
        return out
