"""Test certificates: a cluster CA and node certificates made in memory with `cryptography`.

How this works: `TestCA` makes a P-256 CA; `TestCA.issue` signs a node certificate for a
name and IP addresses, optionally already expired; `TestCA.tls` gives a ready
`~serf.transport.tls.TlsConfig` (in memory) for one node, and `TestCA.write` the three PEM
files the agent's ``-tls-*-file`` flags read. Key generation is cheap (P-256), so each test
makes its own CA: another CA is simply another `TestCA`.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serf.transport.tls import TlsConfig

__all__ = ["IssuedCertificate", "TestCA"]

_DEFAULT_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A node certificate and its key, signed by a `TestCA`."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class TestCA:
    """A throwaway certificate authority for one test (``name`` is its common name)."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "serf test CA") -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        """The CA certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        name: str = "serf",
        ips: tuple[str, ...] = _DEFAULT_IPS,
        *,
        expired: bool = False,
    ) -> IssuedCertificate:
        """A node certificate for DNS ``name`` and ``ips``; ``expired``: it ended yesterday."""
        now = datetime.datetime.now(datetime.UTC)
        if expired:
            start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
        else:
            start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = [x509.DNSName(name)]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCertificate(cert, key)

    def tls(
        self,
        name: str = "serf",
        *,
        expired: bool = False,
        mutual: bool = True,
        server_name: str | None = None,
    ) -> TlsConfig:
        """An in-memory `TlsConfig` for one node: this CA plus a fresh node certificate."""
        issued = self.issue(name, expired=expired)
        return TlsConfig(
            ca_pem=self.pem(),
            certificate=issued.certificate,
            private_key=issued.private_key,
            mutual=mutual,
            server_name=server_name,
        )

    def write(self, directory: Path, name: str = "serf") -> tuple[Path, Path, Path]:
        """Write ``ca.pem``, ``<name>.pem`` and ``<name>-key.pem`` into ``directory``;
        returns the three paths (CA, certificate, key)."""
        issued = self.issue(name)
        ca, cert, key = (
            directory / "ca.pem",
            directory / f"{name}.pem",
            directory / f"{name}-key.pem",
        )
        ca.write_bytes(self.pem())
        cert.write_bytes(issued.cert_pem())
        key.write_bytes(issued.key_pem())
        key.chmod(0o600)
        return ca, cert, key
