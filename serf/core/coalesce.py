"""Event coalescing, sans-IO: Go serf's ``coalesceLoop`` with its timers as deadlines.

How this works (reference section 3.9): a coalescer sits between serf and the user's event
stream. ``handle(event, now)`` returns False for an event it does not coalesce (the driver
passes it straight on) and True after absorbing one. The first absorbed event of a round
arms the quantum deadline (``now + coalesce_period``); every absorbed event re-arms the
quiescence deadline (``now + quiescent_period``). When the earlier of the two passes,
``flush_due(now)`` returns the merged events and disarms both; ``flush(now)`` forces a
flush (shutdown). The driver should call ``flush_due(now)`` before ``handle`` when a
deadline has passed, as Go's select would have fired the timer first.

Member coalescer: keeps the latest event type (and member data) per member name; at a flush
it drops members whose type equals the last type *sent* for them (unless it is an update)
and groups the rest into one ``MemberEvent`` per type. As in Go, the latest-event table is
never cleared, so a member whose latest event is an update is sent again at every later
flush (reproduced on purpose). Newer Go serf (``nodeEvent.Equal``) instead drops an update
whose member data equals the last one sent; ``dedupe_updates=True`` selects that behaviour
(member objects are compared with ``==``). Output order is deterministic here (first-seen
order) where Go iterates maps in random order.

User coalescer: handles only ``UserEventRecord`` with ``coalesce=True``; per event name it
keeps the events with the highest LTime (all of them on a tie) and clears its table at a
flush.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "MEMBER_EVENT_TYPES",
    "MemberEvent",
    "MemberEventCoalescer",
    "NamedMember",
    "UserEventCoalescer",
    "UserEventRecord",
]

#: Event type names that the member coalescer handles (Go's ``EventType.String()``).
MEMBER_EVENT_TYPES = frozenset(
    {"member-join", "member-leave", "member-failed", "member-update", "member-reap"}
)
_UPDATE = "member-update"


class NamedMember(Protocol):
    """What the coalescer needs of a member: its name."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """A member event: a type name (``member-join``, ...) and the members it concerns."""

    type: str
    members: tuple[NamedMember, ...]


@dataclass(frozen=True, slots=True)
class UserEventRecord:
    """A user event as delivered to the user: Lamport time, name, payload, coalescable."""

    ltime: int
    name: str
    payload: bytes
    coalesce: bool


class _Timers:
    """The quantum and quiescence deadlines of ``coalesceLoop``."""

    __slots__ = ("coalesce_period", "quantum", "quiescent", "quiescent_period")

    def __init__(self, coalesce_period: float, quiescent_period: float) -> None:
        if not coalesce_period > 0:
            raise ValueError(f"coalesce_period must be > 0, got {coalesce_period}")
        if not quiescent_period > 0:
            raise ValueError(f"quiescent_period must be > 0, got {quiescent_period}")
        self.coalesce_period = coalesce_period
        self.quiescent_period = quiescent_period
        self.quantum: float | None = None
        self.quiescent: float | None = None

    def absorbed(self, now: float) -> None:
        if self.quantum is None:
            self.quantum = now + self.coalesce_period
        self.quiescent = now + self.quiescent_period

    def next_deadline(self) -> float | None:
        if self.quantum is None or self.quiescent is None:
            return self.quantum if self.quantum is not None else self.quiescent
        return min(self.quantum, self.quiescent)

    def clear(self) -> None:
        self.quantum = None
        self.quiescent = None


class MemberEventCoalescer:
    """Merges member events per member name (reference section 3.9)."""

    def __init__(
        self, coalesce_period: float, quiescent_period: float, *, dedupe_updates: bool = False
    ) -> None:
        """Periods in seconds: the longest a round may last, and the quiet time that ends it.

        ``dedupe_updates`` False (default) is the documented quirk of reference 3.9;
        True follows newer Go serf, which re-sends an update only if the member changed.
        """
        self._timers = _Timers(coalesce_period, quiescent_period)
        self._dedupe_updates = dedupe_updates
        self._latest: dict[str, tuple[str, NamedMember]] = {}
        self._last_sent: dict[str, tuple[str, NamedMember]] = {}

    def handle(self, event: object, now: float) -> bool:
        """Absorb ``event`` if it is a member event (True); otherwise False (pass through)."""
        if not isinstance(event, MemberEvent) or event.type not in MEMBER_EVENT_TYPES:
            return False
        self._timers.absorbed(now)
        for member in event.members:
            self._latest[member.name] = (event.type, member)
        return True

    def next_deadline(self) -> float | None:
        """When ``flush_due`` next has work, or None when no round is open."""
        return self._timers.next_deadline()

    def flush_due(self, now: float) -> list[MemberEvent]:
        """Flush if a deadline has passed at ``now``; else nothing."""
        deadline = self._timers.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self.flush(now)

    def flush(self, now: float) -> list[MemberEvent]:
        """Flush now, whatever the deadlines (shutdown); disarms both timers.

        Note the Go quirk: even with nothing absorbed since the last flush, members whose
        latest event is an update are emitted again.
        """
        del now  # part of the uniform coalescer API; the flush itself needs no time
        self._timers.clear()
        grouped: dict[str, list[NamedMember]] = {}
        for name, (etype, member) in self._latest.items():
            if self._already_sent(name, etype, member):
                continue
            self._last_sent[name] = (etype, member)
            grouped.setdefault(etype, []).append(member)
        return [MemberEvent(etype, tuple(members)) for etype, members in grouped.items()]

    def _already_sent(self, name: str, etype: str, member: NamedMember) -> bool:
        last = self._last_sent.get(name)
        if last is None or last[0] != etype:
            return False
        if etype != _UPDATE:
            return True
        return self._dedupe_updates and last[1] == member


class UserEventCoalescer:
    """Keeps only the newest user events per name (reference section 3.9)."""

    def __init__(self, coalesce_period: float, quiescent_period: float) -> None:
        """Periods in seconds: the longest a round may last, and the quiet time that ends it."""
        self._timers = _Timers(coalesce_period, quiescent_period)
        self._latest: dict[str, tuple[int, list[UserEventRecord]]] = {}

    def handle(self, event: object, now: float) -> bool:
        """Absorb a coalescable user event (True); anything else passes through (False)."""
        if not isinstance(event, UserEventRecord) or not event.coalesce:
            return False
        self._timers.absorbed(now)
        latest = self._latest.get(event.name)
        if latest is None or latest[0] < event.ltime:
            self._latest[event.name] = (event.ltime, [event])
        elif latest[0] == event.ltime:
            latest[1].append(event)
        return True

    def next_deadline(self) -> float | None:
        """When ``flush_due`` next has work, or None when no round is open."""
        return self._timers.next_deadline()

    def flush_due(self, now: float) -> list[UserEventRecord]:
        """Flush if a deadline has passed at ``now``; else nothing."""
        deadline = self._timers.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self.flush(now)

    def flush(self, now: float) -> list[UserEventRecord]:
        """Flush now, whatever the deadlines (shutdown); disarms timers, clears the table."""
        del now
        self._timers.clear()
        out = [event for _, events in self._latest.values() for event in events]
        self._latest = {}
        return out
