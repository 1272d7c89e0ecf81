"""Recording a driver's metric samples: the per-sample loop, the in-memory aggregates and the
statsite/statsd batch text (pure twin of ``serf/_fast/metrics_record.pyx``).

How this works. :class:`serf.metrics.Metrics` works out once per key (kind, key, labels) a
*route*: the :class:`Aggregate` objects of its in-memory sinks, the recorders of its other
sinks that take samples one by one, and the key's statsite/statsd line format (``%f`` where
the value goes; None without a line sink). :func:`record` walks a batch of queued samples:
a value that is not a number drops its sample; a timer's start time becomes the milliseconds
up to the time it was queued; the route comes from ``routes`` (or ``route(kind, key,
labels)`` the first time); the value is folded into each aggregate, handed to each recorder,
and its line format and value appended to ``lines`` and ``values``. :func:`text` formats a
batch of lines as go-metrics does (``%f``). The compiled twin does the same with C loops, C
doubles for the aggregates and a shortcut for whole numbers' ``%f`` (same bytes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serf.telemetry import GAUGE, SAMPLE, TIMER, Labels, MetricSample

__all__ = ["Aggregate", "record", "text"]

#: What a route calls per sample for a sink that takes samples one by one: ``(value, now)``
Recorder = Callable[[float, float], None]
#: A key's aggregates, other recorders and line format (None: no line sink)
Route = tuple[tuple["Aggregate", ...], tuple[Recorder, ...], "str | None"]


@dataclass(slots=True)
class Aggregate:
    """Running aggregate of one key: a counter's total, a gauge's last value, a summary."""

    kind: str
    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    last: float = 0.0
    labels: Labels = field(default=())
    sumsq: float = 0.0

    def add(self, value: float, now: float = 0.0) -> None:
        """Fold one value in (``now`` is unused: a recorder's signature)."""
        self.count += 1
        self.sum += value
        self.sumsq += value * value
        self.last = value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    @property
    def stddev(self) -> float:
        """The sample standard deviation, as go-metrics' ``AggregateSample.Stddev``."""
        return stddev(self)

    def go_text(self) -> str:
        """go-metrics' text for this key: a gauge's value as ``%0.3f``; a counter or summary as
        ``AggregateSample.String()`` (``Count: 3 Sum: 3.000``, or with ``Min``, ``Mean``,
        ``Max``, ``Stddev`` when the values differ) without Go's ``LastUpdated`` time."""
        return go_text(self)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: kind, count, sum, min, max, mean, last, labels."""
        return as_dict(self)


# The read side of both twins' Aggregate (rare: serf info, the status page, SIGUSR1)


def stddev(agg: Aggregate) -> float:
    """``agg``'s sample standard deviation, as go-metrics' ``AggregateSample.Stddev``."""
    div = agg.count * (agg.count - 1)
    if div == 0:
        return 0.0
    return math.sqrt(max(agg.count * agg.sumsq - agg.sum * agg.sum, 0.0) / div)


def go_text(agg: Aggregate) -> str:
    """:meth:`Aggregate.go_text`."""
    if agg.kind == GAUGE:
        return f"{agg.last:.3f}"
    if agg.count == 0:
        return "Count: 0"
    spread = stddev(agg)
    if spread == 0.0:
        return f"Count: {agg.count} Sum: {agg.sum:.3f}"
    mean = agg.sum / agg.count
    return (
        f"Count: {agg.count} Min: {agg.min:.3f} Mean: {mean:.3f} Max: {agg.max:.3f} "
        f"Stddev: {spread:.3f} Sum: {agg.sum:.3f}"
    )


def as_dict(agg: Aggregate) -> dict[str, Any]:
    """:meth:`Aggregate.as_dict`."""
    out: dict[str, Any] = {"kind": agg.kind, "count": agg.count, "sum": agg.sum}
    if agg.count:
        out.update(min=agg.min, max=agg.max, mean=agg.sum / agg.count, last=agg.last)
    if agg.labels:
        out["labels"] = dict(agg.labels)
    return out


def record(
    samples: list[tuple[MetricSample, float]],
    routes: dict[tuple[str, tuple[str, ...], Labels], Route],
    route: Callable[[str, tuple[str, ...], Labels], Route],
    lines: list[str],
    values: list[float],
    failed: Callable[[object, BaseException], None],
) -> None:
    """Record ``samples`` (``(sample, now)``, in order): fold each value into its route's
    aggregates, hand it to its recorders, append its line format and value to ``lines`` and
    ``values``. A sample whose value is not a number, or that ``route`` cannot name, is
    dropped alone (``failed(sample, exc)``); a recorder that raises is reported as
    ``failed(recorder, exc)`` and the others still run."""
    for sample, now in samples:
        try:
            kind = sample.kind
            value = sample.value
            if type(value) is not float:
                if isinstance(value, str | bytes | bytearray):
                    raise TypeError(f"a metric value must be a number, not {value!r}")
                value = float(value)
            if kind == TIMER:  # the start time: milliseconds up to when it was queued
                elapsed = now - value
                value = (elapsed if elapsed > 0.0 else 0.0) * 1000.0
                kind = SAMPLE
            key = sample.key
            labels = sample.labels
            found = routes.get((kind, key, labels))
            if found is None:
                found = route(kind, key, labels)
        except Exception as exc:  # drop this sample alone
            failed(sample, exc)
            continue
        aggregates, recorders, line = found
        if line is not None:
            lines.append(line)
            values.append(value)
        for agg in aggregates:
            try:
                agg.add(value)
            except Exception as exc:  # not an Aggregate of ours: its own add
                failed(agg, exc)
        for recorder in recorders:
            try:
                recorder(value, now)
            except Exception as exc:  # a sink must never break the driver
                failed(recorder, exc)


def text(lines: list[str], values: list[Any]) -> str:
    """The batch's text: each line format with its value (``%f``, as go-metrics); raises
    TypeError or ValueError when a value does not fit its format (as ``%``)."""
    return "".join(lines) % tuple(values)
