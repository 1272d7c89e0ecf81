"""The serf core's event delivery chain (reference 3.9, 3.10).

:class:`Delivery` owns the snapshot recorder and the two coalescers. Every member and user
event goes through the reference's chain: snapshot recorder -> (internal queries are answered
before they get here) -> user coalescer -> member coalescer -> effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from serf.core import io as sio
from serf.core.coalesce import (
    MemberEvent,
    MemberEventCoalescer,
    UserEventCoalescer,
    UserEventRecord,
)
from serf.core.services import Services
from serf.core.state import MemberRecord

if TYPE_CHECKING:  # imported when a snapshot is configured (memory per agent)
    from serf.core.snapshot import SnapshotRecorder, SnapshotState

__all__ = ["Delivery", "MEMBER_EFFECTS", "member_event_type"]

#: a member event type -> its effect
MEMBER_EFFECTS: dict[str, Callable[[tuple[sio.SerfMember, ...]], sio.MemberEffect]] = {
    "member-join": sio.MemberJoined,
    "member-leave": sio.MemberLeft,
    "member-failed": sio.MemberFailed,
    "member-update": sio.MemberUpdated,
    "member-reap": sio.MemberReaped,
}
_MEMBER_EVENT_TYPES: dict[object, str] = {effect: name for name, effect in MEMBER_EFFECTS.items()}


def member_event_type(event: object) -> str | None:
    """``member-join`` ... ``member-reap`` for a member event (the ``SERF_EVENT`` of its
    handlers, the ``Event`` of an RPC stream record), else None."""
    return _MEMBER_EVENT_TYPES.get(type(event))


class Delivery:
    """Snapshot recording and coalescing of one core's events (see the module comment)."""

    def __init__(self, services: Services, snapshot: SnapshotState | None) -> None:
        self._s = services
        config = services.config
        self.recorder: SnapshotRecorder | None = None
        if config.snapshot_path:
            from serf.core.snapshot import SnapshotRecorder

            # resume counting at the file's size (as Go), so a large file compacts at once
            self.recorder = SnapshotRecorder(
                snapshot,
                rejoin_after_leave=config.rejoin_after_leave,
                offset=snapshot.size if snapshot is not None else 0,
            )
        self.member_coalescer: MemberEventCoalescer | None = None
        if config.coalesce_period > 0 and config.quiescent_period > 0:
            self.member_coalescer = MemberEventCoalescer(
                config.coalesce_period, config.quiescent_period
            )
        self.user_coalescer: UserEventCoalescer | None = None
        if config.user_coalesce_period > 0 and config.user_quiescent_period > 0:
            self.user_coalescer = UserEventCoalescer(
                config.user_coalesce_period, config.user_quiescent_period
            )

    def next_deadline(self) -> float | None:
        """The earliest coalescer deadline (None: nothing held)."""
        best = None
        for d in (
            self.member_coalescer.next_deadline() if self.member_coalescer else None,
            self.user_coalescer.next_deadline() if self.user_coalescer else None,
        ):
            if d is not None and (best is None or d < best):
                best = d
        return best

    def lines(self, lines: list[str]) -> None:
        """Snapshot lines out, then a compaction when the file grew past the threshold."""
        if lines:
            self._s.emit(sio.SnapshotLines(tuple(lines)))
            rec = self.recorder
            if rec is not None and rec.needs_compaction():
                self._s.emit(sio.SnapshotCompact(rec.compact()))

    def member_event(self, etype: str, members: list[MemberRecord]) -> None:
        """A member event (``member-join`` ...) about ``members``."""
        snaps = tuple(m.snapshot() for m in members)
        s = self._s
        if self.recorder is not None:
            self.lines(self.recorder.record_member_event(etype, snaps, s.clock.time()))
        if self.member_coalescer is not None and self.member_coalescer.handle(
            MemberEvent(etype, snaps), s.now
        ):
            return
        s.emit(MEMBER_EFFECTS[etype](snaps))

    def user_event(self, ltime: int, name: str, payload: bytes, cc: bool) -> None:
        """A user event for the application."""
        if self.recorder is not None:
            self.lines(self.recorder.record_user_event(ltime))
        rec = UserEventRecord(ltime, name, payload, cc)
        if self.user_coalescer is not None and self.user_coalescer.handle(rec, self._s.now):
            return
        self._s.emit(sio.UserEventReceived(ltime, name, payload, cc))

    def query(self, ltime: int) -> None:
        """A query arrived (its time goes to the snapshot)."""
        if self.recorder is not None:
            self.lines(self.recorder.record_query(ltime))

    def leave(self) -> None:
        """We are leaving (the snapshot says so)."""
        if self.recorder is not None:
            self.lines(self.recorder.leave())

    def sample_clock(self) -> None:
        """The member clock to the snapshot (periodically and at shutdown)."""
        if self.recorder is not None:
            self.lines(self.recorder.sample_clock(self._s.clock.time()))

    def flush(self, force: bool) -> None:
        """Deliver what the coalescers hold: what is due, or (``force``) everything."""
        s = self._s
        now = s.now
        uc = self.user_coalescer
        if uc is not None:
            for rec in uc.flush(now) if force else uc.flush_due(now):
                s.emit(sio.UserEventReceived(rec.ltime, rec.name, rec.payload, rec.coalesce))
        mc = self.member_coalescer
        if mc is not None:
            for ev in mc.flush(now) if force else mc.flush_due(now):
                members = tuple(m for m in ev.members if isinstance(m, sio.SerfMember))
                s.emit(MEMBER_EFFECTS[ev.type](members))
