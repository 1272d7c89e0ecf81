"""Whether IPv4 multicast reaches from one local socket to another here (for the mDNS tests).

The mDNS tests skip only when this host cannot loop multicast back at all (no multicast route,
a sandbox without it), found by this probe, which does not use the code under test: a failing
discovery on a host where the probe succeeds is a failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import struct

__all__ = ["multicast_unavailable"]

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
