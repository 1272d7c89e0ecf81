"""Lifeguard measured as the paper measures it, in the simulator, each component on and off.

Dadgar et al., "Lifeguard: Local Health Awareness for More Accurate Failure Detection" (2018)
switch three components on and off and report, for a cluster with slow members, false
positives (healthy members declared failed) and the detection latency of real failures:

* LHA-Probe: the probe period stretches with the prober's own health
  (``awareness_max_multiplier``; off = 1);
* LHA-Suspicion: a suspicion starts at the maximum timeout and shrinks with each independent
  confirmation (``suspicion_max_timeout_mult``; off = 1, a fixed timeout of the minimum);
* Buddy System: a probe of a suspect carries the suspicion so it can refute at once
  (``MemberlistCore.buddy_system``; off = a plain ping).

The SWIM baseline the paper compares with is memberlist before Lifeguard's tuning: all three
off and ``suspicion_mult`` 5 (memberlist lowered it to 4 "as per the analysis" in the paper,
commit f5f2aba); its detection latency is the bound a Lifeguard configuration must meet.

Slow members: ``--slow`` of the ``-n`` nodes (n1, n2, ...) are slow for ``--stall`` s of every
``--period`` s, their stalls spread evenly over the period. Two models (``--model``):

* ``stall``: a slow receive path (the paper's synthetic benchmark slows message processing):
  inbound packets and streams queue, its timers keep running, so its probes fail and its
  suspicions expire before it reads the refutations;
* ``freeze``: a CPU-starved process, slow at everything (a SIGSTOP): no timer fires and
  nothing is read or sent during the stall; then its overdue timers fire and it reads its
  backlog.

Figures per configuration (seeds 1..S, ``--minutes`` of virtual time each), per minute:

* FP about healthy members (a view marks a node that is not slow DEAD), split by who
  declared it: the healthy members' views (what the paper counts at healthy members) and the
  slow members' own views;
* FP about slow members (a healthy view marks a slow member DEAD: it did not answer for the
  whole stall, so a detector that catches a crash in less cannot tell it from one);
* detection: in a healthy cluster a node crashes; seconds until the first view marks it dead
  and until all do (mean over the seeds).

``python bench/bench_lifeguard.py`` prints the component table; ``--sweep 4,8,16,32`` instead
prints SWIM against Lifeguard for each stall length (period = stall + 6 s);
``pytest bench/bench_lifeguard.py`` runs a short smoke test.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

from serf.memberlist.state import NodeState
from serf.testing.invariants import build_cluster, dead_declarations
from serf.testing.sim import Simulation, sim_config


@dataclass(frozen=True)
class Components:
    """Which Lifeguard components are on (and SWIM's suspicion multiplier)."""

    probe: bool
    suspicion: bool
    buddy: bool
    suspicion_mult: int = 4

    def label(self) -> str:
        on = [
            n
            for n, v in (("Probe", self.probe), ("Susp", self.suspicion), ("Buddy", self.buddy))
            if v
        ]
        name = "+".join(on) if on else "none"
        return f"{name} (a={self.suspicion_mult})" if self.suspicion_mult != 4 else name


ALL = [Components(p, s, b) for p, s, b in itertools.product((False, True), repeat=3)]
SWIM = Components(False, False, False, suspicion_mult=5)  # the paper's baseline
LIFEGUARD = ALL[-1]


@dataclass(frozen=True)
class Scenario:
    """``slow`` of ``n`` nodes are slow for ``stall`` s of every ``period`` s (``model``)."""

    n: int
    slow: int
    stall: float
    period: float
    model: str = "stall"

    def slow_names(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.slow + 1)]

    def describe(self) -> str:
        what = "receive path stalls" if self.model == "stall" else "whole node freezes"
        return (
            f"N={self.n}, {self.slow} slow: each one's {what} {self.stall:g} s of every "
            f"{self.period:g} s"
        )


@dataclass
class Counts:
    """Dead declarations: about healthy nodes by healthy / by slow views; about slow nodes."""

    healthy_by_healthy: int = 0
    healthy_by_slow: int = 0
    slow_by_healthy: int = 0

    def add(self, other: Counts) -> None:
        self.healthy_by_healthy += other.healthy_by_healthy
        self.healthy_by_slow += other.healthy_by_slow
        self.slow_by_healthy += other.slow_by_healthy

    @property
    def about_healthy(self) -> int:
        return self.healthy_by_healthy + self.healthy_by_slow


def _cluster(n: int, seed: int, comp: Components) -> Simulation:
    def config(name: str):  # type: ignore[no-untyped-def]
        return sim_config(
            name,
            suspicion_mult=comp.suspicion_mult,
            awareness_max_multiplier=8 if comp.probe else 1,
            suspicion_max_timeout_mult=6 if comp.suspicion else 1,
        )

    sim, _ = build_cluster(n, seed=seed, config=config, scan_interval=0)
    for node in sim.nodes.values():
        node.core.buddy_system = comp.buddy
    return sim


def false_positives(scn: Scenario, seed: int, comp: Components, minutes: float) -> Counts:
    """Dead declarations in ``minutes`` of the scenario (see :class:`Counts`)."""
    sim = _cluster(scn.n, seed, comp)
    start = sim.now
    slow = scn.slow_names()
    slow_down = sim.stall if scn.model == "stall" else sim.freeze
    for k in range(int(minutes * 60 / scn.period) + 1):
        for i, name in enumerate(slow):
            when = start + scn.period * (k + i / len(slow))
            sim.at(when, lambda name=name: slow_down(name, scn.stall))  # type: ignore[misc]
    sim.run_for(minutes * 60.0)
    out = Counts()
    for t, observer, event in dead_declarations(sim):
        about = event.split()[1]
        if t < start or (observer in slow and about in slow):
            continue  # slow members about each other: neither kind
        if about in slow:
            out.slow_by_healthy += 1
        elif observer in slow:
            out.healthy_by_slow += 1
        else:
            out.healthy_by_healthy += 1
    return out


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


