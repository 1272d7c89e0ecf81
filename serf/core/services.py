"""What the pieces of the serf core share: the services the coordinator gives its owners.

How this works. :class:`serf.core.serf.SerfCore` is split by ownership: every piece of state
has one owner (members and intents: :class:`serf.core.intents.Membership`; queries:
:class:`serf.core.queries.QueryManager`; internal queries: :class:`serf.core.internal.
InternalQueries`; user events: :class:`serf.core.events.UserEventManager`; coordinates:
:class:`serf.core.coordinates.Coordinates`; the gossip queues: :class:`Broadcasts`; the
event delivery chain: :class:`serf.core.delivery.Delivery`). They share only what this module
defines, the small :class:`Services` protocol: the time of the current input, effects out,
log lines, timers, sending a serf message, requests to the memberlist core, the codec, the
three Lamport clocks, the config, and the node's life-cycle state. :class:`CoreServices`
implements it; the coordinator owns it and drains what it collected.

No owner imports the coordinator (no import cycle), and no owner writes another's state.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from serf import _speedups
from serf.address import Address
from serf.config import SerfConfig
from serf.core.lamport import LamportClock
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.telemetry import SAMPLE, WARN, MetricSample, serf_line
from serf.wire.codec import Codec

if TYPE_CHECKING:
    import random

__all__ = ["Broadcasts", "CoreServices", "Services"]

_MSGS_SENT = ("serf", "msgs", "sent")
_MIN_QUEUE_MULT = 2


class Services(Protocol):
    """What an owner may use of the core it belongs to (see the module comment)."""

    name: str
    config: SerfConfig
    codec: Codec
    rng: random.Random
    advertise: Address
    clock: LamportClock
    event_clock: LamportClock
    query_clock: LamportClock
    stats_counters: dict[str, int]
    serf_state: SerfState

    @property
    def now(self) -> float:
        """The time of the input being handled."""
        ...

    def emit(self, effect: Any) -> None:
        """Hand one effect to the driver."""
        ...

    def log(self, level: int, text: str) -> None:
        """One of Go's ``serf:`` log lines, as a :class:`~serf.telemetry.LogLine` effect."""
        ...

    def after(self, delay: float, fn: Callable[[], None]) -> int:
        """Call ``fn`` once ``delay`` seconds from now; returns a token for :meth:`cancel`."""
        ...

    def cancel(self, token: int) -> None:
        """Forget the timer of ``token`` (a stale token is a no-op)."""
        ...

    def send(self, dest: Address, raw: bytes) -> None:
        """A serf message to ``dest`` in one packet (to ourselves: handled at once)."""
        ...

    def ml_request(
        self, make: Callable[[int], mio.Input], done: Callable[[mio.RequestCompleted], None]
    ) -> None:
        """Feed the memberlist core ``make(request_id)`` once the current call returns and
        call ``done`` with its completion."""
        ...


