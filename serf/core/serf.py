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
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

from serf import _speedups
from serf.address import Address, normalize_ip
from serf.config import META_MAX_SIZE, USER_EVENT_SIZE_LIMIT, SerfConfig, node_name_error
from serf.core import io as sio
from serf.core.coalesce import (
    MemberEvent,
    MemberEventCoalescer,
    UserEventCoalescer,
    UserEventRecord,
)
from serf.core.filters import matches_encoded
from serf.core.lamport import LamportClock
from serf.core.members import JOIN_INTENT, LEAVE_INTENT, NODE_JOIN, NODE_LEAVE, transition
from serf.core.snapshot import SnapshotRecorder, SnapshotState
from serf.core.vivaldi import CoordinateCache, CoordinateClient
from serf.memberlist import io as mio
from serf.memberlist.core import MemberlistCore
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.state import Node, NodeState, StateTable
from serf.wire.messages import (
    Coordinate,
    FilterNode,
    FilterTag,
    Member,
    MessageConflictResponse,
    MessageJoin,
    MessageKeyRequest,
    MessageKeyResponse,
    MessageLeave,
    MessagePushPull,
    MessageQuery,
    MessageQueryResponse,
    MessageRelay,
    MessageUserEvent,
    UDPAddr,
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

QUERY_FLAG_ACK = 1
QUERY_FLAG_NO_BROADCAST = 2
INTERNAL_QUERY_PREFIX = "_serf_"
_PING_VERSION = 1
_SNAPSHOT_CLOCK_INTERVAL = 0.5
_MIN_QUEUE_MULT = 2

_TYPE_LEAVE = 0
_TYPE_JOIN = 1
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
_KEY_OPS = {"install": "install-key", "use": "use-key", "remove": "remove-key", "list": "list-keys"}


class SerfState(IntEnum):
    """Go's ``SerfState``."""

    ALIVE = 0
    LEAVING = 1
    LEFT = 2
    SHUTDOWN = 3


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


class _Member:
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


class _OutQuery:
    """A query we started: its answers so far and who consumes them."""

    __slots__ = (
        "acks",
        "deadline",
        "finished",
        "id",
        "ltime",
        "on_finish",
        "on_response",
        "request_ack",
        "request_id",
        "responses",
        "token",
    )

    def __init__(self, request_id: int, ltime: int, qid: int, deadline: float, ack: bool) -> None:
        self.request_id = request_id
        self.ltime = ltime
        self.id = qid
        self.deadline = deadline
        self.request_ack = ack
        self.acks: set[str] = set()
        self.responses: set[str] = set()
        self.finished = False
        self.token = 0
        self.on_response: Callable[[_OutQuery, str, bytes], None] | None = None
        self.on_finish: Callable[[], None] | None = None


class _InQuery:
    """A query we received and may answer once."""

    __slots__ = ("addr", "deadline", "port", "relay_factor", "responded", "source")

    def __init__(
        self, addr: bytes, port: int, relay_factor: int, deadline: float, source: str
    ) -> None:
        self.source = source
        self.addr = addr
        self.port = port
        self.relay_factor = relay_factor
        self.deadline = deadline
        self.responded = False


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
        self._core._conflict(existing, other)

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
            self._recorder = SnapshotRecorder(
                snapshot, rejoin_after_leave=config.rejoin_after_leave
            )
        self._members: dict[str, _Member] = {}
        self._failed: dict[str, None] = {}
        self._left: dict[str, None] = {}
        self._intents: dict[str, tuple[int, int, float]] = {}  # name -> (type, ltime, when)
        self._event_buf: list[tuple[int, list[tuple[str, bytes]]] | None] = [
            None
        ] * config.event_buffer
        self._query_buf: list[tuple[int, set[int]] | None] = [None] * config.query_buffer
        tlq = _speedups.broadcast.TransmitLimitedQueue
        mult = ml_config.retransmit_mult
        self.intent_queue = tlq(mult, self._num_serf_members)
        self.event_queue = tlq(mult, self._num_serf_members)
        self.query_queue = tlq(mult, self._num_serf_members)
        self._out_queries: dict[int, _OutQuery] = {}  # by ltime
        self._in_queries: dict[tuple[int, int], _InQuery] = {}
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
        self._conflict_running = False
        self._started = False
        self.flaps = 0
        self.stats_counters: dict[str, int] = {
            "dropped": 0,
            "events_dropped_old": 0,
            "queries_dropped_old": 0,
            "ping_version_ignored": 0,
            "coordinate_rejected": 0,
            "queue_depth_warnings": 0,
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
            self._query(inp)
        elif isinstance(inp, sio.RespondRequest):
            err = self._respond(inp.query.ltime, inp.query.id, inp.payload)
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
            self._key_request(inp)
        else:
            self._ml(inp)
        self._drain()
        return out

    def _drain(self) -> None:
        while self._pending:
            self._ml(self._pending.pop(0))

    def _ml(self, inp: mio.Input) -> None:
        """Feed the memberlist core; keep its effects except the Node* notifications."""
        effects = self.memberlist.handle(inp, self._now)
        out = self._out
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
        for q in list(self._out_queries.values()):
            self._finish_query(q)

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

    def _member_event(self, etype: str, members: list[_Member]) -> None:
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
            return tags.get("role", "").encode("utf-8")
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

    def _refresh(self, m: _Member, node: Node) -> None:
        m.addr = bytes(node.addr)
        m.port = node.port
        m.tags = self._decode_tags(node.meta)
        m.vsn = bytes(node.vsn)

    def _node_join(self, node: Node) -> None:
        m = self._members.get(node.name)
        old = sio.MemberStatus.NONE
        if m is None:
            m = _Member(node.name, bytes(node.addr), node.port)
            m.status = sio.MemberStatus.ALIVE
            intent = self._intents.pop(node.name, None)
            if intent is not None:
                m.status_ltime = intent[1]
                if intent[0] == _TYPE_LEAVE:
                    m.status = sio.MemberStatus.LEAVING
            self._members[node.name] = m
        else:
            old = m.status
            if old is sio.MemberStatus.FAILED and self._now - m.leave_time < (
                self.config.flap_timeout
            ):
                self.flaps += 1
            step = transition(NODE_JOIN, old)
            m.status = step[0] if step is not None else sio.MemberStatus.ALIVE
            m.leave_time = 0.0
            self._failed.pop(node.name, None)
            self._left.pop(node.name, None)
        self._refresh(m, node)
        self._member_event("member-join", [m])

    def _node_leave(self, node: Node) -> None:
        m = self._members.get(node.name)
        if m is None:
            return
        step = transition(NODE_LEAVE, m.status)
        if step is None:
            return
        m.status, etype = step
        if m.status is sio.MemberStatus.LEFT:
            self._left[m.name] = None
        else:
            self._failed[m.name] = None
        m.leave_time = self._now
        if etype is not None:
            self._member_event(etype, [m])

    def _node_update(self, node: Node) -> None:
        m = self._members.get(node.name)
        if m is None:
            return
        self._refresh(m, node)
        self._member_event("member-update", [m])

    def _erase(self, m: _Member) -> None:
        self._members.pop(m.name, None)
        self._failed.pop(m.name, None)
        self._left.pop(m.name, None)
        if self.coordinates is not None:
            self.coordinates.forget_node(m.name)
        self.coordinate_cache.remove(m.name)
        self._member_event("member-reap", [m])

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
            m = _Member(node.name, bytes(node.addr), node.port)
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
        return msgs

    def _queue_limit(self) -> int:
        cfg = self.config
        if cfg.min_queue_depth > 0:
            return max(cfg.min_queue_depth, _MIN_QUEUE_MULT * len(self._members))
        return cfg.max_queue_depth

    def _check_queues(self) -> None:
        limit = self._queue_limit()
        for queue in (self.intent_queue, self.event_queue, self.query_queue):
            depth = queue.num_queued()
            if depth >= self.config.queue_depth_warning:
                self.stats_counters["queue_depth_warnings"] += 1
            if depth > limit:
                queue.prune(limit)

    # ------------------------------------------------------------------------------------
    # inbound serf messages (reference 3.6)
    # ------------------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.stats_counters["dropped"] += 1
        self._emit(mio.Dropped(reason))

    def _on_message(self, raw: bytes) -> None:
        if not raw or self.serf_state is SerfState.SHUTDOWN:
            return
        kind = raw[0]
        try:
            msg = self.codec.decode_serf(raw)
        except Exception as exc:  # bad bytes from the network: a counted drop
            self._drop(f"bad serf message type {kind}: {exc}")
            return
        if isinstance(msg, MessageLeave):
            if self._leave_intent(msg):
                self.intent_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageJoin):
            if self._join_intent(msg):
                self.intent_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageUserEvent):
            if self._handle_user_event(msg):
                self.event_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageQuery):
            if self._handle_query(msg):
                self.query_queue.queue_broadcast(raw, unique=True)
        elif isinstance(msg, MessageQueryResponse):
            self._handle_query_response(msg)
        elif isinstance(msg, MessageRelay):
            ip = msg.dest_addr.ip
            try:
                dest = Address.from_ip(ip, msg.dest_addr.port)
            except ValueError as exc:
                self._drop(f"bad relay destination: {exc}")
                return
            self._send(dest, bytes(msg.payload))
        else:
            self._drop(f"unexpected serf message type {kind}")

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

    def _record_intent(self, name: str, kind: int, ltime: int) -> bool:
        old = self._intents.get(name)
        if old is None or ltime > old[1]:
            self._intents[name] = (kind, ltime, self._now)
            return True
        return False

    def _leave_intent(self, msg: MessageLeave) -> bool:
        self.clock.witness(msg.ltime)
        m = self._members.get(msg.node)
        if m is None:
            return self._record_intent(msg.node, _TYPE_LEAVE, msg.ltime)
        if msg.ltime <= m.status_ltime:
            return False
        if msg.node == self.name and self.serf_state is SerfState.ALIVE:
            self._broadcast_join(self.clock.time())  # refute
            return False
        m.status_ltime = msg.ltime
        step = transition(LEAVE_INTENT, m.status)
        if step is not None:
            old, (m.status, etype) = m.status, step
            if old is sio.MemberStatus.FAILED and m.status is sio.MemberStatus.LEFT:
                self._failed.pop(m.name, None)
                self._left[m.name] = None
            if etype is not None:
                self._member_event(etype, [m])
        if msg.prune:
            self._prune(m)
        return True

    def _prune(self, m: _Member) -> None:
        if m.status is sio.MemberStatus.LEAVING:
            delay = self.config.broadcast_timeout + self.config.leave_propagate_delay
            self._after(delay, lambda: self._prune_now(m.name))
        else:
            self._prune_now(m.name)

    def _prune_now(self, name: str) -> None:
        m = self._members.get(name)
        if m is not None:
            self._erase(m)

    def _join_intent(self, msg: MessageJoin) -> bool:
        self.clock.witness(msg.ltime)
        m = self._members.get(msg.node)
        if m is None:
            return self._record_intent(msg.node, _TYPE_JOIN, msg.ltime)
        if msg.ltime <= m.status_ltime:
            return False
        m.status_ltime = msg.ltime
        step = transition(JOIN_INTENT, m.status)
        if step is not None:
            m.status = step[0]
        return True

    def _broadcast_join(self, ltime: int) -> None:
        msg = MessageJoin(ltime, self.name)
        self.clock.witness(ltime)
        self._join_intent(msg)
        self.intent_queue.queue_broadcast(self.codec.encode(msg), unique=True)

    def _handle_user_event(self, msg: MessageUserEvent, from_push_pull: bool = False) -> bool:
        self.event_clock.witness(msg.ltime)
        if msg.ltime < self.event_min_time:
            return False
        cur = self.event_clock.time()
        size = len(self._event_buf)
        if cur > size and msg.ltime < cur - size:
            self.stats_counters["events_dropped_old"] += 1
            return False
        payload = bytes(msg.payload or b"")
        idx = msg.ltime % size
        slot = self._event_buf[idx]
        if slot is not None and slot[0] == msg.ltime:
            if (msg.name, payload) in slot[1]:
                return False
            slot[1].append((msg.name, payload))
        else:
            self._event_buf[idx] = (msg.ltime, [(msg.name, payload)])
        self._user_event_out(msg.ltime, msg.name, payload, msg.cc and not from_push_pull)
        return True

    def _handle_query(self, msg: MessageQuery) -> bool:
        self.query_clock.witness(msg.ltime)
        if msg.ltime < self.query_min_time:
            return False
        cur = self.query_clock.time()
        size = len(self._query_buf)
        if cur > size and msg.ltime < cur - size:
            self.stats_counters["queries_dropped_old"] += 1
            return False
        idx = msg.ltime % size
        slot = self._query_buf[idx]
        if slot is not None and slot[0] == msg.ltime:
            if msg.id in slot[1]:
                return False
            slot[1].add(msg.id)
        else:
            self._query_buf[idx] = (msg.ltime, {msg.id})
        rebroadcast = not msg.flags & QUERY_FLAG_NO_BROADCAST
        if not matches_encoded(msg.filters, self.codec.decode_filter, self.name, self.tags):
            return rebroadcast
        addr = bytes(msg.addr or b"")
        if msg.flags & QUERY_FLAG_ACK:
            ack = MessageQueryResponse(msg.ltime, msg.id, self.name, QUERY_FLAG_ACK, None)
            raw = self.codec.encode(ack)
            self._send_response(addr, msg.port, msg.source_node, raw, msg.relay_factor)
        deadline = self._now + msg.timeout / 1e9
        if self._recorder is not None:
            self._lines(self._recorder.record_query(msg.ltime))
        key = (msg.ltime, msg.id)
        self._in_queries[key] = _InQuery(
            addr, msg.port, msg.relay_factor, deadline, msg.source_node
        )
        self._after(max(0.0, deadline - self._now), lambda: self._forget_in_query(key))
        handle = sio.QueryHandle(
            msg.ltime, msg.id, msg.name, bytes(msg.payload or b""), msg.source_node, deadline
        )
        if msg.name.startswith(INTERNAL_QUERY_PREFIX):
            self._internal_query(handle)
        else:
            self._emit(sio.QueryReceived(handle))
        return rebroadcast

    def _forget_in_query(self, key: tuple[int, int]) -> None:
        self._in_queries.pop(key, None)

    def _send_response(
        self, addr: bytes, port: int, source: str, raw: bytes, relay_factor: int
    ) -> str | None:
        try:
            dest = Address.from_ip(addr, port)
        except ValueError as exc:
            return f"bad query source address: {exc}"
        self._send(dest, raw)
        return self._relay(addr, port, source, raw, relay_factor)

    def _relay(self, addr: bytes, port: int, source: str, raw: bytes, factor: int) -> str | None:
        if factor <= 0 or len(self._members) < factor + 1:
            return None
        relay = self.codec.encode(MessageRelay(UDPAddr(addr, port, ""), source, raw))
        if len(relay) > self.config.query_response_size_limit:
            return (
                f"relayed response exceeds limit of {self.config.query_response_size_limit} bytes"
            )
        candidates = [
            m
            for m in self._members.values()
            if m.status is sio.MemberStatus.ALIVE
            and m.name != self.name
            and len(m.vsn) >= 2
            and m.vsn[1] >= 5
        ]
        chosen: dict[str, _Member] = {}
        for _ in range(3 * factor):
            if len(chosen) >= factor or not candidates:
                break
            m = candidates[self.rng.randrange(len(candidates))]
            chosen[m.name] = m
        for m in chosen.values():
            self._send(Address.from_ip(m.addr, m.port), relay)
        return None

    def _handle_query_response(self, msg: MessageQueryResponse) -> None:
        q = self._out_queries.get(msg.ltime)
        if q is None or q.id != msg.id or q.finished:
            return
        if msg.flags & QUERY_FLAG_ACK:
            if msg.from_ in q.acks:
                return
            q.acks.add(msg.from_)
            if q.request_ack and q.request_id >= 0:
                self._emit(sio.QueryAckReceived(q.request_id, msg.from_))
            return
        if msg.from_ in q.responses:
            return
        q.responses.add(msg.from_)
        payload = bytes(msg.payload or b"")
        if q.on_response is not None:
            q.on_response(q, msg.from_, payload)
        else:
            self._emit(sio.QueryResponseReceived(q.request_id, msg.from_, payload))

    # ------------------------------------------------------------------------------------
    # push/pull user state
    # ------------------------------------------------------------------------------------

    def _local_state(self) -> bytes:
        status = {m.name: m.status_ltime for m in self._members.values()}
        events: list[UserEvents | None] = []
        for slot in self._event_buf:
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
            self._leave_intent(MessageLeave(status.get(name, 0) + 1, name))
        for name, ltime in status.items():
            if name not in left:
                self._join_intent(MessageJoin(ltime, name))
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
            return
        try:
            coord = self.codec.decode_coordinate(payload[1:])
            self.coordinates.update(node.name, coord, rtt)
        except Exception:  # bad coordinate from the network, or rejected by Vivaldi
            self.stats_counters["coordinate_rejected"] += 1
            return
        self.coordinate_cache.set(node.name, coord)
        self.coordinate_cache.set(self.name, self.coordinates.get_coordinate())

    # ------------------------------------------------------------------------------------
    # requests: user events, queries, responses
    # ------------------------------------------------------------------------------------

    def _user_event(self, req: sio.UserEventRequest) -> None:
        limit = self.config.user_event_size_limit
        size = len(req.name.encode("utf-8")) + len(req.payload)
        err = None
        if size > limit:
            err = f"user event exceeds configured limit of {limit} bytes before encoding"
        elif size > USER_EVENT_SIZE_LIMIT:
            err = f"user event exceeds sane limit of {USER_EVENT_SIZE_LIMIT} bytes before encoding"
        if err is None:
            msg = MessageUserEvent(self.event_clock.time(), req.name, req.payload, req.coalesce)
            raw = self.codec.encode(msg)
            if len(raw) > limit:
                err = (
                    f"encoded length of user event exceeds configured limit of {limit} "
                    "bytes after encoding"
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

    def _start_query(
        self,
        request_id: int,
        name: str,
        payload: bytes,
        *,
        filter_nodes: tuple[str, ...] = (),
        filter_tags: tuple[tuple[str, str], ...] = (),
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float = 0.0,
        on_response: Callable[[_OutQuery, str, bytes], None] | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> tuple[_OutQuery | None, str | None]:
        if self.config.protocol_version < 4:
            return None, "Feature not supported"
        if self.serf_state is SerfState.SHUTDOWN:
            return None, "Serf is shut down"
        if timeout <= 0:
            timeout = self.default_query_timeout()
        filters: list[bytes] = []
        if filter_nodes:
            filters.append(self.codec.encode_filter(FilterNode(list(filter_nodes))))
        for tag, expr in filter_tags:
            filters.append(self.codec.encode_filter(FilterTag(tag, expr)))
        ltime = self.query_clock.time()
        qid = self.rng.getrandbits(31)
        msg = MessageQuery(
            ltime,
            qid,
            self._ip,
            self.advertise.port,
            self.name,
            filters or None,
            QUERY_FLAG_ACK if request_ack else 0,
            relay_factor,
            round(timeout * 1e9),
            name,
            payload,
        )
        raw = self.codec.encode(msg)
        if len(raw) > self.config.query_size_limit:
            return None, f"query exceeds limit of {self.config.query_size_limit} bytes"
        q = _OutQuery(request_id, ltime, qid, self._now + timeout, request_ack)
        q.on_response = on_response
        q.on_finish = on_finish
        old = self._out_queries.get(ltime)
        if old is not None:
            self._finish_query(old)
        self._out_queries[ltime] = q
        q.token = self._after(timeout, lambda: self._finish_query(q))
        self._handle_query(msg)  # processed locally first; witnesses (advances) the clock
        self.query_queue.queue_broadcast(raw, unique=True)
        return q, None

    def _finish_query(self, q: _OutQuery) -> None:
        if q.finished:
            return
        q.finished = True
        self._live.discard(q.token)
        if self._out_queries.get(q.ltime) is q:
            del self._out_queries[q.ltime]
        if q.on_finish is not None:
            q.on_finish()
        elif q.request_id >= 0:
            self._emit(sio.QueryFinished(q.request_id))

    def _query(self, req: sio.QueryRequest) -> None:
        q, err = self._start_query(
            req.request_id,
            req.name,
            req.payload,
            filter_nodes=req.filter_nodes,
            filter_tags=req.filter_tags,
            request_ack=req.request_ack,
            relay_factor=req.relay_factor,
            timeout=req.timeout,
        )
        result = None if q is None else (q.ltime, q.id)
        self._emit(mio.RequestCompleted(req.request_id, result=result, error=err))

    def _respond(self, ltime: int, qid: int, payload: bytes) -> str | None:
        st = self._in_queries.get((ltime, qid))
        if st is None:
            return "Response is past the deadline"
        if st.responded:
            return "Response already sent"
        if self._now > st.deadline:
            return "Response is past the deadline"
        resp = MessageQueryResponse(ltime, qid, self.name, 0, payload)
        raw = self.codec.encode(resp)
        limit = self.config.query_response_size_limit
        if len(raw) > limit:
            return f"response exceeds limit of {limit} bytes"
        err = self._send_response(st.addr, st.port, st.source, raw, st.relay_factor)
        if err is None:
            st.responded = True
        return err

    # ------------------------------------------------------------------------------------
    # internal queries (reference 3.7) and the key manager
    # ------------------------------------------------------------------------------------

    def _internal_query(self, q: sio.QueryHandle) -> None:
        op = q.name[len(INTERNAL_QUERY_PREFIX) :]
        if op == "ping":
            return
        if op == "conflict":
            node = q.payload.decode("utf-8", "replace")
            if node == self.name:
                return
            m = self._members.get(node)
            member = None
            if m is not None:
                s = m.snapshot()
                member = Member(
                    s.name, s.addr, s.port, dict(s.tags), int(s.status),
                    s.protocol_min, s.protocol_max, s.protocol_cur,
                    s.delegate_min, s.delegate_max, s.delegate_cur,
                )  # fmt: skip
            self._respond(q.ltime, q.id, self.codec.encode(MessageConflictResponse(member)))
            return
        if op in ("install-key", "use-key", "remove-key"):
            result, message = self._key_op(op, q.payload)
            resp = MessageKeyResponse(result, message, None, "")
            self._respond(q.ltime, q.id, self.codec.encode(resp))
            return
        if op == "list-keys":
            self._list_keys(q)

    def _key_op(self, op: str, payload: bytes) -> tuple[bool, str]:
        try:
            req = self.codec.decode_serf(payload)
        except Exception:
            return False, ""
        if not isinstance(req, MessageKeyRequest):
            return False, ""
        keyring = self.memberlist.keyring
        if keyring is None:
            return False, "No keyring to modify (encryption not enabled)"
        key = bytes(req.key or b"")
        try:
            if op == "install-key":
                keyring.add_key(key)
            elif op == "use-key":
                keyring.use_key(key)
            else:
                keyring.remove_key(key)
        except ValueError as exc:
            return False, str(exc)
        self._emit(sio.KeyringChanged(tuple(keyring.keys)))
        return True, ""

    def _list_keys(self, q: sio.QueryHandle) -> None:
        keyring = self.memberlist.keyring
        if keyring is None:
            resp = MessageKeyResponse(False, "Keyring is empty (encryption not enabled)", None)
            self._respond(q.ltime, q.id, self.codec.encode(resp))
            return
        keys = keyring.to_base64()
        primary = keys[0] if keys else ""
        limit = self.config.query_response_size_limit
        resp = MessageKeyResponse(True, "", keys, primary)
        raw = self.codec.encode(resp)
        probe = MessageQueryResponse(q.ltime, q.id, self.name, 0, raw)
        if len(self.codec.encode(probe)) > limit:
            n = len(keys)
            i = min(n, limit // 25)
            while i >= 0:
                msg = f"truncated key list response, showing first {i} of {n} keys"
                raw = self.codec.encode(MessageKeyResponse(True, msg, keys[:i], primary))
                probe = MessageQueryResponse(q.ltime, q.id, self.name, 0, raw)
                if len(self.codec.encode(probe)) <= limit:
                    break
                i -= 1
            else:
                return
        self._respond(q.ltime, q.id, raw)

    def _key_request(self, req: sio.KeyRequest) -> None:
        op = _KEY_OPS.get(req.op)
        if op is None:
            bad = f"unknown key operation {req.op!r}"
            self._emit(mio.RequestCompleted(req.request_id, error=bad))
            return
        agg = sio.KeyResponse(num_nodes=self.memberlist.num_members())
        payload = self.codec.encode(MessageKeyRequest(req.key if op != "list-keys" else b""))

        def on_response(q: _OutQuery, node: str, body: bytes) -> None:
            agg.num_resp += 1
            try:
                resp = self.codec.decode_serf(body)
                if not isinstance(resp, MessageKeyResponse):
                    raise ValueError("Invalid key query response type")
            except Exception as exc:
                agg.messages[node] = f"Failed to decode key query response: {exc}"
                agg.num_err += 1
            else:
                if not resp.result:
                    agg.messages[node] = resp.message
                    agg.num_err += 1
                elif resp.message:
                    agg.messages[node] = resp.message
                for k in resp.keys or ():
                    agg.keys[k] = agg.keys.get(k, 0) + 1
                agg.primary_keys[resp.primary_key] = agg.primary_keys.get(resp.primary_key, 0) + 1
            if agg.num_resp == agg.num_nodes:
                self._finish_query(q)

        def on_finish() -> None:
            err: str | None = None
            if agg.num_err > 0:
                err = f"{agg.num_err}/{agg.num_nodes} nodes reported failure"
            elif agg.num_resp != agg.num_nodes:
                err = f"{agg.num_resp}/{agg.num_nodes} nodes reported success"
            self._emit(mio.RequestCompleted(req.request_id, result=agg, error=err))

        q, err = self._start_query(
            -1,
            INTERNAL_QUERY_PREFIX + op,
            payload,
            relay_factor=req.relay_factor,
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            self._emit(mio.RequestCompleted(req.request_id, error=err))

    # ------------------------------------------------------------------------------------
    # name conflicts (reference 3.8)
    # ------------------------------------------------------------------------------------

    def _conflict(self, existing: Node, other: Node) -> None:
        if existing.name != self.name or not self.config.enable_name_conflict_resolution:
            return
        if self._conflict_running or self.serf_state is SerfState.SHUTDOWN:
            return
        self._conflict_running = True
        votes = [0, 0]  # responses, matching

        def on_response(q: _OutQuery, node: str, body: bytes) -> None:
            if not body or body[0] != 6:
                return
            try:
                resp = self.codec.decode_serf(body)
            except Exception:
                return
            if not isinstance(resp, MessageConflictResponse):
                return
            votes[0] += 1
            m = resp.member
            if (
                m is not None
                and m.addr is not None
                and normalize_ip(bytes(m.addr)) == normalize_ip(self._ip)
                and m.port == self.advertise.port
            ):
                votes[1] += 1

        def on_finish() -> None:
            self._conflict_running = False
            if votes[1] < votes[0] // 2 + 1:
                self._shutdown()
                self._emit(
                    sio.ShutdownRequired(
                        f"name conflict for {self.name!r} lost: {votes[1]}/{votes[0]} votes"
                    )
                )

        q, _ = self._start_query(
            -1,
            INTERNAL_QUERY_PREFIX + "conflict",
            self.name.encode(),
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            self._conflict_running = False

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
                self._broadcast_join(self.clock.time())
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
        self._leave_intent(msg)
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
        self._leave_intent(msg)
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

    def _timeout_for(self, m: _Member, default: float) -> float:
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
                    self._erase(m)
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
            return
        names = list(self._failed)
        m = self._members.get(names[self.rng.randrange(len(names))])
        if m is None:
            return
        addr = Address.from_ip(m.addr, m.port)
        self._ml_request(lambda rid: mio.JoinRequest(rid, (addr,)), lambda res: None)
