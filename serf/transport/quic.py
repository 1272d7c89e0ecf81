"""QUIC transport (aioquic): packets and streams over one UDP port, TLS 1.3 always on.

How this works: `QuicTransport.start` binds one UDP socket and runs every QUIC connection of
this node on it, dialed and accepted alike, so a peer sees one address (``local_address``)
for everything we send, as with `serf.transport.net`. Incoming UDP datagrams are routed to
their connection by destination connection ID (as aioquic's own ``QuicServer`` does); an
Initial packet with an unknown ID starts a new accepted connection. Each connection is an
aioquic ``QuicConnectionProtocol`` subclass (`_Connection`) that shares the socket.

* One connection per peer address, reused for packets and streams: a small cache
  (``max_connections``, least recently used closed first). A connection left idle for
  ``idle_timeout`` seconds is closed by QUIC's own idle timeout and dropped from the cache.
  A peer that crashes and comes back on the same address knows nothing of our cached
  connection, so: a cached connection whose peer leaves 3 probe timeouts in a row
  unanswered is replaced by a fresh dial; a 1-RTT packet for a connection we do not know
  (we are the restarted one) makes us dial its sender (at most every 2 s per sender); and
  once an accepted connection completes its handshake we send over it, not over an older
  one to that address. When a connection is replaced so, the packets sent on the old one
  since its peer was last heard from (at most 64, the last 5 s) are sent again on the new
  one: if the peer restarted they were lost (duplicates are harmless to serf); and the
  streams we opened on it since then move to the new connection, with what was written on
  them sent again (else a push/pull or fallback ping opened just after a peer's restart
  waits for its timeout on a connection to a process that is gone). A dial its peer never
  answered ends silently, without CONNECTION_CLOSE: that close would travel in an Initial
  packet without a CRYPTO frame, which a process back on that address refuses as a new
  connection (aioquic's 'Packet contains no CRYPTO frame'). aioquic's own per-connection
  log lines go to ``serf.transport.quic.aioquic`` at DEBUG; ``quic_warnings`` counts its
  WARNINGs.
* Packets: a packet of at most ``DATAGRAM_PAYLOAD_LIMIT`` bytes (it must fit one QUIC packet
  of aioquic's 1200-byte datagram size) goes as a QUIC DATAGRAM frame (RFC 9221):
  unreliable, unordered, one UDP datagram, no retransmission, like UDP. A bigger packet (up
  to ``max_packet_size``, 65,507 bytes by default, the same limit as every transport) goes
  as one short unidirectional stream (data + FIN). That costs a stream ID, stream framing
  and retransmission (it is delivered reliably while the connection lives, which a UDP
  packet would not be), but keeps the size limit identical across transports. Packets sent
  before the handshake completes wait in the connection; if the handshake fails they are
  dropped and counted in ``stats.errors``.
* Streams: one bidirectional QUIC stream per request, opened with a one-byte preamble
  (`STREAM_PREAMBLE`) so the listener accepts it at once, as with TCP. ``write_eof`` sends
  FIN; ``read`` returns ``b""`` after the peer's FIN; `QuicStream.close` sends FIN and
  STOP_SENDING for anything the peer still sends. A stream reset by the peer raises
  ConnectionResetError. When the connection ends, open streams read EOF.
* Refused: QUIC has no RST, and an unconnected UDP socket does not surface ICMP errors, so a
  dial whose handshake does not finish within ``min(timeout, handshake_timeout)`` (2 s by
  default) raises ConnectionRefusedError and the half-open connection is abandoned.
* TLS: without ``certificate`` / ``private_key`` a self-signed P-256 certificate is made at
  start. Peers then must not verify (``verify_peer=False``, the default), or all nodes use
  certificates signed by one CA and set ``verify_peer`` to that CA file: the dialer then
  checks the listener's certificate against ``server_name`` (default: the peer's IP), but
  the listener does not authenticate the dialer, so with ``verify_peer`` this node sends
  only over connections it dialed. For both directions pass ``tls=`` (a `TlsConfig`, as
  the net transport's): listeners then ask for the dialer's certificate (aioquic has this
  only behind a private flag; every use of aioquic internals is in
  `serf.transport.quic_internals`, checked by its own test), and each connection's peer
  certificate is checked against the CA right after the handshake, before anything of it
  is delivered; a refused peer is logged and counted (``stats.peers_refused``). Serf's
  keyring encryption authenticates message contents in every case.

Memory: aioquic grants receive credit as data arrives, not as the application reads it, so
a stream's receive buffer is bounded only by what the peer sends (as with `asyncio` streams
over TCP with a large window). `QuicStream.drain` waits until unacknowledged data on the
stream is below a high-water mark, so senders do not run ahead without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import errno
import ipaddress
import logging
import os
import socket
import ssl
from functools import partial
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serf._extras import missing_extra
from serf.transport.base import (
    DEFAULT_STREAM_TIMEOUT,
    MAX_PACKET_SIZE,
    Address,
    AddressLike,
    Stream,
    TransportBase,
    UdpEndpoint,
)

try:
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.quic import events
    from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import (
        QuicPacketType,
        encode_quic_version_negotiation,
        pull_quic_header,
    )

    from serf.transport import quic_internals as internals
except ImportError as exc:  # aioquic is the quic extra
    raise missing_extra("aioquic", "quic", "the QUIC transport") from exc

from serf.transport.tls import RefusalLog, TlsConfig

__all__ = [
    "DATAGRAM_PAYLOAD_LIMIT",
    "STREAM_PREAMBLE",
    "QuicStream",
    "QuicTransport",
    "self_signed_certificate",
]

log = logging.getLogger(__name__)
#: aioquic's per-connection lines (handshake failures, peers that vanished) go here at DEBUG;
#: `QuicTransport.quic_warnings` counts the ones aioquic raised as WARNING or worse.
_AIOQUIC_LOG = logging.getLogger(__name__ + ".aioquic")

#: Packets up to this size go as DATAGRAM frames; bigger ones as a unidirectional stream.
#: A DATAGRAM frame must fit one QUIC packet (1200 bytes minus header, AEAD tag and frame
#: header); aioquic would stall the datagram queue on one that does not fit.
DATAGRAM_PAYLOAD_LIMIT = 1100

#: The first byte of every bidirectional stream. A QUIC stream exists for the peer only once
#: a frame of it arrives; sending this byte at `QuicTransport.open_stream` makes the listener
#: accept the stream at once, as a TCP accept would, even before the request is written.
STREAM_PREAMBLE = b"\x00"

_MAX_DATAGRAM_FRAME_SIZE = 65_536
_CID_LENGTH = 8
_WRITE_HIGH_WATER = 256 * 1024
_STOP_SENDING_CODE = 0  # application error code for STOP_SENDING on close
_REFUSED_CODE = 0x2  # CONNECTION_REFUSED: the peer's certificate failed our check
#: A cached connection whose peer left this many probe timeouts in a row unanswered is
#: taken for dead (the peer crashed and may be back on the same address with no memory of
#: it) and is replaced by a fresh dial (about 0.2 s on loopback, seconds over a WAN).
_DEAD_AFTER_PROBES = 3
_STRAY_REDIAL_INTERVAL = 2.0
_REPLAY_WINDOW = 5.0


def self_signed_certificate(
    host: str = "127.0.0.1",
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh P-256 key and a self-signed certificate for ``serf`` (and ``host`` if an IP)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serf")])
    alt: list[x509.GeneralName] = [x509.DNSName("serf")]
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            alt.append(x509.IPAddress(ip))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class QuicStream:
    """One bidirectional QUIC stream as a `Stream`; behaves like `serf.transport.net.NetStream`."""

    def __init__(
        self,
        connection: _Connection,
        stream_id: int,
        local: Address,
        remote: Address,
        timeout: float | None,
    ) -> None:
        self._conn = connection
        self._id = stream_id
        self._local = local
        self._remote = remote
        self.timeout = timeout
        self._buffer = bytearray()
        self._eof = False  # the peer sent FIN (or the connection ended)
        self._reset = False  # the peer reset its side, or asked us to stop sending
        self._eof_sent = False
        self._closed = False
        self._readable = asyncio.Event()
        #: everything written on a stream we opened, kept until its connection hears from
        #: the peer: if the peer turns out to have restarted, the stream moves to the new
        #: connection and this is sent again (`QuicTransport._move_streams`)
        self._unconfirmed: bytearray | None = None

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

    # -- fed by the connection -----------------------------------------------------------

    def _feed(self, data: bytes, end_stream: bool) -> None:
        if self._closed:
            return
        if data:
            self._buffer += data
        if end_stream:
            self._eof = True
        self._readable.set()

    def _peer_reset(self) -> None:
        self._reset = True
        self._eof = True
        self._readable.set()

    def _connection_lost(self) -> None:
        self._eof = True
        self._readable.set()

    def _take(self, n: int) -> bytes:
        if n < 0 or n >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
        if not self._buffer and not self._eof:
            self._readable.clear()
        return out

    def _check_reset(self) -> None:
        if self._reset and not self._buffer:
            raise ConnectionResetError(errno.ECONNRESET, "stream reset by peer")

    # -- Stream API ----------------------------------------------------------------------

    async def read(self, n: int = -1, *, timeout: float | None = None) -> bytes:
        """Up to ``n`` bytes (``b""`` at EOF); ``n = -1`` reads until EOF."""
        if n == 0:
            return b""
        async with asyncio.timeout(self._timeout(timeout)):
            if n > 0:
                while not self._buffer and not self._eof:
                    await self._readable.wait()
                self._check_reset()
                return self._take(n)
            out = bytearray()
            while True:
                out += self._take(-1)
                if self._eof and not self._buffer:
                    self._check_reset()
                    return bytes(out)
                await self._readable.wait()

    async def readexactly(self, n: int, *, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or `asyncio.IncompleteReadError` if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        async with asyncio.timeout(self._timeout(timeout)):
            out = bytearray()
            while len(out) < n:
                out += self._take(n - len(out))
                if len(out) >= n:
                    break
                if self._eof and not self._buffer:
                    self._check_reset()
                    raise asyncio.IncompleteReadError(bytes(out), n)
                await self._readable.wait()
            return bytes(out)

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the peer. RuntimeError after write_eof/close."""
        if self._eof_sent:
            raise RuntimeError("cannot write after write_eof() or close()")
        if not data or self._reset or self._conn.closing:
            return  # as a TCP socket after a reset: drain reports it
        if self._unconfirmed is not None:
            self._unconfirmed += data
        self._conn._send_stream(self._id, bytes(data), end_stream=False)

    async def drain(self, *, timeout: float | None = None) -> None:
        """Wait until unacknowledged data is below the high-water mark.

        ConnectionResetError if the peer reset the stream or the connection ended.
        """
        async with asyncio.timeout(self._timeout(timeout)):
            while True:
                if self._reset:
                    raise ConnectionResetError(errno.ECONNRESET, "stream reset by peer")
                if self._conn.closing:
                    raise ConnectionResetError(errno.ECONNRESET, "QUIC connection closed")
                if self._conn._unacked(self._id) < _WRITE_HIGH_WATER:
                    return
                await self._conn._wait_progress()

    def write_eof(self) -> None:
        """Half close (QUIC FIN): the peer reads EOF; reading here still works."""
        if self._eof_sent:
            return
        self._eof_sent = True
        if not self._reset and not self._conn.closing:
            self._conn._send_stream(self._id, b"", end_stream=True)

    async def close(self) -> None:
        """Close both directions (FIN, and STOP_SENDING if the peer is still sending).
        Idempotent."""
        if self._closed:
            return
        self.write_eof()
        self._closed = True
        if not self._eof and not self._conn.closing:
            self._conn._stop_stream(self._id)
        self._buffer.clear()
        self._eof = True
        self._readable.set()
        self._unconfirmed = None
        self._conn.unconfirmed.discard(self)
        self._conn._forget_stream(self._id)
        await asyncio.sleep(0)


