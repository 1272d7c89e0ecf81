"""This host's interface addresses and default-route interface, read from the kernel.

How this works: on Linux :func:`read_interface_table` asks rtnetlink for every link (name,
index, flags) and every address (family, prefix length, link index), in the kernel's dump
order, the order Go's ``net.Interfaces`` / ``Interface.Addrs`` give; the default interface is
the first IPv4 route in ``/proc/net/route`` that has destination 0.0.0.0/0 and a gateway,
which is the line go-sockaddr looks for in ``ip route`` (``default via GW dev IF``). On other
systems a UDP ``connect`` towards a documentation address (no packet is sent) names the
source address of the default route, and that address is the whole table.

The decision made from the table is pure and lives in :mod:`serf.runtime.advertise`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from dataclasses import dataclass

__all__ = [
    "InterfaceAddress",
    "InterfaceTable",
    "default_interface_from_proc_route",
    "read_interface_table",
]

#: IFF_UP in the kernel's interface flags
IFF_UP = 0x1


@dataclass(frozen=True, slots=True)
class InterfaceAddress:
    """One address on one interface (go-sockaddr's ``IfAddr``)."""

    interface: str
    """The interface name, e.g. ``eth0``."""
    ip: str
    """The address as text, IPv6 without brackets or zone."""
    prefix_len: int
    """The network prefix length (``/24``)."""
    up: bool = True
    """Whether the interface is administratively up (``IFF_UP``)."""


@dataclass(frozen=True, slots=True)
class InterfaceTable:
    """Every interface address in enumeration order, and the default-route interface."""

    addresses: tuple[InterfaceAddress, ...]
    default_interface: str | None = None
    """The interface of the IPv4 default route (``None`` when there is none)."""
    names: tuple[str, ...] = ()
    """Every interface name, with or without addresses."""


# rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h)
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWADDR, _RTM_GETADDR = 16, 18, 20, 22
_IFLA_IFNAME = 3
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_NLMSG_HEADER = struct.Struct("=IHHII")
_RTATTR_HEADER = struct.Struct("=HH")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")


def read_interface_table() -> InterfaceTable:
    """This host's interface table (OSError when the kernel cannot be asked)."""
    if sys.platform.startswith("linux"):
        addresses, names = _netlink_addresses()
        return InterfaceTable(addresses, _proc_default_interface(), names)
    return _probe_table()


def _netlink_dump(sock: socket.socket, msg_type: int, body: bytes, seq: int) -> list[bytes]:
    """Send one dump request; the payloads of the answers, in order."""
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(body), msg_type, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0
    )
    sock.send(header + body)
    out: list[bytes] = []
    while True:
        data = sock.recv(65_536)
        if not data:
            raise OSError("rtnetlink closed the socket during a dump")
        offset = 0
        while offset + _NLMSG_HEADER.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSG_HEADER.unpack_from(data, offset)
            if length < _NLMSG_HEADER.size:
                raise OSError(f"bad rtnetlink message length {length}")
            payload = data[offset + _NLMSG_HEADER.size : offset + length]
            offset += (length + 3) & ~3
            if kind == _NLMSG_DONE:
                return out
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                if code:
                    raise OSError(-code, f"rtnetlink dump failed: {os.strerror(-code)}")
                continue
            out.append(payload)


def _attributes(payload: bytes, offset: int) -> dict[int, bytes]:
    """The route attributes after a fixed header (the first of each type wins)."""
    attrs: dict[int, bytes] = {}
    while offset + _RTATTR_HEADER.size <= len(payload):
        length, kind = _RTATTR_HEADER.unpack_from(payload, offset)
        if length < _RTATTR_HEADER.size:
            break
        attrs.setdefault(kind, payload[offset + _RTATTR_HEADER.size : offset + length])
        offset += (length + 3) & ~3
    return attrs


def _netlink_addresses() -> tuple[tuple[InterfaceAddress, ...], tuple[str, ...]]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        links: dict[int, tuple[str, bool]] = {}
        link_order: list[int] = []
        ifinfo = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        for payload in _netlink_dump(sock, _RTM_GETLINK, ifinfo, 1):
            if len(payload) < _IFINFOMSG.size:
                continue
            _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
            raw_name = _attributes(payload, _IFINFOMSG.size).get(_IFLA_IFNAME, b"")
            text = raw_name.split(b"\0", 1)[0].decode(errors="replace")
            links[index] = (text, bool(flags & IFF_UP))
            link_order.append(index)
        by_link: dict[int, list[InterfaceAddress]] = {index: [] for index in link_order}
        ifaddr = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        for payload in _netlink_dump(sock, _RTM_GETADDR, ifaddr, 2):
            if len(payload) < _IFADDRMSG.size:
                continue
            family, prefix_len, _flags, _scope, index = _IFADDRMSG.unpack_from(payload)
            if family not in (socket.AF_INET, socket.AF_INET6) or index not in links:
                continue
            attrs = _attributes(payload, _IFADDRMSG.size)
            raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
            if raw is None or len(raw) not in (4, 16):
                continue
            name, up = links[index]
            ip = str(ipaddress.ip_address(raw))
            by_link[index].append(InterfaceAddress(name, ip, prefix_len, up))
    addresses = tuple(addr for index in link_order for addr in by_link[index])
    return addresses, tuple(links[index][0] for index in link_order)


def _proc_default_interface() -> str | None:
    """The interface of the first IPv4 default route that has a gateway."""
    # thread-self: a thread that entered another network namespace (setns) reads its own
    for path in ("/proc/thread-self/net/route", "/proc/net/route"):
        try:
            with open(path, encoding="ascii", errors="replace") as file:
                lines = file.read().splitlines()[1:]
        except OSError:
            continue
        return default_interface_from_proc_route(lines)
    return None


def default_interface_from_proc_route(lines: list[str]) -> str | None:
    """Parse ``/proc/net/route`` rows (header removed): the first ``default via`` interface."""
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        name, destination, gateway, mask = fields[0], fields[1], fields[2], fields[7]
        if destination == "00000000" and mask == "00000000" and gateway != "00000000":
            return name
    return None


def _probe_table() -> InterfaceTable:
    """Outside Linux: the source address of the IPv4 default route, as a one-entry table."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # a UDP connect picks a route; no packet is sent
        ip = str(sock.getsockname()[0])
    return InterfaceTable((InterfaceAddress("default", ip, 32),), "default", ("default",))
