"""TLS settings shared by the net transport's streams and QUIC peer authentication.

How this works: a `TlsConfig` names the cluster's CA (a PEM file or PEM text) and this
node's certificate and key (PEM files, PEM text, or `cryptography` objects). It builds the
two stdlib `ssl.SSLContext` objects the net transport needs (`server_context`,
`client_context`) and the `cryptography` objects QUIC needs (`load_certificate`,
`ca_pem`). ``mutual=True`` (the default) makes every connection prove both ends hold a
certificate from the CA; ``mutual=False`` is server-only TLS (the dialer checks the
listener, the listener accepts any dialer). ``server_name`` set makes the dialer also check
that name in the listener's certificate; unset, the CA chain alone decides (nodes are
dialed by IP, and cluster certificates rarely list every IP).

A refused peer (another CA, an expired certificate, none at all) is logged and counted by
the transport through a `RefusalLog`: one WARNING naming the peer and the reason, then the
same (peer, reason) again only after ``quiet_interval`` seconds (DEBUG in between), so a
misconfigured node retrying every second does not flood the log; the counters count every
refusal.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serf.address import Address

if TYPE_CHECKING:
    # imported where a context is built or a TLS error read: an agent without TLS never
    # loads ssl (and OpenSSL's libraries), docs/performance.md "Memory per agent"
    import ssl

__all__ = ["RefusalLog", "TlsConfig", "TlsConfigError"]

PemSource = str | bytes
"""PEM text (``str`` or ``bytes``)."""


class TlsConfigError(ValueError):
    """A `TlsConfig` that cannot work: missing or unreadable CA, certificate or key."""


def _pem_text(value: Any, what: str) -> bytes:
    """PEM bytes for PEM text or a `cryptography` certificate / private key object."""
    if isinstance(value, str):
        return value.encode("ascii")
    if isinstance(value, bytes):
        return value
    from cryptography.hazmat.primitives import serialization

    if hasattr(value, "public_bytes") and not hasattr(value, "private_bytes"):
        return bytes(value.public_bytes(serialization.Encoding.PEM))
    if hasattr(value, "private_bytes"):
        return bytes(
            value.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    raise TlsConfigError(f"{what} must be PEM text or a cryptography object, got {value!r}")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The cluster CA and this node's certificate, for authenticated transports.

    Give the CA as ``ca_file`` (a PEM file) or ``ca_pem`` (PEM text), and this node's
    certificate and key as ``cert_file`` / ``key_file`` or in memory as ``certificate`` /
    ``private_key`` (PEM text or `cryptography` objects; ``certificate`` may be a PEM
    chain, leaf first). Keys must not be encrypted. ``mutual`` (default True): listeners
    require a certificate from the CA too. ``server_name``: the name a dialer checks in the
    listener's certificate (None: the CA chain alone).
    """

    ca_file: str | None = None
    ca_pem: PemSource | None = None
    cert_file: str | None = None
    key_file: str | None = None
    certificate: Any = None
    private_key: Any = None
    mutual: bool = True
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.ca_file is None) == (self.ca_pem is None):
            raise TlsConfigError("TLS needs exactly one of ca_file / ca_pem (the cluster CA)")
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError("cert_file and key_file must be given together")
        if (self.certificate is None) != (self.private_key is None):
            raise TlsConfigError("certificate and private_key must be given together")
        if (self.cert_file is None) == (self.certificate is None):
            raise TlsConfigError(
                "TLS needs this node's certificate: cert_file/key_file or certificate/private_key"
            )
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise TlsConfigError(f"{name}: no such file {path!r}")

    @classmethod
    def from_files(
        cls,
        ca_file: str,
        cert_file: str,
        key_file: str,
        *,
        mutual: bool = True,
        server_name: str | None = None,
    ) -> TlsConfig:
        """The usual form: three PEM files (the agent's ``-tls-*-file`` flags)."""
        return cls(
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            mutual=mutual,
            server_name=server_name,
        )

    # -- stdlib ssl (net transport) -------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """The listener's context: presents our certificate; requires the dialer's when
        ``mutual``. TlsConfigError when a file or PEM text cannot be loaded."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load_chain(ctx)
        if self.mutual:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._load_ca(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """The dialer's context: checks the listener against the CA (and ``server_name``);
        presents our certificate (a mutual listener asks for it)."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = self.server_name is not None
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._load_ca(ctx)
        self._load_chain(ctx)
        return ctx

    def _load_ca(self, ctx: ssl.SSLContext) -> None:
        import ssl

        try:
            if self.ca_file is not None:
                ctx.load_verify_locations(cafile=self.ca_file)
            else:
                ctx.load_verify_locations(cadata=_pem_text(self.ca_pem, "ca_pem").decode())
        except (ssl.SSLError, OSError, UnicodeDecodeError) as exc:
            raise TlsConfigError(f"cannot load the TLS CA: {exc}") from exc

    def _load_chain(self, ctx: ssl.SSLContext) -> None:
        import ssl

        try:
            if self.cert_file is not None:
                assert self.key_file is not None
                ctx.load_cert_chain(self.cert_file, self.key_file)
                return
            # the stdlib loads chains from files only: a private directory, removed at once
            # (tempfile imported here: it brings shutil, bz2 and lzma into every agent)
            import tempfile

            with tempfile.TemporaryDirectory(prefix="serf-tls-") as tmp:
                cert = os.path.join(tmp, "cert.pem")
                key = os.path.join(tmp, "key.pem")
                for path, data in (
                    (cert, _pem_text(self.certificate, "certificate")),
                    (key, _pem_text(self.private_key, "private_key")),
                ):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        out.write(data)
                ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(f"cannot load this node's TLS certificate/key: {exc}") from exc

    # -- cryptography objects (QUIC) ------------------------------------------------------

    def load_certificate(self) -> tuple[Any, list[Any], Any]:
        """``(leaf, chain, key)`` as `cryptography` objects (for aioquic)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            if self.cert_file is not None:
                assert self.key_file is not None
                with open(self.cert_file, "rb") as f:
                    cert_pem = f.read()
                with open(self.key_file, "rb") as f:
                    key_pem = f.read()
            else:
                cert_pem = _pem_text(self.certificate, "certificate")
                key_pem = _pem_text(self.private_key, "private_key")
            certs = x509.load_pem_x509_certificates(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise TlsConfigError(f"cannot load this node's TLS certificate/key: {exc}") from exc
        return certs[0], certs[1:], key

    def ca_pem_bytes(self) -> bytes:
        """The CA certificate(s) as PEM bytes."""
        if self.ca_file is not None:
            try:
                with open(self.ca_file, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise TlsConfigError(f"cannot load the TLS CA: {exc}") from exc
        return _pem_text(self.ca_pem, "ca_pem")


def describe_tls_error(exc: BaseException) -> str:
    """A short reason for a failed handshake (``certificate has expired``, ...)."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    return str(exc) or type(exc).__name__


class RefusalLog:
    """Logs refused peers: WARNING for a new (peer host, reason), DEBUG for repeats within
    ``quiet_interval`` seconds. Counting is the caller's (its transport's stats)."""

    def __init__(self, logger: logging.Logger, quiet_interval: float = 60.0) -> None:
        self._log = logger
        self._quiet = quiet_interval
        self._last: dict[tuple[str, str], float] = {}

    def refused(self, now: float, peer: Address | None, direction: str, reason: str) -> None:
        """Log one refusal; ``direction`` is ``"inbound"`` or ``"outbound"``."""
        who = str(peer) if peer is not None else "unknown peer"
        key = (peer.host if peer is not None else "", direction + reason)
        last = self._last.get(key)
        level = logging.DEBUG if last is not None and now - last < self._quiet else logging.WARNING
        if level == logging.WARNING:
            if len(self._last) >= 1024:
                self._last.clear()
            self._last[key] = now
        self._log.log(level, "refused %s TLS peer %s: %s", direction, who, reason)
