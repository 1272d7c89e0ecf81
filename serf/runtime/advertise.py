"""The address a node advertises, decided as Go memberlist and go-sockaddr decide it.

One rule for every facade and the agent (:func:`advertise_address`):

1. An explicit advertise address always wins, with the advertise port (the agent's
   ``-advertise host`` without a port means 7946, as Go's ``AddrParts``). It must be an IP
   literal (Go's ``net.ParseIP``); IPv6 literals may be bracketed.
2. A specific bind address is advertised as bound, with the port actually bound.
3. A wildcard bind (``0.0.0.0``, and also ``::`` where Go would advertise the unusable ``::``)
   advertises go-sockaddr's ``GetPrivateIP`` (:func:`private_ip`), with the bound port; no
   such address is an :class:`AdvertiseError` asking for an explicit address.

:func:`private_ip` is pure (a function of an :class:`~serf.runtime.interfaces.InterfaceTable`):
keep the addresses whose interface is up and that are forwardable (outside go-sockaddr's
forwarding blacklist), sort them stably by (on the default-route interface first, IPv4
before IPv6, larger network first), keep those inside go-sockaddr's RFC 6890 list, and take
the first. As in go-sockaddr v1.0.7, the default route only orders the candidates (with none,
any private address qualifies), the RFC 6890 list includes ``2001::/16``, and TEST-NET
addresses (192.0.2.0/24, ...) are never chosen because they are not forwardable. So a host
with 192.0.2.2/24 and fd00::2/64 on its default interface advertises ``fd00::2``, as Go serf
v0.11.0 does; the dual-stack socket that makes that work is in :mod:`serf.transport.net`.

Go sends an auto-detected IPv4 address in its 16-byte form on the wire; we send 4 bytes,
which every peer (Go included) reads as the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from serf.address import Address
from serf.runtime.interfaces import InterfaceAddress, InterfaceTable, read_interface_table

__all__ = [
    "AdvertiseError",
    "DEFAULT_PORT",
    "WILDCARD_HOSTS",
    "advertise_address",
    "interface_bind_host",
    "is_private",
    "is_forwardable",
    "parse_host_port",
    "private_ip",
]

#: the gossip port when an address names none (Go's ``DefaultBindPort``)
DEFAULT_PORT = 7946

#: bind hosts that mean "every interface"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*texts: str) -> tuple[_Net, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


# go-sockaddr v1.0.7 rfc.go, KnownRFCs()[6890] (2001::/16 is listed whole, as there)
_RFC6890 = _nets(
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
    "255.255.255.255/32", "::1/128", "::/128", "64:ff9b::/96", "::ffff:0:0/96", "100::/64",
    "2001::/16", "2002::/16", "fc00::/7", "fe80::/10",
)  # fmt: skip

# go-sockaddr v1.0.7 rfc.go, KnownRFCs()[ForwardingBlacklist]
_NOT_FORWARDABLE = _nets(
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "192.0.0.0/24", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "::1/128",
    "::/128", "::ffff:0:0/96", "2001:db8::/32", "2001:10::/28", "fe80::/10",
)  # fmt: skip


class AdvertiseError(ValueError):
    """No address to advertise could be decided; the message says what to set."""


def _within(ip: str, nets: tuple[_Net, ...]) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr.version == net.version and addr in net for net in nets)


def is_private(ip: str) -> bool:
    """Whether ``ip`` is in go-sockaddr's RFC 6890 list (its meaning of "private")."""
    return _within(ip, _RFC6890)


def is_forwardable(ip: str) -> bool:
    """Whether ``ip`` is outside go-sockaddr's forwarding blacklist."""
    return not _within(ip, _NOT_FORWARDABLE)


def private_ip(table: InterfaceTable) -> str | None:
    """go-sockaddr's ``GetPrivateIP`` over ``table``: the address to advertise, or None."""

    def order(item: tuple[int, InterfaceAddress]) -> tuple[int, int, int, int]:
        position, addr = item
        on_default = 0 if addr.interface == table.default_interface else 1
        version = ipaddress.ip_address(addr.ip).version
        return (on_default, version, addr.prefix_len, position)

    candidates = [
        (position, addr)
        for position, addr in enumerate(table.addresses)
        if addr.up and is_forwardable(addr.ip)
    ]
    for _, addr in sorted(candidates, key=order):
        if is_private(addr.ip):
            return str(ipaddress.ip_address(addr.ip))
    return None


def _ip_literal(text: str, what: str) -> str:
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise AdvertiseError(f"failed to parse {what} address {text!r}: not an IP") from None


def advertise_address(
    bind_host: str,
    bound_port: int,
    advertise_addr: str = "",
    advertise_port: int = DEFAULT_PORT,
    *,
    interfaces: Callable[[], InterfaceTable] = read_interface_table,
) -> Address:
    """The address to advertise for a node bound to ``bind_host:bound_port`` (see the module).

    ``advertise_addr``/``advertise_port`` are the configured values (empty: auto-detect; a
    port of 0 means the bound port). ``interfaces`` reads the interface table (only called for
    a wildcard bind). Raises :class:`AdvertiseError` when no address can be decided.
    """
    if advertise_addr:
        return Address(_ip_literal(advertise_addr, "advertise"), advertise_port or bound_port)
    if bind_host.strip("[]") not in WILDCARD_HOSTS:
        return Address(bind_host.strip("[]"), bound_port)
    try:
        table = interfaces()
    except OSError as exc:
        raise AdvertiseError(f"failed to get interface addresses: {exc}") from None
    ip = private_ip(table)
    if ip is None:
        raise AdvertiseError(
            "no private IP address found, and explicit IP not provided: "
            "set the advertise address (agent: -advertise)"
        )
    return Address(ip, bound_port)


def interface_bind_host(
    bind_host: str,
    interface: str,
    *,
    interfaces: Callable[[], InterfaceTable] = read_interface_table,
) -> str:
    """The bind host for the agent's ``-iface`` (Go's agent ``setupAgent``).

    A wildcard ``0.0.0.0`` bind becomes the interface's first address that is not link-local;
    a specific bind must be one of the interface's addresses. Raises :class:`AdvertiseError`
    with Go's messages otherwise.
    """
    try:
        table = interfaces()
    except OSError as exc:
        raise AdvertiseError(f"Failed to get interface addresses: {exc}") from None
    addrs = [a.ip for a in table.addresses if a.interface == interface]
    if not addrs:
        if table.names and interface not in table.names:
            raise AdvertiseError(f"Invalid network interface: no such interface {interface!r}")
        raise AdvertiseError(f"Interface '{interface}' has no addresses")
    if bind_host == "0.0.0.0":
        for ip in addrs:
            if not ipaddress.ip_address(ip).is_link_local:
                return ip
        raise AdvertiseError(f"Failed to find usable address for interface '{interface}'")
    if bind_host.strip("[]") not in addrs:
        raise AdvertiseError(f"Interface '{interface}' has no '{bind_host}' address")
    return bind_host.strip("[]")


def parse_host_port(text: str, what: str, default_port: int = DEFAULT_PORT) -> Address:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as an Address (Go's ``AddrParts``).

    A bare IPv6 literal without brackets is accepted too. Raises :class:`AdvertiseError`
    naming ``what`` on malformed input.
    """
    try:
        return Address.parse(text, default_port=default_port)
    except ValueError as exc:
        raise AdvertiseError(f"Invalid {what} address {text!r}: {exc}") from None
