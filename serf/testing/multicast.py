"""Multicast for the mDNS tests: whether it loops back here, and a private LAN to run it on.

The mDNS tests skip only when this host cannot loop multicast back at all (no multicast route,
a sandbox without it), found by this probe, which does not use the code under test: a failing
discovery on a host where the probe succeeds is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
from collections.abc import Iterator

__all__ = ["multicast_unavailable", "private_lan"]

#: the mDNS group, on a port of our own: the probe never talks to a real responder
_GROUP = "224.0.0.251"


def multicast_unavailable(timeout: float = 2.0) -> str | None:
    """None when a datagram sent to the mDNS group comes back to a local member socket; else
    why not. The probe's datagrams have TTL 0: they never leave this host."""
    token = os.urandom(16)
    try:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as recv,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as send,
        ):
            recv.bind(("", 0))
            port = recv.getsockname()[1]
            membership = struct.pack("4s4s", socket.inet_aton(_GROUP), socket.inet_aton("0.0.0.0"))
            recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            recv.settimeout(timeout)
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            send.sendto(token, (_GROUP, port))
            while True:
                data, _ = recv.recvfrom(64)
                if data == token:
                    return None
    except TimeoutError:
        return f"a multicast datagram to {_GROUP} did not loop back within {timeout}s"
    except OSError as exc:
        return f"no IPv4 multicast here ({exc})"


@contextlib.contextmanager
def private_lan(address: str = "10.199.0.1/24") -> Iterator[str]:
    """A network namespace of its own with one multicast-capable link (a veth pair whose both
    ends stay inside), its address and a default route; yields the namespace's name.

    mDNS sends to 224.0.0.251 and ff02::fb on every multicast interface; run inside this
    namespace (``serf.testing.netbed.in_namespace``) it reaches only the processes started
    there, never a real network. Needs root (``netbed_or_skip`` first)."""
    name = f"pyserf-mdns-{os.getpid()}"
    script = (
        "ip link set lo up && ip link add mdns0 type veth peer name mdns1 && "
        f"ip addr add {address} dev mdns0 && ip link set mdns1 up && ip link set mdns0 up && "
        "ip route add default dev mdns0"
    )
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", name], capture_output=True, check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, "sh", "-c", script], capture_output=True, check=True
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
