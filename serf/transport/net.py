"""UDP + TCP transport on one port (memberlist's NetTransport).

How this works: `NetTransport.start` binds a UDP socket (asyncio DatagramProtocol) first, so a
requested port 0 gets a real port from the kernel, then a TCP listener (asyncio.start_server)
on that same port. If TCP cannot take the port the UDP socket got, both are released and the
pair is tried again (a few times) on a new port. Packets go out with ``sendto`` (fire and
forget); received datagrams go to the ``on_packet`` callback. Each accepted TCP connection
runs ``on_stream`` in its own task; the transport tracks those tasks and cancels them on
`close`. Errors in callbacks and from the sockets are counted in ``stats.errors`` and logged,
never raised into the loop.

A wildcard bind (``0.0.0.0`` or ``::``) opens AF_INET6 sockets with ``IPV6_V6ONLY`` off, as
Go's net package does for a wildcard ``udp``/``tcp`` listener (``ss`` shows ``*:port``), so
IPv4 and IPv6 peers both reach it and it can advertise an IPv6 address; IPv4 peers appear as
``::ffff:a.b.c.d`` on such sockets, and are reported and sent to as plain IPv4. Without IPv6
in the kernel the wildcard bind falls back to IPv4 only.

With ``tls=`` (a `serf.transport.tls.TlsConfig`) every TCP stream is TLS (stdlib `ssl`):
the listener accepts plain TCP and runs the server handshake itself (``start_tls``), so a
peer that fails it (another CA, an expired certificate, none when ``mutual``) is logged and
counted in ``stats.peers_refused``; a dialer whose handshake fails does the same and raises
ConnectionRefusedError. TLS has no half close, so inside TLS each stream is framed
(`TlsStream`: ``[u32 length][bytes]`` chunks, a zero length marks ``write_eof``). Packets stay
plain UDP: the keyring (AES-GCM) protects them, as without TLS.

The transport runs on whatever loop the caller runs. It never installs a loop policy; a driver
that wants uvloop calls `install_uvloop` before creating its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from serf.transport.base import (
    DEFAULT_STREAM_TIMEOUT,
    LISTEN_BACKLOG,
    MAX_PACKET_SIZE,
    Address,
    AddressLike,
    Stream,
    TransportBase,
    UdpEndpoint,
)

if TYPE_CHECKING:
    # imported where TLS is used: a plain agent never loads them (memory per agent)
    import ssl

    from serf.transport.tls import RefusalLog, TlsConfig

__all__ = ["NetStream", "NetTransport", "TlsStream", "install_uvloop"]

log = logging.getLogger(__name__)

_WRITE_HIGH_WATER = 256 * 1024
_WILDCARDS = frozenset({"0.0.0.0", "::"})
_CHUNK = struct.Struct(">I")
_MAX_CHUNK = 1 << 20  # a TlsStream chunk is at most 1 MiB; a bigger header is a broken peer
END_CHUNK = _CHUNK.pack(0)
"""The chunk that ends a side's data inside TLS (`write_eof`)."""


def frame_chunks(data: bytes) -> bytes:
    """``data`` as TLS stream chunks: ``[u32 big-endian length][bytes]``, at most 1 MiB each."""
    view = memoryview(data)
    out = bytearray()
    for start in range(0, len(view), _MAX_CHUNK):
        part = view[start : start + _MAX_CHUNK]
        out += _CHUNK.pack(len(part))
        out += part
    return bytes(out)


def next_chunk(plain: bytearray, peer: Address) -> bytes | None:
    """Take one whole chunk off the front of ``plain`` (decrypted bytes, still framed): its
    payload, ``b""`` for the end chunk, None while the chunk is incomplete.
    ConnectionResetError for a header over 1 MiB (a broken peer)."""
    if len(plain) < _CHUNK.size:
        return None
    (size,) = _CHUNK.unpack_from(plain)
    if size > _MAX_CHUNK:
        raise ConnectionResetError(f"TLS stream chunk of {size} bytes from {peer}")
    if len(plain) < _CHUNK.size + size:
        return None
    out = bytes(plain[_CHUNK.size : _CHUNK.size + size])
    del plain[: _CHUNK.size + size]
    return out