def _rate(count: int, minutes: float) -> str:
    return f"{count / minutes:.2f}" if count else "0"


def table(scn: Scenario, seeds: list[int], minutes: float) -> Iterator[str]:
    """One row per component set and the paper's SWIM baseline: FP/min, detection."""
    yield f"{scn.describe()}; seeds {seeds}, {minutes:g} min each"
    yield (
        "| components | FP/min about healthy: by healthy views | by slow views | "
        "FP/min about slow members | crash: first view / all views |"
    )
    yield "|---|---|---|---|---|"
    total_min = minutes * len(seeds)
    fp: dict[Components, Counts] = {}
    det: dict[Components, float] = {}
    for comp in [SWIM, *ALL]:
        counts = Counts()
        first: list[float] = []
        full: list[float] = []
        for seed in seeds:
            counts.add(false_positives(scn, seed, comp, minutes))
            a, b = detection(scn.n, seed, comp)
            first.append(a)
            full.append(b)
        fp[comp] = counts
        det[comp] = statistics.mean(full)
        yield (
            f"| {comp.label()} | {_rate(counts.healthy_by_healthy, total_min)} | "
            f"{_rate(counts.healthy_by_slow, total_min)} | "
            f"{_rate(counts.slow_by_healthy, total_min)} | "
            f"{statistics.mean(first):.1f} s / {statistics.mean(full):.1f} s |"
        )
    yield _verdict(fp[SWIM], fp[LIFEGUARD], det[SWIM], det[LIFEGUARD])


def _verdict(swim: Counts, lg: Counts, swim_det: float, lg_det: float) -> str:
    """The ratio of FPs about healthy members, SWIM to Lifeguard, and the detection bound."""
    if lg.about_healthy:
        ratio = f"{swim.about_healthy / lg.about_healthy:.1f}x"
    elif not swim.about_healthy:
        ratio = "none with either"
    else:
        ratio = f">= {swim.about_healthy}x (none with Lifeguard)"
    bound = "within" if lg_det <= swim_det else "OVER"
    return (
        f"FP about healthy members, SWIM (a=5) / Lifeguard: {swim.about_healthy} / "
        f"{lg.about_healthy} = {ratio}; crash detected by all in {lg_det:.1f} s vs SWIM's "
        f"{swim_det:.1f} s ({bound} the bound)"
    )


def sweep(
    n: int, slow: int, stalls: list[float], model: str, seeds: list[int], minutes: float
) -> Iterator[str]:
    """SWIM (a=5) against Lifeguard for each stall length (period = stall + 6 s)."""
    yield f"N={n}, {slow} slow ({model}), period = stall + 6 s; seeds {seeds}, {minutes:g} min each"
    yield (
        "| stall | SWIM: FP/min about healthy (by healthy views) | Lifeguard | "
        "SWIM: FP/min about slow | Lifeguard |"
    )
    yield "|---|---|---|---|---|"
    total_min = minutes * len(seeds)
    for stall in stalls:
        scn = Scenario(n, slow, stall, stall + 6.0, model)
        res = {}
        for comp in (SWIM, LIFEGUARD):
            counts = Counts()
            for seed in seeds:
                counts.add(false_positives(scn, seed, comp, minutes))
            res[comp] = counts
        s, g = res[SWIM], res[LIFEGUARD]
        yield (
            f"| {stall:g} s | {_rate(s.about_healthy, total_min)} "
            f"({_rate(s.healthy_by_healthy, total_min)}) | {_rate(g.about_healthy, total_min)} "
            f"({_rate(g.healthy_by_healthy, total_min)}) | "
            f"{_rate(s.slow_by_healthy, total_min)} | {_rate(g.slow_by_healthy, total_min)} |"
        )


def test_lifeguard_smoke() -> None:
    """SWIM and Lifeguard on one seed for a minute, both models: the scenario runs, the
    counts add up and a crash is detected."""
    for model in ("stall", "freeze"):
        scn = Scenario(5, 1, 8.0, 10.0, model)
        for comp in (SWIM, LIFEGUARD):
            counts = false_positives(scn, 1, comp, 1.0)
            assert counts.about_healthy >= 0 and counts.slow_by_healthy >= 0
    first, full = detection(5, 1, LIFEGUARD)
    assert 0 < first <= full


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--slow", type=int, default=3)
    parser.add_argument("--stall", type=float, default=16.0)
    parser.add_argument("--period", type=float, default=22.0)
    parser.add_argument("--model", choices=("stall", "freeze"), default="stall")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--sweep", help="comma-separated stall lengths: SWIM vs Lifeguard")
    args = parser.parse_args()
    cpu = time.process_time()
    seed_list = list(range(1, args.seeds + 1))
    if args.sweep:
        stalls = [float(x) for x in args.sweep.split(",")]
        out = sweep(args.n, args.slow, stalls, args.model, seed_list, args.minutes)
    else:
        scn = Scenario(args.n, args.slow, args.stall, args.period, args.model)
        out = table(scn, seed_list, args.minutes)
    for row in out:
        print(row, flush=True)
    print(f"CPU {time.process_time() - cpu:.0f} s")
