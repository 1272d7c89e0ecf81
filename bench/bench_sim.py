"""Simulated membership: convergence and detection time against N, and simulator throughput.

Run the scale table on its own (N = 10, 100, 1000; add 5000 with SERF_BENCH_SIM_5000=1)::

    python bench/bench_sim.py

the CPU of one join storm (N nodes join through one seed at t=0, until all see all)::

    python bench/bench_sim.py --storm 1000

the fingerprints that show a change kept every outcome (run before and after; each line must
match: seeds 0-7 of tests/sim/test_sweep.py, 100- and 300-node storms with a crash, 60-node
storms with compression, the go codec, and encryption with a label)::

    python bench/bench_sim.py --fingerprint

or the throughput benchmark with pytest-benchmark::

    pytest bench/bench_sim.py

Figures are virtual seconds at Go's LAN defaults (compression off, 1 ms +- 0.5 ms links, no
loss), printed beside the reference model's figures (shared/reference/anchors.md):

* convergence: N nodes join through one seed at t=0; time until every node sees N alive.
  The anchor is the serf simulator's time for ONE update to reach 99.99% of N (section 3.1);
  a join storm disseminates N updates at once, so it is a lower bound, not a target.
* detection: one node crashes; time until every live node marks it dead. Anchor: section 7
  (1.58 probe periods + probe round + min suspicion after 2 confirmations + dissemination):
  ~7 s at 10 (min suspicion 4 s), 11-13 s at 100, 15-17 s at 1000.
* throughput: node-seconds simulated per CPU second in a converged cluster, measured 30 s
  after convergence (steady state: probes, acks, push/pulls; gossip only when queued).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from serf.memberlist.state import NodeState
from serf.testing.sim import Simulation, sim_config
from serf.wire.keyring import Keyring

ANCHOR_CONVERGENCE = {10: 1.6, 100: 2.0, 1000: 2.2, 5000: 2.5}
ANCHOR_DETECTION = {10: "~7", 100: "11-13", 1000: "15-17", 5000: "~17-19"}


def converge(n: int, seed: int) -> tuple[Simulation, float]:
    """N nodes join through n0 at t=0; returns the sim and the virtual convergence time."""
    sim = Simulation(seed)
    sim.add_node("n0")
    for i in range(1, n):
        sim.add_node(f"n{i}", join=["n0"])
    took = sim.run_until_converged(
        lambda s: all(x.core.num_members() == n for x in s.live_nodes()), 600.0, 0.1
    )
    assert took is not None, f"{n} nodes did not converge"
    return sim, took


def detect(sim: Simulation, victim: str = "n1") -> float:
    """Crash ``victim``; the virtual time until every live node marks it dead."""
    sim.crash(victim)
    took = sim.run_until_converged(
        lambda s: all(x.state_of(victim) in (NodeState.DEAD, None) for x in s.live_nodes()),
        600.0,
        0.1,
    )
    assert took is not None, "crash not detected"
    return took


def throughput(sim: Simulation, virtual: float) -> float:
    """Node-seconds per CPU second over ``virtual`` more seconds."""
    start = time.process_time()
    sim.run_for(virtual)
    cpu = time.process_time() - start
    return len(sim.live_nodes()) * virtual / cpu


def table(sizes: list[int]) -> list[str]:
    """The rows of the scale table."""
    rows = [
        f"{'N':>5} | {'converge (s)':>12} | {'model 99.99%':>12} | {'detect (s)':>16} | "
        f"{'reference':>9} | {'node-s/CPU-s':>12} | {'CPU (s)':>7}"
    ]
    for n in sizes:
        seeds = [1, 2, 3] if n <= 100 else [1]
        conv: list[float] = []
        det: list[float] = []
        rate = 0.0
        cpu0 = time.process_time()
        for seed in seeds:
            sim, took = converge(n, seed)
            conv.append(took)
            sim.run_for(30.0)  # let the join storm's broadcasts drain first
            rate = throughput(sim, 10.0 if n >= 1000 else 30.0)
            det.append(detect(sim))
        cpu = time.process_time() - cpu0
        det_text = f"{statistics.mean(det):.1f} [{min(det):.1f}-{max(det):.1f}]"
        rows.append(
            f"{n:>5} | {statistics.mean(conv):>12.1f} | {ANCHOR_CONVERGENCE[n]:>12.1f} | "
            f"{det_text:>16} | {ANCHOR_DETECTION[n]:>9} | {rate:>12,.0f} | {cpu:>7.1f}"
        )
    return rows


def test_sim_throughput_100_nodes(benchmark: Any) -> None:
    """pytest-benchmark: 100 converged nodes, 10 virtual seconds per round."""
    sim, _ = converge(100, 1)
    benchmark.pedantic(lambda: sim.run_for(10.0), rounds=5, iterations=1)
    assert sim.all_alive()


def storm(n: int, seed: int = 1) -> str:
    """One join storm of ``n`` nodes: its process CPU, virtual time and the RSS after it."""
    start = time.process_time()
    _, took = converge(n, seed)
    cpu = time.process_time() - start
    with open("/proc/self/status") as f:
        rss = next((line.split()[1] for line in f if line.startswith("VmRSS:")), "?")
    return f"storm of {n} nodes, seed {seed}: {cpu:.1f} s CPU, {took:.1f} s virtual, RSS {rss} KiB"


def fingerprint(sim: Simulation) -> str:
    """A hash of everything a run produced: trace, packet and event counts, every node's stats
    and view, log and metric counts."""
    h = hashlib.sha256()
    h.update(repr(sim.trace).encode())
    h.update(repr((sim.packets_sent, sim.packets_lost, sim.events_processed)).encode())
    for name in sorted(sim.nodes):
        node = sim.nodes[name]
        if node.core is None:
            continue
        view = [
            (m.name, m.addr, m.port, m.meta, m.incarnation, int(m.state), m.state_change, m.vsn)
            for m in node.core.state.members()
        ]
        h.update(repr((name, node.up, sorted(node.core.stats.items()), view)).encode())
    h.update(repr(sorted(sim.log_counts.items())).encode())
    h.update(repr(sorted(sim.metric_counts.items())).encode())
    return h.hexdigest()[:16]


def _storm_then_crash(n: int, seed: int, config: Any = None, keyring: bool = False) -> Simulation:
    sim = Simulation(seed)
    for i in range(n):
        name = f"n{i}"
        ring = Keyring([b"k" * 16]) if keyring else None
        cfg = config(name) if config is not None else None
        sim.add_node(name, cfg, keyring=ring, join=["n0"] if i else ())
    sim.run_until_converged(
        lambda s: all(x.core.num_members() == n for x in s.live_nodes()), 300.0, 0.1
    )
    sim.crash("n1")
    sim.run_for(30.0)
    return sim


def fingerprints() -> list[str]:
    """One line per scenario (see the module comment)."""
    rows = []
    sweep = Path(__file__).resolve().parent.parent / "tests" / "sim"
    if (sweep / "test_sweep.py").exists():
        sys.path.insert(0, str(sweep))
        from test_sweep import run_seed

        for seed in range(8):
            rows.append(f"sweep seed {seed}: {fingerprint(run_seed(seed)[0])}")
    for n in (100, 300):
        rows.append(f"storm {n}: {fingerprint(_storm_then_crash(n, 1))}")
    configs = {
        "compression": (lambda nm: replace(sim_config(nm), enable_compression=True), False),
        "go codec": (lambda nm: sim_config(nm, codec="go"), False),
        "encryption + label": (lambda nm: sim_config(nm, label="lab"), True),
    }
    for seed, (what, (config, keyring)) in enumerate(configs.items(), start=2):
        rows.append(f"{what}: {fingerprint(_storm_then_crash(60, seed, config, keyring))}")
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fingerprint"]:
        for line in fingerprints():
            print(line, flush=True)
        raise SystemExit(0)
    if sys.argv[1:2] == ["--storm"]:
        print(storm(int(sys.argv[2])), flush=True)
        raise SystemExit(0)
    sizes = [10, 100, 1000]
    if os.environ.get("SERF_BENCH_SIM_5000"):
        sizes.append(5000)
    for row in table(sizes):
        print(row, flush=True)