def install_uvloop() -> bool:
    """Make new event loops uvloop loops, if uvloop is installed. Returns True if it was.

    For drivers (the agent, the CLI) only; the library itself never changes the policy.
    """
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def _address_from_sockname(sockname: Any) -> Address:
    host = str(sockname[0]).split("%", 1)[0]
    if host.startswith("::ffff:") and "." in host:  # IPv4 on a dual-stack socket
        host = host[7:]
    return Address(host, int(sockname[1]))


# One Address per datagram source: every packet a peer sends comes from the same (host, port)
# tuple, and building an Address for each (split, prefix check, validation) was ~1.5 us of
# each received packet. Bounded like serf.memberlist.core's cache: cleared when full.
_SOURCES_MAX = 1 << 12
_sources: dict[Any, Address] = {}


def _source_address(sockname: Any) -> Address:
    """:func:`_address_from_sockname`, cached by the sockname tuple (datagram sources)."""
    found = _sources.get(sockname)
    if found is None:
        found = _address_from_sockname(sockname)
        if len(_sources) >= _SOURCES_MAX:
            _sources.clear()
        _sources[sockname] = found
    return found


def _bound_socket(bind: Address, kind: socket.SocketKind) -> socket.socket:
    """A socket of ``kind`` bound to ``bind``: dual-stack for a wildcard host (see above)."""
    if bind.host in _WILDCARDS:
        try:
            sock = socket.socket(socket.AF_INET6, kind)
        except OSError:
            sock = None  # no IPv6 in this kernel: IPv4 only
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("::", bind.port))
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            return sock
    family = _family(bind) if bind.host not in _WILDCARDS else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            # a specific IPv6 address: IPv6 only, as Go
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0" if bind.host in _WILDCARDS else bind.host, bind.port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class NetStream:
    """A TCP connection as a `Stream` (wraps an asyncio StreamReader/StreamWriter pair)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float | None = DEFAULT_STREAM_TIMEOUT,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.timeout = timeout
        self._closed = False
        self._remote = _address_from_sockname(writer.get_extra_info("peername"))
        self._local = _address_from_sockname(writer.get_extra_info("sockname"))
        writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)

    @property
    def remote_address(self) -> Address:
        """The peer's address."""
        return self._remote

    @property
    def local_address(self) -> Address:
        """This end's address."""
        return self._local

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    async def read(self, n: int = -1, *, timeout: float | None = None) -> bytes:
        """Up to ``n`` bytes (``b""`` at EOF); ``n = -1`` reads until EOF."""
        async with asyncio.timeout(self._timeout(timeout)):
            return await self._reader.read(n)

    async def readexactly(self, n: int, *, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or `asyncio.IncompleteReadError` if EOF comes first."""
        async with asyncio.timeout(self._timeout(timeout)):
            return await self._reader.readexactly(n)

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending."""
        self._writer.write(data)

    async def drain(self, *, timeout: float | None = None) -> None:
        """Wait for the write buffer to drain below the high-water mark."""
        async with asyncio.timeout(self._timeout(timeout)):
            await self._writer.drain()

    def write_eof(self) -> None:
        """Half close (TCP FIN): the peer reads EOF; reading here still works."""
        if not self._writer.is_closing() and self._writer.can_write_eof():
            self._writer.write_eof()

    async def close(self) -> None:
        """Close the connection. Idempotent; never raises on an already broken connection."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()


class BufferedReads:
    """`read` / `readexactly` over a payload buffer (``_data``, ``_eof``) that ``_fill``
    tops up, under the runtime's timeout (``_deadline``: asyncio's here): the TLS streams of
    every runtime read this way."""

    timeout: float | None
    _data: bytearray
    _eof: bool

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _deadline(self, seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        return asyncio.timeout(seconds)

    async def _fill(self) -> None:
        """Add payload to ``_data`` or set ``_eof``."""
        raise NotImplementedError

    def _take(self, n: int) -> bytes:
        if n < 0 or n >= len(self._data):
            out = bytes(self._data)
            self._data.clear()
            return out
        out = bytes(self._data[:n])
        del self._data[:n]
        return out

    async def read(self, n: int = -1, *, timeout: float | None = None) -> bytes:
        """Up to ``n`` bytes (``b""`` at EOF); ``n = -1`` reads until EOF."""
        if n == 0:
            return b""
        async with self._deadline(self._timeout(timeout)):
            if n > 0:
                while not self._data and not self._eof:
                    await self._fill()
                return self._take(n)
            while not self._eof:
                await self._fill()
            return self._take(-1)

    async def readexactly(self, n: int, *, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or `asyncio.IncompleteReadError` if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        async with self._deadline(self._timeout(timeout)):
            while len(self._data) < n and not self._eof:
                await self._fill()
        if len(self._data) < n:
            raise asyncio.IncompleteReadError(self._take(-1), n)
        return self._take(n)


class TlsStream(BufferedReads, NetStream):
    """A TLS connection as a `Stream`: stdlib `ssl` over memory BIOs on a plain TCP stream,
    so the handshake runs the same way on every loop and its failure is ours to report.

    TLS cannot half-close, so the bytes travel in chunks (``[u32 big-endian length][bytes]``,
    at most 1 MiB each) and a zero-length chunk is the end of this side's data
    (`write_eof`); a connection that ends without it reads as EOF too. A chunk header over
    1 MiB, or a TLS error after the handshake, raises ConnectionResetError.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        timeout: float | None = DEFAULT_STREAM_TIMEOUT,
    ) -> None:
        import ssl  # on use: see the TYPE_CHECKING import

        super().__init__(reader, writer, timeout)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
        )
        self._plain = bytearray()  # decrypted, still framed
        self._data = bytearray()  # payload ready for read()
        self._eof = False
        self._eof_sent = False

    async def handshake(self, timeout: float | None) -> None:
        """Run the TLS handshake. `ssl.SSLError` when the peer fails verification (or
        refuses us), TimeoutError after ``timeout``, ConnectionResetError if it hangs up."""
        import ssl

        async with asyncio.timeout(timeout):
            while True:
                try:
                    self._tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    await self._receive_raw()
            self._flush()

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _receive_raw(self) -> None:
        raw = await self._reader.read(65536)
        if raw:
            self._incoming.write(raw)
        else:
            self._incoming.write_eof()

    async def _fill(self) -> None:
        """Decrypt more bytes and move one whole chunk to the payload buffer (or mark EOF)."""
        import ssl

        from serf.transport.tls import describe_tls_error

        while True:
            chunk = next_chunk(self._plain, self._remote)
            if chunk is not None:
                if chunk:
                    self._data += chunk
                else:
                    self._eof = True
                return
            try:
                got = self._tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush()
                await self._receive_raw()
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                got = b""
            except ssl.SSLError as exc:
                raise ConnectionResetError(
                    f"TLS stream from {self._remote}: {describe_tls_error(exc)}"
                ) from exc
            if not got:
                self._eof = True
                return
            self._plain += got

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending. RuntimeError after `write_eof`."""
        if self._eof_sent:
            raise RuntimeError("cannot write after write_eof()")
        self._send(frame_chunks(data))

    def _send(self, plain: bytes) -> None:
        import ssl

        if self._writer.is_closing():
            return  # as a closed TCP socket: drain reports it
        try:
            self._tls.write(plain)
        except ssl.SSLError as exc:
            log.debug("TLS write to %s failed: %r", self._remote, exc)
            self._writer.close()
            return
        self._flush()

    def write_eof(self) -> None:
        """End this side's data (a zero-length chunk); reading here still works."""
        if self._eof_sent:
            return
        self._eof_sent = True
        self._send(END_CHUNK)


