"""Event handler specs and the events handlers see: parsing only, no I/O, no asyncio.

How this works: a spec such as ``member-join,user:deploy=/usr/bin/handler`` is split at the
*first* ``=`` into a filter list and a script (no ``=`` at all: the filter is ``*``); the filter
list is split on ``,`` without trimming, and ``user:NAME``/``query:NAME`` carry a name that must
match exactly (an empty name matches every user event or query). :func:`parse_event_script`
does only that, as Go's ``ParseEventScript``; :func:`parse_handlers` also rejects unknown event
types (Go's agent refuses to start on them). The agent's configuration checks its handlers with
this module before it chooses and imports its event loop (serf.agent.run), so it imports no
asyncio; :mod:`serf.agent.handlers` runs the scripts and re-exports these names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from serf.address import bytes_to_ip
from serf.core import io as sio
from serf.core.delivery import member_event_type

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventFilter",
    "EventScript",
    "HandlerSpecError",
    "MemberEventInfo",
    "MemberInfo",
    "QueryInfo",
    "UserEventInfo",
    "event_info",
    "member_event_type",
    "parse_event_filter",
    "parse_event_script",
    "parse_handlers",
]

#: Event types a filter may name (``*`` matches all).
EVENT_TYPES = (
    "member-join",
    "member-leave",
    "member-failed",
    "member-update",
    "member-reap",
    "user",
    "query",
    "*",
)


class HandlerSpecError(ValueError):
    """An event handler spec names an unknown event type."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """One ``type`` or ``user:NAME``/``query:NAME`` entry of a spec's filter list."""

    event: str
    name: str = ""

    def valid(self) -> bool:
        """Whether the event type is one Go knows (case-sensitive)."""
        return self.event in EVENT_TYPES

    def matches(self, event: MemberEventInfo | UserEventInfo | QueryInfo) -> bool:
        """Whether an event passes this filter."""
        if self.event == "*":
            return True
        if isinstance(event, MemberEventInfo):
            return self.event == event.type
        if isinstance(event, UserEventInfo):
            return self.event == "user" and (not self.name or self.name == event.name)
        return self.event == "query" and (not self.name or self.name == event.name)

    def __str__(self) -> str:
        return f"{self.event}:{self.name}" if self.name else self.event


@dataclass(frozen=True, slots=True)
class EventScript:
    """A filter and the script it runs."""

    filter: EventFilter
    script: str

    def __str__(self) -> str:
        return f'Event "{self.filter}" invoking "{self.script}"'


def parse_event_filter(text: str) -> list[EventFilter]:
    """Split a filter list (``""`` means ``*``) into filters, as Go's ParseEventFilter."""
    out: list[EventFilter] = []
    for item in (text or "*").split(","):
        for prefix in ("user:", "query:"):
            if item.startswith(prefix):
                out.append(EventFilter(prefix[:-1], item[len(prefix) :]))
                break
        else:
            out.append(EventFilter(item))
    return out


def parse_event_script(spec: str) -> list[EventScript]:
    """One ``[filters=]script`` spec, split at the first ``=`` (no validation, as Go)."""
    filt, sep, script = spec.partition("=")
    if not sep:
        filt, script = "", spec
    return [EventScript(f, script) for f in parse_event_filter(filt)]


def parse_handlers(specs: Iterable[str]) -> list[EventScript]:
    """Every spec parsed; HandlerSpecError (Go's "Invalid event script") on an unknown type."""
    out: list[EventScript] = []
    for spec in specs:
        for script in parse_event_script(spec):
            if not script.filter.valid():
                raise HandlerSpecError(f"Invalid event script: {script}")
            out.append(script)
    return out


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member as handlers see it: name, IP address (no port), tags."""

    name: str
    addr: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemberEventInfo:
    """member-join / member-leave / member-failed / member-update / member-reap."""

    type: str
    members: tuple[MemberInfo, ...]


@dataclass(frozen=True, slots=True)
class UserEventInfo:
    """A user event."""

    ltime: int
    name: str
    payload: bytes = b""
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """A query delivered to this node."""

    ltime: int
    name: str
    payload: bytes = b""


Event = MemberEventInfo | UserEventInfo | QueryInfo


def event_info(event: object, kind: str | None, *, members: bool = True) -> Event | None:
    """What a handler or a stream's filter sees of a serf event, None for one neither sees.

    ``kind`` is the event's member event type (`member_event_type`), None for other events.
    ``members=False`` leaves a member event's members out: a stream's filter reads only the
    type, and the stream sends its own form of each member.
    """
    if kind is not None:
        if not members:
            return MemberEventInfo(kind, ())
        return MemberEventInfo(
            kind,
            tuple(
                MemberInfo(m.name, bytes_to_ip(m.addr), dict(m.tags))
                for m in getattr(event, "members", ())
            ),
        )
    if isinstance(event, sio.UserEventReceived):
        return UserEventInfo(event.ltime, event.name, event.payload, event.coalesce)
    from serf.runtime.serf import Query  # (asyncio's; here only once events flow)

    if isinstance(event, Query):
        return QueryInfo(event.ltime, event.name, event.payload)
    return None
