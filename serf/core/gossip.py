"""The serf core as the memberlist core's ``Delegate`` (reference 3.5, 3.6).

:class:`SerfDelegate` owns our tags (node meta) and is where serf messages enter: every
user message memberlist hands over is decoded once and dispatched on its type through one
table to the owner it concerns (intents to the members, user events, queries, responses,
relays), and rebroadcast on serf's own gossip queue when that owner says it was new.
Push/pull carries serf's user state: member status times, left members, the user-event
ring and the clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from serf.address import Address
from serf.core.events import UserEventManager
from serf.core.intents import Membership
from serf.core.queries import QueryManager
from serf.core.services import Broadcasts, Services
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.telemetry import DEBUG, ERR, SAMPLE, WARN, MetricSample
from serf.wire.errors import DecodeError
from serf.wire.messages import (
    MessageJoin,
    MessageLeave,
    MessagePushPull,
    MessageQuery,
    MessageQueryResponse,
    MessageRelay,
    MessageUserEvent,
)

__all__ = ["SerfDelegate"]

_TYPE_PUSH_PULL = 2
_MSGS_RECEIVED = ("serf", "msgs", "received")
#: Go's debug line per inbound serf message ("messageJoinType: <node>"): its name, and the
#: field it names (the node of an intent, the name of an event or query, a response's sender)
_GO_NAMES: dict[type, tuple[str, str]] = {
    MessageLeave: ("messageLeaveType", "node"),
    MessageJoin: ("messageJoinType", "node"),
    MessageUserEvent: ("messageUserEventType", "name"),
    MessageQuery: ("messageQueryType", "name"),
    MessageQueryResponse: ("messageQueryResponseType", "from_"),
}


class SerfDelegate:
    """memberlist's ``Delegate`` for one serf core (see the module comment)."""

    def __init__(
        self,
        services: Services,
        membership: Membership,
        broadcasts: Broadcasts,
        user_events: UserEventManager,
        queries: QueryManager,
        tags: dict[str, str],
    ) -> None:
        self._s = services
        self._membership = membership
        self._broadcasts = broadcasts
        self._user_events = user_events
        self._queries = queries
        self.tags = dict(tags)
        # inbound serf messages by type: (handler returning "new, rebroadcast", its queue)
        self._handlers: dict[type, tuple[Callable[[Any], bool], Any]] = {
            MessageLeave: (membership.leave_intent, broadcasts.intents),
            MessageJoin: (membership.join_intent, broadcasts.intents),
            MessageUserEvent: (user_events.handle, broadcasts.events),
            MessageQuery: (queries.handle_query, broadcasts.queries),
            MessageQueryResponse: (self._query_response, None),
            MessageRelay: (self._relay, None),
        }

    def encode_tags(self, tags: dict[str, str]) -> bytes:
        if self._s.config.protocol_version < 3:
            return tags.get("role", "").encode("utf-8", "surrogateescape")
        return self._s.codec.encode_tags(tags)

    def node_meta(self, limit: int) -> bytes:
        """Our tags, as node meta."""
        return self.encode_tags(self.tags)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Serf's gossip to piggyback on memberlist's packets."""
        return self._broadcasts.get_broadcasts(overhead, limit)

    def _drop(self, reason: str, level: int = ERR) -> None:
        s = self._s
        s.stats_counters["dropped"] += 1
        s.emit(mio.Dropped(reason))
        s.log(level, reason)

    def notify_msg(self, payload: bytes) -> None:
        """An inbound serf message (reference 3.6): to its handler by type; rebroadcast when
        the handler says it was new."""
        if not payload or self._s.serf_state is SerfState.SHUTDOWN:
            return
        s = self._s
        kind = payload[0]
        emit = s.emit
        emit(MetricSample(SAMPLE, _MSGS_RECEIVED, float(len(payload))))
        try:
            msg = s.codec.decode_serf(payload)
        except DecodeError as exc:  # bad bytes from the network: a counted drop
            self._drop(f"Error decoding message type {kind}: {exc}")
            return
        if type(msg) is MessageUserEvent:
            # the bulk under an event load (each agent gets each event retransmit-mult x
            # log10(N) times, the repeats dropped as duplicates): the table's path inline,
            # same effects in the same order
            s.log(DEBUG, "messageUserEventType: " + msg.name)
            if self._user_events.handle(msg):
                self._broadcasts.events.queue_broadcast(payload, unique=True)
            return
        named = _GO_NAMES.get(type(msg))
        if named is not None:
            s.log(DEBUG, f"{named[0]}: {getattr(msg, named[1])}")
        entry = self._handlers.get(type(msg))
        if entry is None:
            self._drop(f"Received message of unknown type: {kind}", WARN)
            return
        handler, queue = entry
        if handler(msg) and queue is not None:
            queue.queue_broadcast(payload, unique=True)

    def _query_response(self, msg: MessageQueryResponse) -> bool:
        self._queries.handle_query_response(msg)
        return False

    def _relay(self, msg: MessageRelay) -> bool:
        try:
            dest = Address.from_ip(msg.dest_addr.ip, msg.dest_addr.port)
        except ValueError as exc:
            self._drop(f"Error decoding relay header: {exc}")
            return False
        self._s.log(DEBUG, f"Relaying response to addr: {dest}")
        self._s.send(dest, bytes(msg.payload))
        return False

    def local_state(self, join: bool) -> bytes:
        """Our push/pull user state: member status times, left members, event slots."""
        mb = self._membership
        msg = MessagePushPull(
            self._s.clock.time(),
            {m.name: m.status_ltime for m in mb.members.values()},
            list(mb.left),
            self._s.event_clock.time(),
            self._user_events.slots(),
            self._s.query_clock.time(),
        )
        return self._s.codec.encode(msg)

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        """A peer's push/pull user state: clocks, intents, missed user events."""
        if not buf or buf[0] != _TYPE_PUSH_PULL:
            return
        try:
            msg = self._s.codec.decode_serf(buf)
        except DecodeError as exc:  # bad bytes from the network
            self._drop(f"bad push/pull user state: {exc}")
            return
        if not isinstance(msg, MessagePushPull):
            return
        if msg.ltime > 0:
            self._s.clock.witness(msg.ltime - 1)
        if msg.event_ltime > 0:
            self._s.event_clock.witness(msg.event_ltime - 1)
        if msg.query_ltime > 0:
            self._s.query_clock.witness(msg.query_ltime - 1)
        mb = self._membership
        status = msg.status_ltimes or {}
        left = set(msg.left_members or ())
        for name in left:
            mb.leave_intent(MessageLeave(status.get(name, 0) + 1, name))
        for name, ltime in status.items():
            if name not in left:
                mb.join_intent(MessageJoin(ltime, name))
        ue = self._user_events
        if join and ue.ignore_old > 0 and msg.event_ltime > ue.min_time:
            ue.min_time = msg.event_ltime
        for events in msg.events or ():
            if events is None:
                continue
            for ev in events.events or ():
                ue.handle(MessageUserEvent(events.ltime, ev.name, ev.payload), from_push_pull=True)
