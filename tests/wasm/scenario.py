"""The scenario that tests/wasm/test_pyodide.py runs on CPython and inside Pyodide.

Plain Python with no dependency outside the standard library and ``serf`` (it is copied into
Pyodide's file system and run there as it is). :func:`run` drives two seeded simulations on
the active twins (Pyodide has the pure ones only) and returns their figures as JSON-ready
values; the same seed must give the same figures on every runtime and with either twins:

* memberlist: ``nodes`` memberlist cores on a lossy, jittery virtual network join through
  one seed node, run until every node sees every other alive, then one node crashes and the
  run goes on until every live node has declared it dead;
* serf: a smaller cluster of serf cores joins, fires one user event that must reach every
  member, then one member crashes and the run goes on until every live member sees it failed.

Each part reports its virtual times (convergence, detection), the simulator's counters
(events, packets sent and lost), every metric's sample count (the per-message-type counts:
``memberlist.msg.alive``, ``memberlist.udp.sent``, ...) and a SHA-256 of its full trace, so any
divergence between runtimes, however small, shows.

``python scenario.py SEED NODES`` prints the figures as one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

__all__ = ["run"]


def _digest(trace: object) -> str:
    return hashlib.sha256(repr(trace).encode()).hexdigest()


def _counts(metric_counts: dict[tuple[str, ...], int]) -> dict[str, int]:
    return {".".join(key): count for key, count in sorted(metric_counts.items())}


def _memberlist(seed: int, nodes: int) -> dict[str, Any]:
    from serf.memberlist.state import NodeState
    from serf.testing.sim import LinkModel, Simulation

    sim = Simulation(seed, default_link=LinkModel(loss=0.02, latency=0.002, jitter=0.001))
    sim.add_node("n0")
    for i in range(1, nodes):
        sim.add_node(f"n{i}", join=["n0"])
    converged = sim.run_until_converged(lambda s: s.all_alive(), timeout=120.0)
    victim = f"n{nodes // 2}"
    sim.crash(victim)
    detected = sim.run_until_converged(
        lambda s: all(n.state_of(victim) is NodeState.DEAD for n in s.live_nodes()),
        timeout=120.0,
    )
    return {
        "nodes": nodes,
        "converged_s": converged,
        "crashed": victim,
        "detected_s": detected,
        "virtual_end_s": sim.now,
        "events_processed": sim.events_processed,
        "packets_sent": sim.packets_sent,
        "packets_lost": sim.packets_lost,
        "trace_len": len(sim.trace),
        "trace_sha256": _digest(sim.trace),
        "metric_counts": _counts(sim.metric_counts),
    }


def _serf(seed: int, nodes: int) -> dict[str, Any]:
    from serf.core import io as sio
    from serf.core.io import MemberStatus
    from serf.testing.serf_sim import SerfSimulation, serf_sim_config

    sim = SerfSimulation(seed)
    names = [f"s{i}" for i in range(nodes)]
    for i, name in enumerate(names):
        sim.add_serf(name, serf_sim_config(name), join=["s0"] if i else ())
    converged = sim.run_until_converged(
        lambda _: all(len(sim.serf(x).members()) == nodes for x in names), timeout=60.0
    )
    sim.user_event("s1", "deploy", b"v42")

    def delivered(_: object) -> bool:
        wanted = ("deploy", b"v42")
        return all(
            any((e.name, e.payload) == wanted for e in sim.of_type(x, sio.UserEventReceived))
            for x in names
        )

    event_s = sim.run_until_converged(delivered, timeout=30.0)
    victim = names[-1]
    sim.crash(victim)

    def failed(_: object) -> bool:
        for x in names[:-1]:
            member = sim.serf(x).member(victim)
            if member is None or member.status is not MemberStatus.FAILED:
                return False
        return True

    detected = sim.run_until_converged(failed, timeout=60.0)
    events = {x: sim.events[x] for x in names}
    return {
        "nodes": nodes,
        "converged_s": converged,
        "user_event_s": event_s,
        "crashed": victim,
        "failed_s": detected,
        "virtual_end_s": sim.now,
        "events_processed": sim.events_processed,
        "packets_sent": sim.packets_sent,
        "packets_lost": sim.packets_lost,
        "serf_effects": sum(len(v) for v in events.values()),
        "serf_effects_sha256": _digest(events),
        "trace_sha256": _digest(sim.trace),
        "metric_counts": _counts(sim.metric_counts),
    }


def run(seed: int, nodes: int, serf_nodes: int = 10) -> dict[str, Any]:
    """Both simulations' figures for ``seed``; ``runtime`` and ``wall_s`` say where and how
    long (they are not part of the comparison)."""
    from serf import _speedups

    start = time.perf_counter()
    figures = {
        "seed": seed,
        "memberlist": _memberlist(seed, nodes),
        "serf": _serf(seed, serf_nodes),
    }
    wall = time.perf_counter() - start
    optional = ("msgpack", "cryptography", "re2", "uvloop", "aioquic", "ssl")
    return {
        "figures": figures,
        "runtime": {
            "implementation": sys.implementation.name,
            "version": sys.version.split()[0],
            "platform": sys.platform,
            "twins": _speedups.IMPLEMENTATION,
            "wall_s": round(wall, 3),
            "optional_loaded": sorted(m for m in optional if m in sys.modules),
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]))))
