"""The sans-IO serf core: members, intents, user events, queries, keys, coordinates.

How this works
--------------
:class:`SerfCore` owns a :class:`~serf.memberlist.core.MemberlistCore` and is its delegate (a
:class:`~serf.memberlist.delegates.CompositeDelegate` of private hooks): node meta carries our
tags; user messages are serf messages dispatched on their first byte (reference 3.5/3.6);
push/pull user state is a ``MessagePushPull``; join/leave/update notifications drive the serf
member status machine (3.2); acks carry Vivaldi coordinates (3.11). ``handle(input, now)``
takes every memberlist input (passed through) and the serf requests of :mod:`serf.core.io`,
and returns effects: the memberlist ones minus its ``Node*`` notifications, plus serf events.

The memberlist core calls our hooks *inside* its ``handle``; a hook never calls back into it.
Whatever a hook (or a serf request) wants memberlist to do (send a packet, join, leave,
update the node) goes into ``_pending`` and is fed to the memberlist core once the current
call returns. Internal memberlist requests use negative request ids, so the driver's own
(non-negative) ids pass through untouched.

Timers: one heap of ``(when, seq, callback)``; a cancelled entry's seq leaves ``_live``.
``next_deadline()`` is the minimum of that heap, the memberlist core's deadline and the
coalescers' deadlines. The three gossip queues (intents, queries, events) are transmit-limited
queues of unique broadcasts sized by serf's own member count, drained in that order.

Events go through the reference's chain: snapshot recorder -> internal-query filter -> user
coalescer -> member coalescer -> effects. Where we differ from Go on purpose it says so.

Layout. :class:`SerfCore` is the coordinator: it owns every table, clock, queue and timer,
drives memberlist, and delivers events. Three helpers it owns work on it through a ``core``
reference: :class:`serf.core.queries.QueryManager` (queries started and received, filters,
acks, responses, relays), :class:`serf.core.internal.InternalQueries` (``_serf_`` queries,
key-request aggregation, name-conflict votes) and :class:`serf.core.intents.Membership`
(join/leave intents and the member status machine). :mod:`serf.core.state` holds
:class:`SerfState` and the member record. The public names (``SerfState``, the
``QUERY_FLAG_*`` constants, ``INTERNAL_QUERY_PREFIX``) are still importable from here.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from serf import _speedups
from serf.address import Address
from serf.config import META_MAX_SIZE, USER_EVENT_SIZE_LIMIT, SerfConfig, node_name_error
from serf.core import io as sio
from serf.core.coalesce import (
    MemberEvent,
    MemberEventCoalescer,
    UserEventCoalescer,
    UserEventRecord,
)
from serf.core.intents import Membership
from serf.core.internal import InternalQueries
from serf.core.lamport import LamportClock, LamportRing
from serf.core.queries import (
    INTERNAL_QUERY_PREFIX,
    QUERY_FLAG_ACK,
    QUERY_FLAG_NO_BROADCAST,
    QueryManager,
)
from serf.core.snapshot import SnapshotRecorder, SnapshotState
from serf.core.state import MemberRecord, SerfState
from serf.core.vivaldi import CoordinateCache, CoordinateClient, distance
from serf.memberlist import io as mio
from serf.memberlist.core import MemberlistCore
from serf.memberlist.delegates import CompositeDelegate, chain
from serf.memberlist.state import Node, NodeState, StateTable
from serf.telemetry import (
    COUNTER,
    DEBUG,
    ERR,
    INFO,
    SAMPLE,
    TRACE,
    WARN,
    LogLine,
    MetricSample,
    serf_line,
)
from serf.wire.messages import (
    Coordinate,
    MessageJoin,
    MessageLeave,
    MessagePushPull,
    MessageQuery,
    MessageQueryResponse,
    MessageRelay,
    MessageUserEvent,
    UserEvent,
    UserEvents,
)

if TYPE_CHECKING:
    import random

    from serf.wire.keyring import Keyring

__all__ = [
    "SerfCore",
    "SerfState",
    "SerfMergeDelegate",
    "ReconnectDelegate",
    "QUERY_FLAG_ACK",
    "QUERY_FLAG_NO_BROADCAST",
    "INTERNAL_QUERY_PREFIX",
]

_PING_VERSION = 1
_SNAPSHOT_CLOCK_INTERVAL = 0.5
_MIN_QUEUE_MULT = 2

_TYPE_PUSH_PULL = 2
_TYPE_USER_EVENT = 3
_TYPE_QUERY = 4
_TYPE_QUERY_RESPONSE = 5
_TYPE_RELAY = 9

_EFFECT_OF: dict[str, Callable[[tuple[sio.SerfMember, ...]], sio.MemberEffect]] = {
    "member-join": sio.MemberJoined,
    "member-leave": sio.MemberLeft,
    "member-failed": sio.MemberFailed,
    "member-update": sio.MemberUpdated,
    "member-reap": sio.MemberReaped,
}
_MSGS_RECEIVED = ("serf", "msgs", "received")
_MSGS_SENT = ("serf", "msgs", "sent")
_EVENTS = MetricSample(COUNTER, ("serf", "events"), 1.0)
_COORDINATE_REJECTED = MetricSample(COUNTER, ("serf", "coordinate", "rejected"), 1.0)
# Go's debug line per inbound serf message: "serf: messageJoinType: <node>"
_MESSAGE_TYPE_NAMES: dict[type, str] = {
    MessageLeave: "messageLeaveType",
    MessageJoin: "messageJoinType",
    MessageUserEvent: "messageUserEventType",
    MessageQuery: "messageQueryType",
    MessageQueryResponse: "messageQueryResponseType",
}


def _message_subject(msg: Any) -> str:
    """What Go's debug line names: the node of an intent, the name of an event or query,
    the sender of a response."""
    if isinstance(msg, MessageLeave | MessageJoin):
        return str(msg.node)
    if isinstance(msg, MessageQueryResponse):
        return str(msg.from_)
    return str(msg.name)


_SERF_REQUESTS = (
    sio.UserEventRequest,
    sio.QueryRequest,
    sio.RespondRequest,
    sio.SetTagsRequest,
    sio.SerfJoinRequest,
    sio.SerfLeaveRequest,
    sio.ForceLeaveRequest,
    sio.KeyRequest,
)


class SerfMergeDelegate(Protocol):
    """Go serf's ``MergeDelegate``: may veto a join (and, as the Alive delegate, a node)."""

    def notify_merge(self, members: list[sio.SerfMember]) -> str | None:
        """Return an error text to refuse, None to accept."""
        ...