class _Connection(QuicConnectionProtocol):
    """One QUIC connection on the transport's shared socket (dialed or accepted)."""

    def __init__(self, quic: QuicConnection, owner: QuicTransport, peer: Address) -> None:
        super().__init__(quic)
        self.owner = owner
        self.peer = peer
        self.is_client: bool = quic.configuration.is_client
        self.streams: dict[int, QuicStream] = {}
        self.packets_in: dict[int, bytearray] = {}  # unidirectional streams carrying packets
        self.tombstones: set[int] = set()  # peer streams we closed while data may still come
        self.terminated = False
        self.handshook = False
        self.closing = False  # closed (or closing): never picked for new sends
        self.dead = False  # the transport closed: never touch the socket again
        self.last_used = self._loop.time()
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.ready.add_done_callback(_consume_exception)
        self._progress = asyncio.Event()
        self._deadline: asyncio.TimerHandle | None = None
        self.refused = False  # the peer failed authentication: deliver nothing of it
        #: packets sent since the peer was last heard from (bounded)
        self.unheard: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=64)
        #: streams we opened since the peer was last heard from (see QuicStream._unconfirmed)
        self.unconfirmed: set[QuicStream] = set()
        self.heard = False  # any datagram of the peer's reached this connection

    # -- sending -------------------------------------------------------------------------

    def transmit(self) -> None:
        if self.dead:
            internals.clear_transmit_task(self)
            return
        try:
            super().transmit()
        except Exception as exc:  # a closed or broken socket: count, never raise
            self.owner.stats.errors += 1
            log.debug("quic transmit to %s failed: %r", self.peer, exc)
        if self._progress.is_set() is False:
            self._progress.set()
            self._progress = asyncio.Event()

    async def _wait_progress(self) -> None:
        await self._progress.wait()

    def _send_stream(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self.last_used = self._loop.time()
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=end_stream)
        except Exception as exc:  # stream already finished or reset
            log.debug("quic stream %d send failed: %r", stream_id, exc)
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream._peer_reset()
            return
        internals.transmit_soon(self)

    def _stop_stream(self, stream_id: int) -> None:
        with contextlib.suppress(Exception):
            self._quic.stop_stream(stream_id, _STOP_SENDING_CODE)
            internals.transmit_soon(self)

    def _unacked(self, stream_id: int) -> int:
        return internals.unacked_bytes(self._quic, stream_id)

    def _forget_stream(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        if self._peer_initiated(stream_id) and not self.terminated:
            self.tombstones.add(stream_id)
            if len(self.tombstones) > 256:
                self.tombstones = {
                    sid for sid in self.tombstones if internals.stream_exists(self._quic, sid)
                }

    def _peer_initiated(self, stream_id: int) -> bool:
        return ((stream_id & 1) == 0) != self.is_client

    def send_packet(self, data: bytes) -> None:
        self.last_used = now = self._loop.time()
        if self.handshook:
            # kept until the peer is heard from again: replayed if it turns out to have
            # restarted (see QuicTransport._accepted_ready)
            self.unheard.append((now, data))
        if len(data) <= DATAGRAM_PAYLOAD_LIMIT:
            self._quic.send_datagram_frame(data)
        else:
            stream_id = self._quic.get_next_available_stream_id(is_unidirectional=True)
            self._quic.send_stream_data(stream_id, data, end_stream=True)
        internals.transmit_soon(self)

    def abort(self) -> None:
        """Give up on this connection (handshake timeout, eviction, transport close)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionRefusedError(errno.ECONNREFUSED, "no handshake"))
        if not self.terminated and not self.closing:
            if self.is_client and not self.heard:
                self._abandon()
            else:
                self.close()
        self.closing = True

    def _abandon(self) -> None:
        """Drop a dial its peer never answered, without a CONNECTION_CLOSE.

        That close would go in an Initial packet with no CRYPTO frame (we never got the
        peer's handshake keys). If a process came back on the peer's address meanwhile, it
        has never seen this connection, takes the packet for a new one and aioquic
        refuses it ('Packet contains no CRYPTO frame', RFC 9000 17.2.2): a pointless
        connection and a log line on the peer. With nothing heard there is no state on
        the other side to close, so the dial just stops (RFC 9000 10: a connection may
        end silently)."""
        self.dead = True  # never transmit again
        self.closing = True
        self.terminated = True
        internals.cancel_protocol_timer(self)
        if not self.handshook:
            self.owner.stats.errors += internals.pending_datagrams(self._quic)
        for stream in list(self.streams.values()):
            stream._connection_lost()
        self.streams.clear()
        self.unconfirmed.clear()
        self.owner._conn_terminated(self)

    # -- receiving -----------------------------------------------------------------------

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.heard = True
        self.unheard.clear()
        if self.unconfirmed:
            for stream in self.unconfirmed:
                stream._unconfirmed = None
            self.unconfirmed.clear()
        super().datagram_received(data, addr)
        if not self.closing and internals.is_closed(self._quic):
            # The peer closed the connection: aioquic reports it only after draining
            # (3 PTOs); stop using it now, and let open streams read EOF.
            self.closing = True
            self.owner._forget_peer(self)
            for stream in list(self.streams.values()):
                stream._connection_lost()

    def quic_event_received(self, event: events.QuicEvent) -> None:
        owner = self.owner
        if self.refused and not isinstance(event, events.ConnectionTerminated):
            return
        if isinstance(event, events.DatagramFrameReceived):
            self.last_used = self._loop.time()
            owner._deliver_packet(event.data, self.peer)
        elif isinstance(event, events.StreamDataReceived):
            self.last_used = self._loop.time()
            self._stream_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, events.StreamReset):
            self.packets_in.pop(event.stream_id, None)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._peer_reset()
        elif isinstance(event, events.StopSendingReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._reset = True
        elif isinstance(event, events.HandshakeCompleted):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            reason = owner._authenticate(self)
            if reason is not None:
                self._refuse(reason)
                return
            self.handshook = True
            if not self.ready.done():
                self.ready.set_result(None)
            if not self.is_client:
                owner._accepted_ready(self)
        elif isinstance(event, events.ConnectionTerminated):
            self._terminated(event)

    def _refuse(self, reason: str) -> None:
        """The peer's certificate failed our check: close before anything of it is used."""
        self.refused = True
        self.closing = True
        self.owner._refused(self.peer, "outbound" if self.is_client else "inbound", reason)
        if not self.ready.done():
            self.ready.set_exception(
                ConnectionRefusedError(
                    errno.ECONNREFUSED, f"QUIC peer {self.peer} refused: {reason}"
                )
            )
        self.owner._forget_peer(self)
        self._quic.close(error_code=_REFUSED_CODE, reason_phrase="certificate refused")
        internals.transmit_soon(self)

    def _stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        owner = self.owner
        if stream_id & 2:  # unidirectional: one packet per stream
            if not self._peer_initiated(stream_id) or stream_id in self.tombstones:
                return
            buf = self.packets_in.setdefault(stream_id, bytearray())
            buf += data
            if len(buf) > MAX_PACKET_SIZE:
                del self.packets_in[stream_id]
                self.tombstones.add(stream_id)
                self._stop_stream(stream_id)
                owner.stats.errors += 1
                log.debug("quic packet stream from %s too large", self.peer)
                return
            if end_stream:
                del self.packets_in[stream_id]
                owner._deliver_packet(bytes(buf), self.peer)
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if not self._peer_initiated(stream_id) or stream_id in self.tombstones:
                return
            if owner._closed:
                self._stop_stream(stream_id)
                return
            if data[:1] != STREAM_PREAMBLE:
                # not one of ours (a stream must open with the preamble): refuse it
                self.tombstones.add(stream_id)
                self._stop_stream(stream_id)
                owner.stats.errors += 1
                log.debug("quic stream from %s without preamble", self.peer)
                return
            data = data[1:]
            assert owner._local is not None
            stream = QuicStream(self, stream_id, owner._local, self.peer, owner._stream_timeout)
            self.streams[stream_id] = stream
            owner._accept(stream)
        stream._feed(data, end_stream)

    def _terminated(self, event: events.ConnectionTerminated) -> None:
        self.terminated = True
        self.closing = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.ready.done():
            self.ready.set_exception(
                ConnectionRefusedError(
                    errno.ECONNREFUSED, f"QUIC connection closed: {event.reason_phrase!r}"
                )
            )
        if not self.handshook:
            # packets queued for a peer that never answered: lost, like UDP, but counted
            self.owner.stats.errors += internals.pending_datagrams(self._quic)
        for stream in list(self.streams.values()):
            stream._connection_lost()
        self.streams.clear()
        self.packets_in.clear()
        self.tombstones.clear()


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class QuicTransport(TransportBase):
    """Packets and streams over QUIC on one UDP address (see the module comment).

    ``bind`` must be an IP literal; port 0 picks a free port. ``certificate`` /
    ``private_key`` are `cryptography` objects (a self-signed pair is made if omitted).
    ``verify_peer``: False (default) accepts any listener certificate; True verifies against
    the system CAs; a path verifies against that CA file. ``server_name`` is the name checked
    in the listener's certificate when verifying (default: the peer's IP). ``alpn`` must
    match on both ends. ``handshake_timeout`` bounds a dial (then ConnectionRefusedError);
    ``idle_timeout`` closes idle connections; ``max_connections`` caps the connection cache.

    ``tls`` (a `serf.transport.tls.TlsConfig`, instead of the four certificate arguments):
    this node's certificate from the cluster CA, and every connection, dialed or accepted,
    is checked right after its handshake: the peer must present a certificate from the CA
    (``mutual=False``: only listeners must), in its validity period (and matching
    ``tls.server_name`` when set, for listeners). A peer that fails is refused before any
    of its packets or streams is delivered: one log line (WARNING once per peer and reason
    a minute), ``stats.peers_refused`` and ``stats.errors`` count it, and a dial raises
    ConnectionRefusedError. Listeners ask for the client certificate through aioquic's
    private flag (`serf.transport.quic_internals`).
    """

    def __init__(
        self,
        bind: AddressLike,
        *,
        certificate: x509.Certificate | None = None,
        private_key: Any = None,
        verify_peer: bool | str | os.PathLike[str] = False,
        server_name: str | None = None,
        alpn: str = "serf",
        max_packet_size: int = MAX_PACKET_SIZE,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
        handshake_timeout: float = 2.0,
        idle_timeout: float = 30.0,
        max_connections: int = 256,
        tls: TlsConfig | None = None,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, stream_timeout=stream_timeout)
        if tls is not None:
            if not isinstance(tls, TlsConfig):
                raise TypeError(f"tls must be a TlsConfig, got {type(tls).__name__}")
            if certificate is not None or verify_peer is not False or server_name is not None:
                raise ValueError("tls replaces certificate/private_key/verify_peer/server_name")
        if (certificate is None) != (private_key is None):
            raise ValueError("certificate and private_key must be given together")
        if handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not alpn:
            raise ValueError("alpn must not be empty")
        self._bind = Address.of(bind)
        self._certificate = certificate
        self._private_key = private_key
        self._verify_peer = verify_peer
        self._server_name = server_name
        self._alpn = alpn
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._tls = tls
        self._ca_pem = b""
        self._refusals = RefusalLog(log)
        self._strays = 0  # 1-RTT packets for connections we do not know
        self.quic_warnings = 0
        """aioquic's per-connection WARNING (or worse) lines, logged at DEBUG instead."""
        self._stray_dials: dict[Address, float] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._endpoint: UdpEndpoint | None = None
        self._server_config: QuicConfiguration | None = None
        self._client_config: QuicConfiguration | None = None
        self._cids: dict[bytes, _Connection] = {}
        self._by_peer: dict[Address, _Connection] = {}
        self._connections: set[_Connection] = set()

    async def start(self) -> None:
        """Make the TLS configuration and bind the UDP socket."""
        if self._started:
            raise RuntimeError("QuicTransport already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        try:
            self._configure()
            family = socket.AF_INET6 if ":" in self._bind.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self._bind.host, self._bind.port))
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            udp, endpoint = await self._loop.create_datagram_endpoint(
                lambda: UdpEndpoint(self._datagram_received, self._stats, "quic udp"), sock=sock
            )
        except BaseException:
            self._started = False
            raise
        self._udp, self._endpoint = udp, endpoint
        sockname = udp.get_extra_info("sockname")
        self._local = Address(self._bind.host, int(sockname[1]))

    def send_packet(self, addr: AddressLike, data: bytes) -> None:
        """Send one packet to ``addr`` on its connection (dialing one if needed).

        Raises `PacketTooLargeError` over ``max_packet_size`` and ValueError if ``addr.host``
        is not an IP literal. Failures are counted in ``stats.errors``, not raised.
        """
        self._check_packet_size(data)
        if self._udp is None or self._closed:
            raise RuntimeError("QuicTransport is not running")
        peer = _literal(addr)
        try:
            self._connection_for(peer).send_packet(bytes(data))
        except Exception as exc:
            self._stats.errors += 1
            log.debug("quic send to %s failed: %r", peer, exc)
            return
        self._stats.packets_sent += 1

    async def open_stream(self, addr: AddressLike, timeout: float | None = None) -> Stream:
        """Open a bidirectional stream to ``addr``. ConnectionRefusedError if no QUIC
        handshake completes within ``min(timeout, handshake_timeout)``."""
        if self._closed or not self._started or self._udp is None:
            raise RuntimeError("QuicTransport is not running")
        peer = _literal(addr)
        limit = self._stream_timeout if timeout is None else timeout
        conn = self._connection_for(peer)
        if not conn.ready.done():
            wait = self._handshake_timeout if limit is None else min(limit, self._handshake_timeout)
            try:
                async with asyncio.timeout(wait):
                    await asyncio.shield(conn.ready)
            except TimeoutError:
                conn.abort()
                self._forget_peer(conn)
                raise ConnectionRefusedError(
                    errno.ECONNREFUSED, f"no QUIC handshake with {peer} within {wait:g}s"
                ) from None
        exc = conn.ready.exception()
        if exc is not None or conn.closing:
            self._forget_peer(conn)
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"connection refused: {peer}")
        if self._closed:
            raise RuntimeError("QuicTransport is not running")
        stream_id = conn._quic.get_next_available_stream_id()
        assert self._local is not None
        stream = QuicStream(conn, stream_id, self._local, peer, self._stream_timeout)
        conn.streams[stream_id] = stream
        stream._unconfirmed = bytearray(STREAM_PREAMBLE)
        conn.unconfirmed.add(stream)
        conn._send_stream(stream_id, STREAM_PREAMBLE, end_stream=False)
        conn.last_used = conn._loop.time()
        self._stats.streams_opened += 1
        return stream

    async def close(self) -> None:
        """Close every connection (CONNECTION_CLOSE), cancel stream handlers and free the
        UDP port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                conn.abort()
                conn.transmit()
            conn.dead = True
            internals.cancel_protocol_timer(conn)
            for stream in list(conn.streams.values()):
                stream._connection_lost()
        await self._cancel_tasks()
        if self._udp is not None:
            self._udp.close()
        if self._endpoint is not None:
            await self._endpoint.wait_closed()
        self._cids.clear()
        self._by_peer.clear()
        self._connections.clear()

    # -- internals -------------------------------------------------------------------------

    def _configure(self) -> None:
        certificate, private_key = self._certificate, self._private_key
        chain: list[Any] = []
        if self._tls is not None:
            certificate, chain, private_key = self._tls.load_certificate()
            self._ca_pem = self._tls.ca_pem_bytes()
        elif certificate is None:
            certificate, private_key = self_signed_certificate(self._bind.host)
        common: dict[str, Any] = {
            "alpn_protocols": [self._alpn],
            "idle_timeout": self._idle_timeout,
            "max_datagram_frame_size": _MAX_DATAGRAM_FRAME_SIZE,
            "connection_id_length": _CID_LENGTH,
            "max_data": 16 * 1024 * 1024,
            "max_stream_data": 8 * 1024 * 1024,
            "certificate": certificate,
            "certificate_chain": chain,
            "private_key": private_key,
        }
        self._server_config = QuicConfiguration(is_client=False, **common)
        client = QuicConfiguration(is_client=True, **common)
        verify = self._verify_peer
        if verify is False or self._tls is not None:  # with tls: checked after the handshake
            client.verify_mode = ssl.CERT_NONE
        else:
            client.verify_mode = ssl.CERT_REQUIRED
            if verify is not True:
                client.load_verify_locations(cafile=os.fspath(verify))
        self._client_config = client

    def _datagram_received(self, data: bytes, addr: Any) -> None:
        if self._closed or self._udp is None:
            return
        try:
            header = pull_quic_header(internals.Buffer(data=data), host_cid_length=_CID_LENGTH)
        except ValueError:
            self._stats.errors += 1
            return
        conn = self._cids.get(header.destination_cid)
        if conn is None:
            conn = self._new_accepted(data, addr, header)
            if conn is None:
                return
        conn.datagram_received(data, addr)

    def _new_accepted(self, data: bytes, addr: Any, header: Any) -> _Connection | None:
        assert self._server_config is not None and self._udp is not None
        config = self._server_config
        if (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in config.supported_versions
        ):
            self._udp.sendto(
                encode_quic_version_negotiation(
                    source_cid=header.destination_cid,
                    destination_cid=header.source_cid,
                    supported_versions=config.supported_versions,
                ),
                addr,
            )
            return None
        if header.packet_type == QuicPacketType.ONE_RTT:
            self._stray(addr)
            return None
        if header.packet_type != QuicPacketType.INITIAL or len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            return None  # a stray packet for a connection we forgot
        try:
            peer = Address(str(addr[0]).split("%", 1)[0], int(addr[1]))
        except Exception:
            self._stats.errors += 1
            return None
        kind = QuicConnection
        if self._tls is not None and self._tls.mutual:
            kind = internals.ClientCertificateQuicConnection
        quic = kind(configuration=config, original_destination_connection_id=header.destination_cid)
        conn = self._register(quic, peer)
        self._cids[header.destination_cid] = conn
        # reuse it for sending, unless dialers must verify whom they talk to and this
        # accepted connection's peer was not checked
        reusable = self._verify_peer is False and (self._tls is None or self._tls.mutual)
        if peer not in self._by_peer and reusable:
            self._by_peer[peer] = conn  # reuse it for sending (not when dialers must verify)
        return conn

    def _register(self, quic: QuicConnection, peer: Address) -> _Connection:
        assert self._udp is not None
        live = [c for c in self._connections if not c.closing]
        if len(live) >= self._max_connections:
            oldest = min(live, key=lambda c: c.last_used)
            oldest.abort()
            self._forget_peer(oldest)
        internals.quiet_logger(quic, _AIOQUIC_LOG, self._count_quic_warning)
        conn = _Connection(quic, self, peer)
        conn.connection_made(self._udp)
        internals.set_connection_handlers(
            conn,
            partial(self._cid_issued, conn),
            partial(self._cid_retired, conn),
            partial(self._conn_terminated, conn),
        )
        self._cids[quic.host_cid] = conn
        self._connections.add(conn)
        return conn

    def _connection_for(self, peer: Address) -> _Connection:
        conn = self._by_peer.get(peer)
        stale: _Connection | None = None
        if conn is not None and not conn.closing and not internals.close_pending(conn._quic):
            if not conn.handshook or internals.unanswered_probes(conn._quic) < _DEAD_AFTER_PROBES:
                return conn
            # the peer stopped answering: crashed, maybe restarted on this address
            log.debug("quic peer %s stopped answering; dialing a new connection", peer)
            conn.abort()
            self._forget_peer(conn)
            stale = conn
        assert self._client_config is not None and self._loop is not None
        config = self._client_config
        if config.verify_mode != ssl.CERT_NONE:
            config = dataclasses.replace(config, server_name=self._server_name or peer.host)
        quic = QuicConnection(configuration=config)
        conn = self._register(quic, peer)
        self._by_peer[peer] = conn
        conn.connect((peer.host, peer.port))
        conn._deadline = self._loop.call_later(
            self._handshake_timeout, self._handshake_expired, conn
        )
        if stale is not None:
            self._replay(stale, conn)
        return conn

    def _replay(self, old: _Connection, new: _Connection) -> None:
        """Send again over ``new`` what went out on ``old`` in the last `_REPLAY_WINDOW`
        seconds since its peer was last heard from: if the peer restarted, those were lost
        (a duplicate is harmless to gossip, pings and queries); move the streams opened
        since then too."""
        assert self._loop is not None
        since = self._loop.time() - _REPLAY_WINDOW
        pending = [data for sent_at, data in old.unheard if sent_at >= since]
        old.unheard.clear()
        for data in pending:
            new.send_packet(data)
        self._move_streams(old, new)

    def _move_streams(self, old: _Connection, new: _Connection) -> None:
        """Move the streams we opened on ``old`` since its peer was last heard from to
        ``new`` (once its handshake is done), sending what was written on them again:
        opened on a connection to a process that is gone, they would wait for their
        timeout. A stream whose new connection fails reads a reset."""
        streams = [s for s in old.unconfirmed if not s._closed and s._unconfirmed is not None]
        old.unconfirmed.clear()
        if not streams:
            return

        def move(_: object = None) -> None:
            failed = new.ready.cancelled() or new.ready.exception() is not None
            for stream in streams:
                data = stream._unconfirmed
                if stream._closed or data is None or stream._conn is not old:
                    continue
                old.streams.pop(stream._id, None)
                if failed or new.closing or self._closed:
                    stream._peer_reset()
                    continue
                stream_id = new._quic.get_next_available_stream_id()
                stream._conn, stream._id = new, stream_id
                new.streams[stream_id] = stream
                new.unconfirmed.add(stream)
                new._send_stream(stream_id, bytes(data), end_stream=stream._eof_sent)

        if new.ready.done():
            move()
        else:
            new.ready.add_done_callback(move)

    def _handshake_expired(self, conn: _Connection) -> None:
        conn._deadline = None
        if not conn.ready.done():
            log.debug("quic handshake with %s timed out", conn.peer)
            conn.abort()
            self._forget_peer(conn)

    def _authenticate(self, conn: _Connection) -> str | None:
        """None when ``conn``'s peer passes the TLS check (or there is none); else why not."""
        tls = self._tls
        if tls is None or not (conn.is_client or tls.mutual):
            return None
        server_name = tls.server_name if conn.is_client else None
        return internals.verify_peer_certificate(conn._quic, self._ca_pem, server_name)

    def _refused(self, peer: Address, direction: str, reason: str) -> None:
        self._stats.peers_refused += 1
        self._stats.errors += 1
        assert self._loop is not None
        self._refusals.refused(self._loop.time(), peer, direction, reason)

    def _count_quic_warning(self) -> None:
        self.quic_warnings += 1

    def _stray(self, addr: Any) -> None:
        """A 1-RTT packet for a connection we do not know: the sender still holds one to
        our previous life (we restarted on this address). QUIC would answer with a
        stateless reset, but its token died with that process; instead dial the sender,
        which then sends over our new connection (`_accepted_ready`), so it does not keep
        talking into the void until its own timers give up. At most once per sender every
        `_STRAY_REDIAL_INTERVAL` seconds."""
        assert self._loop is not None
        self._strays += 1
        try:
            peer = Address(str(addr[0]).split("%", 1)[0], int(addr[1]))
        except Exception:
            return
        now = self._loop.time()
        last = self._stray_dials.get(peer)
        if last is not None and now - last < _STRAY_REDIAL_INTERVAL:
            return
        current = self._by_peer.get(peer)
        if current is not None and current.is_client and not current.closing:
            return  # we already dialed it since: the sender switches once that completes
        if len(self._stray_dials) >= 1024:
            self._stray_dials.clear()
        self._stray_dials[peer] = now
        log.debug("quic packet from %s for a connection we do not know; dialing it", peer)
        if current is not None:
            self._forget_peer(current)
        self._connection_for(peer)

    def _accepted_ready(self, conn: _Connection) -> None:
        """An accepted connection finished (and passed) its handshake: the peer is alive
        on it now, so send over it, whatever older connection to that address we cached
        (after a peer restarts, the old one leads nowhere)."""
        reusable = self._verify_peer is False and (self._tls is None or self._tls.mutual)
        old = self._by_peer.get(conn.peer)
        if reusable and not conn.closing and old is not conn:
            self._by_peer[conn.peer] = conn
            if old is not None and (old.unheard or old.unconfirmed):
                self._replay(old, conn)

    def _forget_peer(self, conn: _Connection) -> None:
        if self._by_peer.get(conn.peer) is conn:
            del self._by_peer[conn.peer]

    def _cid_issued(self, conn: _Connection, cid: bytes) -> None:
        self._cids[cid] = conn

    def _cid_retired(self, conn: _Connection, cid: bytes) -> None:
        if self._cids.get(cid) is conn:
            del self._cids[cid]

    def _conn_terminated(self, conn: _Connection) -> None:
        for cid in [cid for cid, c in self._cids.items() if c is conn]:
            del self._cids[cid]
        self._forget_peer(conn)
        self._connections.discard(conn)

    def _accept(self, stream: QuicStream) -> None:
        self._stats.streams_accepted += 1
        assert self._loop is not None
        task = self._loop.create_task(self._run_stream_handler(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _literal(addr: AddressLike) -> Address:
    """``addr`` as an `Address`; ValueError unless its host is an IP literal."""
    try:
        ipaddress.ip_address(addr.host)
    except ValueError:
        raise ValueError(
            f"QuicTransport needs an IP literal host, got {addr.host!r}; resolve names with an "
            "AddressResolver first"
        ) from None
    return Address.of(addr)
