"""UDP + TCP transport on one port, on trio (the net transport of the trio runtime).

How this works: the same transport as :class:`serf.transport.net.NetTransport` (it is a
subclass and keeps its binding rules, packet sending, literal-host check, TLS contexts and
refusal log), with trio doing the waiting. :meth:`TrioNetTransport.start` takes a
``trio.Nursery``: it binds the UDP socket, then a TCP listener on the same port (retrying
on a new port when port 0 was asked and TCP cannot take it), and runs one task that owns
a cancel scope with the UDP receive loop, the accept loop and one task per accepted
connection inside it. :meth:`close` cancels that scope, waits for those tasks and closes
both sockets.

Packets go out with a plain non-blocking ``sendto`` on the UDP socket (fire and forget, as
on asyncio: a full socket buffer is a counted drop). Streams are :class:`TrioNetStream`
(``trio.SocketStream``) or, with ``tls=``, :class:`TrioTlsStream` (``trio.SSLStream``)
carrying the same ``[u32 length][bytes]`` chunks as the asyncio ``TlsStream``, so trio and
asyncio nodes talk to each other over plain TCP and TLS alike. Their methods follow the
:class:`~serf.transport.base.Stream` protocol: ``write`` and ``write_eof`` queue, the next
``drain``, ``read`` or ``close`` sends; timeouts raise the builtin TimeoutError.

Only the trio runtime (:mod:`serf.runtime.trio_serf`) uses this transport; it needs the
``pyserf[trio]`` extra.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

from serf._extras import missing_extra
from serf.transport.base import (
    DEFAULT_STREAM_TIMEOUT,
    LISTEN_BACKLOG,
    MAX_PACKET_SIZE,
    Address,
    AddressLike,
    Stream,
)
from serf.transport.net import (
    _WILDCARDS,
    END_CHUNK,
    BufferedReads,
    NetTransport,
    _address_from_sockname,
    _bound_socket,
    _family,
    frame_chunks,
    next_chunk,
)
from serf.transport.tls import TlsConfig, describe_tls_error

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["TrioNetStream", "TrioNetTransport", "TrioTlsStream", "deadline", "fail_after"]

log = logging.getLogger(__name__)

_RECV = 64 * 1024
_UDP_RECV = MAX_PACKET_SIZE + 64  # a datagram cut to this size is still too big: dropped


@contextlib.contextmanager
def fail_after(seconds: float | None) -> Iterator[None]:
    """``trio.fail_after`` raising the builtin TimeoutError (None: no limit)."""
    if seconds is None:
        yield
        return
    try:
        with trio.fail_after(max(0.0, seconds)):
            yield
    except trio.TooSlowError:
        raise TimeoutError(f"timed out after {seconds}s") from None


@asynccontextmanager
async def deadline(seconds: float | None) -> AsyncIterator[None]:
    """:func:`fail_after` as an async context manager (what the runtime-neutral code uses)."""
    with fail_after(seconds):
        yield


class TrioNetStream(BufferedReads):
    """A TCP connection as a :class:`~serf.transport.base.Stream` on trio."""

    def __init__(
        self,
        stream: trio.abc.HalfCloseableStream | trio.SSLStream[Any],
        sock: Any,
        timeout: float | None,
    ) -> None:
        self._stream = stream
        self.timeout = timeout
        self._remote = _address_from_sockname(sock.getpeername())
        self._local = _address_from_sockname(sock.getsockname())
        self._out = bytearray()
        self._data = bytearray()
        self._eof = False
        self._eof_queued = False
        self._eof_sent = False
        self._closed = False

    @property
    def remote_address(self) -> Address:
        """The peer's address."""
        return self._remote

    @property
    def local_address(self) -> Address:
        """This end's address."""
        return self._local

    def _deadline(self, seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        return deadline(seconds)

    # -- what TLS changes -------------------------------------------------------------------

    async def _receive(self) -> bytes:
        """The next payload bytes from the peer; ``b""`` at its end of data."""
        try:
            return bytes(await self._stream.receive_some(_RECV))
        except trio.BrokenResourceError as exc:
            raise ConnectionResetError(f"connection from {self._remote} broke: {exc!r}") from exc

    def _frame(self, data: bytes) -> bytes:
        return data

    async def _send_eof(self) -> None:
        stream = cast(trio.abc.HalfCloseableStream, self._stream)
        # a peer that already hung up: reading says so (as asyncio's write_eof)
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await stream.send_eof()

    # -- the Stream protocol ----------------------------------------------------------------

    async def _flush(self) -> None:
        if self._out:
            data = bytes(self._out)
            self._out.clear()
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionResetError(f"stream to {self._remote}: {exc!r}") from exc
        if self._eof_queued and not self._eof_sent:
            self._eof_sent = True
            await self._send_eof()

    async def _fill(self) -> None:
        await self._flush()
        got = await self._receive()
        if got:
            self._data += got
        else:
            self._eof = True

    def write(self, data: bytes) -> None:
        """Queue ``data``; `drain` (or the next read) sends it. RuntimeError after
        `write_eof`."""
        if self._eof_queued:
            raise RuntimeError("cannot write after write_eof()")
        self._out += self._frame(data)

    async def drain(self, *, timeout: float | None = None) -> None:
        """Send what is queued."""
        with fail_after(self._timeout(timeout)):
            await self._flush()

    def write_eof(self) -> None:
        """Half close: the peer reads EOF once what is queued went out; reading still works."""
        self._eof_queued = True

    async def close(self) -> None:
        """Close the connection (what is still queued is dropped). Idempotent, never
        raises."""
        if self._closed:
            return
        self._closed = True
        await trio.aclose_forcefully(self._stream)


class TrioTlsStream(TrioNetStream):
    """A TLS connection (``trio.SSLStream``) framed as the asyncio ``TlsStream``: chunks of
    ``[u32 big-endian length][bytes]``, a zero-length chunk is `write_eof`."""

    def __init__(self, stream: trio.SSLStream[Any], sock: Any, timeout: float | None) -> None:
        super().__init__(stream, sock, timeout)
        self._plain = bytearray()
        self._peer_done = False

    async def handshake(self, timeout: float | None) -> None:
        """Run the TLS handshake: `ssl.SSLError` when verification fails, TimeoutError after
        ``timeout``, ConnectionResetError if the peer hangs up."""
        stream = cast("trio.SSLStream[Any]", self._stream)
        with fail_after(timeout):
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                if isinstance(cause, ssl.SSLError):
                    raise cause from None
                raise ConnectionResetError(f"TLS handshake with {self._remote}: {exc!r}") from exc

    async def _receive(self) -> bytes:
        while True:
            if self._peer_done:
                return b""
            chunk = next_chunk(self._plain, self._remote)
            if chunk is not None:
                self._peer_done = not chunk
                return chunk
            try:
                got = await self._stream.receive_some(_RECV)
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                if isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError):
                    got = b""
                else:
                    reason = describe_tls_error(cause if cause is not None else exc)
                    raise ConnectionResetError(f"TLS stream from {self._remote}: {reason}") from exc
            if not got:
                self._peer_done = True
                return b""
            self._plain += got

    def _frame(self, data: bytes) -> bytes:
        return frame_chunks(data)

    async def _send_eof(self) -> None:
        try:
            await self._stream.send_all(END_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionResetError(f"stream to {self._remote}: {exc!r}") from exc


class _TrioClock:
    """What :class:`NetTransport` reads from its loop: ``time()``, here trio's clock."""

    @staticmethod
    def time() -> float:
        return trio.current_time()


class TrioNetTransport(NetTransport):
    """UDP packets + TCP (or TLS) streams on one address, on trio (see the module comment).

    Same arguments as :class:`~serf.transport.net.NetTransport`; :meth:`start` takes the
    nursery its tasks run in.
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
        super().__init__(
            bind,
            max_packet_size=max_packet_size,
            stream_timeout=stream_timeout,
            bind_attempts=bind_attempts,
            tls=tls,
        )
        self._udp_sock: trio.socket.SocketType | None = None
        self._tcp_sock: trio.socket.SocketType | None = None
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    async def start(self, nursery: trio.Nursery | None = None) -> None:
        """Bind UDP then TCP on the same port and run the receive tasks in ``nursery``."""
        if nursery is None:
            raise TypeError("TrioNetTransport.start needs the trio nursery to run in")
        if self._started:
            raise RuntimeError("TrioNetTransport already started")
        if self._tls is not None:
            self._server_ssl = self._tls.server_context()
            self._client_ssl = self._tls.client_context()
        self._started = True
        self._loop = cast(Any, _TrioClock())
        try:
            udp, tcp = self._bind_pair()
        except BaseException:
            self._started = False
            raise
        self._local = Address(self._bind.host, _address_from_sockname(udp.getsockname()).port)
        self._v4_mapped = udp.family == socket.AF_INET6 and self._bind.host in _WILDCARDS
        self._udp = cast(Any, udp)  # NetTransport.send_packet calls its sendto()
        self._udp_sock = trio.socket.from_stdlib_socket(udp)
        self._tcp_sock = trio.socket.from_stdlib_socket(tcp)
        await nursery.start(self._serve)

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        attempts = self._bind_attempts if self._bind.port == 0 else 1
        last: OSError | None = None
        port = self._bind.port
        for _ in range(attempts):
            try:
                udp = _bound_socket(self._bind, socket.SOCK_DGRAM)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot bind UDP {self._bind}: {exc.strerror}") from exc
            port = _address_from_sockname(udp.getsockname()).port
            try:
                tcp = _bound_socket(Address(self._bind.host, port), socket.SOCK_STREAM)
                tcp.listen(LISTEN_BACKLOG)
            except OSError as exc:
                udp.close()
                last = exc
                if exc.errno != errno.EADDRINUSE:
                    break
                continue
            return udp, tcp
        assert last is not None
        where = Address(self._bind.host, port)
        raise OSError(
            last.errno, f"cannot bind TCP {where} (UDP was free there): {last.strerror}"
        ) from last

    async def _serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as inner:
                    inner.start_soon(self._receive_packets)
                    inner.start_soon(self._accept_loop, inner)
                    task_status.started()
        finally:
            self._close_sockets()
            self._done.set()

    def _close_sockets(self) -> None:
        for sock in (self._udp_sock, self._tcp_sock):
            if sock is not None:
                sock.close()

    async def _receive_packets(self) -> None:
        sock = self._udp_sock
        assert sock is not None
        while True:
            try:
                data, addr = await sock.recvfrom(_UDP_RECV)
            except OSError as exc:  # ICMP errors of earlier sends (port unreachable, ...)
                self._stats.errors += 1
                log.debug("udp error: %r", exc)
                continue
            self._packet_received(data, addr)

    async def _accept_loop(self, nursery: trio.Nursery) -> None:
        sock = self._tcp_sock
        assert sock is not None
        while True:
            try:
                conn, _addr = await sock.accept()
            except OSError as exc:  # EMFILE and friends: count, back off a little
                self._stats.errors += 1
                log.debug("accept failed: %r", exc)
                await trio.sleep(0.05)
                continue
            nursery.start_soon(self._handle_connection, conn)

    async def _handle_connection(self, conn: trio.socket.SocketType) -> None:
        try:
            plain = trio.SocketStream(conn)
            stream: TrioNetStream
            if self._server_ssl is None:
                stream = TrioNetStream(plain, conn, self._stream_timeout)
            else:
                tls = TrioTlsStream(
                    trio.SSLStream(plain, self._server_ssl, server_side=True),
                    conn,
                    self._stream_timeout,
                )
                try:
                    await tls.handshake(self._stream_timeout or DEFAULT_STREAM_TIMEOUT)
                except (ssl.SSLError, OSError, TimeoutError) as exc:
                    self._refused(tls.remote_address, "inbound", describe_tls_error(exc))
                    await tls.close()
                    return
                stream = tls
        except OSError as exc:  # the peer was gone before we looked at it
            self._stats.errors += 1
            log.debug("accepted connection unusable: %r", exc)
            conn.close()
            return
        self._stats.streams_accepted += 1
        await self._run_stream_handler(stream)

    async def open_stream(self, addr: AddressLike, timeout: float | None = None) -> Stream:
        """Open a TCP (or TLS) connection to ``addr``. ConnectionRefusedError if nobody
        listens (or the TLS handshake fails), TimeoutError after ``timeout``."""
        if self._closed or not self._started:
            raise RuntimeError("TrioNetTransport is not running")
        limit = self._stream_timeout if timeout is None else timeout
        target = Address.of(addr)
        sock = trio.socket.socket(_family(target), socket.SOCK_STREAM)
        try:
            with fail_after(limit):
                await sock.connect((target.host, target.port))
                plain = trio.SocketStream(sock)
                if self._client_ssl is None:
                    stream: TrioNetStream = TrioNetStream(plain, sock, self._stream_timeout)
                else:
                    assert self._tls is not None
                    tls = TrioTlsStream(
                        trio.SSLStream(
                            plain,
                            self._client_ssl,
                            server_hostname=self._tls.server_name or target.host,
                        ),
                        sock,
                        self._stream_timeout,
                    )
                    try:
                        await tls.handshake(None)
                    except (ssl.SSLError, ConnectionError) as exc:
                        reason = describe_tls_error(exc)
                        self._refused(target, "outbound", reason)
                        raise ConnectionRefusedError(
                            f"TLS handshake with {target} failed: {reason}"
                        ) from exc
                    stream = tls
        except BaseException:
            sock.close()
            raise
        self._stats.streams_opened += 1
        return stream

    async def close(self) -> None:
        """Stop the receive tasks and stream handlers, close both sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._scope is None:
            return
        self._scope.cancel()
        await self._done.wait()
