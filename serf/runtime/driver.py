"""The asyncio driver of a sans-IO memberlist core.

How this works. One task (the *owner*) is the only code that calls ``core.handle``. Everything
that has something for the core (the transport's packet callback, inbound stream handlers,
outbound stream tasks, the timer, API calls) appends ``(input, waiter)`` to an inbox and wakes
the owner; the owner drains the inbox, feeds each input with ``now = loop.time()`` and carries
out the effects (:mod:`serf.memberlist.io`):

* ``SendPacket`` -> ``transport.send_packet``;
* ``OpenStream`` -> a task that dials, writes, half-closes, reads one reply with
  ``core.stream_reader(listener=False)`` when ``want_reply``, and feeds exactly one
  ``StreamResult`` (the reply or an error text), all within the effect's timeout;
* ``StreamRespond`` -> resolves the pending inbound stream, whose handler writes and returns
  (the transport then closes the connection);
* ``RequestCompleted`` -> resolves the future of that ``request_id``;
* ``NodeJoined`` / ``NodeLeft`` / ``NodeUpdated`` -> every event subscriber's bounded queue;
* ``Dropped`` -> counted and logged at debug;
* ``LogLine`` -> the stdlib logger it names (``serf.memberlist``, ``serf.core``), or
  :attr:`MemberlistDriver.line_sink` when a process sets one (the agent's);
* ``MetricSample`` -> :attr:`MemberlistDriver.metrics` (a :class:`serf.metrics.Metrics`;
  None drops them): queued with the time the core was given (``metrics.pending``), and
  ``metrics.poll(now, next deadline)`` at the end of each batch of inputs.

Inbound streams are read with ``core.stream_reader(listener=True)`` under the TCP timeout and
enter the core the way packets do: the request as ``StreamRequest``, a framing error as
``StreamUnreadable`` (the core decides the answer: Go's ``ErrResp`` for a
:class:`~serf.wire.framing.StreamRejected`, else a plain close).

After every batch the owner re-arms ONE timer, ``loop.call_at(core.next_deadline())``,
cancelling the previous handle if the deadline moved; when it fires it queues a ``Tick`` fed
with ``now = max(deadline, loop.time())`` (design principle 3).

Nothing from the network may kill the owner: an exception from ``core.handle`` for a network
input is logged and counted in :attr:`DriverStats.errors`; for an API input it is handed to
the caller's future.

A layer above the memberlist core (the serf layer) passes ``on_effect``: the effects this
driver does not know go to it, in order, on the owner task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from serf.address import Address
from serf.memberlist.io import (
    Dropped,
    Effect,
    Input,
    NodeJoined,
    NodeLeft,
    NodeUpdated,
    OpenStream,
    PacketReceived,
    RequestCompleted,
    SendPacket,
    ShutdownRequest,
    Start,
    StreamRequest,
    StreamRespond,
    StreamResult,
    StreamUnreadable,
    Tick,
)
from serf.metrics import Metrics
from serf.runtime.feed import Feed
from serf.telemetry import MEMBERLIST_LOGGER, TRACE, LogLine, MetricSample
from serf.transport.base import Stream, Transport
from serf.wire.errors import DecodeError
from serf.wire.framing import StreamMessage, StreamReader

if TYPE_CHECKING:
    from serf.core.io import SerfEffect

__all__ = ["CoreLike", "DriverStats", "EventSubscription", "MemberEvent", "MemberlistDriver"]

log = logging.getLogger(__name__)
# a library stays silent unless the application configures logging (no lastResort output)
logging.getLogger("serf").addHandler(logging.NullHandler())
#: Go's memberlist lines about inbound streams come from here (the core never sees them)
ml_log = logging.getLogger(MEMBERLIST_LOGGER)

MemberEvent = NodeJoined | NodeLeft | NodeUpdated
"""What :meth:`MemberlistDriver.subscribe` delivers."""

_READ_CHUNK = 64 * 1024
_EVENT_QUEUE_SIZE = 1024


class CoreLike(Protocol):
    """What the driver needs of a core (:class:`serf.memberlist.core.MemberlistCore`)."""

    def stream_reader(self, *, listener: bool) -> StreamReader: ...

    def handle(self, input: Input, now: float) -> Sequence[Effect | SerfEffect]:
        """Memberlist's effects; a serf core adds its own, which go to ``on_effect``."""
        ...

    def next_deadline(self) -> float | None: ...


