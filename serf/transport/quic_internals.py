"""Every use of aioquic's private API, in one place (the QUIC transport calls only these).

How this works: aioquic's public API lacks a few things the QUIC transport needs: a server
that asks for a client certificate (aioquic's TLS code can, behind the private flag
``Context._request_client_certificate``, see aiortc/aioquic#541), the peer's certificate
after the handshake, how much of a stream is unacknowledged, whether a close is pending,
the protocol's timer and the connection-ID callbacks its own server sets. Each is one small
function here. `self_check` exercises all of them on a real in-memory handshake and raises
`AioquicInternalsChanged` naming what moved; the test suite runs it
(tests/transport/test_quic_internals.py), so an aioquic upgrade that breaks one fails
loudly there instead of quietly weakening authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aioquic._buffer import Buffer  # aioquic.buffer re-exports it without __all__
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionAdapter, QuicConnectionState
from aioquic.tls import verify_certificate

__all__ = [
    "AioquicInternalsChanged",
    "Buffer",
    "ClientCertificateQuicConnection",
    "cancel_protocol_timer",
    "clear_transmit_task",
    "close_pending",
    "is_closed",
    "peer_certificate",
    "pending_datagrams",
    "quiet_logger",
    "self_check",
    "set_connection_handlers",
    "stream_exists",
    "transmit_soon",
    "unacked_bytes",
    "unanswered_probes",
    "verify_peer_certificate",
]

_CLOSED_STATES = (
    QuicConnectionState.CLOSING,
    QuicConnectionState.DRAINING,
    QuicConnectionState.TERMINATED,
)


class AioquicInternalsChanged(RuntimeError):
    """An aioquic upgrade moved a private attribute the QUIC transport relies on."""


class ClientCertificateQuicConnection(QuicConnection):
    """A server-side QuicConnection whose TLS asks the client for a certificate.

    aioquic never checks that certificate itself (nor insists on one): the transport checks
    it at ``HandshakeCompleted`` with `verify_peer_certificate` before any stream or datagram
    of the connection is delivered.
    """

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        if not hasattr(self.tls, "_request_client_certificate"):
            raise AioquicInternalsChanged("aioquic tls.Context has no _request_client_certificate")
        self.tls._request_client_certificate = True


class _QuietAdapter(QuicConnectionAdapter):
    """aioquic's per-connection log lines, all at DEBUG; WARNING and above are counted."""

    def __init__(self, logger: logging.Logger, cid: str, on_warning: Callable[[], None]):
        super().__init__(logger, {"id": cid})
        self._on_warning = on_warning

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            self._on_warning()
        super().log(logging.DEBUG, msg, *args, **kwargs)


def quiet_logger(
    quic: QuicConnection, logger: logging.Logger, on_warning: Callable[[], None]
) -> None:
    """Route ``quic``'s own log lines (aioquic logs a WARNING for every failed handshake or
    broken peer) to ``logger`` at DEBUG, calling ``on_warning`` for each WARNING or worse.
    Call before the connection's TLS context exists (before connect / the first datagram)."""
    quic._logger = _QuietAdapter(logger, quic.host_cid.hex(), on_warning)


def peer_certificate(quic: QuicConnection) -> tuple[Any, list[Any]]:
    """``(certificate or None, chain)`` the peer presented in the handshake."""
    tls = quic.tls
    return tls._peer_certificate, list(tls._peer_certificate_chain)


def verify_peer_certificate(
    quic: QuicConnection, ca_pem: bytes, server_name: str | None
) -> str | None:
    """None when the peer's certificate chains to ``ca_pem`` (and matches ``server_name``
    if given) and is in its validity period; otherwise why not."""
    certificate, chain = peer_certificate(quic)
    if certificate is None:
        return "no certificate"
    try:
        verify_certificate(
            certificate=certificate, chain=chain, server_name=server_name, cadata=ca_pem
        )
    except Exception as exc:  # aioquic's Alert* with OpenSSL's text
        return str(exc) or type(exc).__name__
    return None


def unacked_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to ``stream_id`` and not yet acknowledged (0 for an unknown stream)."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    return int(sender._buffer_stop) - int(sender._buffer_start)


def unanswered_probes(quic: QuicConnection) -> int:
    """Probe timeouts in a row with nothing acknowledged (0 once the peer answers)."""
    return int(quic._loss._pto_count)


def stream_exists(quic: QuicConnection, stream_id: int) -> bool:
    """Whether aioquic still tracks ``stream_id``."""
    return stream_id in quic._streams


def pending_datagrams(quic: QuicConnection) -> int:
    """DATAGRAM frames queued and not yet sent."""
    return len(quic._datagrams_pending)


