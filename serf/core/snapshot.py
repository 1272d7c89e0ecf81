"""The snapshot file's text format and recording rules, sans-IO (reference section 3.10).

How this works: the snapshot is an append-only text file of lines such as
``alive: <name> <ip:port>``, ``not-alive: <name>``, ``clock: <n>``, ``event-clock: <n>``,
``query-clock: <n>`` and ``leave``. This module formats those lines, replays a file's text
into a ``SnapshotState`` (never raising: anything odd becomes a warning), renders the
compacted form, and records events into lines with ``SnapshotRecorder``. Opening, buffering,
flushing, fsync and the rename dance of a compaction belong to a driver, which writes the
lines this module returns and asks ``needs_compaction`` after each append.

Followed on purpose from Go serf ``serf/snapshot.go``:
* replay reads complete lines only and splits on ``\\n`` alone; prefixes match exactly;
  an alive line's name is everything before its last space;
* ``leave`` clears nodes and resets the three clocks unless rejoin-after-leave; clock lines
  after it set the clock again;
* the compacted form holds alive lines and the three clocks, and no ``leave`` line (as Go).
Where we differ: a member clock of 0 records nothing (Go's ``Time() - 1`` would wrap to
2**64 - 1; serf's clocks start at 1, so this never happens there).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "COMPACTION_MIN_BYTES",
    "LEAVE_LINE",
    "SNAPSHOT_BYTES_PER_NODE",
    "SnapshotMember",
    "SnapshotRecorder",
    "SnapshotState",
    "alive_line",
    "clock_line",
    "compacted",
    "compaction_threshold",
    "event_clock_line",
    "format_address",
    "not_alive_line",
    "query_clock_line",
    "replay",
    "replay_lines",
]

LEAVE_LINE = "leave\n"
#: Estimated bytes per alive node, and the compaction floor, as Go's constants.
SNAPSHOT_BYTES_PER_NODE = 128
_COMPACTION_FACTOR = 2
COMPACTION_MIN_BYTES = 128 * 1024

#: skipped lines kept as warnings per replay (the rest are only counted)
MAX_REPLAY_WARNINGS = 100

_UINT64_MAX = (1 << 64) - 1
_DIGITS = re.compile(r"[0-9]+")
_ALIVE = "alive: "
_NOT_ALIVE = "not-alive: "
_CLOCK = "clock: "
_EVENT_CLOCK = "event-clock: "
_QUERY_CLOCK = "query-clock: "
_COORDINATE = "coordinate: "
_MEMBER_JOIN = "member-join"
_MEMBER_GONE = frozenset({"member-leave", "member-failed"})


# -- line formatting ------------------------------------------------------------------------


def _format_ip(ip: bytes | str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Go ``net.IP.String()`` (IPv4-mapped IPv6 printed as dotted IPv4)."""
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        ip = ip.packed
    if isinstance(ip, str):
        if ip == "":
            return ""
        try:
            ip = ipaddress.ip_address(ip).packed
        except ValueError:
            return str(ip)  # a host name or something we cannot parse: written as given
    raw = bytes(ip)
    if len(raw) == 0:
        return ""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        v6 = ipaddress.IPv6Address(raw)
        if v6.ipv4_mapped is not None:
            return str(v6.ipv4_mapped)
        return str(v6)
    return "?" + raw.hex()