@dataclass(slots=True)
class DriverStats:
    """Counters of one driver (the transport keeps its own)."""

    inputs: int = 0
    effects: int = 0
    ticks: int = 0
    dropped: int = 0
    errors: int = 0
    streams_rejected: int = 0
    events_dropped: int = 0


class EventSubscription(Feed[MemberEvent]):
    """An async iterator over member events with its own bounded buffer.

    When the buffer is full the oldest event is discarded (and counted in the driver's
    ``events_dropped``). Iteration ends when the driver stops or :meth:`close` is called.
    """

    def __init__(self, driver: MemberlistDriver, maxsize: int = _EVENT_QUEUE_SIZE) -> None:
        super().__init__(maxsize)
        self._driver = driver

    def _dropped_one(self) -> None:
        self._driver.stats.events_dropped += 1

    def close(self) -> None:
        """Stop this subscription; iteration ends after the events already queued."""
        self._driver._unsubscribe(self)
        self.end()


@dataclass(frozen=True, slots=True)
class _TimedTick:
    """Internal: the timer fired for ``deadline`` (fed to the core as ``Tick``)."""

    deadline: float


# (input, waiter) where waiter gets the effects of that input or the exception it raised.
_InboxItem = tuple[Input | _TimedTick, "asyncio.Future[Sequence[Effect | SerfEffect]] | None"]


