"""Metric sinks: where the cores' :class:`~serf.telemetry.MetricSample` effects end up.

How this works. The driver hands every sample to a :class:`Metrics` (Go's go-metrics
``Metrics``): it turns a timer into milliseconds, applies Go's key prefixes (the service name,
``serf-agent`` for the agent, and the host name before gauge keys when Go would add it) and
fans the call out to its sinks. The sinks are Go's:

* :class:`InmemSink` - running aggregates per key (count, sum, min, max, last), for the library
  (``Serf.metrics()``) and the agent's ``serf info`` and status page;
* :class:`StatsiteSink` (TCP) and :class:`StatsdSink` (UDP) - go-metrics' line format
  ``key:value|c`` / ``|g`` / ``|ms`` with ``%f`` values, labels appended to the key as extra
  parts, ``:`` and spaces in keys replaced by ``_``; sent in batches (within 2 s; Go: every
  100 ms), statsd packets kept under 1400 bytes;
* :class:`serf.metrics_prometheus.PrometheusSink` (optional extra ``pyserf[prometheus]``).

Sinks never raise into the driver: a sink that cannot reach its server drops samples (and
retries the connection after 5 s, as Go's do).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from serf import _speedups
from serf.address import Address
from serf.telemetry import COUNTER, GAUGE, SAMPLE, Labels, MetricSample

if TYPE_CHECKING:
    from serf.metrics_record import Aggregate, Recorder, Route
else:  # the active twin's (compiled: C doubles, folded by the compiled record loop)
    Aggregate = _speedups.metrics_record.Aggregate

__all__ = [
    "MetricsSink",
    "Metrics",
    "Aggregate",
    "InmemSink",
    "StatsiteSink",
    "StatsdSink",
    "RuntimeReporter",
    "emit_runtime_stats",
    "format_line",
    "line_format",
    "flatten_key",
]

log = logging.getLogger("serf.agent")

_RETRY_INTERVAL = 5.0
_STATSD_MAX_LEN = 1400
_QUEUE_LIMIT = 4096  # lines (Go's queue: a channel of 4096)
_WRITE_BUFFER_LIMIT = 1 << 20
_KEY_CACHE_LIMIT = 4096  # keys carry event and query names: bound the caches
_PENDING_LIMIT = 1024  # a driver's samples queued in Metrics.pending before they are recorded


class MetricsSink(Protocol):
    """Go's ``MetricSink`` (the labelled calls)."""

    def incr_counter(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Add ``value`` to a counter."""

    def set_gauge(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Set a gauge."""

    def add_sample(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Add one observation to a summary (timers arrive here in milliseconds)."""


class Metrics:
    """Go's go-metrics front end: prefixes keys and fans samples out to ``sinks``.

    ``service_name`` is prepended to every key (Go's agent uses ``serf-agent``; empty: none);
    ``host_name`` is inserted after it in gauge keys (Go's ``EnableHostname``). ``clock`` is
    the time a sample gets when its caller passes none (the driver passes its loop's time).
    """

    def __init__(
        self,
        sinks: Iterable[MetricsSink] = (),
        *,
        service_name: str = "",
        host_name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sinks: tuple[MetricsSink, ...] = tuple(sinks)
        self.service_name = service_name
        self.host_name = host_name
        self._clock = clock
        # (kind, key, labels) -> the aggregates of the in-memory sinks, the recorders of the
        # other sinks that take samples one by one, and the line format for the line sinks:
        # worked out once per key (serf.metrics_record)
        self._routes: dict[tuple[str, tuple[str, ...], Labels], Route] = {}
        #: the driver's samples, ``(sample, now)``, queued by a plain ``list.append`` and
        #: recorded when :meth:`poll` finds them due, or when a sink is read (:meth:`sync`)
        self.pending: list[tuple[MetricSample, float]] = []
        self._wake: float | None = None  # when the driver that polled last wakes next
        self._unsent = False  # a line sink may hold lines
        self._use(self._sinks)

    def _use(self, sinks: tuple[MetricsSink, ...]) -> None:
        """Sort ``sinks`` by how they take the driver's samples: line sinks (statsite,
        statsd) in batches, sinks that ask for them when read (``add_source``: in memory)
        whenever, any other (Prometheus, scraped from a thread of its own) at each poll."""
        self._lines: tuple[_LineSink, ...] = tuple(s for s in sinks if isinstance(s, _LineSink))
        self._eager = any(
            not isinstance(s, _LineSink) and not hasattr(s, "add_source") for s in sinks
        )
        self._flush_interval = min((s.flush_interval for s in self._lines), default=math.inf)
        self._max_delay = min((s.max_delay for s in self._lines), default=math.inf)
        for sink in sinks:
            add_source = getattr(sink, "add_source", None)
            if add_source is not None:
                add_source(self.sync)

    @property
    def sinks(self) -> tuple[MetricsSink, ...]:
        """The sinks every sample goes to (assign a new sequence to change them)."""
        return self._sinks

    @sinks.setter
    def sinks(self, sinks: Iterable[MetricsSink]) -> None:
        self._record(self.pending)  # the queued samples go where they were meant to
        self._sinks = tuple(sinks)
        self._use(self._sinks)
        self._routes.clear()

    def _key(self, kind: str, key: tuple[str, ...]) -> tuple[str, ...]:
        full = key
        if kind == GAUGE and self.host_name:
            full = (self.host_name, *full)
        if self.service_name:
            full = (self.service_name, *full)
        return full

    def _route(self, kind: str, key: tuple[str, ...], labels: Labels) -> Route:
        full = self._key(kind, key)
        aggregates: list[Aggregate] = []
        recorders: list[Recorder] = []
        for sink in self._sinks:
            if isinstance(sink, _LineSink):
                continue
            aggregate = getattr(sink, "aggregate", None)
            recorder = getattr(sink, "recorder", None)
            if aggregate is not None:
                aggregates.append(aggregate(kind, full, labels))
            elif recorder is not None:
                recorders.append(recorder(kind, full, labels))
            else:
                recorders.append(_Call(sink, kind, full, labels))
        line = line_format(kind, full, labels) if self._lines else None
        route = (tuple(aggregates), tuple(recorders), line)
        if len(self._routes) < _KEY_CACHE_LIMIT:
            self._routes[(kind, key, labels)] = route
        return route

    def emit(self, sample: MetricSample, now: float | None = None) -> None:
        """Route one sample (from outside a driver's batch); ``now`` is the caller's clock
        (for timers, and for the line sinks' batching: no clock call per sample)."""
        if now is None:
            now = self._clock()
        pending = self.pending
        pending.append((sample, now))  # after the driver's queued samples, in order
        self._record(pending)
        self._poll_lines(now, self._wake)

    def poll(self, now: float, wake: float | None) -> None:
        """The end of a driver's batch at ``now``; the driver wakes next at ``wake`` (None: it
        will not, e.g. it stopped).

        The driver's side (:meth:`serf.runtime.driver.MemberlistDriver._carry_out`) is a
        ``metrics.pending.append((sample, now))`` per sample, with the time the core was given:
        no call into this class and no clock call per sample. Here the queued samples are
        recorded (all of them, in order) when they are due: at once with a sink that is read
        from another thread (Prometheus); else when the oldest is as old as a line sink's
        ``flush_interval`` (its batch goes out now), when the driver's next wake-up comes later
        than a line sink's ``max_delay`` after it, when :data:`_PENDING_LIMIT` are queued, or
        when an in-memory sink is read (:meth:`sync`). An idle node with the agent's sinks
        (in memory and statsd) records once a second, when it sends. The line sinks that hold
        lines hear the time and the next wake-up: they send what is due and rely on that
        wake-up instead of an event-loop timer of their own when it comes in time (see
        :class:`_LineSink`)."""
        self._wake = wake
        pending = self.pending
        if pending:
            since = pending[0][1]
            if (
                self._eager
                or now - since >= self._flush_interval
                or wake is None
                or wake > since + self._max_delay
                or len(pending) >= _PENDING_LIMIT
            ):
                self._record(pending)
        if self._unsent:
            self._poll_lines(now, wake)

    def _poll_lines(self, now: float, wake: float | None) -> None:
        unsent = False
        for sink in self._lines:
            try:
                unsent = sink.poll(now, wake) or unsent
            except Exception:  # a sink must never break its caller
                log.debug("metrics sink %r failed", sink, exc_info=True)
        self._unsent = unsent

    def sync(self) -> None:
        """Record the samples queued in :attr:`pending` now (an in-memory sink's read)."""
        if self.pending:
            self._record(self.pending)

    def _record(self, pending: list[tuple[MetricSample, float]]) -> None:
        """Record every sample in ``pending`` (and empty it): its key's aggregates and
        recorders, and its line to the line sinks (the loop is
        :func:`serf.metrics_record.record`, compiled when the twins are)."""
        if not pending:
            return
        samples = pending.copy()
        pending.clear()
        lines: list[str] = []
        values: list[float] = []
        _speedups.metrics_record.record(
            samples, self._routes, self._route, lines, values, self._failed
        )
        if lines:
            since = samples[0][1]
            for sink in self._lines:
                sink.take(lines, values, since)
            self._unsent = True

    @staticmethod
    def _failed(what: object, exc: BaseException) -> None:
        if isinstance(what, MetricSample):  # a key (or a value) no sink can use
            log.debug("metrics: cannot record %r", what, exc_info=exc)
        else:  # a sink must never break the driver
            log.debug("metrics sink %r failed", what, exc_info=exc)

    def incr_counter(self, key: Sequence[str], value: float = 1.0, labels: Labels = ()) -> None:
        """A counter from outside the cores (the agent's own metrics)."""
        self.emit(MetricSample(COUNTER, tuple(key), value, labels))

    def set_gauge(self, key: Sequence[str], value: float, labels: Labels = ()) -> None:
        """A gauge from outside the cores."""
        self.emit(MetricSample(GAUGE, tuple(key), value, labels))

    def add_sample(self, key: Sequence[str], value: float, labels: Labels = ()) -> None:
        """A sample from outside the cores."""
        self.emit(MetricSample(SAMPLE, tuple(key), value, labels))

    def close(self) -> None:
        """Stop the sinks that hold a connection (they send what they queued first)."""
        self._record(self.pending)
        for sink in self._sinks:
            closer = getattr(sink, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()


class _Call:
    """A recorder for a sink without ``recorder``: calls its ``MetricsSink`` method."""

    __slots__ = ("key", "labels", "method")

    def __init__(self, sink: MetricsSink, kind: str, key: tuple[str, ...], labels: Labels):
        if kind == COUNTER:
            self.method = sink.incr_counter
        elif kind == GAUGE:
            self.method = sink.set_gauge
        else:
            self.method = sink.add_sample
        self.key = key
        self.labels = labels

    def __call__(self, value: float, now: float) -> None:
        self.method(self.key, value, self.labels)

    def __repr__(self) -> str:
        return f"<recorder {self.method!r} {'.'.join(self.key)}>"


# -- in memory ---------------------------------------------------------------------------


class InmemSink:
    """Keeps one :class:`Aggregate` per flattened key (labels appended, as statsite)."""

    def __init__(self) -> None:
        self._data: dict[str, Aggregate] = {}
        #: wall-clock time the aggregates start from (the dump's interval stamp)
        self.started = time.time()
        self._by_key: dict[tuple[Sequence[str], Labels], Aggregate] = {}
        self._sources: list[Callable[[], None]] = []

    @property
    def data(self) -> dict[str, Aggregate]:
        """Every key's aggregate, by flattened key (with the samples still queued for it)."""
        for sync in self._sources:
            sync()
        return self._data

    def add_source(self, sync: Callable[[], None]) -> None:
        """``sync`` records what a :class:`Metrics` queued for this sink: called before every
        read, so a :class:`Metrics` need not record each sample as it comes."""
        if sync not in self._sources:
            self._sources.append(sync)

    def _agg(self, kind: str, key: Sequence[str], labels: Labels) -> Aggregate:
        agg = self._by_key.get((key, labels))
        if agg is None:
            name = flatten_key(key, labels)
            agg = self._data.get(name)
            if agg is None:
                agg = self._data[name] = Aggregate(kind, labels=labels)
            if len(self._by_key) < _KEY_CACHE_LIMIT:
                self._by_key[(key, labels)] = agg
        return agg

    def aggregate(self, kind: str, key: Sequence[str], labels: Labels) -> Aggregate:
        """The aggregate :class:`Metrics` folds ``key``'s samples into (it caches it per key)."""
        return self._agg(kind, key, labels)

    def recorder(self, kind: str, key: Sequence[str], labels: Labels) -> Recorder:
        """A recorder for ``key``: its aggregate's ``add``."""
        return self._agg(kind, key, labels).add

    def incr_counter(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Count ``value`` (bytes, events, ...)."""
        self._agg(COUNTER, key, labels).add(value)

    def set_gauge(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Set the gauge: its ``last`` is the value."""
        self._agg(GAUGE, key, labels).add(value)

    def add_sample(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """One observation."""
        self._agg(SAMPLE, key, labels).add(value)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every key's aggregate as a dict, sorted by key."""
        data = self.data
        return {k: data[k].as_dict() for k in sorted(data)}

    def go_section(self) -> dict[str, str]:
        """Every key's :meth:`Aggregate.go_text`: the ``metrics`` section of ``serf info
        -metrics`` (``key = value`` text, as ``serf info``'s other sections)."""
        data = self.data
        return {k: data[k].go_text() for k in sorted(data)}

    def go_dump(self) -> str:
        """What Go's agent writes to stderr on SIGUSR1 (go-metrics' ``InmemSignal``): one
        ``[interval][G|C|S] 'key': value`` line per key, gauges, then counters, then samples.
        Ours is one interval, from :attr:`started` (Go's are 10 s each, the last minute)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(self.started))
        out = []
        data = self.data
        for kind, tag in ((GAUGE, "G"), (COUNTER, "C"), (SAMPLE, "S")):
            for name in sorted(data):
                agg = data[name]
                if agg.kind == kind:
                    out.append(f"[{stamp}][{tag}] '{name}': {agg.go_text()}\n")
        return "".join(out)

    def value(self, name: str) -> float:
        """A counter's total, a gauge's last value or a summary's count (0 when unseen)."""
        agg = self.data.get(name)
        if agg is None:
            return 0.0
        if agg.kind == COUNTER:
            return agg.sum
        if agg.kind == GAUGE:
            return agg.last
        return float(agg.count)


# -- runtime gauges ----------------------------------------------------------------------

#: how often the agent reports its runtime gauges (Go's go-metrics: every second)
RUNTIME_INTERVAL = 10.0


def _rss_bytes() -> float | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return None


def emit_runtime_stats(metrics: Metrics) -> None:
    """go-metrics' ``EmitRuntimeStats`` gauges with this process's nearest equivalents:
    ``runtime.num_goroutines`` (asyncio tasks), ``runtime.sys_bytes`` (resident memory),
    ``runtime.heap_objects`` (blocks the Python allocator holds), ``runtime.total_gc_runs``
    (collections of every generation). Go's ``alloc_bytes``, ``malloc_count``, ``free_count``
    and the GC pause figures have no cheap Python counterpart and are not emitted."""
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:  # no running loop
        tasks = 0
    metrics.set_gauge(("runtime", "num_goroutines"), float(tasks))
    rss = _rss_bytes()
    if rss is not None:
        metrics.set_gauge(("runtime", "sys_bytes"), rss)
    metrics.set_gauge(("runtime", "heap_objects"), float(sys.getallocatedblocks()))
    runs = sum(gen["collections"] for gen in gc.get_stats())
    metrics.set_gauge(("runtime", "total_gc_runs"), float(runs))


class RuntimeReporter:
    """Calls :func:`emit_runtime_stats` every ``interval`` seconds on the running loop
    (Go's agent: every second; here every 10 s, one wake-up that an idle node notices)."""

    def __init__(self, metrics: Metrics, interval: float = RUNTIME_INTERVAL) -> None:
        self.metrics = metrics
        self.interval = interval
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Report now and every ``interval`` seconds."""
        self._loop = asyncio.get_running_loop()
        self._tick()

    def _tick(self) -> None:
        if self._loop is None:
            return
        try:
            emit_runtime_stats(self.metrics)
        except Exception:  # never break the loop over a gauge
            log.debug("agent: runtime metrics failed", exc_info=True)
        self._timer = self._loop.call_later(self.interval, self._tick)

    def close(self) -> None:
        """Stop reporting."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None


# -- statsite / statsd -------------------------------------------------------------------


def flatten_key(key: Sequence[str], labels: Labels = ()) -> str:
    """go-metrics' statsite/statsd key: parts and label values joined by ``.``, with ``:``
    and spaces replaced by ``_``."""
    joined = ".".join([*key, *(v for _, v in labels)])
    return joined.replace(":", "_").replace(" ", "_")


_SUFFIX = {COUNTER: "c", GAUGE: "g", SAMPLE: "ms"}


def format_line(kind: str, key: Sequence[str], value: float, labels: Labels = ()) -> str:
    """One statsite/statsd line as go-metrics writes it: ``key:1.000000|c\\n``."""
    return f"{flatten_key(key, labels)}:{value:f}|{_SUFFIX[kind]}\n"


def line_format(kind: str, key: Sequence[str], labels: Labels = ()) -> str:
    """:func:`format_line`'s line with ``%f`` where the value goes (``%`` in the key doubled):
    ``line_format(kind, key) % value == format_line(kind, key, value)``."""
    return f"{flatten_key(key, labels).replace('%', '%%')}:%f|{_SUFFIX[kind]}\n"


class _LineSink:
    """Queues lines and sends them in batches (subclasses send).

    A sample costs a list append: the batch holds each line's format (the key's flattened
    name and kind, :func:`line_format`, worked out once per key) and its value, and the whole
    batch is formatted with one ``%`` when it goes out (``%f``, as go-metrics). The batch's
    time comes with the sample (the driver's clock, through :class:`Metrics`): no clock call
    per sample.

    When a batch goes out. Go's flusher sends whatever is queued every 100 ms, waking ten
    times a second; a wake-up is dear for an idle node (each one costs about as much as the
    node's own work on a packet, and an asyncio timer costs about as much again to arm and
    drop). Here a batch goes out when it is ``flush_interval`` (1 s) old, at the first
    chance: a line that finds it that old, or a node's driver, which polls its sinks at the
    end of every batch of inputs (:meth:`poll`, through :meth:`Metrics.poll`) and says when
    it wakes next. A batch goes out at most ``max_delay`` (2 s) after its oldest line: by the
    driver's next poll when that comes in time (a node wakes at least every probe interval,
    1 s), else by a guard timer due then, armed only in that case (no driver polls, or one
    that stopped or sleeps longer) and never cancelled by a send (it sends what is queued
    when it fires, or nothing). An idle node sends about one datagram a second and arms no
    timer for it. Lines, their order and Go's 1400-byte packing are Go's; they go
    out later than Go's (at most ``max_delay``). :meth:`close` sends what is queued.
    """

    def __init__(
        self, address: Address, *, flush_interval: float = 1.0, max_delay: float = 2.0
    ) -> None:
        self.address = address
        self.flush_interval = flush_interval
        self.max_delay = max_delay
        self.dropped = 0
        self.connected = False
        self._lines: list[str] = []  # the batch: each line's format ...
        self._values: list[Any] = []  # ... and its value
        self._oldest = 0.0  # the time of the batch's oldest line
        self._clock: Callable[[], float] = time.monotonic  # for the MetricsSink methods
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._formats: dict[tuple[str, Sequence[str], Labels], str] = {}

    def start(self) -> None:
        """Connect (in the background, retrying every 5 s) on the running loop."""
        self._loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = self._loop.create_task(self._connect_loop(0.0))

    def close(self) -> None:
        """Send what is queued (when connected) and stop."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._loop = None  # no reconnect from a failed last send
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        self._flush()
        self.connected = False
        self._disconnect()

    async def _connect_loop(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            try:
                await self._connect()
            except OSError as exc:
                log.error("agent: metrics: Error connecting to %s! Err: %s", self.address, exc)
                await asyncio.sleep(_RETRY_INTERVAL)
                continue
            self.connected = True
            if self._lines:
                self._flush()  # what was queued while the connection was down
            return

    def _queue(self, line: str, value: float, now: float) -> None:
        """Queue one line (its format and value) at ``now``; send the batch when its oldest
        line is ``flush_interval`` old."""
        lines = self._lines
        if lines:
            if len(lines) >= _QUEUE_LIMIT:  # as Go: a full queue drops (only while the
                self.dropped += 1  # connection is down: a connected sink sends it)
                return
            lines.append(line)
            self._values.append(value)
            if now - self._oldest >= self.flush_interval or len(lines) >= _QUEUE_LIMIT:
                self._flush()
            return
        lines.append(line)
        self._values.append(value)
        self._oldest = now

    def take(self, lines: list[str], values: list[float], since: float) -> None:
        """Queue a batch of lines (formats and values) from :class:`Metrics`, the oldest
        recorded at ``since`` (:meth:`poll` decides when they go out)."""
        queued = self._lines
        if not queued:
            self._oldest = since
        room = _QUEUE_LIMIT - len(queued)
        if len(lines) > room:  # as Go: a full queue drops
            self.dropped += len(lines) - room
            lines, values = lines[:room], values[:room]
        queued += lines
        self._values += values

    def poll(self, now: float, wake: float | None) -> bool:
        """At ``now`` (a driver's batch ended, or lines were queued), the driver that polls
        next at ``wake`` (None: none will): send the batch when it is ``flush_interval`` old;
        otherwise make sure it goes out at most ``max_delay`` after its oldest line, at that
        poll when it comes in time, else by the guard timer. True while lines are queued."""
        if not self._lines:
            return False
        if now - self._oldest >= self.flush_interval:
            self._flush()
        elif self._guard is None and self._loop is not None and self.connected:
            due = self._oldest + self.max_delay
            if wake is None or wake > due:
                self._guard = self._loop.call_later(max(due - now, 0.0), self._guard_fired)
        return bool(self._lines)

    def _guard_fired(self) -> None:
        self._guard = None
        self._flush()

    def _push(self, kind: str, key: Sequence[str], value: float, labels: Labels) -> None:
        line = self._formats.get((kind, key, labels))
        if line is None:
            line = line_format(kind, key, labels)
            if len(self._formats) < _KEY_CACHE_LIMIT:
                self._formats[(kind, key, labels)] = line
        now = self._clock()
        self._queue(line, value, now)
        self.poll(now, None)  # no driver's poll to count on: the guard

    def incr_counter(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Queue ``key:value|c``."""
        self._push(COUNTER, key, value, labels)

    def set_gauge(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Queue ``key:value|g``."""
        self._push(GAUGE, key, value, labels)

    def add_sample(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Queue ``key:value|ms``."""
        self._push(SAMPLE, key, value, labels)

    def _text(self, lines: list[str], values: list[Any]) -> str:
        """The batch's lines: one ``%`` for all of them (a value that is not a number is
        dropped, with its line)."""
        try:
            return _speedups.metrics_record.text(lines, values)
        except (TypeError, ValueError):
            out = []
            for line, value in zip(lines, values, strict=True):
                try:
                    out.append(line % value)
                except (TypeError, ValueError):
                    self.dropped += 1
            return "".join(out)

    def _flush(self) -> None:
        lines = self._lines
        if not self.connected or not lines:
            return  # kept (bounded) until the connection is up
        values = self._values
        self._lines = []
        self._values = []
        try:
            self._send(self._text(lines, values))
        except OSError as exc:
            log.error("agent: metrics: Error writing to %s! Err: %s", self.address, exc)
            self.connected = False
            self._disconnect()
            if self._loop is not None:
                self._task = self._loop.create_task(self._connect_loop(_RETRY_INTERVAL))

    async def _connect(self) -> None:
        raise NotImplementedError

    def _send(self, text: str) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError


class StatsiteSink(_LineSink):
    """go-metrics' statsite sink: lines over one TCP connection."""

    def __init__(
        self, address: Address, *, flush_interval: float = 1.0, max_delay: float = 2.0
    ) -> None:
        super().__init__(address, flush_interval=flush_interval, max_delay=max_delay)
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        _, self._writer = await asyncio.open_connection(self.address.host, self.address.port)

    def _send(self, text: str) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionResetError("statsite connection closed")
        if writer.transport.get_write_buffer_size() > _WRITE_BUFFER_LIMIT:
            self.dropped += text.count("\n")  # the server is not reading: drop, as Go's full queue
            return
        writer.write(text.encode())

    def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class StatsdSink(_LineSink):
    """go-metrics' statsd sink: lines packed into UDP datagrams of at most 1400 bytes."""

    def __init__(
        self, address: Address, *, flush_interval: float = 1.0, max_delay: float = 2.0
    ) -> None:
        super().__init__(address, flush_interval=flush_interval, max_delay=max_delay)
        self._sock: socket.socket | None = None

    async def _connect(self) -> None:
        family = socket.AF_INET6 if ":" in self.address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect((self.address.host, self.address.port))
        self._sock = sock

    def _send(self, text: str) -> None:
        data = text.encode()
        if len(data) <= _STATSD_MAX_LEN:  # the usual case: one datagram
            self._datagram(data)
            return
        # Go's packing: a line that would take the packet over 1400 bytes sends the packet
        # first; a line longer than that goes alone (Go would send an empty datagram before
        # it when nothing was queued; we do not)
        packet = b""
        for line in data[:-1].split(b"\n"):
            if packet and len(packet) + len(line) + 1 > _STATSD_MAX_LEN:
                self._datagram(packet)
                packet = b""
            packet += line + b"\n"
        if packet:
            self._datagram(packet)

    def _datagram(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.send(data)
        except (BlockingIOError, ConnectionRefusedError):
            pass

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