def close_pending(quic: QuicConnection) -> bool:
    """Whether `QuicConnection.close` was called and the CONNECTION_CLOSE is not yet out."""
    return bool(quic._close_pending)


def is_closed(quic: QuicConnection) -> bool:
    """Whether the connection is closing, draining or over (the peer may have closed it)."""
    return quic._state in _CLOSED_STATES


def cancel_protocol_timer(protocol: Any) -> None:
    """Cancel a QuicConnectionProtocol's pending timer."""
    if protocol._timer is not None:
        protocol._timer.cancel()
        protocol._timer = None


def clear_transmit_task(protocol: Any) -> None:
    """Forget a QuicConnectionProtocol's scheduled transmit (it must not run again)."""
    protocol._transmit_task = None


def transmit_soon(protocol: Any) -> None:
    """Schedule a QuicConnectionProtocol's transmit on the next loop turn."""
    protocol._transmit_soon()


def set_connection_handlers(
    protocol: Any,
    issued: Callable[[bytes], None],
    retired: Callable[[bytes], None],
    terminated: Callable[[], None],
) -> None:
    """The connection-ID and termination callbacks aioquic's own QuicServer sets."""
    protocol._connection_id_issued_handler = issued
    protocol._connection_id_retired_handler = retired
    protocol._connection_terminated_handler = terminated


def _pump(client: QuicConnection, server: QuicConnection, now: float) -> None:
    for _ in range(10):
        moved = False
        for src, dst, addr in ((client, server, ("1.2.3.4", 1)), (server, client, ("1.2.3.5", 1))):
            for data, _addr in src.datagrams_to_send(now=now):
                dst.receive_datagram(data, addr, now=now)
                moved = True
        if not moved:
            return


def _handshake(client_config: QuicConfiguration, server_config: QuicConfiguration) -> Any:
    """A client and a client-certificate server connection, handshaken in memory."""
    from aioquic.quic.packet import pull_quic_header

    client = QuicConnection(configuration=client_config)
    client.connect(("1.2.3.5", 1), now=0.0)
    first = client.datagrams_to_send(now=0.0)
    header = pull_quic_header(Buffer(data=first[0][0]), host_cid_length=8)
    server = ClientCertificateQuicConnection(
        configuration=server_config, original_destination_connection_id=header.destination_cid
    )
    for data, _addr in first:
        server.receive_datagram(data, ("1.2.3.4", 1), now=0.0)
    _pump(client, server, 0.0)
    return client, server


def self_check(
    client_config: QuicConfiguration, server_config: QuicConfiguration, ca_pem: bytes
) -> None:
    """Run a handshake between two in-memory connections (the client presenting its
    certificate) and check every function above; AioquicInternalsChanged names what moved.
    ``client_config`` and ``server_config`` must hold certificates signed by ``ca_pem``."""
    try:
        client, server = _handshake(client_config, server_config)
        warnings: list[int] = []
        quiet_logger(
            client, logging.getLogger("serf.transport.quic.aioquic"), lambda: warnings.append(1)
        )
        client._logger.warning("probe")
        if warnings != [1]:
            raise AioquicInternalsChanged("the per-connection logger is no longer _logger")
        if not server.tls._request_client_certificate:
            raise AioquicInternalsChanged("the client-certificate flag did not stick")
        cert, _chain = peer_certificate(server)
        if cert is None:
            raise AioquicInternalsChanged("the server saw no client certificate")
        reason = verify_peer_certificate(server, ca_pem, None)
        if reason is not None:
            raise AioquicInternalsChanged(f"client certificate not verified: {reason}")
        if verify_peer_certificate(client, ca_pem, None) is not None:
            raise AioquicInternalsChanged("server certificate not verified")
        stream_id = client.get_next_available_stream_id()
        client.send_stream_data(stream_id, b"x" * 10, end_stream=False)
        if not stream_exists(client, stream_id) or unacked_bytes(client, stream_id) != 10:
            raise AioquicInternalsChanged("stream send buffer bookkeeping moved")
        client.send_datagram_frame(b"d")
        if pending_datagrams(client) != 1:
            raise AioquicInternalsChanged("pending datagram queue moved")
        if close_pending(client) or is_closed(client):
            raise AioquicInternalsChanged("close state reads wrong on an open connection")
        if unanswered_probes(client) != 0:
            raise AioquicInternalsChanged("probe timeout count reads wrong")
        client.close()
        if not close_pending(client):
            raise AioquicInternalsChanged("close_pending did not follow close()")
    except AioquicInternalsChanged:
        raise
    except (AttributeError, KeyError, TypeError) as exc:
        raise AioquicInternalsChanged(f"aioquic internals moved: {exc!r}") from exc
