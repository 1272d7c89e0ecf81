"""The sans-IO memberlist core: SWIM failure detection + Lifeguard + gossip + push/pull.

How this works (reference section 1.4; the inputs and effects are :mod:`serf.memberlist.io`)
-------------------------------------------------------------------------------------------
``handle(input, now)`` mutates the core and returns effects; ``next_deadline()`` is the head
of ONE timer heap of ``(when, seq, kind, token)``. A timer is live while its token is in
``_live``; cancelling one just forgets the token, so a stale heap entry is a no-op.

* **Probe** (1.4.1), as Go's ``probe``/``probeNode``: a ticker every ``probe_interval``
  (random stagger) takes the next node of a shuffled round-robin list, skipping ourselves and
  dead/left nodes; at the wrap, dead/left nodes older than ``gossip_to_the_dead_time`` are
  reaped and the list is reshuffled. The ping (a compound ``[ping, suspect]`` for a suspect
  target: the buddy system) waits ``probe_timeout`` (unscaled, as Go) for an ack, then asks
  ``indirect_checks`` random alive peers (nack when their PMax >= 4) and tries a TCP ping
  (PMax >= 3) until ``probe_interval * (score + 1)`` after the send (Lifeguard scaling: the
  brief's "awareness-scaled timeout" is this window; Go never scales the direct ack wait).
  As Go's ticker, one tick that comes while a probe runs is buffered (the next probe starts
  when the running one ends) and further ones are dropped, so a failing probe stretches the
  period. Awareness deltas as Go: -1 on success, +1 on a failed probe, or +missing nacks
  when nacks were expected; the state table's refutations add +1.
* **Suspicion**: the state table says when to start / confirm / cancel; the timer is
  :class:`~serf.memberlist.suspicion.SuspicionTimer` (k = suspicion_mult - 2, 0 when fewer
  nodes; min = suspicion_timeout(...), max = suspicion_max_timeout_mult * min).
* **Gossip** (1.4.3): every ``gossip_interval`` to ``gossip_nodes`` random peers (alive,
  suspect, or dead for less than ``gossip_to_the_dead_time``), memberlist's own broadcasts
  first and then the delegate's, in compounds that fit ``udp_buffer_size``. Pings, acks,
  indirect pings and nacks piggyback broadcasts too (Go's ``sendMsg``). Without a delegate
  and with nothing queued the gossip ticker parks, and resumes on its own grid when
  something is queued (Go ticks and finds nothing to send: the same packets, fewer wakeups).
* **Push/pull** (1.4.6): every ``push_pull_scale(push_pull_interval, n)`` with one random
  alive peer over a stream; joins are push/pulls with ``join=True``. ``verifyProtocol`` and
  the Merge delegate (joins only) run before the state table merges.
* Inbound packets are decoded with ``framer.decode_packet``; every failure is a ``Dropped``
  effect, never an exception. Alive/suspect/dead are handled at once (Go queues them for a
  goroutine, LIFO and capped at ``handoff_queue_depth``; we do not model that queue).
  ``cidrs_allowed`` filters gossiped alives (source and advertised address) and push/pull
  alive entries.

Where we differ from Go on purpose the code says ``# differs from Go``.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, assert_never

from serf import _speedups
from serf.address import Address
from serf.config import META_MAX_SIZE, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN
from serf.memberlist import io
from serf.memberlist import state as st
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.state import Node, NodeState, StateTable
from serf.telemetry import (
    COUNTER,
    DEBUG,
    ERR,
    GAUGE,
    INFO,
    SAMPLE,
    TIMER,
    WARN,
    MetricSample,
    memberlist_line,
)
from serf.wire.errors import DecodeError
from serf.wire.framing import (
    COMPOUND_HEADER_OVERHEAD,
    PacketFramer,
    StreamReader,
    StreamRejected,
    make_compound,
    make_compounds,
)
from serf.wire.keyring import Keyring
from serf.wire.messages import (
    AckResp,
    Alive,
    Dead,
    ErrResp,
    IndirectPingReq,
    MemberlistMessage,
    NackResp,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    UserMsg,
)

if TYPE_CHECKING:
    import random

    from serf.config import MemberlistConfig

__all__ = [
    "MemberlistCore",
    "TimerKind",
    "answer_unreadable",
    "multierror_text",
    "push_pull_scale",
]


class TimerKind(IntEnum):
    """What a timer of the memberlist core's heap is for."""

    PROBE_TICK = 0
    PROBE_TIMEOUT = 1
    PROBE_END = 2
    GOSSIP = 3
    PUSH_PULL = 4
    SUSPICION = 5
    RELAY_TIMEOUT = 6
    REQUEST_TIMEOUT = 7


_UDP_SENT = ("memberlist", "udp", "sent")
_UDP_RECEIVED = ("memberlist", "udp", "received")
_TCP_SENT = ("memberlist", "tcp", "sent")
_TCP_ACCEPT = MetricSample(COUNTER, ("memberlist", "tcp", "accept"), 1.0)
_TCP_CONNECT = MetricSample(COUNTER, ("memberlist", "tcp", "connect"), 1.0)
_DEGRADED_PROBE = MetricSample(COUNTER, ("memberlist", "degraded", "probe"), 1.0)
_DEGRADED_TIMEOUT = MetricSample(COUNTER, ("memberlist", "degraded", "timeout"), 1.0)
_HEALTH_SCORE = ("memberlist", "health", "score")
_QUEUE_BROADCASTS = ("memberlist", "queue", "broadcasts")

_PUSH_PULL_SCALE_THRESHOLD = 32
_USER_MSG_OVERHEAD = 1


def push_pull_scale(interval: float, n: int) -> float:
    """Go's ``pushPullScale``: ``interval`` up to 32 nodes, then times
    ``ceil(log2(n) - log2(32)) + 1`` (x2 at 33-64 nodes, x3 at 65-128, ...)."""
    if n <= _PUSH_PULL_SCALE_THRESHOLD:
        return interval
    mult = math.ceil(math.log2(n) - math.log2(_PUSH_PULL_SCALE_THRESHOLD)) + 1.0
    return interval * mult


# One Address per (IP, port) for every core of the process: the N cores of a simulation send
# to the same N addresses, and a cache per core held N^2 of them (about a quarter of the memory
# per member entry at 1,000 nodes) and grew with every address an agent ever saw. Bounded:
# cleared when full.
_ADDRESSES_MAX = 1 << 16
_addresses: dict[tuple[bytes, int], Address] = {}


def _address(ip: bytes, port: int) -> Address:
    """The shared :class:`Address` for wire IP bytes and a port (ValueError if bad)."""
    key = (ip, port)
    found = _addresses.get(key)
    if found is None:
        found = Address.from_ip(ip, port)
        if len(_addresses) >= _ADDRESSES_MAX:
            _addresses.clear()
        _addresses[key] = found
    return found


def _version_bounds(ranges: Iterable[bytes]) -> tuple[int, int, int, int]:
    """``(max pmin, min pmax, max dmin, min dmax)`` over six-byte version fields."""
    ranges = list(ranges)
    return (
        max(v[0] for v in ranges),
        min(v[1] for v in ranges),
        max(v[3] for v in ranges),
        min(v[4] for v in ranges),
    )


