"""serf.metrics_record and its compiled twin: the same statsd text (go-metrics' ``%f``, byte
for byte) and the same aggregates from the same samples."""

from __future__ import annotations

import math
import random
from types import ModuleType

import pytest

from serf import _speedups
from serf.metrics import line_format
from serf.telemetry import COUNTER, GAUGE, SAMPLE, TIMER, MetricSample

TWINS = _speedups.twins("metrics_record")
TWIN_IDS = sorted(TWINS)

# whole numbers (the shortcut and its edges), ties at the 6th decimal (0.0078125 = 2**-7),
# signed zeros, the largest and smallest doubles, non-finite values
_EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    53.0,
    1e15 - 1,
    1e15,
    -(1e15 - 1),
    2.0**53,
    0.0078125,
    0.0000005,
    2.5e-7,
    0.1,
    3.0000005,
    1e300,
    -1e300,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
]


def _values(count: int) -> list[float]:
    rng = random.Random(7)
    out = list(_EDGES)
    for _ in range(count):
        out.append(
            rng.choice(
                [
                    float(rng.randint(-(10**9), 10**9)),
                    rng.uniform(-1e3, 1e3),
                    rng.randint(0, 1 << 20) / (1 << rng.randint(0, 30)),
                    rng.expovariate(1.0) * 10.0 ** rng.randint(-9, 16),
                ]
            )
        )
    return out


_FORMATS = [
    line_format(COUNTER, ("serf-agent", "memberlist", "udp", "sent")),
    line_format(SAMPLE, ("serf-agent", "serf", "events", "50%")),  # '%' doubled in the key
    line_format(GAUGE, ("x%f",)),  # a key that looks like a format
    line_format(SAMPLE, ("serf", "queries", "ünïcode")),
]


@pytest.mark.parametrize("formats", [[f] for f in _FORMATS] + [_FORMATS], ids=str)
def test_text_is_percent_f_byte_for_byte(formats: list[str]) -> None:
    values = _values(3000)
    for value in values:
        expected = "".join(formats) % ((value,) * len(formats))
        for name, twin in TWINS.items():
            assert twin.text(formats, [value] * len(formats)) == expected, (name, value)
    batch = [formats[i % len(formats)] for i in range(len(values))]
    for name, twin in TWINS.items():
        assert twin.text(batch, values) == "".join(batch) % tuple(values), name


@pytest.mark.parametrize("twin", TWIN_IDS)
def test_text_of_what_is_not_a_float_is_percents(twin: str) -> None:
    text = TWINS[twin].text
    assert text(["a:%f|c\n", "b:%f|g\n"], [1, 2.5]) == "a:1.000000|c\nb:2.500000|g\n"
    assert text(["a:%d|c\n"], [3.0]) == "a:3|c\n"  # not a plain %f format: '%' does it
    with pytest.raises(TypeError):
        text(["a:%f|c\n"], ["many"])
    with pytest.raises(TypeError):
        text(["a:%f|c\n", "b:%f|c\n"], [1.0])


def _record(twin: ModuleType, samples: list[tuple[MetricSample, float]]) -> tuple[object, ...]:
    aggregates: dict[tuple[str, tuple[str, ...], object], object] = {}
    failures: list[object] = []

    routes: dict[object, object] = {}

    def route(kind: str, key: tuple[str, ...], labels: object) -> object:  # as Metrics'
        if not all(isinstance(part, str) for part in key):
            raise TypeError("a key of strings")
        agg = twin.Aggregate(kind, labels=labels)
        aggregates[(kind, key, labels)] = agg
        routes[(kind, key, labels)] = found = ((agg,), (), line_format(kind, key))
        return found

    lines: list[str] = []
    values: list[float] = []
    twin.record(samples, routes, route, lines, values, lambda what, exc: failures.append(what))
    twin.record(samples, routes, route, lines, values, lambda what, exc: failures.append(what))
    return (
        {
            k: (a.count, a.sum, a.min, a.max, a.last, a.sumsq, a.go_text())
            for k, a in aggregates.items()
        },
        lines,
        values,
        failures,
    )


def test_record_gives_the_same_aggregates_lines_and_drops() -> None:
    rng = random.Random(3)
    keys = [("memberlist", "udp", "sent"), ("memberlist", "probeNode"), ("serf", "events")]
    samples: list[tuple[MetricSample, float]] = []
    for i in range(2000):
        kind = rng.choice([COUNTER, GAUGE, SAMPLE, TIMER])
        value = rng.choice([float(rng.randint(0, 1500)), rng.uniform(-5.0, 5.0), rng.randint(0, 9)])
        labels = rng.choice([(), (("node_state", "alive"),)])
        samples.append((MetricSample(kind, rng.choice(keys), value, labels), 100.0 + i * 0.25))
    bad = [
        (MetricSample(COUNTER, ("a", 1), 1.0), 1.0),  # type: ignore[arg-type]  # no route
        (MetricSample(TIMER, ("t",), "then"), 1.0),  # type: ignore[arg-type]  # not a number
        (MetricSample(COUNTER, ("b",), b"1"), 1.0),  # type: ignore[arg-type]
    ]
    samples[5:5] = bad
    results = {name: _record(twin, samples) for name, twin in TWINS.items()}
    pure = results["pure"]
    assert pure[3] == [s for s, _ in bad] * 2  # each bad sample dropped alone, both times
    assert len(pure[1]) == 2 * (len(samples) - len(bad))
    for name, got in results.items():
        assert got == pure, name


@pytest.mark.parametrize("twin", TWIN_IDS)
def test_a_recorder_that_raises_is_reported_and_the_others_run(twin: str) -> None:
    mod = TWINS[twin]
    agg = mod.Aggregate(COUNTER)
    seen: list[float] = []

    def broken(value: float, now: float) -> None:
        raise RuntimeError("boom")

    route = ((agg,), (broken, lambda value, now: seen.append(value)), None)
    failures: list[object] = []
    sample = MetricSample(COUNTER, ("k",), 2.0)
    mod.record([(sample, 1.0)], {}, lambda *a: route, [], [], lambda w, e: failures.append(w))
    assert failures == [broken] and seen == [2.0] and agg.count == 1 and agg.sum == 2.0
