"""Plain records shared by the serf core modules: the node state and a member's record.

:class:`SerfState` is re-exported by :mod:`serf.core.serf`, where it has always lived.
"""

from __future__ import annotations

from enum import IntEnum

from serf.core import io as sio

__all__ = ["MemberRecord", "SerfState"]


class SerfState(IntEnum):
    """Go's ``SerfState``."""

    ALIVE = 0
    LEAVING = 1
    LEFT = 2
    SHUTDOWN = 3


class MemberRecord:
    """One serf member's mutable record (Go's ``memberState``)."""

    __slots__ = ("addr", "leave_time", "name", "port", "status", "status_ltime", "tags", "vsn")

    def __init__(self, name: str, addr: bytes, port: int) -> None:
        self.name = name
        self.addr = addr
        self.port = port
        self.tags: dict[str, str] = {}
        self.status = sio.MemberStatus.NONE
        self.status_ltime = 0
        self.leave_time = 0.0
        self.vsn = b""

    def snapshot(self) -> sio.SerfMember:
        v = self.vsn if len(self.vsn) >= 6 else b"\x00" * 6
        return sio.SerfMember(self.name, self.addr, self.port, dict(self.tags), self.status, *v[:6])
