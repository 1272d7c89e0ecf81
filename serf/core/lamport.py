"""Lamport clocks, as serf keeps three of them (member, user-event and query clocks).

How this works: a clock is a single unsigned 64-bit counter. ``increment()`` adds one and
returns the new value; ``witness(v)`` moves the counter to ``v + 1`` when ``v`` is at least
the current value, so that anything we stamp afterwards orders after what we have seen.
Arithmetic wraps modulo 2**64 exactly as Go's ``uint64`` does (serf ``serf/lamport.go``,
reference section 3.3). The core is single-threaded, so no compare-and-swap loop is needed.

:class:`LamportRing` is the duplicate filter serf puts in front of user events and queries
(Go's ``eventBuffer`` / ``queryBuffer``): ``size`` slots indexed by ``ltime % size``, each
remembering the keys seen at one Lamport time; a time older than ``current - size`` is too
old to judge and is refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["UINT64_MAX", "LamportClock", "LamportRing"]

K = TypeVar("K", bound=Hashable)

UINT64_MAX = (1 << 64) - 1
_MOD = 1 << 64


def _check_uint64(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"{what} must be a uint64 (0..{UINT64_MAX}), got {value}")
    return value


class LamportClock:
    """A Lamport clock with Go serf's uint64 semantics."""

    __slots__ = ("_counter",)

    def __init__(self, start: int = 0) -> None:
        """Start the clock at ``start`` (a uint64; 0 by default)."""
        self._counter = _check_uint64(start, "start")

    def time(self) -> int:
        """The current value of the clock."""
        return self._counter

    def increment(self) -> int:
        """Advance the clock by one and return the new value (wraps at 2**64)."""
        self._counter = (self._counter + 1) % _MOD
        return self._counter

    def witness(self, value: int) -> None:
        """Observe a remote time: if ``value >= time()``, the clock becomes ``value + 1``.

        A value older than the current time changes nothing. ``UINT64_MAX`` wraps to 0, as
        in Go. A value that is not a uint64 is caller misuse and raises ValueError.
        """
        if type(value) is not int or not 0 <= value <= UINT64_MAX:  # inline: per message
            _check_uint64(value, "value")
        if value >= self._counter:
            self._counter = (value + 1) % _MOD

    def __repr__(self) -> str:
        return f"LamportClock({self._counter})"


class LamportRing(Generic[K]):
    """Keys seen per Lamport time, for the last ``size`` times (see the module comment)."""

    __slots__ = ("_slots",)

    def __init__(self, size: int) -> None:
        self._slots: list[tuple[int, dict[K, None]] | None] = [None] * size

    def __len__(self) -> int:
        return len(self._slots)

    def too_old(self, ltime: int, current: int) -> bool:
        """True when ``ltime`` fell out of the window that ends at ``current``."""
        size = len(self._slots)
        return current > size and ltime < current - size

    def add(self, ltime: int, key: K) -> bool:
        """Remember ``key`` at ``ltime``; False when it was already there (a duplicate).

        A slot holding an older time is recycled."""
        idx = ltime % len(self._slots)
        slot = self._slots[idx]
        if slot is not None and slot[0] == ltime:
            if key in slot[1]:
                return False
            slot[1][key] = None
        else:
            self._slots[idx] = (ltime, {key: None})
        return True

    def slots(self) -> Iterator[tuple[int, list[K]] | None]:
        """Every slot in index order: None, or its time and keys in arrival order."""
        for slot in self._slots:
            yield None if slot is None else (slot[0], list(slot[1]))

    def empty(self) -> bool:
        """True when no slot holds a key yet (a push/pull then skips the walk)."""
        return self._slots.count(None) == len(self._slots)
