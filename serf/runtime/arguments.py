"""Argument checks of the Serf facade: bad input gets a clear error before anything runs.

Each check raises TypeError (wrong kind of value) or ValueError (a value that cannot work),
naming the argument, as design principle 6 asks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from serf.address import Address
from serf.config import MemberlistConfig, SerfConfig
from serf.core.filters import compile_go
from serf.wire.keyring import Keyring

__all__ = [
    "check_create_arguments",
    "check_transport_matches_bind",
    "is_ip",
    "payload_bytes",
    "query_filter_tags",
]


def payload_bytes(value: object, what: str = "payload") -> bytes:
    """``value`` as bytes; TypeError for anything else (a str must be encoded first)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    hint = " (encode a str first, e.g. text.encode())" if isinstance(value, str) else ""
    raise TypeError(f"{what} must be bytes, got {type(value).__name__}{hint}")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_create_arguments(config: object, transport: object, keyring: object) -> None:
    """TypeError for arguments of the wrong kind (before anything is bound)."""
    if not isinstance(config, SerfConfig):
        raise TypeError(f"config must be a SerfConfig, got {type(config).__name__}")
    if keyring is not None and not isinstance(keyring, Keyring):
        raise TypeError(
            f"keyring must be a serf.Keyring or None, got {type(keyring).__name__}"
            " (for a key, use Keyring([key]) or SerfConfig.memberlist's secret_key)"
        )
    if transport is not None and not callable(getattr(transport, "start", None)):
        raise TypeError(f"transport must be a Transport, got {type(transport).__name__}")


def check_transport_matches_bind(ml: MemberlistConfig, bound: Address) -> None:
    """ValueError when a config that names a bind address disagrees with ``transport=``.

    Left at their defaults (``0.0.0.0:7946``), ``bind_addr``/``bind_port`` defer to the
    transport; set to anything else, they must match the address the transport bound
    (port 0 matches any port).
    """
    default = MemberlistConfig(name=ml.name)
    if (ml.bind_addr, ml.bind_port) == (default.bind_addr, default.bind_port):
        return
    host_ok = ml.bind_addr in ("0.0.0.0", "::") or ml.bind_addr == bound.host
    port_ok = ml.bind_port in (0, bound.port)
    if not (host_ok and port_ok):
        raise ValueError(
            f"transport= is bound to {bound} but memberlist.bind_addr/bind_port say "
            f"{Address(ml.bind_addr, ml.bind_port)}: leave them at their defaults when "
            "passing a transport, or make them agree"
        )


def query_filter_tags(filter_tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The tag filters, sorted; ValueError naming the tag whose pattern does not compile."""
    out = tuple(sorted((filter_tags or {}).items()))
    for tag, pattern in out:
        try:
            compile_go(pattern)
        except ValueError as exc:
            raise ValueError(f"filter_tags[{tag!r}]: {exc}") from None
    return out