class CoreServices:
    """The :class:`Services` of one serf core: clocks, timers, effects, pending memberlist
    inputs. ``loopback`` handles a serf message sent to our own address."""

    def __init__(
        self,
        config: SerfConfig,
        codec: Codec,
        rng: random.Random,
        advertise: Address,
    ) -> None:
        self.name = config.node_name
        self.config = config
        self.codec = codec
        self.rng = rng
        self.advertise = advertise
        self.clock = LamportClock()
        self.event_clock = LamportClock()
        self.query_clock = LamportClock()
        self.serf_state = SerfState.ALIVE
        self.stats_counters: dict[str, int] = {
            "dropped": 0,
            "events_dropped_old": 0,
            "queries_dropped_old": 0,
            "ping_version_ignored": 0,
            "coordinate_rejected": 0,
            "queue_depth_warnings": 0,
            "name_conflicts_unanswered": 0,
        }
        self.loopback: Callable[[bytes], None] = lambda raw: None
        #: effects of the input being handled (the coordinator swaps in a new list per input)
        self.out: list[Any] = []
        #: memberlist inputs to feed once the current call returns
        self.pending: list[mio.Input] = []
        self._now = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._seq = 0
        self._ml_seq = 0
        self._ml_waiting: dict[int, Callable[[mio.RequestCompleted], None]] = {}

    @property
    def now(self) -> float:
        """The time of the input being handled."""
        return self._now

    def begin(self, now: float) -> list[Any]:
        """Start handling an input at ``now``; returns the list its effects go to."""
        self._now = now
        self.out = []
        return self.out

    def emit(self, effect: Any) -> None:
        """Hand one effect to the driver."""
        self.out.append(effect)

    def log(self, level: int, text: str) -> None:
        """One of Go's ``serf:`` log lines."""
        self.out.append(serf_line(level, text))

    # -- timers --------------------------------------------------------------------------

    def after(self, delay: float, fn: Callable[[], None]) -> int:
        """Call ``fn`` once ``delay`` seconds from now; returns its token."""
        self._seq += 1
        token = self._seq
        self._live.add(token)
        heapq.heappush(self._timers, (self._now + delay, token, fn))
        return token

    def cancel(self, token: int) -> None:
        """Forget the timer of ``token``."""
        self._live.discard(token)

    def every(self, interval: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` every ``interval`` seconds (never when ``interval`` <= 0)."""
        if interval <= 0:
            return

        def tick() -> None:
            self.after(interval, tick)
            fn()

        self.after(interval, tick)

    def next_timer(self) -> float | None:
        """When the earliest live timer is due (None: none)."""
        timers = self._timers
        while timers and timers[0][1] not in self._live:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def run_timers(self) -> None:
        """Run the timers due at :attr:`now`, in order; stop at a shutdown."""
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            _, token, fn = heapq.heappop(timers)
            if token in self._live:
                self._live.discard(token)
                fn()
                if self.serf_state is SerfState.SHUTDOWN:
                    return

    def live_timers(self) -> int:
        """How many timers are pending."""
        return len(self._live)

    def clear_timers(self) -> None:
        """Drop every timer (shutdown)."""
        self._timers.clear()
        self._live.clear()

    # -- the memberlist core -------------------------------------------------------------

    def send(self, dest: Address, raw: bytes) -> None:
        """A serf message to ``dest`` in one packet (Go's SendToAddress); to ourselves it is
        handled at once (differs from Go, which loops it through the network)."""
        if dest == self.advertise:
            self.loopback(raw)
        else:
            self.pending.append(mio.SendBestEffort(dest, raw))

    def ml_request(
        self, make: Callable[[int], mio.Input], done: Callable[[mio.RequestCompleted], None]
    ) -> None:
        """Queue a memberlist request under an internal (negative) request id."""
        self._ml_seq -= 1
        rid = self._ml_seq
        self._ml_waiting[rid] = done
        self.pending.append(make(rid))

    def completed(self, eff: mio.RequestCompleted) -> bool:
        """Route the completion of an internal request to its waiter; False for the
        driver's own (non-negative) request ids."""
        if eff.request_id >= 0:
            return False
        done = self._ml_waiting.pop(eff.request_id, None)
        if done is not None:
            done(eff)
        return True


class Broadcasts:
    """Serf's three gossip queues (intents, events, queries), transmit-limited queues of
    unique broadcasts sized by serf's own member count, drained in the order intents,
    queries, events."""

    def __init__(
        self, services: Services, retransmit_mult: int, num_members: Callable[[], int]
    ) -> None:
        self._s = services
        self._num_members = num_members
        tlq = _speedups.broadcast.TransmitLimitedQueue
        self.intents = tlq(retransmit_mult, num_members)
        self.events = tlq(retransmit_mult, num_members)
        self.queries = tlq(retransmit_mult, num_members)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """As many queued messages as fit in ``limit`` bytes (memberlist's ``GetBroadcasts``)."""
        msgs: list[bytes] = []
        used = 0  # the bytes (with overhead) of msgs so far
        for queue in (self.intents, self.queries, self.events):
            if limit - used <= overhead:
                break
            got = queue.get_broadcasts(overhead, limit - used)
            if got:
                msgs.extend(got)
                used += sum(map(len, got)) + overhead * len(got)
        emit = self._s.emit
        for m in msgs:  # Go samples each message sent (15 a packet under an event load)
            emit(MetricSample(SAMPLE, _MSGS_SENT, float(len(m))))
        return msgs

    def has_queued(self) -> bool:
        """Whether any of the three queues holds a message."""
        return bool(
            self.intents.num_queued() or self.events.num_queued() or self.queries.num_queued()
        )

    def limit(self) -> int:
        """The depth a queue is pruned to (Go's MinQueueDepth, else MaxQueueDepth)."""
        cfg = self._s.config
        if cfg.min_queue_depth > 0:
            return max(cfg.min_queue_depth, _MIN_QUEUE_MULT * self._num_members())
        return cfg.max_queue_depth

    def check_queues(self) -> None:
        """Sample each queue's depth, warn when deep, prune when over the limit (as Go's
        ``checkQueueDepth``)."""
        s = self._s
        limit = self.limit()
        for name, queue in (
            ("Intent", self.intents),
            ("Event", self.events),
            ("Query", self.queries),
        ):
            depth = queue.num_queued()
            s.emit(MetricSample(SAMPLE, ("serf", "queue", name), float(depth)))
            if depth >= s.config.queue_depth_warning:
                s.stats_counters["queue_depth_warnings"] += 1
                s.log(WARN, f"{name} queue depth: {depth}")
            if depth > limit:
                s.log(
                    WARN,
                    f"{name} queue depth ({depth}) exceeds limit ({limit}), dropping messages!",
                )
                queue.prune(limit)
