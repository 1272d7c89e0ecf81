"""Lifeguard measured as the paper measures it, in the simulator, each component on and off.

Dadgar et al., "Lifeguard: Local Health Awareness for More Accurate Failure Detection" (2018)
switch three components on and off and report, for a cluster with slow members, false
positives per minute (healthy members declared failed) and the detection latency of real
failures:

* LHA-Probe: the probe period (and timeout) stretch with the prober's own health
  (``awareness_max_multiplier``; off = 1);
* LHA-Suspicion: a suspicion starts at the maximum timeout and shrinks with each independent
  confirmation (``suspicion_max_timeout_mult``; off = 1, a fixed timeout of the minimum);
* Buddy System: a probe of a suspect carries the suspicion so it can refute at once
  (``MemberlistCore.buddy_system``; off = a plain ping).

Our slow-node model: in a cluster of ``N`` nodes one node's receive path stalls (inbound
packets queue, its timers keep running) for ``STALL`` s of every ``PERIOD`` s, so its own
probes time out and it suspects healthy peers, while it answers nobody. The paper's slow
members are CPU-starved processes that are slow at everything (timers included); we model
only the receive side, which is what makes a slow member blame healthy ones.

Figures, per configuration (seeds 1..S, ``MINUTES`` of virtual time each):

* FP/min: declarations (one view marking a node DEAD) about healthy nodes, per minute, split
  by who declared: the healthy members, and the slow node itself;
* detection: in a healthy cluster, a node crashes; seconds until the first view marks it
  dead and until all do.

Run the table: ``python bench/bench_lifeguard.py`` (``--seeds``, ``--minutes``, ``-n``);
``pytest bench/bench_lifeguard.py`` runs one short configuration pair as a smoke test.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass

from serf.memberlist.state import NodeState
from serf.testing.invariants import build_cluster, dead_declarations
from serf.testing.sim import Simulation, sim_config

SLOW = "n3"
PERIOD = 40.0
STALL = 34.0


@dataclass(frozen=True)
class Components:
    """Which Lifeguard components are on."""

    probe: bool
    suspicion: bool
    buddy: bool

    def label(self) -> str:
        on = [
            n
            for n, v in (("Probe", self.probe), ("Susp", self.suspicion), ("Buddy", self.buddy))
            if v
        ]
        return "+".join(on) if on else "none (SWIM)"


ALL = [Components(p, s, b) for p, s, b in itertools.product((False, True), repeat=3)]


def _cluster(n: int, seed: int, comp: Components) -> Simulation:
    def config(name: str):  # type: ignore[no-untyped-def]
        return sim_config(
            name,
            awareness_max_multiplier=8 if comp.probe else 1,
            suspicion_max_timeout_mult=6 if comp.suspicion else 1,
        )

    sim, _ = build_cluster(n, seed=seed, config=config, scan_interval=0)
    for node in sim.nodes.values():
        node.core.buddy_system = comp.buddy
    return sim


def false_positives(n: int, seed: int, comp: Components, minutes: float) -> tuple[int, int]:
    """(declared by healthy members, declared by the slow node) about healthy nodes."""
    sim = _cluster(n, seed, comp)
    start = sim.now
    for k in range(int(minutes * 60 / PERIOD) + 1):
        sim.at(start + PERIOD * k, lambda: sim.stall(SLOW, STALL))
    sim.run_for(minutes * 60.0)
    healthy = {f"n{i}" for i in range(n)} - {SLOW}
    found = [(t, obs) for t, obs, _ in dead_declarations(sim, healthy) if t >= start]
    by_slow = sum(1 for _, obs in found if obs == SLOW)
    return len(found) - by_slow, by_slow


def detection(n: int, seed: int, comp: Components) -> tuple[float, float]:
    """A healthy cluster; n1 crashes: (first view marks it dead, every view has) in seconds."""
    sim = _cluster(n, seed, comp)
    crash_at = sim.now
    sim.crash("n1")
    took = sim.run_until_converged(
        lambda s: all(x.state_of("n1") in (NodeState.DEAD, None) for x in s.live_nodes()),
        120.0,
        0.1,
    )
    assert took is not None, "crash not detected within 120 s"
    first = min(t for t, _, _ in dead_declarations(sim, {"n1"}))
    return first - crash_at, took


def table(n: int, seeds: list[int], minutes: float) -> list[str]:
    """One row per component set: FP/min at healthy members and at the slow one, detection."""
    rows = [
        f"N={n}, slow node stalls {STALL:.0f} s of every {PERIOD:.0f} s, seeds {seeds}, "
        f"{minutes:g} min each",
        f"{'components':<20} | {'FP/min healthy':>14} | {'FP/min slow':>11} | "
        f"{'FP/min total':>12} | {'detect first':>12} | {'detect all':>10}",
    ]
    for comp in ALL:
        healthy = slow = 0
        first: list[float] = []
        full: list[float] = []
        for seed in seeds:
            h, s = false_positives(n, seed, comp, minutes)
            healthy += h
            slow += s
            a, b = detection(n, seed, comp)
            first.append(a)
            full.append(b)
        total_min = minutes * len(seeds)
        rows.append(
            f"{comp.label():<20} | {healthy / total_min:>14.2f} | {slow / total_min:>11.2f} | "
            f"{(healthy + slow) / total_min:>12.2f} | {statistics.mean(first):>11.1f}s | "
            f"{statistics.mean(full):>9.1f}s"
        )
    return rows


def test_lifeguard_smoke() -> None:
    """Both extremes on one seed for two minutes: the scenario runs and a crash is detected."""
    for comp in (ALL[0], ALL[-1]):
        healthy, slow = false_positives(5, 1, comp, 1.0)
        assert healthy >= 0 and slow >= 0
        first, full = detection(5, 1, comp)
        assert 0 < first <= full


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=8.0)
    args = parser.parse_args()
    cpu = time.process_time()
    for row in table(args.n, list(range(1, args.seeds + 1)), args.minutes):
        print(row, flush=True)
    print(f"CPU {time.process_time() - cpu:.0f} s")
