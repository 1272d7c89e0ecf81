"""Node addresses: a (host, port) value, pure (no sockets), shared by every layer.

The transports re-export :class:`Address`; the sans-IO cores use it too. A user may bring their
own address type: anything with ``host`` and ``port`` (:class:`AddressLike`) is accepted where
an address goes in, and :meth:`Address.of` converts it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Address", "AddressLike", "ip_to_bytes", "bytes_to_ip", "normalize_ip"]


@runtime_checkable
class AddressLike(Protocol):
    """Anything with a host (an IP literal for the transports) and a port."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Address:
    """A (host, port) pair. ``str()`` gives ``host:port`` (``[v6]:port``), which `parse` reads."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65_535:
            raise ValueError(f"port must be an int in 0..65535, got {self.port!r}")
        if not self.host:
            raise ValueError("host must not be empty")

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> Address:
        """Parse ``host:port``, ``[v6]:port``, or a bare host/IPv6 literal with ``default_port``.

        Raises ValueError on malformed input.
        """
        text = text.strip()
        port_text: str | None
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise ValueError(f"unclosed '[' in address {text!r}")
            host, rest = text[1:end], text[end + 1 :]
            if rest == "":
                port_text = None
            elif rest.startswith(":"):
                port_text = rest[1:]
            else:
                raise ValueError(f"unexpected {rest!r} after ']' in address {text!r}")
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        else:  # a bare host, or a bare IPv6 literal (no port)
            host, port_text = text, None
        if port_text is None:
            if default_port is None:
                raise ValueError(f"address {text!r} has no port and no default port was given")
            port = default_port
        else:
            if not port_text.isdigit():
                raise ValueError(f"bad port {port_text!r} in address {text!r}")
            port = int(port_text)
        return cls(host, port)

    @classmethod
    def of(cls, addr: AddressLike) -> Address:
        """Convert any `AddressLike` to an `Address` (returns ``addr`` itself if it is one)."""
        if isinstance(addr, Address):
            return addr
        return cls(addr.host, addr.port)

    @classmethod
    def from_ip(cls, ip: bytes | None, port: int) -> Address:
        """From a wire IP (4 or 16 bytes; IPv4-mapped IPv6 becomes IPv4). ValueError if bad."""
        return cls(bytes_to_ip(ip), port)

    def ip_bytes(self) -> bytes:
        """The host as 4 or 16 wire bytes (ValueError when the host is not an IP literal)."""
        return ip_to_bytes(self.host)

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def ip_to_bytes(host: str) -> bytes:
    """An IP literal as 4 (IPv4) or 16 (IPv6) bytes."""
    return ipaddress.ip_address(host).packed


def bytes_to_ip(ip: bytes | None) -> str:
    """Wire IP bytes as text; an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) becomes IPv4."""
    if ip is None or len(ip) not in (4, 16):
        raise ValueError(f"an IP address is 4 or 16 bytes, got {ip!r}")
    addr = ipaddress.ip_address(bytes(ip))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def normalize_ip(ip: bytes) -> bytes:
    """IPv4-mapped 16-byte addresses to 4 bytes, so addresses compare as Go's net.IP.Equal."""
    if len(ip) == 16 and ip[:12] == b"\x00" * 10 + b"\xff\xff":
        return bytes(ip[12:])
    return bytes(ip)