class _Wakeup:
    """``asyncio.Event``'s set/clear/wait for one waiter, the owner task: one future per
    wait and no waiter list (Event's ``set``, ``wait`` and its loop lookup were ~4% of an
    agent's CPU under 30 user events/s: every packet wakes the owner)."""

    __slots__ = ("_fut", "_is_set")

    def __init__(self) -> None:
        self._is_set = False
        self._fut: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the waiter (or the next :meth:`wait`)."""
        if not self._is_set:
            self._is_set = True
            fut = self._fut
            if fut is not None and not fut.done():
                fut.set_result(None)

    def clear(self) -> None:
        """The next :meth:`wait` blocks until :meth:`set`."""
        self._is_set = False

    def is_set(self) -> bool:
        """True between :meth:`set` and :meth:`clear`."""
        return self._is_set

    async def wait(self) -> None:
        """Return once set (at once if it is)."""
        if self._is_set:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fut = fut
        try:
            await fut
        finally:
            self._fut = None


#: loggers by name for lines without a sink (``logging.getLogger`` takes a lock per call)
_LOGGERS: dict[str, logging.Logger] = {}


def emit_line(logger: str, level: int, text: str) -> None:
    """One log line of the logger named ``logger`` (``text`` taken as it is): to
    :attr:`MemberlistDriver.line_sink` when the process set one, else through ``logging``."""
    sink = MemberlistDriver.line_sink
    if sink is not None:
        sink(logger, level, text)
        return
    log_to = _LOGGERS.get(logger)
    if log_to is None:
        log_to = _LOGGERS[logger] = logging.getLogger(logger)
    log_to.log(level, "%s", text)


def log_line(logger: logging.Logger, level: int, text: str) -> None:
    """:func:`emit_line` for ``logger``: for lines made once per event or request outside
    the cores (the agent's ``Received event``)."""
    emit_line(logger.name, level, text)


class MemberlistDriver:
    """Runs one :class:`CoreLike` on the running asyncio loop over one transport.

    Call :meth:`attach` (or pass ``core``), then :meth:`start`; use :meth:`request` for
    inputs that complete with a ``RequestCompleted``, :meth:`submit` for the others; finally
    :meth:`stop`. ``stream_timeout`` bounds the reading of an inbound stream and the wait for
    the core's answer to it (memberlist's TCPTimeout).
    """

    #: Where every driver of the process hands its log lines, ``(logger, level, text)``,
    #: instead of ``logging.getLogger(logger).log(level, text)`` (None: the logging module).
    #: The agent process sets its log broker's :meth:`~serf.agent.agent.LogBroker.line`: the
    #: broker is the only handler of the ``serf`` loggers there, and a LogRecord with its
    #: handler chain costs ~5x the line itself (an agent logs ~4 lines per user event).
    line_sink: ClassVar[Callable[[str, int, str], None] | None] = None

    def __init__(
        self,
        transport: Transport,
        core: CoreLike | None = None,
        *,
        stream_timeout: float = 10.0,
        on_effect: Callable[[Any], bool] | None = None,
    ) -> None:
        self.transport = transport
        #: the layer above: carries out the effects this driver does not know (the serf
        #: layer's), returning False for one it does not know either
        self.on_effect = on_effect
        self.core: CoreLike | None = core
        self.stream_timeout = stream_timeout
        self.stats = DriverStats()
        #: where the cores' metric samples go (None: dropped)
        self.metrics: Metrics | None = None
        self._inbox: deque[_InboxItem] = deque()
        self._wakeup = _Wakeup()
        self._owner: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._requests: dict[int, asyncio.Future[RequestCompleted]] = {}
        self._request_ids = itertools.count(1)
        self._inbound: dict[int, asyncio.Future[bytes | None]] = {}
        self._inbound_ids = itertools.count(1)
        self._stream_waiters: dict[int, asyncio.Future[str | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribers: list[EventSubscription] = []
        self._running = False
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        transport.set_handlers(on_packet=self._on_packet, on_stream=self._on_stream)

    # -- lifecycle -----------------------------------------------------------------------

    def attach(self, core: CoreLike) -> None:
        """Give the driver its core (when the core needs the transport's address first)."""
        if self._running:
            raise RuntimeError("attach the core before start()")
        self.core = core

    async def start_transport(self) -> None:
        """Start the transport (packets that arrive before :meth:`start` are queued)."""
        self._loop = asyncio.get_running_loop()
        await self.transport.start()

    async def start(self) -> None:
        """Start the transport if needed, then the owner task, and feed ``Start``; returns
        once the core has handled it (so the core's state holds this node)."""
        if self.core is None:
            raise RuntimeError("no core attached")
        if self._running or self._stopped:
            raise RuntimeError("driver already started")
        if self._loop is None:
            await self.start_transport()
        self._running = True
        started: asyncio.Future[Sequence[Effect | SerfEffect]] = self._future()
        self._inbox.appendleft((Start(), started))
        self._owner = asyncio.get_running_loop().create_task(self._run(), name="memberlist")
        self._wakeup.set()
        await started

    async def stop(self, *, shutdown_input: bool = True) -> None:
        """Feed ``ShutdownRequest``, stop the owner and the timer, close the transport."""
        if self._stopped:
            return
        self._stopped = True
        if self._running and shutdown_input:
            with contextlib.suppress(Exception):
                await self.submit(ShutdownRequest())
        self._running = False
        if self._owner is not None:
            self._owner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._owner
        self._cancel_timer()
        if self.metrics is not None:  # no more wake-ups: the sinks send without them
            self.metrics.poll(self._now(), None)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()
        self._fail_waiters()

    def _fail_waiters(self) -> None:
        """The end of :meth:`stop` on every runtime: each request, stream waiter and queued
        input still waiting fails with "memberlist is shut down"; subscriptions end."""
        shut = "memberlist is shut down"
        for fut in self._requests.values():
            if not fut.done():
                fut.set_exception(RuntimeError(shut))
        self._requests.clear()
        for sfut in self._stream_waiters.values():
            if not sfut.done():
                sfut.set_result(shut)
        for _item, waiter in self._inbox:
            if waiter is not None and not waiter.done():
                waiter.set_exception(RuntimeError(shut))
        self._inbox.clear()
        for sub in list(self._subscribers):
            sub.end()
        self._subscribers.clear()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    # -- feeding -------------------------------------------------------------------------

    def submit_nowait(self, item: Input) -> None:
        """Queue an input for the owner task (fire and forget)."""
        if self._stopped:
            raise RuntimeError("memberlist is shut down")
        self._inbox.append((item, None))
        self._wakeup.set()

    async def submit(self, item: Input) -> Sequence[Effect | SerfEffect]:
        """Queue an input and wait until the core handled it; returns its effects."""
        if self._stopped and not isinstance(item, ShutdownRequest):
            raise RuntimeError("memberlist is shut down")
        fut: asyncio.Future[Sequence[Effect | SerfEffect]] = self._future()
        self._inbox.append((item, fut))
        self._wakeup.set()
        return await fut

    def new_request_id(self) -> int:
        """A fresh ``request_id`` for JoinRequest / LeaveRequest / UpdateNodeRequest."""
        return next(self._request_ids)

    async def request(self, make: Callable[[int], Input]) -> RequestCompleted:
        """Feed ``make(request_id)`` and wait for its ``RequestCompleted``."""
        rid = self.new_request_id()
        fut: asyncio.Future[RequestCompleted] = self._future()
        self._requests[rid] = fut
        try:
            await self.submit(make(rid))
            return await fut
        finally:
            self._requests.pop(rid, None)

    async def submit_and_wait_streams(self, item: Input) -> list[str]:
        """Feed ``item``, then wait for every stream it opened; the error texts (if any)."""
        effects = await self.submit(item)
        waiters = [
            self._stream_waiters.setdefault(e.stream_id, self._future())
            for e in effects
            if isinstance(e, OpenStream)
        ]
        errors: list[str] = []
        for waiter in waiters:
            err = await waiter
            if err is not None:
                errors.append(err)
        return errors

    def subscribe(self) -> EventSubscription:
        """A new event subscription (see :class:`EventSubscription`)."""
        sub = EventSubscription(self)
        if self._stopped:
            sub.end()
        else:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: EventSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(sub)

    # -- the owner -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._drain_inbox()
            self._rearm(loop)

    def _drain_inbox(self) -> None:
        """Feed every queued input to the core and carry out its effects (the owner only)."""
        assert self.core is not None
        core = self.core
        inbox = self._inbox
        clock = self._now
        while inbox:
            item, waiter = inbox.popleft()
            if isinstance(item, _TimedTick):
                now = max(item.deadline, clock())
                item = Tick()
                self.stats.ticks += 1
            else:
                now = clock()
            self.stats.inputs += 1
            try:
                effects = core.handle(item, now)
            except Exception as exc:
                if waiter is not None:
                    if not waiter.done():
                        waiter.set_exception(exc)
                else:
                    self.stats.errors += 1
                    log.exception("core failed on %s", type(item).__name__)
                continue
            # Register waiters for streams before their tasks can finish.
            if waiter is not None and not waiter.done():
                waiter.set_result(effects)
            self._carry_out(effects, now)
        metrics = self.metrics
        if metrics is not None:  # the batch's samples, and when this driver wakes next
            try:
                metrics.poll(clock(), core.next_deadline() if self._running else None)
            except Exception:  # metrics never stop the owner
                self.stats.errors += 1
                log.exception("recording metrics failed")

    def _carry_out(self, effects: Sequence[Effect | SerfEffect], now: float) -> None:
        """Carry out ``effects`` of an input the core handled at ``now``."""
        self.stats.effects += len(effects)
        for effect in effects:
            try:
                # the kinds made per message first (under an event load each agent gets ~8
                # user-event messages per event, each a sample and a line)
                if isinstance(effect, LogLine):
                    emit_line(effect.logger, effect.level, effect.text)
                    continue
                if isinstance(effect, MetricSample):  # recorded at the batch's end (Metrics.poll)
                    if self.metrics is not None:
                        self.metrics.pending.append((effect, now))
                    continue
                match effect:
                    case SendPacket():
                        self.transport.send_packet(effect.dest, effect.data)
                    case OpenStream():
                        self._spawn(self._outbound(effect))
                    case StreamRespond():
                        fut = self._inbound.pop(effect.stream_id, None)
                        if fut is not None and not fut.done():
                            fut.set_result(effect.data)
                    case RequestCompleted():
                        rfut = self._requests.get(effect.request_id)
                        if rfut is not None and not rfut.done():
                            rfut.set_result(effect)
                    case NodeJoined() | NodeLeft() | NodeUpdated():
                        for sub in self._subscribers:
                            sub.push(effect)
                    case Dropped():
                        self.stats.dropped += 1  # the core logged it (Go's line)
                    case _:  # the layer above (serf's effects), else a kind nobody knows
                        if self.on_effect is None or not self.on_effect(effect):
                            log.warning("unknown effect %r", effect)  # pragma: no cover
            except Exception:
                self.stats.errors += 1
                log.exception("carrying out %s failed", type(effect).__name__)

    # -- what a driver on another event loop replaces (serf.runtime.trio_driver) -----------

    def _future(self) -> Any:
        """A one-shot result: ``done``, ``set_result``, ``set_exception``, awaitable."""
        return asyncio.get_running_loop().create_future()

    def _deadline(self, seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        """A block that raises TimeoutError after ``seconds`` (None: no limit)."""
        return asyncio.timeout(seconds)

    def _shielded(self) -> contextlib.AbstractContextManager[Any]:
        """A block that cancellation does not interrupt (cleanup while stopping)."""
        return contextlib.nullcontext()

    def _now(self) -> float:
        loop = self._loop
        return loop.time() if loop is not None else 0.0

    def _rearm(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.core is not None
        deadline = self.core.next_deadline()
        if deadline == self._timer_deadline and self._timer is not None:
            return
        self._cancel_timer()
        if deadline is None or not self._running or self._stopped:
            return
        self._timer_deadline = deadline
        self._timer = loop.call_at(deadline, self._fire, deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_deadline = None

    def _fire(self, deadline: float) -> None:
        self._timer = None
        self._timer_deadline = None
        # stop() has queued ShutdownRequest: no Tick may follow it into the core (a timer
        # that came due while stop() waited for the core queued one after it)
        if not self._running or self._stopped:
            return
        self._inbox.append((_TimedTick(deadline), None))
        self._wakeup.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- network -------------------------------------------------------------------------

    def _on_packet(self, data: bytes, source: Any, received_at: float) -> None:
        if self._stopped:
            return
        self._inbox.append((PacketReceived(data, Address.of(source)), None))
        self._wakeup.set()

    async def _read_one(self, stream: Stream, core: CoreLike, listener: bool) -> StreamMessage:
        reader = core.stream_reader(listener=listener)
        while True:
            chunk = await stream.read(_READ_CHUNK)
            if not chunk:
                return reader.feed_eof()
            message = reader.feed(chunk)
            if message is not None:
                return message

    async def _outbound(self, effect: OpenStream) -> None:
        assert self.core is not None
        core = self.core
        reply: StreamMessage | None = None
        error: str | None = None
        stream: Stream | None = None
        try:
            async with self._deadline(effect.timeout):
                stream = await self.transport.open_stream(effect.dest, timeout=effect.timeout)
                stream.write(effect.data)
                await stream.drain()
                # One request per stream: half-close so a plaintext listener sees the end.
                stream.write_eof()
                if effect.want_reply:
                    reply = await self._read_one(stream, core, listener=False)
        except TimeoutError:
            error = f"stream to {effect.dest} timed out after {effect.timeout}s"
        except ConnectionRefusedError:
            error = f"dial tcp {effect.dest}: connect: connection refused"  # as Go's net.Dial
        except DecodeError as exc:
            error = f"bad reply from {effect.dest}: {exc}"
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            error = f"stream to {effect.dest} failed: {exc!r}"
        except Exception as exc:  # never let one stream take the driver down
            self.stats.errors += 1
            log.exception("outbound stream to %s failed", effect.dest)
            error = f"stream to {effect.dest} failed: {exc!r}"
        except BaseException:  # cancelled (the driver stops)
            error = "stream cancelled"
            raise
        finally:
            if stream is not None:
                with self._shielded(), contextlib.suppress(Exception):
                    await stream.close()
            waiter = self._stream_waiters.pop(effect.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(error)
            if error is not None:
                log.log(TRACE, "stream %d: %s", effect.stream_id, error)
            if not self._stopped:
                self._inbox.append((StreamResult(effect.stream_id, reply, error), None))
                self._wakeup.set()

    async def _on_stream(self, stream: Stream) -> None:
        core = self.core
        if core is None or not self._running:
            return
        source = Address.of(stream.remote_address)
        item: Input
        stream_id = next(self._inbound_ids)
        try:
            async with self._deadline(self.stream_timeout):
                message = await self._read_one(stream, core, listener=True)
            item = StreamRequest(stream_id, message, source)
        except DecodeError as exc:  # the core answers (StreamRejected: Go's ErrResp)
            self.stats.streams_rejected += 1
            item = StreamUnreadable(stream_id, exc, source)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self.stats.errors += 1
            ml_log.error("memberlist: failed to receive: %r from=%s", exc, stream.remote_address)
            return
        answer: asyncio.Future[bytes | None] = self._future()
        self._inbound[stream_id] = answer
        try:
            self._inbox.append((item, None))
            self._wakeup.set()
            try:
                async with self._deadline(self.stream_timeout):
                    data = await answer
            except TimeoutError:
                self.stats.errors += 1
                log.debug("no answer from the core for stream %d in time", stream_id)
                return
            if data:
                stream.write(data)
                await stream.drain(timeout=self.stream_timeout)
        finally:
            self._inbound.pop(stream_id, None)