class ReconnectDelegate(Protocol):
    """Go serf's ``ReconnectTimeoutOverrider``: a per-member reap timeout."""

    def reconnect_timeout(self, member: sio.SerfMember, default: float) -> float:
        """The timeout (s) after which ``member`` (failed or left) is reaped."""
        ...


class _Hooks:
    """The memberlist delegates, forwarding to the serf core (see the module comment)."""

    __slots__ = ("_core",)

    def __init__(self, core: SerfCore) -> None:
        self._core = core

    def node_meta(self, limit: int) -> bytes:
        return self._core._encode_tags(self._core.tags)

    def notify_msg(self, payload: bytes) -> None:
        self._core._on_message(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        return self._core._get_broadcasts(overhead, limit)

    def local_state(self, join: bool) -> bytes:
        return self._core._local_state()

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        self._core._merge_remote_state(buf, join)

    def notify_join(self, node: Node) -> None:
        self._core._node_join(node)

    def notify_leave(self, node: Node) -> None:
        self._core._node_leave(node)

    def notify_update(self, node: Node) -> None:
        self._core._node_update(node)

    def notify_merge(self, nodes: list[Node]) -> str | None:
        return self._core._merge_veto(nodes)

    def notify_alive(self, node: Node) -> str | None:
        return self._core._merge_veto([node])

    def notify_conflict(self, existing: Node, other: Node) -> None:
        self._core._internal.conflict(existing, other)

    def ack_payload(self) -> bytes:
        return self._core._ack_payload()

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        self._core._ping_complete(node, rtt, payload)


class SerfCore:
    """One serf node as a pure state machine (see the module comment).

    ``rng`` is the only randomness; ``token_bytes`` makes encryption nonces; ``advertise`` is
    the address others reach us at; ``snapshot`` (a replayed snapshot) restores the clocks and
    the auto-rejoin addresses (:attr:`rejoin_addresses`).
    """

    def __init__(
        self,
        config: SerfConfig,
        *,
        rng: random.Random,
        token_bytes: Callable[[int], bytes],
        keyring: Keyring | None = None,
        advertise: Address,
        snapshot: SnapshotState | None = None,
        merge_delegate: SerfMergeDelegate | None = None,
        reconnect_delegate: ReconnectDelegate | None = None,
        memberlist_delegate: CompositeDelegate | None = None,
    ) -> None:
        from dataclasses import replace

        assert config.memberlist is not None
        self.config = config
        self.name = config.node_name
        self.rng = rng
        self.tags = dict(config.tags)
        self._merge_delegate = merge_delegate
        self._reconnect_delegate = reconnect_delegate
        ml_config = replace(
            config.memberlist,
            name=config.node_name,
            protocol_version=2,  # Go's ProtocolVersionMap: every serf version -> 2
            delegate_protocol_min=2,
            delegate_protocol_max=5,
            delegate_protocol_version=config.protocol_version,
        )
        hooks = _Hooks(self)
        self._codec_name = ml_config.codec
        composite = CompositeDelegate(
            delegate=hooks,
            events=hooks,
            merge=hooks if merge_delegate is not None else None,
            alive=hooks if merge_delegate is not None else None,
            conflict=hooks,
            ping=None if config.disable_coordinates else hooks,
        )
        if memberlist_delegate is not None:  # the user's parts observe after ours
            composite = chain(composite, memberlist_delegate)
        self.memberlist = MemberlistCore(
            ml_config,
            rng=rng,
            token_bytes=token_bytes,
            keyring=keyring,
            delegate=composite,
            advertise=advertise,
        )
        self.codec = self.memberlist.framer.codec
        self.advertise = advertise
        self._ip = advertise.ip_bytes()
        meta = self._encode_tags(self.tags)
        if len(meta) > META_MAX_SIZE:
            raise ValueError(
                f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes (tags)"
            )
        self.serf_state = SerfState.ALIVE
        # clocks: incremented once at start, then witnessing the snapshot (reference 3.1)
        self.clock = LamportClock()
        self.event_clock = LamportClock()
        self.query_clock = LamportClock()
        for clk in (self.clock, self.event_clock, self.query_clock):
            clk.increment()
        self.event_min_time = 0
        self.query_min_time = 0
        self._rejoin: list[tuple[str, Address]] = []
        if snapshot is not None:
            self.clock.witness(snapshot.last_clock)
            self.event_clock.witness(snapshot.last_event_clock)
            self.query_clock.witness(snapshot.last_query_clock)
            self.event_min_time = snapshot.last_event_clock + 1
            self.query_min_time = snapshot.last_query_clock + 1
            for name, text in snapshot.alive_nodes.items():
                if name == self.name:
                    continue
                try:
                    self._rejoin.append((name, Address.parse(text)))
                except ValueError:
                    continue
            rng.shuffle(self._rejoin)
        self._recorder: SnapshotRecorder | None = None
        if config.snapshot_path:
            # resume counting at the file's size (as Go), so a large file compacts at once
            self._recorder = SnapshotRecorder(
                snapshot,
                rejoin_after_leave=config.rejoin_after_leave,
                offset=snapshot.size if snapshot is not None else 0,
            )
        self._members: dict[str, MemberRecord] = {}
        self._failed: dict[str, None] = {}
        self._left: dict[str, None] = {}
        self._intents: dict[str, tuple[int, int, float]] = {}  # name -> (type, ltime, when)
        self._event_buf: LamportRing[tuple[str, bytes]] = LamportRing(config.event_buffer)
        tlq = _speedups.broadcast.TransmitLimitedQueue
        mult = ml_config.retransmit_mult
        self.intent_queue = tlq(mult, self._num_serf_members)
        self.event_queue = tlq(mult, self._num_serf_members)
        self.query_queue = tlq(mult, self._num_serf_members)
        self._queries = QueryManager(self, config.query_buffer)
        self._internal = InternalQueries(self)
        self._membership = Membership(self)
        self._member_coalescer: MemberEventCoalescer | None = None
        if config.coalesce_period > 0 and config.quiescent_period > 0:
            self._member_coalescer = MemberEventCoalescer(
                config.coalesce_period, config.quiescent_period
            )
        self._user_coalescer: UserEventCoalescer | None = None
        if config.user_coalesce_period > 0 and config.user_quiescent_period > 0:
            self._user_coalescer = UserEventCoalescer(
                config.user_coalesce_period, config.user_quiescent_period
            )
        self.coordinates: CoordinateClient | None = None
        self.coordinate_cache = CoordinateCache()
        if not config.disable_coordinates:
            self.coordinates = CoordinateClient(None, rng)
            # as Go's Create: the cache holds our own coordinate from the start
            self.coordinate_cache.set(self.name, self.coordinates.get_coordinate())
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._seq = 0
        self._ml_seq = 0
        self._ml_waiting: dict[int, Callable[[mio.RequestCompleted], None]] = {}
        self._pending: list[mio.Input] = []
        #: when a list, every SendBestEffort is also appended here (for tests)
        self._pending_log: list[mio.SendBestEffort] | None = None
        self._out: list[Any] = []
        self._now = 0.0
        self._ignore_old = 0
        self._started = False
        self.flaps = 0
        self.stats_counters: dict[str, int] = {
            "dropped": 0,
            "events_dropped_old": 0,
            "queries_dropped_old": 0,
            "ping_version_ignored": 0,
            "coordinate_rejected": 0,
            "queue_depth_warnings": 0,
            "name_conflicts_unanswered": 0,
        }

    # ------------------------------------------------------------------------------------
    # public views
    # ------------------------------------------------------------------------------------

    @property
    def framer(self) -> Any:
        """The memberlist core's framer (drivers read streams with it)."""
        return self.memberlist.framer

    @property
    def state(self) -> StateTable:
        """The memberlist state table (the simulator and invariant checkers read it)."""
        return self.memberlist.state

    @property
    def keyring(self) -> Keyring | None:
        """The memberlist keyring (None: encryption off)."""
        return self.memberlist.keyring

    @property
    def rejoin_addresses(self) -> list[tuple[str, Address]]:
        """Snapshot peers to auto-rejoin, in random order (try one at a time until one
        join succeeds, as Go's ``handleRejoin``)."""
        return list(self._rejoin)

    def members(self) -> list[sio.SerfMember]:
        """Every serf member we know (every status, ourselves included)."""
        return [m.snapshot() for m in self._members.values()]

    def member(self, name: str) -> sio.SerfMember | None:
        """One member, or None."""
        m = self._members.get(name)
        return None if m is None else m.snapshot()

    def local_member(self) -> sio.SerfMember:
        """Our own member record."""
        m = self._members.get(self.name)
        if m is not None:
            return m.snapshot()
        return sio.SerfMember(
            self.name, self._ip, self.advertise.port, dict(self.tags), sio.MemberStatus.ALIVE
        )

    def stats(self) -> dict[str, str]:
        """Go's ``Stats()`` (reference 3.13)."""
        out = {
            "members": str(len(self._members)),
            "failed": str(len(self._failed)),
            "left": str(len(self._left)),
            "health_score": str(self.memberlist.health_score),
            "member_time": str(self.clock.time()),
            "event_time": str(self.event_clock.time()),
            "query_time": str(self.query_clock.time()),
            "intent_queue": str(self.intent_queue.num_queued()),
            "event_queue": str(self.event_queue.num_queued()),
            "query_queue": str(self.query_queue.num_queued()),
            "encrypted": "true" if self.memberlist.keyring is not None else "false",
        }
        if self.coordinates is not None:
            out["coordinate_resets"] = str(self.coordinates.resets)
        return out

    def get_coordinate(self) -> Coordinate | None:
        """Our Vivaldi coordinate (None when coordinates are disabled)."""
        return None if self.coordinates is None else self.coordinates.get_coordinate()

    def cached_coordinate(self, name: str) -> Coordinate | None:
        """The last coordinate we heard from ``name`` (Go's ``GetCachedCoordinate``)."""
        return self.coordinate_cache.get(name)

    def next_deadline(self) -> float | None:
        """When the driver must feed ``Tick`` next (None: never)."""
        timers = self._timers
        while timers and timers[0][1] not in self._live:
            heapq.heappop(timers)
        best = timers[0][0] if timers else None
        for d in (
            self.memberlist.next_deadline(),
            self._member_coalescer.next_deadline() if self._member_coalescer else None,
            self._user_coalescer.next_deadline() if self._user_coalescer else None,
        ):
            if d is not None and (best is None or d < best):
                best = d
        return best

    # ------------------------------------------------------------------------------------
    # the entry point
    # ------------------------------------------------------------------------------------

    def handle(self, inp: Any, now: float) -> list[Any]:
        """Apply one input at ``now``; return the effects for the driver to carry out."""
        self._now = now
        out: list[Any] = []
        self._out = out
        if isinstance(inp, mio.Tick):
            deadline = self.memberlist.next_deadline()
            if deadline is not None and deadline <= now:
                self._ml(inp)
            if self.serf_state is not SerfState.SHUTDOWN:
                self._run_timers()
                self._flush_coalescers(force=False)
        elif isinstance(inp, mio.Start):
            self._start()
        elif isinstance(inp, mio.ShutdownRequest):
            self._shutdown()
        elif self.serf_state is SerfState.SHUTDOWN and isinstance(inp, _SERF_REQUESTS):
            out.append(mio.RequestCompleted(inp.request_id, error="Serf is shut down"))
        elif isinstance(inp, sio.UserEventRequest):
            self._user_event(inp)
        elif isinstance(inp, sio.QueryRequest):
            self._queries.query(inp)
        elif isinstance(inp, sio.RespondRequest):
            err = self._queries.respond(inp.query.ltime, inp.query.id, inp.payload)
            out.append(mio.RequestCompleted(inp.request_id, error=err))
        elif isinstance(inp, sio.SetTagsRequest):
            self._set_tags(inp)
        elif isinstance(inp, sio.SerfJoinRequest):
            self._join(inp)
        elif isinstance(inp, sio.SerfLeaveRequest):
            self._leave(inp)
        elif isinstance(inp, sio.ForceLeaveRequest):
            self._force_leave(inp)
        elif isinstance(inp, sio.KeyRequest):
            self._internal.key_request(inp)
        else:
            self._ml(inp)
        self._drain()
        return out

    def _drain(self) -> None:
        while self._pending:
            self._ml(self._pending.pop(0))

    def _ml(self, inp: mio.Input) -> None:
        """Feed the memberlist core; keep its effects except the Node* notifications."""
        out = self._out
        mark = len(out)
        effects = self.memberlist.handle(inp, self._now)
        if len(out) > mark:
            # the delegate hooks already emitted serf effects for this input: memberlist's log
            # lines go before them, in the order Go writes them ("Marking b as failed" comes
            # before "EventMemberFailed: b")
            lines = [e for e in effects if isinstance(e, LogLine)]
            if lines:
                out[mark:mark] = lines
                effects = [e for e in effects if not isinstance(e, LogLine)]
        for eff in effects:
            if isinstance(eff, mio.NodeJoined | mio.NodeLeft | mio.NodeUpdated):
                continue
            if isinstance(eff, mio.RequestCompleted) and eff.request_id < 0:
                cb = self._ml_waiting.pop(eff.request_id, None)
                if cb is not None:
                    cb(eff)
                continue
            out.append(eff)

    def _ml_request(
        self, make: Callable[[int], mio.Input], done: Callable[[mio.RequestCompleted], None]
    ) -> None:
        self._ml_seq -= 1
        rid = self._ml_seq
        self._ml_waiting[rid] = done
        self._pending.append(make(rid))

    def _emit(self, eff: Any) -> None:
        self._out.append(eff)

    def _log(self, level: int, text: str) -> None:
        """One of Go's ``serf:`` log lines, as a :class:`~serf.telemetry.LogLine` effect."""
        self._out.append(serf_line(level, text))

    # ------------------------------------------------------------------------------------
    # timers
    # ------------------------------------------------------------------------------------

    def _after(self, delay: float, fn: Callable[[], None]) -> int:
        self._seq += 1
        token = self._seq
        self._live.add(token)
        heapq.heappush(self._timers, (self._now + delay, token, fn))
        return token

    def _every(self, interval: float, fn: Callable[[], None]) -> None:
        if interval <= 0:
            return

        def tick() -> None:
            self._after(interval, tick)
            fn()

        self._after(interval, tick)

    def _run_timers(self) -> None:
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            _, token, fn = heapq.heappop(timers)
            if token in self._live:
                self._live.discard(token)
                fn()
                if self.serf_state is SerfState.SHUTDOWN:
                    return

    # ------------------------------------------------------------------------------------
    # start / shutdown
    # ------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._ml(mio.Start())
        cfg = self.config
        self._every(cfg.reap_interval, self._reap)
        self._every(cfg.reconnect_interval, self._reconnect)
        self._every(cfg.queue_check_interval, self._check_queues)
        if self._recorder is not None:
            self._every(_SNAPSHOT_CLOCK_INTERVAL, self._sample_clock)

    def _shutdown(self) -> None:
        if self.serf_state is SerfState.SHUTDOWN:
            return
        self.serf_state = SerfState.SHUTDOWN
        self._ml(mio.ShutdownRequest())
        self._flush_coalescers(force=True)
        self._sample_clock()
        self._timers.clear()
        self._live.clear()
        for q in list(self._queries.out_queries.values()):
            self._queries.finish_query(q)

    def _sample_clock(self) -> None:
        if self._recorder is not None:
            self._lines(self._recorder.sample_clock(self.clock.time()))

    def _lines(self, lines: list[str]) -> None:
        if lines:
            self._emit(sio.SnapshotLines(tuple(lines)))
            rec = self._recorder
            if rec is not None and rec.needs_compaction():
                self._emit(sio.SnapshotCompact(rec.compact()))

    # ------------------------------------------------------------------------------------
    # event delivery chain
    # ------------------------------------------------------------------------------------

    def _member_event(self, etype: str, members: list[MemberRecord]) -> None:
        snaps = tuple(m.snapshot() for m in members)
        if self._recorder is not None:
            self._lines(self._recorder.record_member_event(etype, snaps, self.clock.time()))
        if self._member_coalescer is not None and self._member_coalescer.handle(
            MemberEvent(etype, snaps), self._now
        ):
            return
        self._emit(_EFFECT_OF[etype](snaps))

    def _user_event_out(self, ltime: int, name: str, payload: bytes, cc: bool) -> None:
        if self._recorder is not None:
            self._lines(self._recorder.record_user_event(ltime))
        rec = UserEventRecord(ltime, name, payload, cc)
        if self._user_coalescer is not None and self._user_coalescer.handle(rec, self._now):
            return
        self._emit(sio.UserEventReceived(ltime, name, payload, cc))

    def _flush_coalescers(self, force: bool) -> None:
        now = self._now
        uc = self._user_coalescer
        if uc is not None:
            for rec in uc.flush(now) if force else uc.flush_due(now):
                self._emit(sio.UserEventReceived(rec.ltime, rec.name, rec.payload, rec.coalesce))
        mc = self._member_coalescer
        if mc is not None:
            for ev in mc.flush(now) if force else mc.flush_due(now):
                members = tuple(m for m in ev.members if isinstance(m, sio.SerfMember))
                self._emit(_EFFECT_OF[ev.type](members))

    # ------------------------------------------------------------------------------------
    # tags / meta
    # ------------------------------------------------------------------------------------

    def _encode_tags(self, tags: dict[str, str]) -> bytes:
        if self.config.protocol_version < 3:
            return tags.get("role", "").encode("utf-8", "surrogateescape")
        return self.codec.encode_tags(tags)

    def _decode_tags(self, meta: bytes) -> dict[str, str]:
        try:
            return self.codec.decode_tags(meta)
        except Exception:  # bad bytes from the network
            return {}

    def _set_tags(self, req: sio.SetTagsRequest) -> None:
        meta = self._encode_tags(req.tags)
        if len(meta) > META_MAX_SIZE:
            err = f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes"
            self._emit(mio.RequestCompleted(req.request_id, error=err))
            return
        self.tags = dict(req.tags)  # kept even if the broadcast wait times out (as Go)

        def done(res: mio.RequestCompleted) -> None:
            self._emit(mio.RequestCompleted(req.request_id, error=res.error))

        timeout = self.config.broadcast_timeout
        self._ml_request(lambda rid: mio.UpdateNodeRequest(rid, timeout), done)

    # ------------------------------------------------------------------------------------
    # memberlist event hooks: the member status machine (reference 3.2)
    # ------------------------------------------------------------------------------------

    # The status machine and the intents live in serf.core.intents.Membership; these are the
    # entry points the memberlist hooks (and tests) call.

    def _node_join(self, node: Node) -> None:
        self._membership.node_join(node)

    def _node_leave(self, node: Node) -> None:
        self._membership.node_leave(node)

    def _node_update(self, node: Node) -> None:
        self._membership.node_update(node)

    def _leave_intent(self, msg: MessageLeave) -> bool:
        return self._membership.leave_intent(msg)

    def _join_intent(self, msg: MessageJoin) -> bool:
        return self._membership.join_intent(msg)

    def _merge_veto(self, nodes: list[Node]) -> str | None:
        if self._merge_delegate is None:
            return None
        members: list[sio.SerfMember] = []
        for node in nodes:
            if self.config.validate_node_names:
                err = node_name_error(node.name)
                if err is not None:
                    return err
            if len(node.addr) not in (4, 16):
                return f"IP byte length is invalid: {len(node.addr)} bytes is not either 4 or 16"
            if len(node.meta) > META_MAX_SIZE:
                return f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes"
            status = (
                sio.MemberStatus.LEFT if node.state is NodeState.LEFT else sio.MemberStatus.NONE
            )
            m = MemberRecord(node.name, bytes(node.addr), node.port)
            m.tags = self._decode_tags(node.meta)
            m.status = status
            m.vsn = bytes(node.vsn)
            members.append(m.snapshot())
        return self._merge_delegate.notify_merge(members)

    # ------------------------------------------------------------------------------------
    # gossip queues
    # ------------------------------------------------------------------------------------

    def _num_serf_members(self) -> int:
        return len(self._members)

    def _get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        msgs: list[bytes] = []
        for queue in (self.intent_queue, self.query_queue, self.event_queue):
            used = sum(len(m) + overhead for m in msgs)
            if limit - used <= overhead:
                break
            msgs.extend(queue.get_broadcasts(overhead, limit - used))
        for m in msgs:
            self._emit(MetricSample(SAMPLE, _MSGS_SENT, float(len(m))))
        return msgs

    def _queue_limit(self) -> int:
        cfg = self.config
        if cfg.min_queue_depth > 0:
            return max(cfg.min_queue_depth, _MIN_QUEUE_MULT * len(self._members))
        return cfg.max_queue_depth

    def _check_queues(self) -> None:
        limit = self._queue_limit()
        for name, queue in (
            ("Intent", self.intent_queue),
            ("Event", self.event_queue),
            ("Query", self.query_queue),
        ):
            depth = queue.num_queued()
            self._emit(MetricSample(SAMPLE, ("serf", "queue", name), float(depth)))
            if depth >= self.config.queue_depth_warning:
                self.stats_counters["queue_depth_warnings"] += 1
                self._log(WARN, f"{name} queue depth: {depth}")
            if depth > limit:
                self._log(
                    WARN,
                    f"{name} queue depth ({depth}) exceeds limit ({limit}), dropping messages!",
                )
                queue.prune(limit)

    # ------------------------------------------------------------------------------------
    # inbound serf messages (reference 3.6)
    # ------------------------------------------------------------------------------------

    def _drop(self, reason: str, level: int = ERR) -> None:
        self.stats_counters["dropped"] += 1
        self._emit(mio.Dropped(reason))
        self._log(level, reason)

    def _on_message(self, raw: bytes) -> None:
        if not raw or self.serf_state is SerfState.SHUTDOWN:
            return
        kind = raw[0]
        self._emit(MetricSample(SAMPLE, _MSGS_RECEIVED, float(len(raw))))
        try:
            msg = self.codec.decode_serf(raw)
        except Exception as exc:  # bad bytes from the network: a counted drop
            self._drop(f"Error decoding message type {kind}: {exc}")
            return
        name = _MESSAGE_TYPE_NAMES.get(type(msg))
        if name is not None:
            self._log(DEBUG, f"{name}: {_message_subject(msg)}")
        if isinstance(msg, MessageLeave):
            if self._membership.leave_intent(msg):
                self.intent_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageJoin):
            if self._membership.join_intent(msg):
                self.intent_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageUserEvent):
            if self._handle_user_event(msg):
                self.event_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageQuery):
            if self._queries.handle_query(msg):
                self.query_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageQueryResponse):
            self._queries.handle_query_response(msg)
        elif isinstance(msg, MessageRelay):
            ip = msg.dest_addr.ip
            try:
                dest = Address.from_ip(ip, msg.dest_addr.port)
            except ValueError as exc:
                self._drop(f"Error decoding relay header: {exc}")
                return
            self._log(DEBUG, f"Relaying response to addr: {dest}")
            self._send(dest, bytes(msg.payload))
        else:
            self._drop(f"Received message of unknown type: {kind}", WARN)

    def _send(self, dest: Address, raw: bytes) -> None:
        """A serf message to ``dest`` in one packet (Go's SendToAddress); to ourselves it is
        handled at once (differs from Go, which loops it through the network)."""
        if dest == self.advertise:
            self._on_message(raw)
        else:
            send = mio.SendBestEffort(dest, raw)
            self._pending.append(send)
            if self._pending_log is not None:
                self._pending_log.append(send)

    def _handle_user_event(self, msg: MessageUserEvent, from_push_pull: bool = False) -> bool:
        self.event_clock.witness(msg.ltime)
        if msg.ltime < self.event_min_time:
            return False
        cur = self.event_clock.time()
        if self._event_buf.too_old(msg.ltime, cur):
            self.stats_counters["events_dropped_old"] += 1
            self._log(WARN, f"received old event {msg.name} from time {msg.ltime} (current: {cur})")
            return False
        payload = bytes(msg.payload or b"")
        if not self._event_buf.add(msg.ltime, (msg.name, payload)):
            return False
        self._emit(_EVENTS)
        self._emit(MetricSample(COUNTER, ("serf", "events", msg.name), 1.0))
        self._user_event_out(msg.ltime, msg.name, payload, msg.cc and not from_push_pull)
        return True

    # ------------------------------------------------------------------------------------
    # push/pull user state
    # ------------------------------------------------------------------------------------

    def _local_state(self) -> bytes:
        status = {m.name: m.status_ltime for m in self._members.values()}
        events: list[UserEvents | None] = []
        for slot in self._event_buf.slots():
            if slot is None:
                events.append(None)
            else:
                events.append(UserEvents(slot[0], [UserEvent(n, p) for n, p in slot[1]]))
        msg = MessagePushPull(
            self.clock.time(),
            status,
            list(self._left),
            self.event_clock.time(),
            events,
            self.query_clock.time(),
        )
        return self.codec.encode(msg)

    def _merge_remote_state(self, buf: bytes, join: bool) -> None:
        if not buf or buf[0] != _TYPE_PUSH_PULL:
            return
        try:
            msg = self.codec.decode_serf(buf)
        except Exception as exc:  # bad bytes from the network
            self._drop(f"bad push/pull user state: {exc}")
            return
        if not isinstance(msg, MessagePushPull):
            return
        if msg.ltime > 0:
            self.clock.witness(msg.ltime - 1)
        if msg.event_ltime > 0:
            self.event_clock.witness(msg.event_ltime - 1)
        if msg.query_ltime > 0:
            self.query_clock.witness(msg.query_ltime - 1)
        status = msg.status_ltimes or {}
        left = set(msg.left_members or ())
        for name in left:
            self._membership.leave_intent(MessageLeave(status.get(name, 0) + 1, name))
        for name, ltime in status.items():
            if name not in left:
                self._membership.join_intent(MessageJoin(ltime, name))
        if join and self._ignore_old > 0 and msg.event_ltime > self.event_min_time:
            self.event_min_time = msg.event_ltime
        for events in msg.events or ():
            if events is None:
                continue
            for ev in events.events or ():
                self._handle_user_event(
                    MessageUserEvent(events.ltime, ev.name, ev.payload), from_push_pull=True
                )

    # ------------------------------------------------------------------------------------
    # coordinates (reference 3.11)
    # ------------------------------------------------------------------------------------

    def _ack_payload(self) -> bytes:
        if self.coordinates is None:
            return b""
        return bytes([_PING_VERSION]) + self.codec.encode_coordinate(
            self.coordinates.get_coordinate()
        )

    def _ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        if not payload or self.coordinates is None:
            return
        if payload[0] != _PING_VERSION:
            self.stats_counters["ping_version_ignored"] += 1
            self._log(ERR, f"Unsupported ping version: {payload[0]}")
            return
        try:
            coord = self.codec.decode_coordinate(payload[1:])
        except Exception as exc:  # bad coordinate from the network
            self.stats_counters["coordinate_rejected"] += 1
            self._log(ERR, f"Failed to decode coordinate from ping: {exc}")
            return
        before = self.coordinates.get_coordinate()
        try:
            after = self.coordinates.update(node.name, coord, rtt)
        except Exception as exc:  # rejected by Vivaldi
            self.stats_counters["coordinate_rejected"] += 1
            self._emit(_COORDINATE_REJECTED)
            self._log(TRACE, f"Rejected coordinate from {node.name}: {exc}")
            return
        # as Go: how far our own coordinate moved, in milliseconds
        moved = distance(before, after) * 1000.0
        self._emit(MetricSample(SAMPLE, ("serf", "coordinate", "adjustment-ms"), moved))
        self.coordinate_cache.set(node.name, coord)
        self.coordinate_cache.set(self.name, self.coordinates.get_coordinate())

    # ------------------------------------------------------------------------------------
    # requests: user events (queries and responses: serf.core.queries)
    # ------------------------------------------------------------------------------------

    def _user_event(self, req: sio.UserEventRequest) -> None:
        limit = self.config.user_event_size_limit
        size = len(req.name.encode("utf-8", "surrogateescape")) + len(req.payload)
        err = None
        if size > limit:
            err = f"user event exceeds configured limit of {limit} bytes before encoding"
        elif size > USER_EVENT_SIZE_LIMIT:
            err = f"user event exceeds sane limit of {USER_EVENT_SIZE_LIMIT} bytes before encoding"
        if err is None:
            msg = MessageUserEvent(self.event_clock.time(), req.name, req.payload, req.coalesce)
            raw = self.codec.encode(msg)
            if len(raw) > limit:  # Go v0.11.0's words
                err = f"encoded user event exceeds configured limit of {limit} bytes after encoding"
            elif len(raw) > USER_EVENT_SIZE_LIMIT:
                err = (
                    "encoded user event exceeds reasonable limit of "
                    f"{USER_EVENT_SIZE_LIMIT} bytes after encoding"
                )
            else:
                self.event_clock.increment()
                self._handle_user_event(msg)
                self.event_queue.queue_broadcast(raw, unique=True)
        self._emit(mio.RequestCompleted(req.request_id, error=err))

    def default_query_timeout(self) -> float:
        """Go's ``DefaultQueryTimeout``: gossip interval x mult x ceil(log10(N + 1))."""
        n = self.memberlist.num_members()
        scale = max(1, math.ceil(math.log10(n + 1)))
        return self.memberlist.config.gossip_interval * self.config.query_timeout_mult * scale

    # ------------------------------------------------------------------------------------
    # join / leave / force-leave (reference 3.12)
    # ------------------------------------------------------------------------------------

    def _join(self, req: sio.SerfJoinRequest) -> None:
        if self.serf_state is not SerfState.ALIVE:
            err = "Serf can't Join after Leave or Shutdown"
            self._emit(mio.RequestCompleted(req.request_id, result=0, error=err))
            return
        if req.ignore_old:
            self._ignore_old += 1

        def done(res: mio.RequestCompleted) -> None:
            if req.ignore_old:
                self._ignore_old -= 1
            if res.result and self.serf_state is SerfState.ALIVE:
                self._membership.broadcast_join(self.clock.time())
            self._emit(mio.RequestCompleted(req.request_id, result=res.result, error=res.error))

        self._ml_request(lambda rid: mio.JoinRequest(rid, req.addresses), done)

    def _others_alive(self) -> bool:
        return any(
            m.status is sio.MemberStatus.ALIVE and m.name != self.name
            for m in self._members.values()
        )

    def _wait_broadcast(self, raw: bytes, timeout: float, then: Callable[[bool], None]) -> None:
        """Queue an intent and call ``then(finished)`` once it finished or timed out."""
        done = [False]
        token = 0

        def finished() -> None:
            if not done[0]:
                done[0] = True
                self._live.discard(token)
                then(True)

        def timed_out() -> None:
            if not done[0]:
                done[0] = True
                then(False)

        token = self._after(timeout, timed_out)
        self.intent_queue.queue_broadcast(raw, unique=True, on_finished=finished)

    def _leave(self, req: sio.SerfLeaveRequest) -> None:
        if self.serf_state is SerfState.LEFT:
            self._emit(mio.RequestCompleted(req.request_id))
            return
        if self.serf_state is SerfState.LEAVING:
            self._emit(mio.RequestCompleted(req.request_id, error="Leave already in progress"))
            return
        if self.serf_state is SerfState.SHUTDOWN:
            self._emit(mio.RequestCompleted(req.request_id, error="Leave called after Shutdown"))
            return
        self.serf_state = SerfState.LEAVING
        if self._recorder is not None:
            self._lines(self._recorder.leave())
        msg = MessageLeave(self.clock.time(), self.name)
        self.clock.increment()
        self._membership.leave_intent(msg)
        cfg = self.config

        def finish() -> None:
            if self.serf_state is not SerfState.SHUTDOWN:
                self.serf_state = SerfState.LEFT
            self._emit(mio.RequestCompleted(req.request_id))

        def after_memberlist(res: mio.RequestCompleted) -> None:
            self._after(cfg.leave_propagate_delay, finish)

        def after_broadcast(_finished: bool) -> None:
            self._ml_request(
                lambda rid: mio.LeaveRequest(rid, cfg.broadcast_timeout), after_memberlist
            )

        if self._others_alive():
            self._wait_broadcast(self.codec.encode(msg), cfg.broadcast_timeout, after_broadcast)
        else:
            after_broadcast(True)

    def _force_leave(self, req: sio.ForceLeaveRequest) -> None:
        msg = MessageLeave(self.clock.time(), req.node, req.prune)
        self.clock.increment()
        self._membership.leave_intent(msg)
        if not self._others_alive():
            self._emit(mio.RequestCompleted(req.request_id))
            return

        def then(finished: bool) -> None:
            err = None if finished else "timed out broadcasting node removal"
            self._emit(mio.RequestCompleted(req.request_id, error=err))

        self._wait_broadcast(self.codec.encode(msg), self.config.broadcast_timeout, then)

    # ------------------------------------------------------------------------------------
    # periodic work: reap, reconnect
    # ------------------------------------------------------------------------------------

    def _timeout_for(self, m: MemberRecord, default: float) -> float:
        if self._reconnect_delegate is None:
            return default
        return self._reconnect_delegate.reconnect_timeout(m.snapshot(), default)

    def _reap(self) -> None:
        now = self._now
        cfg = self.config
        for names, default in (
            (self._failed, cfg.reconnect_timeout),
            (self._left, cfg.tombstone_timeout),
        ):
            for name in list(names):
                m = self._members.get(name)
                if m is None:
                    names.pop(name, None)
                    continue
                if now - m.leave_time > self._timeout_for(m, default):
                    self._log(INFO, f"EventMemberReap: {m.name}")
                    self._membership.erase(m)
        for name, (_, _, when) in list(self._intents.items()):
            if now - when > cfg.recent_intent_timeout:
                del self._intents[name]

    def _reconnect(self) -> None:
        n_failed = len(self._failed)
        if n_failed == 0 or self.serf_state is not SerfState.ALIVE:
            return
        denom = len(self._members) - n_failed - len(self._left)
        if denom <= 0:
            denom = 1
        if self.rng.random() > n_failed / denom:
            self._log(DEBUG, "forgoing reconnect for random throttling")
            return
        names = list(self._failed)
        m = self._members.get(names[self.rng.randrange(len(names))])
        if m is None:
            return
        addr = Address.from_ip(m.addr, m.port)
        self._log(INFO, f"attempting reconnect to {m.name} {addr}")
        self._ml_request(lambda rid: mio.JoinRequest(rid, (addr,)), lambda res: None)
