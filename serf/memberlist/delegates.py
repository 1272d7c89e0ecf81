"""The memberlist core's hooks: synchronous Protocols, and one object assembled from parts.

As Go memberlist's delegates (reference section 1.5): the core calls them inline while it
handles an input, so they must be quick and must not call back into the core. Design
principle 7: every hook is a small :class:`typing.Protocol`; :class:`CompositeDelegate`
assembles the ones a user has into the single object the core takes, with no-op defaults for
the rest.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from serf.memberlist.state import Node

__all__ = [
    "Delegate",
    "EventDelegate",
    "MergeDelegate",
    "AliveDelegate",
    "ConflictDelegate",
    "PingDelegate",
    "CompositeDelegate",
    "chain",
]


@runtime_checkable
class Delegate(Protocol):
    """Go's ``Delegate``: node meta, user messages, user broadcasts and push/pull state."""

    def node_meta(self, limit: int) -> bytes:
        """Our node metadata, at most ``limit`` bytes (checked by the core)."""
        ...

    def notify_msg(self, payload: bytes) -> None:
        """A user message arrived (packet or stream)."""
        ...

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """User broadcasts to piggyback: each costs ``len + overhead``; ``limit`` in total."""
        ...

    def local_state(self, join: bool) -> bytes:
        """Our user state for a push/pull (``join`` on a join)."""
        ...

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        """A peer's user state from a push/pull (called only when non-empty)."""
        ...


@runtime_checkable
class EventDelegate(Protocol):
    """Go's ``EventDelegate``: membership changes in our view."""

    def notify_join(self, node: Node) -> None:
        """``node`` became alive."""
        ...

    def notify_leave(self, node: Node) -> None:
        """``node`` died or left."""
        ...

    def notify_update(self, node: Node) -> None:
        """``node`` has new metadata."""
        ...


@runtime_checkable
class MergeDelegate(Protocol):
    """Go's ``MergeDelegate``: may veto a join push/pull (not periodic anti-entropy)."""

    def notify_merge(self, nodes: list[Node]) -> str | None:
        """Return an error text to cancel the merge, None to accept it."""
        ...


@runtime_checkable
class AliveDelegate(Protocol):
    """Go's ``AliveDelegate``: may veto any alive message (gossip or push/pull)."""

    def notify_alive(self, node: Node) -> str | None:
        """Return an error text to ignore the alive message, None to accept it."""
        ...


@runtime_checkable
class ConflictDelegate(Protocol):
    """Go's ``ConflictDelegate``: a node claims a known name from another address."""

    def notify_conflict(self, existing: Node, other: Node) -> None:
        """``other`` uses ``existing``'s name."""
        ...


@runtime_checkable
class PingDelegate(Protocol):
    """Go's ``PingDelegate``: a payload on acks and the round-trip time of probes."""

    def ack_payload(self) -> bytes:
        """The payload of every ack we send for a UDP ping."""
        ...

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        """A direct probe of ``node`` was acked within the probe timeout after ``rtt`` s."""
        ...