class NetTransport(TransportBase):
    """UDP packets + TCP streams on one address (see the module comment).

    ``bind`` must be an IP literal (``127.0.0.1``, ``::1``, ``0.0.0.0``, ``::``); port 0 picks a
    free port shared by UDP and TCP. ``max_packet_size`` caps `send_packet` (default: the UDP
    limit). ``stream_timeout`` is the default per-operation timeout of every stream.
    """

    def __init__(
        self,
        bind: AddressLike,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
        bind_attempts: int = 5,
        tls: TlsConfig | None = None,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, stream_timeout=stream_timeout)
        self._tls = tls
        self._server_ssl: ssl.SSLContext | None = None
        self._client_ssl: ssl.SSLContext | None = None
        self._refusals: RefusalLog | None = None  # TLS refusals (only TLS refuses peers)
        if tls is not None:
            from serf.transport.tls import RefusalLog, TlsConfig

            if not isinstance(tls, TlsConfig):
                raise TypeError(f"tls must be a TlsConfig, got {type(tls).__name__}")
            self._refusals = RefusalLog(log)
        self._bind = Address.of(bind)
        self._bind_attempts = max(1, bind_attempts)
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: UdpEndpoint | None = None
        self._server: asyncio.Server | None = None
        self._literal_hosts: set[str] = set()
        self._v4_mapped = False  # a dual-stack UDP socket: IPv4 targets go as ::ffff:a.b.c.d

    async def start(self) -> None:
        """Bind UDP then TCP on the same port (retrying on a new port if port 0 was asked)."""
        if self._started:
            raise RuntimeError("NetTransport already started")
        if self._tls is not None:
            # a bad certificate or CA file fails here, before any socket is bound
            self._server_ssl = self._tls.server_context()
            self._client_ssl = self._tls.client_context()
        self._started = True
        self._loop = asyncio.get_running_loop()
        attempts = self._bind_attempts if self._bind.port == 0 else 1
        last: OSError | None = None
        for _ in range(attempts):
            # Bind the socket here rather than with local_addr=: a failed bind then leaks
            # nothing on any loop (uvloop 0.23 leaves a transport behind).
            try:
                sock = _bound_socket(self._bind, socket.SOCK_DGRAM)
            except OSError as exc:
                self._started = False
                raise OSError(exc.errno, f"cannot bind UDP {self._bind}: {exc.strerror}") from exc
            self._v4_mapped = sock.family == socket.AF_INET6 and self._bind.host in _WILDCARDS
            udp, proto = await self._loop.create_datagram_endpoint(
                lambda: UdpEndpoint(self._packet_received, self._stats, "udp"), sock=sock
            )
            port = _address_from_sockname(udp.get_extra_info("sockname")).port
            try:
                listener = _bound_socket(Address(self._bind.host, port), socket.SOCK_STREAM)
                server = await asyncio.start_server(
                    self._accept, sock=listener, backlog=LISTEN_BACKLOG
                )
            except OSError as exc:
                udp.close()
                await proto.wait_closed()
                last = exc
                if exc.errno != errno.EADDRINUSE:
                    break
                continue
            self._udp, self._udp_protocol, self._server = udp, proto, server
            self._local = Address(self._bind.host, port)
            return
        self._started = False
        assert last is not None
        where = Address(self._bind.host, port)
        raise OSError(
            last.errno, f"cannot bind TCP {where} (UDP was free there): {last.strerror}"
        ) from last

    def send_packet(self, addr: AddressLike, data: bytes) -> None:
        """Send one UDP datagram to ``addr``. Network failures are counted, not raised.

        Raises `PacketTooLargeError` over ``max_packet_size`` and ValueError if ``addr.host``
        is not an IP literal (use an `AddressResolver` for names).
        """
        self._check_packet_size(data)
        udp = self._udp
        if udp is None or self._closed:
            raise RuntimeError("NetTransport is not running")
        host = addr.host
        if host not in self._literal_hosts:
            self._check_literal(host)
        target = f"::ffff:{host}" if self._v4_mapped and "." in host else host
        try:
            udp.sendto(data, (target, addr.port))
        except (OSError, ValueError, TypeError) as exc:
            self._stats.errors += 1
            log.debug("udp send to %s:%s failed: %r", addr.host, addr.port, exc)
            return
        self._stats.packets_sent += 1

    async def open_stream(self, addr: AddressLike, timeout: float | None = None) -> Stream:
        """Open a TCP connection to ``addr``. ConnectionRefusedError if nobody listens."""
        if self._closed or not self._started:
            raise RuntimeError("NetTransport is not running")
        limit = self._stream_timeout if timeout is None else timeout
        if self._client_ssl is None:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_connection(addr.host, addr.port)
            self._stats.streams_opened += 1
            return NetStream(reader, writer, self._stream_timeout)
        assert self._tls is not None
        import ssl  # the TLS path only (see the TYPE_CHECKING import)

        from serf.transport.tls import describe_tls_error

        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(addr.host, addr.port)
        stream = TlsStream(
            reader,
            writer,
            self._client_ssl,
            server_side=False,
            server_hostname=self._tls.server_name or addr.host,
            timeout=self._stream_timeout,
        )
        try:
            await stream.handshake(None if deadline is None else max(0.0, deadline - loop.time()))
        except (ssl.SSLError, ConnectionError) as exc:
            await stream.close()
            reason = describe_tls_error(exc)
            self._refused(Address.of(addr), "outbound", reason)
            raise ConnectionRefusedError(
                f"TLS handshake with {addr.host}:{addr.port} failed: {reason}"
            ) from exc
        except BaseException:
            await stream.close()
            raise
        self._stats.streams_opened += 1
        return stream

    async def close(self) -> None:
        """Close the UDP socket and TCP listener and cancel running stream handlers."""
        if self._closed:
            return
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        await self._cancel_tasks()
        if self._udp_protocol is not None:
            await self._udp_protocol.wait_closed()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()

    # -- internals -------------------------------------------------------------------------

    def _check_literal(self, host: str) -> None:
        # sendto() with a name would block the loop on DNS: names go through a resolver.
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, host)
            except (OSError, ValueError):
                continue
            if len(self._literal_hosts) < 65_536:
                self._literal_hosts.add(host)
            return
        raise ValueError(
            f"send_packet needs an IP literal host, got {host!r}; resolve names with an "
            "AddressResolver first"
        )

    def _refused(self, peer: Address | None, direction: str, reason: str) -> None:
        self._stats.peers_refused += 1
        self._stats.errors += 1
        assert self._loop is not None and self._refusals is not None
        self._refusals.refused(self._loop.time(), peer, direction, reason)

    def _packet_received(self, data: bytes, addr: Any) -> None:
        try:
            src = _source_address(addr)
        except Exception:
            self._stats.errors += 1
            log.exception("unreadable packet source %r", addr)
            return
        self._deliver_packet(data, src)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None:
            writer.close()
            return
        self._tasks.add(task)
        try:
            try:
                stream = (
                    NetStream(reader, writer, self._stream_timeout)
                    if self._server_ssl is None
                    else TlsStream(
                        reader,
                        writer,
                        self._server_ssl,
                        server_side=True,
                        timeout=self._stream_timeout,
                    )
                )
            except Exception:
                self._stats.errors += 1
                writer.close()
                return
            if isinstance(stream, TlsStream):
                import ssl  # the TLS path only (see the TYPE_CHECKING import)

                from serf.transport.tls import describe_tls_error

                try:
                    await stream.handshake(self._stream_timeout or DEFAULT_STREAM_TIMEOUT)
                except asyncio.CancelledError:  # the transport is closing
                    writer.close()
                    return
                except (ssl.SSLError, OSError, TimeoutError) as exc:
                    self._refused(stream.remote_address, "inbound", describe_tls_error(exc))
                    writer.close()
                    return
            self._stats.streams_accepted += 1
            await self._run_stream_handler(stream)
        finally:
            self._tasks.discard(task)


def _family(addr: Address) -> socket.AddressFamily:
    """AF_INET6 for IPv6 literals, AF_INET otherwise."""
    return socket.AF_INET6 if ":" in addr.host else socket.AF_INET