def _current_versions(vsn: bytes) -> tuple[int, int]:
    """A node's current protocol and delegate versions (0 without six version bytes)."""
    return (vsn[2], vsn[5]) if len(vsn) >= 6 else (0, 0)


def _version_fits(vsn: bytes, bounds: tuple[int, int, int, int]) -> bool:
    pcur, dcur = _current_versions(vsn)
    return bounds[0] <= pcur <= bounds[1] and bounds[2] <= dcur <= bounds[3]


def _next_tick(when: float, interval: float, now: float) -> float:
    """The next tick of a ticker that ticked at ``when``, after ``now`` (as Go's tickers,
    ticks missed by a late driver are dropped, not fired in a burst)."""
    nxt = when + interval
    if nxt <= now:
        nxt = when + (math.floor((now - when) / interval) + 1) * interval
    return nxt


def multierror_text(errors: Sequence[str]) -> str:
    """Several errors as Go's go-multierror prints them (memberlist's join error)."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def answer_unreadable(framer: PacketFramer, inp: io.StreamUnreadable) -> list[io.Effect]:
    """The answer to an inbound stream the framing could not read, as Go's ``handleConn``: Go's
    log line, then an ``ErrResp`` for a request refused while unwrapping
    (:class:`~serf.wire.framing.StreamRejected`), a plain close for any other read failure.
    The one rule every core (and a test's fake core) applies."""
    data = None
    if isinstance(inp.error, StreamRejected):
        data = framer.encode_stream_message(ErrResp(str(inp.error)), dialer=False)
    line = memberlist_line(ERR, f"failed to receive: {inp.error} from={inp.source}")
    return [line, io.StreamRespond(inp.stream_id, data)]


class _Probe:
    """The probe in flight (Go's locals in ``probeNode``)."""

    __slots__ = (
        "acked",
        "deadline",
        "expected_nacks",
        "nacks",
        "node",
        "sent",
        "seq",
        "tcp_ok",
        "tcp_pending",
        "timer",
        "waiting_tcp",
    )

    def __init__(self, seq: int, node: Node, sent: float, deadline: float) -> None:
        self.seq = seq
        self.node = node
        self.sent = sent
        self.deadline = deadline
        self.acked = False
        self.expected_nacks = 0
        self.nacks = 0
        self.tcp_ok = False
        self.tcp_pending = 0
        self.timer = 0  # the token of its pending PROBE_TIMEOUT or PROBE_END timer
        self.waiting_tcp = False


class _Relay:
    """An indirect ping we run for a requester (Go's ``handleIndirectPing``)."""

    __slots__ = ("dest", "nack", "seq_no", "token")

    def __init__(self, dest: Address, seq_no: int, nack: bool) -> None:
        self.dest = dest
        self.seq_no = seq_no
        self.nack = nack
        self.token = 0


# what a stream we opened is for (its StreamResult goes to the matching handler)


@dataclass(slots=True)
class _UserStream:
    """A user message sent reliably: nothing to do with its result."""


@dataclass(slots=True)
class _PingStream:
    """The TCP fallback ping of a probe."""

    probe: _Probe


@dataclass(slots=True)
class _JoinStream:
    """A join's push/pull with one address."""

    request_id: int
    addr: str


@dataclass(slots=True)
class _PushPullStream:
    """A periodic push/pull with ``peer``, started at ``started``."""

    peer: str
    started: float


_StreamKind = _UserStream | _PingStream | _JoinStream | _PushPullStream


class _Join:
    __slots__ = ("errors", "pending", "request_id", "successes")

    def __init__(self, request_id: int, pending: int) -> None:
        self.request_id = request_id
        self.pending = pending
        self.successes = 0
        self.errors: list[str] = []


class MemberlistCore:
    """One memberlist node as a pure state machine (see the module comment).

    ``rng`` is the only randomness (probe order, staggers, peer choice); ``token_bytes``
    makes encryption nonces; ``advertise`` is the address others reach us at (an IP
    literal). ``keyring`` (or ``config.secret_key``) turns encryption on.
    """

    def __init__(
        self,
        config: MemberlistConfig,
        *,
        rng: random.Random,
        token_bytes: Callable[[int], bytes],
        keyring: Keyring | None = None,
        delegate: CompositeDelegate | None = None,
        advertise: Address,
        node_effects: bool = True,
    ) -> None:
        self.config = config
        #: emit NodeJoined / NodeLeft / NodeUpdated (off for a core whose EventDelegate
        #: takes the same news, as the serf core: one path each)
        self.node_effects = node_effects
        self.rng = rng
        self.delegate = delegate if delegate is not None else CompositeDelegate()
        if config.secret_key is not None:
            if keyring is None:
                keyring = Keyring([], config.secret_key)
            else:
                keyring.add_key(config.secret_key)
                keyring.use_key(config.secret_key)
        self.keyring = keyring
        self.framer = PacketFramer(
            config.codec,
            keyring=keyring,
            label=config.label,
            encryption_version=config.encryption_version,
            compression=config.enable_compression,
            gossip_verify_incoming=config.gossip_verify_incoming,
            gossip_verify_outgoing=config.gossip_verify_outgoing,
            skip_inbound_label_check=config.skip_inbound_label_check,
            token_bytes=token_bytes,
        )
        self._codec = self.framer.codec
        self.advertise = advertise
        self._ip = advertise.ip_bytes()
        self.name = config.name
        self.vsn = bytes(
            [
                PROTOCOL_VERSION_MIN,
                PROTOCOL_VERSION_MAX,
                config.protocol_version,
                config.delegate_protocol_min,
                config.delegate_protocol_max,
                config.delegate_protocol_version,
            ]
        )
        alive_filter = None
        if self.delegate.alive is not None:
            alive_filter = self._alive_allowed
        self.state = StateTable(
            config.name,
            dead_node_reclaim_time=config.dead_node_reclaim_time,
            alive_filter=alive_filter,
        )
        self.awareness = _speedups.suspicion.Awareness(config.awareness_max_multiplier)
        #: Lifeguard's Buddy System (a probe of a suspect carries the suspicion, so it can
        #: refute at once). Always on in Go; switched off only to measure what it brings.
        self.buddy_system = True
        self.queue = _speedups.broadcast.TransmitLimitedQueue(
            config.retransmit_mult, self.state.num_nodes
        )
        self._timers: list[tuple[float, int, TimerKind, int]] = []
        self._live: dict[int, Any] = {}
        self._seq = 0
        self._ping_seq = 0
        self._stream_seq = 0
        self._probe_list: list[str] = []
        self._listed: set[str] = set()
        self._probe_index = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, tuple[Any, int, int]] = {}  # timer, token, incarnation
        self._streams: dict[int, _StreamKind] = {}
        self._joins: dict[int, _Join] = {}
        self._waits: dict[int, tuple[str, int]] = {}  # request id -> (what, timer token)
        self._cidrs = tuple(
            ipaddress.ip_network(c, strict=False) for c in (config.cidrs_allowed or ())
        )
        #: leaves known gossip undecoded (lpe only; cidrs_allowed checks every alive)
        self._split = (
            self.state.compound_splitter() if config.codec == "lpe" and not self._cidrs else None
        )
        self._gossip_parked: float | None = None
        #: set by a layer above whose delegate lives in this core (serf): whether that
        #: delegate holds broadcasts. That layer calls :meth:`wake_gossip` after every input.
        #: Without it the gossip ticker never parks while a delegate is set (a user's
        #: delegate queues outside the core, and Go's Delegate has no such question)
        self.delegate_queued: Callable[[], bool] | None = None
        self._tick_pending = False
        #: called with the nodes forgotten at each probe-list wrap (for invariant checkers)
        self.on_reap: Callable[[list[Node]], None] | None = None
        self._started = False
        self._shutdown = False
        # inputs by type
        self._on_input: dict[type, Callable[[Any], None]] = {
            io.PacketReceived: self._on_packet,
            io.Tick: self._on_tick,
            io.StreamRequest: self._on_stream_request,
            io.StreamUnreadable: self._on_stream_unreadable,
            io.StreamResult: self._on_stream_result,
            io.Start: self._start,
            io.JoinRequest: self._join,
            io.LeaveRequest: self._leave,
            io.UpdateNodeRequest: self._update,
            io.SendBestEffort: self._send_best_effort,
            io.SendReliable: self._send_reliable,
            io.ShutdownRequest: self._do_shutdown,
        }
        # packet messages by type
        self._on_msg: dict[type, Callable[[Any, Address], None]] = {
            Ping: self._on_ping,
            AckResp: self._on_ack,
            NackResp: self._on_nack,
            IndirectPingReq: self._on_indirect_ping,
            Alive: self._on_alive,
            Suspect: self._on_suspect,
            Dead: self._on_dead,
            UserMsg: self._on_user_msg,
        }
        self._out: list[io.Effect] = []
        self._now = 0.0
        self.stats: dict[str, int] = {
            "packets_received": 0,
            "packets_sent": 0,
            "streams_opened": 0,
            "streams_received": 0,
            "dropped": 0,
            "probes": 0,
            "probe_failures": 0,
            "indirect_probes": 0,
            "tcp_fallback_probes": 0,
            "suspicions_started": 0,
            "refutes": 0,
            "push_pulls": 0,
            "gossip_rounds": 0,
        }

    # ------------------------------------------------------------------------------------
    # public views
    # ------------------------------------------------------------------------------------

    @property
    def local_node(self) -> Node:
        """A snapshot of our own entry."""
        me = self.state.get(self.name)
        if me is None:
            return Node(self.name, self._ip, self.advertise.port, vsn=self.vsn)
        return Node(
            me.name, me.addr, me.port, me.meta, me.incarnation, me.state, me.state_change, me.vsn
        )

    def members(self) -> list[Node]:
        """Snapshots of the alive and suspect members (ourselves included), as Go's
        ``Members``; use ``state.members()`` for every entry."""
        return [n for n in self.state.members() if not n.dead_or_left()]

    def _entries(self) -> Iterable[Node]:
        """The state table's live entries, read-only (StateTable.members() copies each one,
        which dominated push/pull cost in large simulations)."""
        return self.state.entries()

    def num_members(self) -> int:
        """Alive and suspect members, ourselves included (Go's ``NumMembers``)."""
        return self.state.num_alive()

    @property
    def health_score(self) -> int:
        """Lifeguard's awareness score (0 is healthy; Go's ``GetHealthScore``)."""
        return int(self.awareness.score)

    def stream_reader(self, *, listener: bool) -> StreamReader:
        """A reader that finds where one stream message ends (``listener``: an inbound
        request; else the reply to a stream we opened). Feed what it returns, or the
        :class:`~serf.wire.errors.DecodeError` it raises, back as an input."""
        return self.framer.stream_reader(listener=listener)

    def next_deadline(self) -> float | None:
        """When the driver must feed :class:`~serf.memberlist.io.Tick` next (None: never)."""
        timers = self._timers
        live = self._live
        while timers and timers[0][3] not in live:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    # ------------------------------------------------------------------------------------
    # the entry point
    # ------------------------------------------------------------------------------------

    def handle(self, inp: io.Input, now: float) -> list[io.Effect]:
        """Apply one input at ``now``; return the effects for the driver to carry out."""
        self._now = now
        out: list[io.Effect] = []
        self._out = out
        if self._shutdown:
            if isinstance(inp, io.StreamRequest | io.StreamUnreadable):
                out.append(io.StreamRespond(inp.stream_id, None))
            return out
        handler = self._on_input.get(type(inp))
        if handler is None:  # pragma: no cover - caller misuse
            raise TypeError(f"not a memberlist input: {inp!r}")
        handler(inp)
        return out

    def _send_best_effort(self, inp: io.SendBestEffort) -> None:
        self._send(inp.dest, self.framer.encode_message(UserMsg(inp.payload), crc=False))

    def _send_reliable(self, inp: io.SendReliable) -> None:
        sid = self._open_stream(inp.dest, UserMsg(inp.payload), want_reply=False)
        self._streams[sid] = _UserStream()

    # ------------------------------------------------------------------------------------
    # timers
    # ------------------------------------------------------------------------------------

    def _schedule(self, when: float, kind: TimerKind, payload: Any = None) -> int:
        self._seq += 1
        token = self._seq
        self._live[token] = (kind, payload)
        heapq.heappush(self._timers, (when, token, kind, token))
        return token

    def _on_tick(self, inp: io.Tick | None = None) -> None:
        now = self._now
        timers = self._timers
        live = self._live
        while timers and timers[0][0] <= now:
            when, _, kind, token = heapq.heappop(timers)
            entry = live.pop(token, None)
            if entry is None:
                continue  # stale: cancelled or replaced
            payload = entry[1]
            if kind == TimerKind.PROBE_TICK:
                self._schedule(
                    _next_tick(when, self.config.probe_interval, now), TimerKind.PROBE_TICK
                )
                if self._probe is None:
                    self._probe_tick()
                else:
                    # as Go's ticker: its channel buffers one tick while a probe runs (the
                    # probe starts as soon as the running one ends); further ticks drop
                    self._tick_pending = True
            elif kind == TimerKind.PROBE_TIMEOUT:
                self._probe_timeout(payload)
            elif kind == TimerKind.PROBE_END:
                self._probe_end(payload)
            elif kind == TimerKind.GOSSIP:
                if self.queue.num_queued() or self._delegate_may_gossip():
                    self._schedule(
                        _next_tick(when, self.config.gossip_interval, now), TimerKind.GOSSIP
                    )
                    self._gossip()
                else:
                    # differs from Go (same result): with nothing to send the ticker parks
                    # and resumes on its original grid when something is queued
                    self._gossip_parked = when
            elif kind == TimerKind.PUSH_PULL:
                interval = push_pull_scale(self.config.push_pull_interval, self.state.num_nodes())
                self._schedule(now + interval, TimerKind.PUSH_PULL)
                # differs from Go: the queue depth is sampled on the push/pull timer (30 s on
                # LAN, QueueCheckInterval's default) rather than on a timer of its own
                depth = float(self.queue.num_queued())
                self._out.append(MetricSample(SAMPLE, _QUEUE_BROADCASTS, depth))
                self._periodic_push_pull()
            elif kind == TimerKind.SUSPICION:
                self._suspicion_fired(payload, token)
            elif kind == TimerKind.RELAY_TIMEOUT:
                self._relay_timeout(payload)
            elif kind == TimerKind.REQUEST_TIMEOUT:
                self._request_timeout(payload)

    # ------------------------------------------------------------------------------------
    # start / join / leave / update / shutdown
    # ------------------------------------------------------------------------------------

    def _start(self, inp: io.Start | None = None) -> None:
        if self._started:
            return
        self._started = True
        cfg = self.config
        meta = self._node_meta()
        alive = Alive(self.state.next_incarnation(), self.name, self._ip, self.advertise.port)
        alive.meta = meta
        alive.vsn = self.vsn
        self._apply(self.state.handle_alive(alive, self._now, bootstrap=True))
        rng = self.rng
        if cfg.probe_interval > 0:
            self._schedule(self._now + rng.random() * cfg.probe_interval, TimerKind.PROBE_TICK)
        if cfg.gossip_interval > 0 and cfg.gossip_nodes > 0:
            self._schedule(self._now + rng.random() * cfg.gossip_interval, TimerKind.GOSSIP)
        if cfg.push_pull_interval > 0:
            self._schedule(self._now + rng.random() * cfg.push_pull_interval, TimerKind.PUSH_PULL)

    def _node_meta(self) -> bytes:
        meta = self.delegate.node_meta(META_MAX_SIZE)
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node meta is {len(meta)} bytes, over the {META_MAX_SIZE} limit")
        return meta

    def _join(self, req: io.JoinRequest) -> None:
        if not req.addresses:
            self._out.append(io.RequestCompleted(req.request_id, result=0))
            return
        self._joins[req.request_id] = _Join(req.request_id, len(req.addresses))
        for addr in req.addresses:
            self._log(DEBUG, f"Initiating push/pull sync with:  {addr}")
            self._out.append(_TCP_CONNECT)
            sid = self._open_stream(addr, self._push_pull_message(True), want_reply=True)
            self._streams[sid] = _JoinStream(req.request_id, str(addr))

    def _join_step(self, request_id: int, error: str | None) -> None:
        job = self._joins.get(request_id)
        if job is None:
            return
        job.pending -= 1
        if error is None:
            job.successes += 1
        else:
            job.errors.append(error)
        if job.pending == 0:
            del self._joins[request_id]
            text = None
            if job.successes == 0:
                text = multierror_text(job.errors) if job.errors else "no address worked"
            self._out.append(
                io.RequestCompleted(
                    request_id, result=job.successes, error=text, errors=tuple(job.errors)
                )
            )

    def _anyone_else_alive(self) -> bool:
        me = self.name
        return any(n.name != me and not n.dead_or_left() for n in self._entries())

    def _wait_broadcast(self, request_id: int, what: str, timeout: float) -> Callable[[], None]:
        """Register a request completed by a broadcast finishing, or by its timeout."""
        token = (
            self._schedule(self._now + timeout, TimerKind.REQUEST_TIMEOUT, request_id)
            if timeout
            else 0
        )
        self._waits[request_id] = (what, token)

        def finished() -> None:
            if self._waits.pop(request_id, None) is not None:
                self._live.pop(token, None)
                self._out.append(io.RequestCompleted(request_id))

        return finished

    def _request_timeout(self, request_id: int) -> None:
        entry = self._waits.pop(request_id, None)
        if entry is not None:
            err = f"timeout waiting for {entry[0]} broadcast"
            self._out.append(io.RequestCompleted(request_id, error=err))

    def _leave(self, req: io.LeaveRequest) -> None:
        if self.state.leaving or not self._started:
            self._out.append(io.RequestCompleted(req.request_id))
            return
        if self.state.get(self.name) is None:  # our own alive was vetoed by the delegate
            self._out.append(io.RequestCompleted(req.request_id, error="not a member"))
            return
        others = self._anyone_else_alive()
        effects = self.state.leave(self._now)
        finished = self._wait_broadcast(req.request_id, "leave", req.timeout) if others else None
        self._apply(effects, on_local_broadcast=finished)
        if not others:
            self._out.append(io.RequestCompleted(req.request_id))

    def _update(self, req: io.UpdateNodeRequest) -> None:
        me = self.state.get(self.name)
        if me is None:
            self._out.append(io.RequestCompleted(req.request_id, error="not started"))
            return
        meta = self._node_meta()
        alive = Alive(self.state.next_incarnation(), self.name, me.addr, me.port, meta, self.vsn)
        others = self._anyone_else_alive()
        finished = self._wait_broadcast(req.request_id, "update", req.timeout) if others else None
        self._apply(
            self.state.handle_alive(alive, self._now, bootstrap=True), on_local_broadcast=finished
        )
        if not others:
            self._out.append(io.RequestCompleted(req.request_id))

    def _do_shutdown(self, inp: io.ShutdownRequest | None = None) -> None:
        self._shutdown = True
        for request_id in list(self._joins):
            self._out.append(io.RequestCompleted(request_id, result=0, error="shut down"))
        for request_id in list(self._waits):
            self._out.append(io.RequestCompleted(request_id, error="shut down"))
        self._joins.clear()
        self._waits.clear()
        self._timers.clear()
        self._live.clear()

    # ------------------------------------------------------------------------------------
    # state-table effects
    # ------------------------------------------------------------------------------------

    def _apply(
        self, effects: list[st.Effect], on_local_broadcast: Callable[[], None] | None = None
    ) -> None:
        out = self._out
        for eff in effects:
            match eff:
                case st.Broadcast():
                    finished = on_local_broadcast if eff.name == self.name else None
                    self._queue(st._share(self._codec.encode(eff.message)), eff.name, finished)
                case st.NotifyJoin():
                    self._list_node(eff.node.name)
                    if self.node_effects:
                        out.append(io.NodeJoined(eff.node))
                    self.delegate.notify_join(eff.node)
                case st.NotifyLeave():
                    if self.node_effects:
                        out.append(io.NodeLeft(eff.node))
                    self.delegate.notify_leave(eff.node)
                case st.NotifyUpdate():
                    if self.node_effects:
                        out.append(io.NodeUpdated(eff.node))
                    self.delegate.notify_update(eff.node)
                case st.StartSuspicion():
                    self._start_suspicion(eff)
                case st.ConfirmSuspicion():
                    self._confirm_suspicion(eff)
                case st.CancelSuspicion():
                    entry = self._suspicions.pop(eff.node_name, None)
                    if entry is not None:
                        self._live.pop(entry[1], None)
                case st.ConflictDetected():
                    self.delegate.notify_conflict(eff.existing, eff.other)
                case st.Refuted():
                    self.stats["refutes"] += 1
                    self._awareness_delta(1)
                case _:
                    assert_never(eff)
        notes = self.state.telemetry
        if notes:
            out.extend(notes)
            notes.clear()

    def _confirm_suspicion(self, eff: st.ConfirmSuspicion) -> None:
        entry = self._suspicions.get(eff.node_name)
        if entry is not None and entry[0].confirm(eff.from_node, self._now):
            msg = eff.broadcast.message
            self._queue(self._codec.encode(msg), eff.broadcast.name, None)
            self._live.pop(entry[1], None)
            timer = entry[0]
            when = max(timer.deadline(), self._now)
            inc = entry[2]
            token = self._schedule(when, TimerKind.SUSPICION, (eff.node_name, inc))
            self._suspicions[eff.node_name] = (timer, token, inc)

    def _awareness_delta(self, delta: int) -> None:
        """Lifeguard's score moves; Go sets the ``memberlist.health.score`` gauge on a change."""
        before = self.awareness.score
        self.awareness.apply_delta(delta)
        after = self.awareness.score
        if after != before:
            self._out.append(MetricSample(GAUGE, _HEALTH_SCORE, float(after)))

    def _queue(self, data: bytes, name: str, finished: Callable[[], None] | None) -> None:
        self.queue.queue_broadcast(data, name, on_finished=finished)
        if self._gossip_parked is not None:
            self._unpark_gossip(self._now)

    def wake_gossip(self, now: float) -> None:
        """Resume the parked gossip ticker if the delegate queued a broadcast (its layer
        calls this after every input it handles: it queues outside :meth:`handle` too)."""
        if self._gossip_parked is not None and self._delegate_may_gossip():
            self._unpark_gossip(now)

    def _delegate_may_gossip(self) -> bool:
        if self.delegate.delegate is None:
            return False
        queued = self.delegate_queued
        return True if queued is None else queued()

    def _unpark_gossip(self, now: float) -> None:
        """The gossip ticker resumes on its original grid, at the first tick after ``now``."""
        parked = self._gossip_parked
        assert parked is not None
        self._gossip_parked = None
        interval = self.config.gossip_interval
        ticks = max(1, math.ceil((now - parked) / interval))
        self._schedule(parked + ticks * interval, TimerKind.GOSSIP)

    def _list_node(self, name: str) -> None:
        """Put a newly known node at a random place in the probe list (Go's aliveNode)."""
        if name in self._listed:
            return
        self._listed.add(name)
        lst = self._probe_list
        lst.append(name)
        j = self.rng.randrange(len(lst))
        lst[-1], lst[j] = lst[j], lst[-1]

    def _start_suspicion(self, eff: st.StartSuspicion) -> None:
        cfg = self.config
        n = self.state.num_nodes()
        k = cfg.suspicion_mult - 2
        if n - 2 < k:
            k = 0
        sus = _speedups.suspicion
        min_t = sus.suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        max_t = cfg.suspicion_max_timeout_mult * min_t
        timer = sus.SuspicionTimer(eff.from_node, k, min_t, max_t, self._now)
        old = self._suspicions.get(eff.node_name)
        if old is not None:
            self._live.pop(old[1], None)
        payload = (eff.node_name, eff.incarnation)
        token = self._schedule(timer.deadline(), TimerKind.SUSPICION, payload)
        self._suspicions[eff.node_name] = (timer, token, eff.incarnation)
        self.stats["suspicions_started"] += 1

    def _suspicion_fired(self, payload: tuple[str, int], token: int) -> None:
        name, incarnation = payload
        entry = self._suspicions.get(name)
        if entry is None or entry[1] != token:
            return
        del self._suspicions[name]
        timer = entry[0]
        node = self.state.get(name)
        if node is not None and node.state is NodeState.SUSPECT and node.incarnation == incarnation:
            confirmations = timer.confirmations
            if timer.k > 0 and confirmations < timer.k:
                self._out.append(_DEGRADED_TIMEOUT)
            self._log(
                INFO,
                f"Marking {name} as failed, suspect timeout reached "
                f"({confirmations} peer confirmations)",
            )
        self._apply(self.state.suspicion_expired(name, incarnation, self._now))

    # ------------------------------------------------------------------------------------
    # sending
    # ------------------------------------------------------------------------------------

    def _addr_of(self, node: Node) -> Address:
        addr = _addresses.get((node.addr, node.port))
        return addr if addr is not None else _address(node.addr, node.port)

    def _send(self, dest: Address, data: bytes) -> None:
        self.stats["packets_sent"] += 1
        out = self._out
        out.append(io.SendPacket(dest, data))
        out.append(MetricSample(COUNTER, _UDP_SENT, float(len(data))))

    def _log(self, level: int, text: str) -> None:
        self._out.append(memberlist_line(level, text))

    def _limit(self) -> int:
        # differs from Go (slightly): Go reserves the encryption overhead whenever a key is
        # installed; the framer counts it only when it really encrypts (verify_outgoing)
        return self.config.udp_buffer_size - COMPOUND_HEADER_OVERHEAD - self.framer.packet_overhead

    def _get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Go's ``getBroadcasts``: our own queue first, then the delegate's."""
        msgs: list[bytes] = self.queue.get_broadcasts(overhead, limit)
        if self.delegate.delegate is not None:
            used = sum(len(m) + overhead for m in msgs)
            avail = limit - used
            if avail > overhead + _USER_MSG_OVERHEAD:
                for blob in self.delegate.get_broadcasts(overhead + _USER_MSG_OVERHEAD, avail):
                    msgs.append(self._codec.encode(UserMsg(blob)))
        return msgs

    def _send_msg(self, dest: Address, msg: MemberlistMessage, node: Node | None = None) -> None:
        """Go's ``sendMsg``: one message, with queued broadcasts piggybacked."""
        raw = self._codec.encode(msg)
        avail = self._limit() - len(raw)
        extra = self._get_broadcasts(2, avail) if avail > 0 else []
        crc = node is not None and len(node.vsn) >= 2 and node.vsn[1] >= 5
        if extra:
            extra.insert(0, raw)
            raw = make_compound(extra)
        self._send(dest, self.framer.encode_packet(raw, crc=crc))

    def _open_stream(self, dest: Address, msg: MemberlistMessage, *, want_reply: bool) -> int:
        self._stream_seq += 1
        sid = self._stream_seq
        self.stats["streams_opened"] += 1
        data = self.framer.encode_stream_message(msg, dialer=True)
        out = self._out
        out.append(io.OpenStream(sid, dest, data, want_reply, self.config.tcp_timeout))
        out.append(MetricSample(COUNTER, _TCP_SENT, float(len(data))))
        return sid

    def _next_ping_seq(self) -> int:
        self._ping_seq += 1
        return self._ping_seq

    def _ping(self, seq: int, node_name: str) -> Ping:
        return Ping(seq, node_name, self._ip, self.name, self.advertise.port)

    # ------------------------------------------------------------------------------------
    # probe (Go's probe / probeNode)
    # ------------------------------------------------------------------------------------

    def _probe_tick(self) -> None:
        lst = self._probe_list
        checked = 0
        while True:
            if checked >= len(lst):
                return
            if self._probe_index >= len(lst):
                self._reset_nodes()
                self._probe_index = 0
                checked += 1
                continue
            name = lst[self._probe_index]
            node = self.state.get(name)
            if node is None or name == self.name or node.dead_or_left():
                self._probe_index += 1
                checked += 1
                continue
            self._probe_index += 1
            self._probe_node(node)
            return

    def _reset_nodes(self) -> None:
        """Go's ``resetNodes``: reap old dead/left nodes and reshuffle the probe list."""
        gone = self.state.reap(self._now, self.config.gossip_to_the_dead_time)
        if gone and self.on_reap is not None:
            self.on_reap(gone)
        for n in gone:
            self._listed.discard(n.name)
        lst = [name for name in self._probe_list if name in self.state]
        self._listed = set(lst)
        self.rng.shuffle(lst)
        self._probe_list = lst

    def _probe_node(self, node: Node) -> None:
        now = self._now
        self.stats["probes"] += 1
        seq = self._next_ping_seq()
        interval = self.awareness.scale_timeout(self.config.probe_interval)
        if interval > self.config.probe_interval:
            self._out.append(_DEGRADED_PROBE)
        probe = _Probe(seq, node, now, now + interval)
        self._probe = probe
        dest = self._addr_of(node)
        ping = self._ping(seq, node.name)
        if node.state is NodeState.ALIVE or not self.buddy_system:
            self._send_msg(dest, ping, node)
        else:
            # the buddy system: tell a suspect at once so it can refute (sent as-is)
            suspect = Suspect(node.incarnation, node.name, self.name)
            raw = make_compound([self._codec.encode(ping), self._codec.encode(suspect)])
            crc = len(node.vsn) >= 2 and node.vsn[1] >= 5
            self._send(dest, self.framer.encode_packet(raw, crc=crc))
        probe.timer = self._schedule(
            now + self.config.probe_timeout, TimerKind.PROBE_TIMEOUT, probe
        )

    def _probe_success(self, probe: _Probe, payload: bytes | None, direct: bool) -> None:
        probe.acked = True
        self._probe = None
        # differs from Go (same result): the probe's timeout timer is cancelled; Go's select
        # returns on the ack and leaves its time.After to fire unread. A timer that fired
        # with nothing to do would wake the process once per probe interval
        self._live.pop(probe.timer, None)
        self._probe_timer(probe)
        self._awareness_delta(-1)
        if direct:
            rtt = self._now - probe.sent
            self.delegate.notify_ping_complete(probe.node, rtt, payload or b"")
        self._probe_done()

    def _probe_timer(self, probe: _Probe) -> None:
        """Go's ``memberlist.probeNode`` timer, from the ping to the probe's end."""
        self._out.append(MetricSample(TIMER, ("memberlist", "probeNode"), probe.sent))

    def _probe_done(self) -> None:
        if self._tick_pending:
            self._tick_pending = False
            self._probe_tick()

    def _probe_timeout(self, probe: _Probe) -> None:
        if self._probe is not probe or probe.acked:
            return
        cfg = self.config
        node = probe.node
        self._log(DEBUG, f"Failed UDP ping: {node.name} (timeout reached)")
        # indirect probes through random alive peers
        peers = self._k_random(
            cfg.indirect_checks,
            lambda n: n.state is NodeState.ALIVE and n.name != node.name,
        )
        for peer in peers:
            nack = len(peer.vsn) >= 2 and peer.vsn[1] >= 4
            if nack:
                probe.expected_nacks += 1
            req = IndirectPingReq(
                probe.seq,
                node.addr,
                node.port,
                node.name,
                nack,
                self._ip,
                self.name,
                self.advertise.port,
            )
            self.stats["indirect_probes"] += 1
            self._send_msg(self._addr_of(peer), req, peer)
        # the TCP fallback ping, for peers that speak protocol >= 3
        if not cfg.disable_tcp_pings and len(node.vsn) >= 2 and node.vsn[1] >= 3:
            self.stats["tcp_fallback_probes"] += 1
            self._stream_seq += 1
            sid = self._stream_seq
            self.stats["streams_opened"] += 1
            data = self.framer.encode_stream_message(self._ping(probe.seq, node.name), dialer=True)
            timeout = max(probe.deadline - self._now, 0.0)
            self._out.append(io.OpenStream(sid, self._addr_of(node), data, True, timeout))
            self._streams[sid] = _PingStream(probe)
            probe.tcp_pending += 1
        probe.timer = self._schedule(probe.deadline, TimerKind.PROBE_END, probe)

    def _tcp_only_success(self, probe: _Probe) -> None:
        """The TCP fallback ping answered where UDP did not (Go's warning, then a success)."""
        self._log(
            WARN,
            f"Was able to connect to {probe.node.name} over TCP but UDP probes failed, "
            "network may be misconfigured",
        )
        self._probe_success(probe, None, direct=False)

    def _probe_end(self, probe: _Probe) -> None:
        if self._probe is not probe or probe.acked:
            return
        if probe.tcp_ok:
            self._tcp_only_success(probe)
            return
        if probe.tcp_pending:
            probe.waiting_tcp = True  # as Go: wait for the fallback to finish
            return
        self._probe_failed(probe)

    def _probe_failed(self, probe: _Probe) -> None:
        self._probe = None
        self.stats["probe_failures"] += 1
        self._probe_timer(probe)
        delta = max(0, probe.expected_nacks - probe.nacks) if probe.expected_nacks > 0 else 1
        self._awareness_delta(delta)
        self._log(INFO, f"Suspect {probe.node.name} has failed, no acks received")
        node = self.state.get(probe.node.name)
        if node is not None:
            suspect = Suspect(node.incarnation, node.name, self.name)
            self._apply(self.state.handle_suspect(suspect, self._now))
        self._probe_done()

    def _k_random(self, k: int, accept: Callable[[Node], bool]) -> list[Node]:
        """Go's ``kRandomNodes``: up to ``k`` distinct nodes (never ourselves) passing
        ``accept``."""
        lst = self._probe_list
        n = len(lst)
        out: list[Node] = []
        if k <= 0 or n == 0:
            return out
        get = self.state.get
        me = self.name
        if n <= 3 * k:
            order = lst[:]
            self.rng.shuffle(order)
            for name in order:
                node = get(name)
                if node is not None and name != me and accept(node):
                    out.append(node)
                    if len(out) >= k:
                        break
            return out
        seen: set[str] = set()
        randrange = self.rng.randrange
        for _ in range(3 * n):
            name = lst[randrange(n)]
            if name in seen or name == me:
                continue
            seen.add(name)
            node = get(name)
            if node is not None and accept(node):
                out.append(node)
                if len(out) >= k:
                    break
        return out

    # ------------------------------------------------------------------------------------
    # gossip and push/pull
    # ------------------------------------------------------------------------------------

    def _gossip(self) -> None:
        now = self._now
        dead_time = self.config.gossip_to_the_dead_time

        def eligible(n: Node) -> bool:
            s = n.state
            if s is NodeState.ALIVE or s is NodeState.SUSPECT:
                return True
            return s is NodeState.DEAD and now - n.state_change <= dead_time

        targets = self._k_random(self.config.gossip_nodes, eligible)
        if not targets:
            return
        self.stats["gossip_rounds"] += 1
        limit = self._limit()
        for i, node in enumerate(targets):
            msgs = self._get_broadcasts(2, limit)
            if not msgs:
                return
            if i == 0:
                # differs from Go: only rounds that send something are timed (Go times every
                # round; an idle node's empty rounds would dominate its metric traffic)
                self._out.append(MetricSample(TIMER, ("memberlist", "gossip"), now))
            crc = len(node.vsn) >= 2 and node.vsn[1] >= 5
            dest = self._addr_of(node)
            if len(msgs) == 1:
                self._send(dest, self.framer.encode_packet(msgs[0], crc=crc))
            else:
                for compound in make_compounds(msgs):
                    self._send(dest, self.framer.encode_packet(compound, crc=crc))

    def _push_pull_message(self, join: bool) -> PushPull:
        counts = [0, 0, 0, 0]
        states = []
        for n in self._entries():
            counts[n.state] += 1
            states.append(
                PushNodeState(n.name, n.addr, n.port, n.meta, n.incarnation, int(n.state), n.vsn)
            )
        # as Go's sendLocalState: the node counts per state, labelled
        key = ("memberlist", "node", "instances")
        for state, count in zip(("alive", "suspect", "dead", "left"), counts, strict=True):
            self._out.append(MetricSample(GAUGE, key, float(count), (("node_state", state),)))
        return PushPull(join, states, self.delegate.local_state(join))

    def _periodic_push_pull(self) -> None:
        peers = self._k_random(1, lambda n: n.state is NodeState.ALIVE)
        if not peers:
            return
        self.stats["push_pulls"] += 1
        peer = peers[0]
        addr = self._addr_of(peer)
        self._log(DEBUG, f"Initiating push/pull sync with: {peer.name} {addr}")
        self._out.append(_TCP_CONNECT)
        sid = self._open_stream(addr, self._push_pull_message(False), want_reply=True)
        self._streams[sid] = _PushPullStream(peer.name, self._now)

    def _verify_protocol(self, remote: list[PushNodeState]) -> str | None:
        """Go's ``verifyProtocol``: every node's current versions must fit every alive
        node's ranges. Returns the error text, or None."""
        # the answer depends on the version bytes alone, and a table holds few distinct ones
        # (shared objects): check each once, and scan in order only to name the first misfit
        # (the first node of a join storm merges N tables of up to N entries)
        dead, left = NodeState.DEAD, NodeState.LEFT
        entries = self._entries()
        ranges = {n.vsn for n in entries if n.state is not dead and n.state is not left}
        ranges = {v for v in ranges if len(v) >= 6}
        ranges.update(bytes(s.vsn) for s in remote if s.vsn and len(s.vsn) >= 6 and s.state == 0)
        if not ranges:
            return None
        bounds = _version_bounds(ranges)
        current = {n.vsn for n in entries}
        current.update(bytes(s.vsn or b"") for s in remote)
        if all(_version_fits(vsn, bounds) for vsn in current):
            return None
        found = [(n.name, n.vsn) for n in entries] + [(s.name, bytes(s.vsn or b"")) for s in remote]
        for name, vsn in found:
            if not _version_fits(vsn, bounds):
                pcur, dcur = _current_versions(vsn)
                max_pmin, min_pmax, max_dmin, min_dmax = bounds
                if not max_pmin <= pcur <= min_pmax:
                    return (
                        f"Node '{name}' protocol version ({pcur}) is incompatible: "
                        f"[{max_pmin}, {min_pmax}]"
                    )
                return (
                    f"Node '{name}' delegate protocol version ({dcur}) is incompatible: "
                    f"[{max_dmin}, {min_dmax}]"
                )
        raise AssertionError("a version that does not fit was not found again")  # pragma: no cover

    def _merge_remote(self, msg: PushPull, join: bool) -> str | None:
        """Go's ``mergeRemoteState``; returns an error text or None."""
        err = self._verify_protocol(msg.states)
        if err is not None:
            return err
        if join and self.delegate.merge is not None:
            peers = [
                Node(
                    s.name,
                    s.addr or b"",
                    s.port,
                    s.meta or b"",
                    s.incarnation,
                    NodeState(s.state) if 0 <= s.state <= 3 else NodeState.DEAD,
                    vsn=s.vsn or b"",
                )
                for s in msg.states
            ]
            veto = self.delegate.notify_merge(peers)
            if veto is not None:
                return veto
        states = msg.states
        if self._cidrs:  # as Go's aliveNode: alive entries must advertise an allowed address
            states = [s for s in states if s.state != 0 or (s.addr and self._ip_allowed(s.addr))]
        self._apply(self.state.merge_remote_state(states, self._now))
        if msg.user_state:
            self.delegate.merge_remote_state(msg.user_state, join)
        return None

    # ------------------------------------------------------------------------------------
    # streams
    # ------------------------------------------------------------------------------------

    def _on_stream_request(self, req: io.StreamRequest) -> None:
        self.stats["streams_received"] += 1
        msg = req.message.message
        out = self._out
        self._log(DEBUG, f"Stream connection from={req.source}")
        out.append(_TCP_ACCEPT)
        match msg:
            case PushPull():
                # differs from Go: push/pulls are handled inline, so Go's cap of 128
                # concurrent inbound ones (maxPushPullRequests) cannot be reached
                reply = self._push_pull_message(msg.join)
                data = self.framer.encode_stream_message(reply, dialer=False)
                out.append(io.StreamRespond(req.stream_id, data))
                out.append(MetricSample(COUNTER, _TCP_SENT, float(len(data))))
                err = self._merge_remote(msg, msg.join)
                if err is not None:
                    self._drop(f"push/pull merge refused: {err}", req.source, log=False)
                    self._log(ERR, f"Failed push/pull merge: {err} from={req.source}")
            case Ping():
                if msg.node and msg.node != self.name:
                    out.append(io.StreamRespond(req.stream_id, None))
                    what = f"stream ping for unexpected node {msg.node!r}"
                    self._drop(what, req.source, log=False)
                    self._log(WARN, f"Got ping for unexpected node {msg.node} from={req.source}")
                    return
                data = self.framer.encode_stream_message(AckResp(msg.seq_no, None), dialer=False)
                out.append(io.StreamRespond(req.stream_id, data))
            case UserMsg():
                out.append(io.StreamRespond(req.stream_id, None))
                self.delegate.notify_msg(msg.payload)
            case _:
                out.append(io.StreamRespond(req.stream_id, None))
                self._drop(f"unexpected stream message {type(msg).__name__}", req.source)

    def _on_stream_unreadable(self, inp: io.StreamUnreadable) -> None:
        self._out.extend(answer_unreadable(self.framer, inp))

    def _on_stream_result(self, res: io.StreamResult) -> None:
        kind = self._streams.pop(res.stream_id, None)
        if kind is None:
            return
        reply = res.reply.message if res.reply is not None else None
        error = res.error
        if error is None and isinstance(reply, ErrResp):
            error = f"remote error: {reply.error}"
        match kind:
            case _PingStream(probe):
                probe.tcp_pending -= 1
                if error is None and isinstance(reply, AckResp) and reply.seq_no == probe.seq:
                    probe.tcp_ok = True
                if probe.waiting_tcp and probe.tcp_pending == 0 and self._probe is probe:
                    if probe.tcp_ok:
                        self._tcp_only_success(probe)
                    else:
                        self._probe_failed(probe)
            case _JoinStream(request_id, addr):
                error = self._merge_reply(reply, error, join=True)
                self._join_step(
                    request_id, None if error is None else f"failed to join {addr}: {error}"
                )
            case _PushPullStream(peer, started):
                error = self._merge_reply(reply, error, join=False)
                self._out.append(MetricSample(TIMER, ("memberlist", "pushPullNode"), started))
                if error is not None:
                    self._drop(f"push/pull failed: {error}", None, log=False)
                    self._log(ERR, f"Push/Pull with {peer} failed: {error}")
            case _UserStream():
                pass
            case _:
                assert_never(kind)

    def _merge_reply(
        self, reply: MemberlistMessage | None, error: str | None, join: bool
    ) -> str | None:
        """Merge a push/pull reply; the error, if any."""
        if error is not None:
            return error
        if isinstance(reply, PushPull):
            return self._merge_remote(reply, join)
        return f"unexpected push/pull reply {type(reply).__name__}"

    # ------------------------------------------------------------------------------------
    # packets
    # ------------------------------------------------------------------------------------

    def _drop(self, reason: str, source: Address | None, *, log: bool = True) -> None:
        """Count a drop; unless the caller logs its own (Go's) line, log ``reason`` at ERR
        with Go's ``from=`` suffix."""
        self.stats["dropped"] += 1
        self._out.append(io.Dropped(reason, source))
        if log:
            where = f"from={source}" if source is not None else "from=<unknown address>"
            self._log(ERR, f"{reason} {where}")

    def _on_packet(self, inp: io.PacketReceived) -> None:
        data, source = inp.data, inp.source
        self.stats["packets_received"] += 1
        self._out.append(MetricSample(COUNTER, _UDP_RECEIVED, float(len(data))))
        try:
            decoded = self.framer.decode_packet(data, self._split)
        except DecodeError as exc:
            self._drop(str(exc), source)
            return
        for err in decoded.errors:
            self._drop(err, source)
        if decoded.truncated:
            self._drop(f"{decoded.truncated} truncated compound parts", source, log=False)
            self._log(
                WARN, f"Compound request had {decoded.truncated} truncated messages from={source}"
            )
        # an alive we already know (most gossip) changes nothing: skip it before the dispatch
        ignores = self.state.ignores_alive if not self._cidrs else None
        for msg in decoded.messages:
            if (
                ignores is not None
                and type(msg) is Alive
                and msg.addr is not None
                and len(msg.addr) in (4, 16)
                and ignores(msg)
            ):
                continue
            handler = self._on_msg.get(type(msg))
            if handler is None:
                self._drop(f"unexpected packet message {type(msg).__name__}", source)
                continue
            try:
                handler(msg, source)
            except (DecodeError, ValueError, TypeError, OverflowError, KeyError) as exc:
                self._drop(f"bad {type(msg).__name__}: {exc}", source)

    def _reply_addr(self, addr: bytes | None, port: int, source: Address) -> Address:
        if addr and port:
            return self._addr_of_raw(addr, port)
        return source

    def _addr_of_raw(self, addr: bytes, port: int) -> Address:
        return _address(bytes(addr), port)

    def _on_ping(self, msg: Ping, source: Address) -> None:
        if msg.node and msg.node != self.name:
            self._drop(f"ping for unexpected node {msg.node!r}", source, log=False)
            self._log(WARN, f"Got ping for unexpected node '{msg.node}' from={source}")
            return
        payload = self.delegate.ack_payload() if self.delegate.ping is not None else None
        dest = self._reply_addr(msg.source_addr, msg.source_port, source)
        self._send_msg(dest, AckResp(msg.seq_no, payload))

    def _on_ack(self, msg: AckResp, source: Address) -> None:
        relay = self._relays.pop(msg.seq_no, None)
        if relay is not None:
            self._live.pop(relay.token, None)
            self._send_msg(relay.dest, AckResp(relay.seq_no, None))
            return
        probe = self._probe
        if probe is not None and probe.seq == msg.seq_no and not probe.acked:
            direct = self._now - probe.sent <= self.config.probe_timeout
            self._probe_success(probe, msg.payload, direct)

    def _on_nack(self, msg: NackResp, source: Address) -> None:
        probe = self._probe
        if probe is not None and probe.seq == msg.seq_no:
            probe.nacks += 1

    def _on_indirect_ping(self, msg: IndirectPingReq, source: Address) -> None:
        port = msg.port
        if self.config.protocol_version < 2 or not port:  # as Go: assume our bind port
            port = self.config.bind_port
        if not msg.target:
            raise ValueError("indirect ping without a target address")
        seq = self._next_ping_seq()
        requester = self._reply_addr(msg.source_addr, msg.source_port, source)
        relay = _Relay(requester, msg.seq_no, msg.nack)
        timeout = self._now + self.config.probe_timeout
        relay.token = self._schedule(timeout, TimerKind.RELAY_TIMEOUT, seq)
        self._relays[seq] = relay
        self._send_msg(self._addr_of_raw(msg.target, port), self._ping(seq, msg.node))

    def _on_alive(self, msg: Alive, source: Address) -> None:
        if msg.addr is None or len(msg.addr) not in (4, 16):
            raise ValueError("alive without a valid address")
        if self._cidrs and not (self._ip_allowed(msg.addr) and self._ip_allowed(source.ip_bytes())):
            self._drop(f"alive for {msg.node!r} from a network outside cidrs_allowed", source)
            return
        self._apply(self.state.handle_alive(msg, self._now))

    def _on_suspect(self, msg: Suspect, source: Address) -> None:
        self._apply(self.state.handle_suspect(msg, self._now))

    def _on_dead(self, msg: Dead, source: Address) -> None:
        self._apply(self.state.handle_dead(msg, self._now))

    def _on_user_msg(self, msg: UserMsg, source: Address) -> None:
        self.delegate.notify_msg(msg.payload)

    def _relay_timeout(self, seq: int) -> None:
        relay = self._relays.pop(seq, None)
        if relay is not None and relay.nack:
            self._send_msg(relay.dest, NackResp(relay.seq_no))

    def _ip_allowed(self, ip: bytes) -> bool:
        """Go's ``ensureCanConnect``: is ``ip`` inside one of ``cidrs_allowed``?"""
        try:
            addr = ipaddress.ip_address(bytes(ip))
        except ValueError:
            return False
        mapped = getattr(addr, "ipv4_mapped", None)
        if mapped is not None:
            addr = mapped
        return any(addr in net for net in self._cidrs)

    def _alive_allowed(self, node: Node) -> bool:
        return self.delegate.notify_alive(node) is None
