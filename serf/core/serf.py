"""The sans-IO serf core: members, intents, user events, queries, keys, coordinates.

How this works
--------------
:class:`SerfCore` owns a :class:`~serf.memberlist.core.MemberlistCore` and coordinates the
pieces of serf's state, each with one owner that works through the small services protocol
of :mod:`serf.core.services` (never through this class, so none of them imports it):

* :class:`~serf.core.gossip.SerfDelegate`: memberlist's ``Delegate``: our tags (node meta),
  inbound serf messages dispatched by type through one table (reference 3.5/3.6), push/pull
  user state;
* :class:`~serf.core.intents.Membership`: members and intents, the member status machine
  (3.2); memberlist's ``EventDelegate`` and (with a merge delegate) ``MergeDelegate``;
* :class:`~serf.core.queries.QueryManager` and :class:`~serf.core.internal.InternalQueries`
  (3.7, 3.8; the latter is memberlist's ``ConflictDelegate``);
* :class:`~serf.core.events.UserEventManager`, :class:`~serf.core.lifecycle.Lifecycle` (join,
  leave, force-leave: 3.12), :class:`~serf.core.coordinates.Coordinates` (memberlist's
  ``PingDelegate``, 3.11), :class:`~serf.core.delivery.Delivery` (snapshot recorder and
  coalescers) and the gossip queues (:class:`~serf.core.services.Broadcasts`).

The owners are handed straight to the memberlist core as its delegates. ``handle(input,
now)`` takes every memberlist input (passed through) and the serf requests of
:mod:`serf.core.io`, each to its handler through one table, and returns effects: the
memberlist ones (it emits no ``Node*`` notifications under a serf core: the Membership
delegate takes the same news, one path) plus serf events.

The memberlist core calls the delegates *inside* its ``handle``; a delegate never calls back
into it. Whatever a delegate (or a serf request) wants memberlist to do (send a packet, join,
leave, update the node) goes into the services' ``pending`` list and is fed to the memberlist
core once the current call returns. Internal memberlist requests use negative request ids,
so the driver's own (non-negative) ids pass through untouched.

Timers: one heap of ``(when, seq, callback)`` in :class:`~serf.core.services.CoreServices`.
``next_deadline()`` is the minimum of that heap, the memberlist core's deadline and the
coalescers' deadlines. Where we differ from Go on purpose it says so. The public names
(``SerfState``, the ``QUERY_FLAG_*`` constants, ``INTERNAL_QUERY_PREFIX``, the delegate
protocols) are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from serf.address import Address
from serf.config import META_MAX_SIZE, SerfConfig
from serf.core import io as sio
from serf.core.coordinates import Coordinates
from serf.core.delivery import Delivery
from serf.core.events import UserEventManager
from serf.core.gossip import SerfDelegate
from serf.core.intents import Membership, ReconnectDelegate, SerfMergeDelegate
from serf.core.internal import InternalQueries
from serf.core.lifecycle import Lifecycle
from serf.core.queries import (
    INTERNAL_QUERY_PREFIX,
    QUERY_FLAG_ACK,
    QUERY_FLAG_NO_BROADCAST,
    QueryManager,
)
from serf.core.services import Broadcasts, CoreServices
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.memberlist.core import MemberlistCore
from serf.memberlist.delegates import CompositeDelegate, chain
from serf.memberlist.state import StateTable
from serf.telemetry import LogLine
from serf.wire.codec import get_codec
from serf.wire.framing import PacketFramer, StreamReader
from serf.wire.messages import (
    Coordinate,
)

if TYPE_CHECKING:
    import random

    from serf.core.snapshot import SnapshotState  # imported with a snapshot (delivery)
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

_SNAPSHOT_CLOCK_INTERVAL = 0.5
_TYPE_PUSH_PULL = 2
_MSGS_RECEIVED = ("serf", "msgs", "received")

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
        assert config.memberlist is not None
        self.config = config
        self.name = config.node_name
        self.rng = rng
        self.advertise = advertise
        ml_config = replace(
            config.memberlist,
            name=config.node_name,
            protocol_version=2,  # Go's ProtocolVersionMap: every serf version -> 2
            delegate_protocol_min=2,
            delegate_protocol_max=5,
            delegate_protocol_version=config.protocol_version,
        )
        # the memberlist core resolves its codec the same way (one instance per name)
        s = self.services = CoreServices(config, get_codec(ml_config.codec), rng, advertise)
        # the pieces of state, each with one owner (serf.core.services)
        self.delivery = Delivery(s, snapshot)
        self.coords = Coordinates(s)
        self.broadcasts = Broadcasts(s, ml_config.retransmit_mult, self._num_serf_members)
        self.membership = Membership(
            s,
            self.delivery,
            self.broadcasts,
            merge_delegate=merge_delegate,
            reconnect_delegate=reconnect_delegate,
            forget=self.coords.forget,
        )
        self.user_events = UserEventManager(s, self.delivery, self.broadcasts)
        self.queries = QueryManager(
            s,
            self.membership,
            self.delivery,
            self.broadcasts,
            lambda: self.memberlist.num_members(),
            ml_config.gossip_interval,
            lambda: self.gossip.tags,
        )
        self.gossip = SerfDelegate(
            s, self.membership, self.broadcasts, self.user_events, self.queries, config.tags
        )
        s.loopback = self.gossip.notify_msg
        if len(self.gossip.encode_tags(config.tags)) > META_MAX_SIZE:
            raise ValueError(
                f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes (tags)"
            )
        self.lifecycle = Lifecycle(
            s, self.membership, self.delivery, self.broadcasts, self.user_events
        )
        self.internal = InternalQueries(
            s, self.queries, self.membership, lambda: self.memberlist, self._lost_conflict
        )
        has_merge = merge_delegate is not None
        composite = CompositeDelegate(
            delegate=self.gossip,
            events=self.membership,
            merge=self.membership if has_merge else None,
            alive=self.membership if has_merge else None,
            conflict=self.internal,
            ping=None if config.disable_coordinates else self.coords,
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
            node_effects=False,  # the Membership delegate takes the news: one path
        )
        # memberlist's gossip ticker parks while serf's queues and its own are empty (an idle
        # agent then wakes for probes only); handle() wakes it after each input
        self.memberlist.delegate_queued = self.broadcasts.has_queued
        self.codec = self.memberlist.framer.codec
        s.codec = self.codec
        # clocks: incremented once at start, then witnessing the snapshot (reference 3.1)
        self.clock, self.event_clock, self.query_clock = s.clock, s.event_clock, s.query_clock
        for clk in (self.clock, self.event_clock, self.query_clock):
            clk.increment()
        self._rejoin: list[tuple[str, Address]] = []
        if snapshot is not None:
            self.clock.witness(snapshot.last_clock)
            self.event_clock.witness(snapshot.last_event_clock)
            self.query_clock.witness(snapshot.last_query_clock)
            self.user_events.min_time = snapshot.last_event_clock + 1
            self.queries.min_time = snapshot.last_query_clock + 1
            for name, text in snapshot.alive_nodes.items():
                if name == self.name:
                    continue
                try:
                    self._rejoin.append((name, Address.parse(text)))
                except ValueError:
                    continue
            rng.shuffle(self._rejoin)
        self._started = False
        # inputs by type (memberlist inputs not in the table go to the memberlist core)
        self._on_input: dict[type, Callable[[Any], None]] = {
            mio.Tick: self._tick,
            mio.Start: self._start,
            mio.ShutdownRequest: self._shutdown,
            sio.UserEventRequest: self.user_events.request,
            sio.QueryRequest: self.queries.query,
            sio.RespondRequest: self._respond,
            sio.SetTagsRequest: self._set_tags,
            sio.SerfJoinRequest: self.lifecycle.join,
            sio.SerfLeaveRequest: self.lifecycle.leave,
            sio.ForceLeaveRequest: self.lifecycle.force_leave,
            sio.KeyRequest: self.internal.key_request,
        }

    # ------------------------------------------------------------------------------------
    # public views
    # ------------------------------------------------------------------------------------

    @property
    def framer(self) -> PacketFramer:
        """The memberlist core's framer (drivers read streams with it)."""
        return self.memberlist.framer

    def stream_reader(self, *, listener: bool) -> StreamReader:
        """The memberlist core's stream reader (see :mod:`serf.memberlist.io`)."""
        return self.memberlist.stream_reader(listener=listener)

    @property
    def state(self) -> StateTable:
        """The memberlist state table (the simulator and invariant checkers read it)."""
        return self.memberlist.state

    @property
    def keyring(self) -> Keyring | None:
        """The memberlist keyring (None: encryption off)."""
        return self.memberlist.keyring

    @property
    def serf_state(self) -> SerfState:
        """Go's ``SerfState``: alive, leaving, left or shutdown."""
        return self.services.serf_state

    @serf_state.setter
    def serf_state(self, value: SerfState) -> None:
        self.services.serf_state = value

    @property
    def stats_counters(self) -> dict[str, int]:
        """Our own counters (drops, old events and queries, coordinate rejections ...)."""
        return self.services.stats_counters

    @property
    def rejoin_addresses(self) -> list[tuple[str, Address]]:
        """Snapshot peers to auto-rejoin, in random order (try one at a time until one
        join succeeds, as Go's ``handleRejoin``)."""
        return list(self._rejoin)

    def members(self) -> list[sio.SerfMember]:
        """Every serf member we know (every status, ourselves included)."""
        return [m.snapshot() for m in self.membership.members.values()]

    def member(self, name: str) -> sio.SerfMember | None:
        """One member, or None."""
        m = self.membership.get(name)
        return None if m is None else m.snapshot()

    def local_member(self) -> sio.SerfMember:
        """Our own member record."""
        m = self.membership.get(self.name)
        if m is not None:
            return m.snapshot()
        return sio.SerfMember(
            self.name,
            self.advertise.ip_bytes(),
            self.advertise.port,
            dict(self.gossip.tags),
            sio.MemberStatus.ALIVE,
        )

    def stats(self) -> dict[str, str]:
        """Go's ``Stats()`` (reference 3.13)."""
        mb, b = self.membership, self.broadcasts
        out = {
            "members": str(len(mb.members)),
            "failed": str(len(mb.failed)),
            "left": str(len(mb.left)),
            "health_score": str(self.memberlist.health_score),
            "member_time": str(self.clock.time()),
            "event_time": str(self.event_clock.time()),
            "query_time": str(self.query_clock.time()),
            "intent_queue": str(b.intents.num_queued()),
            "event_queue": str(b.events.num_queued()),
            "query_queue": str(b.queries.num_queued()),
            "encrypted": "true" if self.memberlist.keyring is not None else "false",
        }
        if self.coords.client is not None:
            out["coordinate_resets"] = str(self.coords.client.resets)
        return out

    def get_coordinate(self) -> Coordinate | None:
        """Our Vivaldi coordinate (None when coordinates are disabled)."""
        client = self.coords.client
        return None if client is None else client.get_coordinate()

    def cached_coordinate(self, name: str) -> Coordinate | None:
        """The last coordinate we heard from ``name`` (Go's ``GetCachedCoordinate``)."""
        return self.coords.cache.get(name)

    def default_query_timeout(self) -> float:
        """Go's ``DefaultQueryTimeout``: gossip interval x mult x ceil(log10(N + 1))."""
        return self.queries.default_timeout()

    def next_deadline(self) -> float | None:
        """When the driver must feed ``Tick`` next (None: never)."""
        best = self.services.next_timer()
        for d in (self.memberlist.next_deadline(), self.delivery.next_deadline()):
            if d is not None and (best is None or d < best):
                best = d
        return best

    # ------------------------------------------------------------------------------------
    # the entry point
    # ------------------------------------------------------------------------------------

    def handle(
        self, inp: mio.Input | sio.SerfInput, now: float
    ) -> list[mio.Effect | sio.SerfEffect]:
        """Apply one input at ``now``; return the effects for the driver to carry out
        (memberlist's :data:`~serf.memberlist.io.Effect` and the serf
        :data:`~serf.core.io.SerfEffect` types, log lines and metric samples)."""
        out = self.services.begin(now)
        handler = self._on_input.get(type(inp))
        if handler is None:
            self._ml(inp)  # type: ignore[arg-type]  # the table holds every serf request
        elif self.serf_state is SerfState.SHUTDOWN and isinstance(inp, _SERF_REQUESTS):
            out.append(mio.RequestCompleted(inp.request_id, error="Serf is shut down"))
        else:
            handler(inp)
        self._drain()
        self.memberlist.wake_gossip(now)
        return out

    def _drain(self) -> None:
        pending = self.services.pending
        while pending:
            self._ml(pending.pop(0))

    def _ml(self, inp: mio.Input) -> None:
        """Feed the memberlist core; its completions of our own requests go to their
        waiters, the rest of its effects out."""
        s = self.services
        out = s.out
        mark = len(out)
        effects = self.memberlist.handle(inp, s.now)
        if len(out) > mark:
            # the delegates already emitted serf effects for this input: memberlist's log
            # lines go before them, in the order Go writes them ("Marking b as failed" comes
            # before "EventMemberFailed: b")
            lines = [e for e in effects if isinstance(e, LogLine)]
            if lines:
                out[mark:mark] = lines
                effects = [e for e in effects if not isinstance(e, LogLine)]
        for eff in effects:
            if isinstance(eff, mio.RequestCompleted) and s.completed(eff):
                continue
            out.append(eff)

    def _tick(self, inp: mio.Tick) -> None:
        deadline = self.memberlist.next_deadline()
        if deadline is not None and deadline <= self.services.now:
            self._ml(inp)
        if self.serf_state is not SerfState.SHUTDOWN:
            self.services.run_timers()
            self.delivery.flush(force=False)

    # ------------------------------------------------------------------------------------
    # start / shutdown
    # ------------------------------------------------------------------------------------

    def _start(self, inp: mio.Start) -> None:
        if self._started:
            return
        self._started = True
        self._ml(inp)
        cfg, s = self.config, self.services
        s.every(cfg.reap_interval, self.membership.reap)
        s.every(cfg.reconnect_interval, self._reconnect)
        s.every(cfg.queue_check_interval, self.broadcasts.check_queues)
        if self.delivery.recorder is not None:
            s.every(_SNAPSHOT_CLOCK_INTERVAL, self.delivery.sample_clock)

    def _shutdown(self, inp: mio.ShutdownRequest | None = None) -> None:
        if self.serf_state is SerfState.SHUTDOWN:
            return
        self.serf_state = SerfState.SHUTDOWN
        self._ml(inp or mio.ShutdownRequest())
        self.delivery.flush(force=True)
        self.delivery.sample_clock()
        self.services.clear_timers()
        for q in list(self.queries.out_queries.values()):
            self.queries.finish_query(q)

    def _lost_conflict(self, reason: str) -> None:
        self._shutdown()
        self.services.emit(sio.ShutdownRequired(reason))

    # ------------------------------------------------------------------------------------
    # requests: respond, tags, join / leave / force-leave (reference 3.12)
    # ------------------------------------------------------------------------------------

    def _respond(self, req: sio.RespondRequest) -> None:
        err = self.queries.respond(req.query.ltime, req.query.id, req.payload)
        self.services.emit(mio.RequestCompleted(req.request_id, error=err))

    def _set_tags(self, req: sio.SetTagsRequest) -> None:
        s = self.services
        meta = self.gossip.encode_tags(req.tags)
        if len(meta) > META_MAX_SIZE:
            err = f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes"
            s.emit(mio.RequestCompleted(req.request_id, error=err))
            return
        self.gossip.tags = dict(req.tags)  # kept even if the broadcast wait times out (as Go)

        def done(res: mio.RequestCompleted) -> None:
            s.emit(mio.RequestCompleted(req.request_id, error=res.error))

        timeout = self.config.broadcast_timeout
        s.ml_request(lambda rid: mio.UpdateNodeRequest(rid, timeout), done)

    # ------------------------------------------------------------------------------------
    # periodic work: reconnect, queue depth
    # ------------------------------------------------------------------------------------

    def _reconnect(self) -> None:
        addr = self.membership.reconnect_target()
        if addr is not None:
            self.services.ml_request(lambda rid: mio.JoinRequest(rid, (addr,)), lambda res: None)

    def _num_serf_members(self) -> int:
        return len(self.membership)
