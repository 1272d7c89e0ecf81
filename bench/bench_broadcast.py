"""Broadcast queue benchmark: the compiled twin against the pure one, 10,000 queued items.

Run with pytest-benchmark (the ratio is printed at the end of the module)::

    pytest bench/bench_broadcast.py

or on its own, without pytest::

    python bench/bench_broadcast.py

Two workloads, each on both twins:

* ``fill_and_drain``: queue 10,000 named broadcasts (40..139 bytes) into a queue for a
  1,000-node cluster (retransmit limit 4 * ceil(log10(1001)) = 16), then call
  ``get_broadcasts(2, 1400)`` (memberlist's UDP budget) until the queue is empty: 160,000
  messages picked.
* ``steady``: 10,000 broadcasts stay queued; each step replaces one of them by name (as
  memberlist does when a node's state changes) and packs one gossip packet.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from types import ModuleType
from typing import Any

import pytest

from serf._speedups import twins

ITEMS = 10_000
NODES = 1_000
OVERHEAD = 2
LIMIT = 1_400
STEADY_STEPS = 2_000

TWINS = twins("broadcast")
_rng = random.Random(7946)
MESSAGES = [bytes([i % 256]) * _rng.randrange(40, 140) for i in range(ITEMS)]
NAMES = [f"node-{i}" for i in range(ITEMS)]
STEADY_PICKS = [_rng.randrange(ITEMS) for _ in range(STEADY_STEPS)]


def fill_and_drain(module: ModuleType) -> int:
    """Queue ITEMS broadcasts, then drain them packet by packet; returns messages picked."""
    queue = module.TransmitLimitedQueue(4, lambda: NODES)
    for name, message in zip(NAMES, MESSAGES, strict=True):
        queue.queue_broadcast(message, name)
    picked = 0
    while queue.num_queued():
        picked += len(queue.get_broadcasts(OVERHEAD, LIMIT))
    return picked


def full_queue(module: ModuleType) -> Any:
    """A queue holding ITEMS broadcasts whose limit is never reached during ``steady``."""
    queue = module.TransmitLimitedQueue(1_000, lambda: NODES)
    for name, message in zip(NAMES, MESSAGES, strict=True):
        queue.queue_broadcast(message, name)
    return queue


def steady(queue: Any) -> None:
    """Replace one broadcast by name and pack one packet, STEADY_STEPS times."""
    for pick in STEADY_PICKS:
        queue.queue_broadcast(MESSAGES[pick], NAMES[pick])
        queue.get_broadcasts(OVERHEAD, LIMIT)


_results: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_ratio(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module's benchmarks, print compiled/pure per workload (past the capture)."""
    yield
    lines = []
    for workload in ("fill_and_drain", "steady"):
        pure = _results.get((workload, "pure"))
        compiled = _results.get((workload, "compiled"))
        if pure is None or compiled is None:
            lines.append(f"broadcast {workload}: compiled twin not built, no ratio")
        else:
            lines.append(
                f"broadcast {workload}: pure {pure * 1e3:.1f} ms, compiled "
                f"{compiled * 1e3:.1f} ms (best of 5), compiled/pure = {compiled / pure:.2f} "
                f"({pure / compiled:.1f}x faster)"
            )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:  # pragma: no cover - plugins disabled
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_fill_and_drain(benchmark: Any, twin: str) -> None:
    module = TWINS[twin]
    picked = benchmark.pedantic(fill_and_drain, args=(module,), rounds=5, iterations=1)
    assert picked == ITEMS * 16
    _results[("fill_and_drain", twin)] = benchmark.stats.stats.min


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_steady(benchmark: Any, twin: str) -> None:
    module = TWINS[twin]
    benchmark.pedantic(steady, setup=lambda: ((full_queue(module),), {}), rounds=5, iterations=1)
    _results[("steady", twin)] = benchmark.stats.stats.min


def _best_of(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    """Time both workloads on both twins and print the ratios (best of 5)."""
    timings: dict[tuple[str, str], float] = {}
    for twin, module in sorted(TWINS.items()):
        timings[("fill_and_drain", twin)] = _best_of(5, partial(fill_and_drain, module))
        queues = [full_queue(module) for _ in range(5)]
        timings[("steady", twin)] = min(_best_of(1, partial(steady, q)) for q in queues)
    for workload in ("fill_and_drain", "steady"):
        row = ", ".join(
            f"{twin} {timings[(workload, twin)] * 1e3:.1f} ms" for twin in sorted(TWINS)
        )
        if "compiled" in TWINS:
            ratio = timings[(workload, "compiled")] / timings[(workload, "pure")]
            row += f", compiled/pure = {ratio:.2f} ({1 / ratio:.1f}x faster)"
        print(f"broadcast {workload}: {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