class CompositeDelegate:
    """One delegate object assembled from optional parts; missing parts are no-ops.

    The parts stay visible as attributes (``delegate``, ``events``, ``merge``, ``alive``,
    ``conflict``, ``ping``): the core checks ``alive is not None`` because, as in Go, having
    an Alive delegate makes alives with fewer than 6 version bytes unacceptable.
    """

    __slots__ = ("alive", "conflict", "delegate", "events", "merge", "ping")

    def __init__(
        self,
        *,
        delegate: Delegate | None = None,
        events: EventDelegate | None = None,
        merge: MergeDelegate | None = None,
        alive: AliveDelegate | None = None,
        conflict: ConflictDelegate | None = None,
        ping: PingDelegate | None = None,
    ) -> None:
        self.delegate = delegate
        self.events = events
        self.merge = merge
        self.alive = alive
        self.conflict = conflict
        self.ping = ping

    # -- Delegate -------------------------------------------------------------------------

    def node_meta(self, limit: int) -> bytes:
        """The delegate's meta, or empty."""
        return self.delegate.node_meta(limit) if self.delegate is not None else b""

    def notify_msg(self, payload: bytes) -> None:
        """Hand a user message to the delegate (dropped without one)."""
        if self.delegate is not None:
            self.delegate.notify_msg(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """The delegate's broadcasts, or none."""
        return self.delegate.get_broadcasts(overhead, limit) if self.delegate is not None else []

    def local_state(self, join: bool) -> bytes:
        """The delegate's push/pull state, or empty."""
        return self.delegate.local_state(join) if self.delegate is not None else b""

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        """Hand a peer's push/pull state to the delegate."""
        if self.delegate is not None:
            self.delegate.merge_remote_state(buf, join)

    # -- EventDelegate --------------------------------------------------------------------

    def notify_join(self, node: Node) -> None:
        """Forward a join."""
        if self.events is not None:
            self.events.notify_join(node)

    def notify_leave(self, node: Node) -> None:
        """Forward a leave."""
        if self.events is not None:
            self.events.notify_leave(node)

    def notify_update(self, node: Node) -> None:
        """Forward an update."""
        if self.events is not None:
            self.events.notify_update(node)

    # -- the others -----------------------------------------------------------------------

    def notify_merge(self, nodes: list[Node]) -> str | None:
        """The merge delegate's verdict (None: accept)."""
        return self.merge.notify_merge(nodes) if self.merge is not None else None

    def notify_alive(self, node: Node) -> str | None:
        """The alive delegate's verdict (None: accept)."""
        return self.alive.notify_alive(node) if self.alive is not None else None

    def notify_conflict(self, existing: Node, other: Node) -> None:
        """Forward a name conflict."""
        if self.conflict is not None:
            self.conflict.notify_conflict(existing, other)

    def ack_payload(self) -> bytes:
        """The ping delegate's ack payload, or empty."""
        return self.ping.ack_payload() if self.ping is not None else b""

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        """Forward a completed probe."""
        if self.ping is not None:
            self.ping.notify_ping_complete(node, rtt, payload)


_PARTS = ("delegate", "events", "merge", "alive", "conflict", "ping")


class _Chained:
    """Two delegate parts of one kind as one: notifications reach both (``first`` first), a
    veto of either refuses, and the ack payload is ``first``'s."""

    __slots__ = ("first", "then")

    def __init__(self, first: object, then: object) -> None:
        self.first: Any = first
        self.then: Any = then

    def notify_join(self, node: Node) -> None:
        self.first.notify_join(node)
        self.then.notify_join(node)

    def notify_leave(self, node: Node) -> None:
        self.first.notify_leave(node)
        self.then.notify_leave(node)

    def notify_update(self, node: Node) -> None:
        self.first.notify_update(node)
        self.then.notify_update(node)

    def notify_merge(self, nodes: list[Node]) -> str | None:
        refused: str | None = self.first.notify_merge(nodes)
        return refused if refused is not None else self.then.notify_merge(nodes)

    def notify_alive(self, node: Node) -> str | None:
        refused: str | None = self.first.notify_alive(node)
        return refused if refused is not None else self.then.notify_alive(node)

    def notify_conflict(self, existing: Node, other: Node) -> None:
        self.first.notify_conflict(existing, other)
        self.then.notify_conflict(existing, other)

    def ack_payload(self) -> bytes:
        payload: bytes = self.first.ack_payload()
        return payload

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        self.first.notify_ping_complete(node, rtt, payload)
        self.then.notify_ping_complete(node, rtt, payload)


def chain(first: CompositeDelegate, then: CompositeDelegate) -> CompositeDelegate:
    """One CompositeDelegate that calls ``first``'s parts, then ``then``'s.

    Notifications (joins, leaves, updates, conflicts, completed pings) reach both; a merge or
    alive veto from either refuses; the ack payload is ``first``'s. The ``delegate`` part
    (node meta, messages, broadcasts, push/pull state) cannot be shared: ValueError when both
    have one.
    """
    if first.delegate is not None and then.delegate is not None:
        raise ValueError(
            "only one Delegate (node meta, user messages, broadcasts, push/pull state) can "
            "be plugged; serf uses its own for tags, events and queries"
        )
    parts: dict[str, Any] = {}
    for name in _PARTS:
        a, b = getattr(first, name), getattr(then, name)
        parts[name] = a if b is None else b if a is None else _Chained(a, b)
    return CompositeDelegate(**parts)