def format_address(
    ip: bytes | str | ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> str:
    """Go ``net.TCPAddr.String()``: ``1.2.3.4:7946``, ``[::1]:7946``, ``:7946`` without IP."""
    host = _format_ip(ip)
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def alive_line(
    name: str, addr: tuple[bytes | str | ipaddress.IPv4Address | ipaddress.IPv6Address, int] | str
) -> str:
    """``alive: <name> <ip:port>\\n``; ``addr`` is ``(ip, port)`` or an already formatted string."""
    text = addr if isinstance(addr, str) else format_address(*addr)
    return f"{_ALIVE}{name} {text}\n"


def not_alive_line(name: str) -> str:
    """``not-alive: <name>\\n``."""
    return f"{_NOT_ALIVE}{name}\n"


def clock_line(value: int) -> str:
    """``clock: <value>\\n``."""
    return f"{_CLOCK}{value}\n"


def event_clock_line(value: int) -> str:
    """``event-clock: <value>\\n``."""
    return f"{_EVENT_CLOCK}{value}\n"


def query_clock_line(value: int) -> str:
    """``query-clock: <value>\\n``."""
    return f"{_QUERY_CLOCK}{value}\n"


# -- replay ---------------------------------------------------------------------------------


@dataclass(slots=True)
class SnapshotState:
    """What a snapshot says: alive nodes (name -> ``ip:port``), the three clocks, and more.

    ``left`` is True when a ``leave`` line was replayed and no ``alive:`` line followed it.
    ``warnings`` lists the lines that were skipped (unknown, unparsable), for logging: the
    first ``MAX_REPLAY_WARNINGS`` of them; ``warnings_dropped`` counts the rest. ``size`` is
    the byte length of the text replayed, where a recorder resuming the file starts counting.
    """

    alive_nodes: dict[str, str] = field(default_factory=dict)
    last_clock: int = 0
    last_event_clock: int = 0
    last_query_clock: int = 0
    left: bool = False
    warnings: list[str] = field(default_factory=list)
    warnings_dropped: int = field(default=0, compare=False)
    size: int = field(default=0, compare=False)

    def warn(self, text: str) -> None:
        """Record a skipped line (kept while under the bound, else only counted)."""
        if len(self.warnings) < MAX_REPLAY_WARNINGS:
            self.warnings.append(text)
        else:
            self.warnings_dropped += 1


def _parse_uint64(text: str) -> int | None:
    """Go ``strconv.ParseUint(text, 10, 64)``: ASCII digits only, no sign, no spaces."""
    if _DIGITS.fullmatch(text) is None:
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > 20:  # more digits than 2**64 - 1 has (and int() caps at 4300 digits)
        return None
    value = int(digits)
    return value if value <= _UINT64_MAX else None


def replay(text: str, rejoin_after_leave: bool) -> SnapshotState:
    """Replay a snapshot's text. Never raises; odd lines are recorded in ``warnings``."""
    # the last piece has no trailing newline: incomplete, ignored (as Go's reader)
    state = replay_lines(text.split("\n")[:-1], rejoin_after_leave)
    state.size = _byte_length(text)
    return state


def _byte_length(line: str) -> int:
    if line.isascii():
        return len(line)
    try:
        return len(line.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate no decoder made: never raise, count it as 3 bytes
        return len(line.encode("utf-8", "surrogatepass"))


def replay_lines(lines: Iterable[str], rejoin_after_leave: bool) -> SnapshotState:
    """Replay a snapshot's complete lines (without their ``\n``; the driver leaves out an
    incomplete last line, as Go's reader does), holding only the state, never the whole
    file. Never raises. ``size`` is left 0: the driver sets it to the file's size."""
    state = SnapshotState()
    for line in lines:
        if line.startswith(_ALIVE):
            info = line[len(_ALIVE) :]
            cut = info.rfind(" ")
            if cut == -1:
                state.warn(f"Failed to parse address: {line!r}")
                continue
            state.alive_nodes[info[:cut]] = info[cut + 1 :]
            state.left = False
        elif line.startswith(_NOT_ALIVE):
            state.alive_nodes.pop(line[len(_NOT_ALIVE) :], None)
        elif line.startswith(_CLOCK):
            value = _parse_clock(line, _CLOCK, state)
            if value is not None:
                state.last_clock = value
        elif line.startswith(_EVENT_CLOCK):
            value = _parse_clock(line, _EVENT_CLOCK, state)
            if value is not None:
                state.last_event_clock = value
        elif line.startswith(_QUERY_CLOCK):
            value = _parse_clock(line, _QUERY_CLOCK, state)
            if value is not None:
                state.last_query_clock = value
        elif line.startswith(_COORDINATE):
            continue  # legacy coordinate persistence: ignored, coordinates re-converge
        elif line == "leave":
            state.left = True
            if rejoin_after_leave:
                continue  # "Ignoring previous leave in snapshot"
            state.alive_nodes = {}
            state.last_clock = 0
            state.last_event_clock = 0
            state.last_query_clock = 0
        elif line.startswith("#"):
            continue
        else:
            state.warn(f"Unrecognized snapshot line: {line!r}")
    return state


def _parse_clock(line: str, prefix: str, state: SnapshotState) -> int | None:
    value = _parse_uint64(line[len(prefix) :])
    if value is None:
        state.warn(f"Failed to convert {prefix.rstrip(': ')} time: {line!r}")
    return value


def compacted(state: SnapshotState) -> str:
    """The compacted snapshot text: every alive line, then the three clock lines."""
    parts = [alive_line(name, addr) for name, addr in state.alive_nodes.items()]
    parts.append(clock_line(state.last_clock))
    parts.append(event_clock_line(state.last_event_clock))
    parts.append(query_clock_line(state.last_query_clock))
    return "".join(parts)


def compaction_threshold(alive_count: int, min_size: int = COMPACTION_MIN_BYTES) -> int:
    """Byte offset beyond which Go compacts: ``max(alive * 128 * 2, min_size)``.

    ``min_size`` is 128 KiB in Go serf (newer versions make it configurable).
    """
    return max(alive_count * SNAPSHOT_BYTES_PER_NODE * _COMPACTION_FACTOR, min_size)


# -- recording ------------------------------------------------------------------------------


class SnapshotMember(Protocol):
    """What the recorder needs of a member: name, address bytes (or text) and port."""

    @property
    def name(self) -> str: ...

    @property
    def addr(self) -> bytes | str: ...

    @property
    def port(self) -> int: ...


class SnapshotRecorder:
    """Turns events into snapshot lines, tracking what a compaction must keep.

    Every ``record_*`` method returns the lines to append (possibly none) and adds their
    UTF-8 length to ``offset``. After ``leave()``, member, user-event and query events record
    nothing, but ``sample_clock`` (the 500 ms ticker) still may.
    """

    def __init__(
        self,
        state: SnapshotState | None = None,
        *,
        rejoin_after_leave: bool = False,
        offset: int = 0,
        min_compact_size: int = COMPACTION_MIN_BYTES,
    ) -> None:
        """Start from a replayed ``state`` (or empty) and the file's current size ``offset``.

        ``min_compact_size`` is the floor of the compaction threshold (128 KiB).
        """
        state = state if state is not None else SnapshotState()
        self.alive_nodes: dict[str, str] = dict(state.alive_nodes)
        self.last_clock = state.last_clock
        self.last_event_clock = state.last_event_clock
        self.last_query_clock = state.last_query_clock
        self.rejoin_after_leave = rejoin_after_leave
        self.leaving = False
        self.offset = offset
        self.min_compact_size = min_compact_size

    def _emit(self, lines: list[str]) -> list[str]:
        self.offset += sum(len(line.encode("utf-8", "surrogateescape")) for line in lines)
        return lines

    def _clock_lines(self, clock_time: int) -> list[str]:
        if clock_time <= 0:
            return []
        last_seen = clock_time - 1
        if last_seen > self.last_clock:
            self.last_clock = last_seen
            return [clock_line(last_seen)]
        return []

    def record_member_event(
        self, event_type: str, members: Iterable[SnapshotMember], clock_time: int
    ) -> list[str]:
        """A member event, then a clock sample (``clock_time`` is the member clock's time)."""
        if self.leaving:
            return []
        lines: list[str] = []
        if event_type == _MEMBER_JOIN:
            for member in members:
                addr = format_address(member.addr, member.port)
                self.alive_nodes[member.name] = addr
                lines.append(alive_line(member.name, addr))
        elif event_type in _MEMBER_GONE:
            for member in members:
                self.alive_nodes.pop(member.name, None)
                lines.append(not_alive_line(member.name))
        lines.extend(self._clock_lines(clock_time))
        return self._emit(lines)

    def record_user_event(self, ltime: int) -> list[str]:
        """A user event with Lamport time ``ltime``; only a newer time is recorded."""
        if self.leaving or ltime <= self.last_event_clock:
            return []
        self.last_event_clock = ltime
        return self._emit([event_clock_line(ltime)])

    def record_query(self, ltime: int) -> list[str]:
        """A query (internal ones included) with Lamport time ``ltime``; only newer ones."""
        if self.leaving or ltime <= self.last_query_clock:
            return []
        self.last_query_clock = ltime
        return self._emit([query_clock_line(ltime)])

    def sample_clock(self, clock_time: int) -> list[str]:
        """The periodic (and shutdown) clock sample; recorded even after a leave."""
        return self._emit(self._clock_lines(clock_time))

    def leave(self) -> list[str]:
        """A graceful leave: forget nodes (unless rejoin-after-leave), write ``leave``.

        The driver should flush and fsync after writing it.
        """
        self.leaving = True
        if not self.rejoin_after_leave:
            self.alive_nodes = {}
        return self._emit([LEAVE_LINE])

    def state(self) -> SnapshotState:
        """The state a compaction writes (alive nodes and the three clocks)."""
        return SnapshotState(
            alive_nodes=dict(self.alive_nodes),
            last_clock=self.last_clock,
            last_event_clock=self.last_event_clock,
            last_query_clock=self.last_query_clock,
            left=self.leaving,
        )

    def needs_compaction(self, offset: int | None = None) -> bool:
        """Whether ``offset`` (default: our own count) exceeds the compaction threshold."""
        current = self.offset if offset is None else offset
        return current > compaction_threshold(len(self.alive_nodes), self.min_compact_size)

    def compact(self) -> str:
        """The compacted text to write in place of the file; ``offset`` becomes its size."""
        text = compacted(self.state())
        self.offset = len(text.encode("utf-8", "surrogateescape"))
        return text
