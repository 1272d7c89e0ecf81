"""Adversarial seed sweep: small clusters under random loss, delay, duplication, partitions,
one-way links, stalls, leaves and crash-restarts; then heal and check convergence, with the
invariant checkers running throughout.

``SERF_SIM_SEEDS=<n>`` sets how many seeds run (default 200); ``SERF_SIM_SEED=<n>`` replays
exactly one (a failure prints the command).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from serf.testing.invariants import InvariantChecker, converge_after_heal
from serf.testing.sim import LinkModel, Simulation

N = 8
FAULT_SPAN = 150.0
# After the heal every node reconnects once to a random peer (what serf's reconnect loop
# does; memberlist alone never contacts a forgotten node again, see test_cluster). Then one
# push/pull per pair merges the tables, refutations of stale dead/suspect entries take a
# gossip round or two and a suspicion raised just before the heal lasts at most 6 * 4 s.
# The slow case (seed 6): a node that left, shut down and restarted under its name (at
# incarnation 1) stays hidden behind its own LEFT tombstone at a higher incarnation: nobody
# gossips, probes or push/pulls to a LEFT node, so it learns of the tombstone (and refutes
# it) only when one of its own push/pulls (every 30 s) lands on a peer still holding it, as
# in Go. Bound: two or three push/pull intervals plus the above, 120 s.
CONVERGE_BOUND = 120.0


def _seeds() -> list[int]:
    one = os.environ.get("SERF_SIM_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get("SERF_SIM_SEEDS", "200"))))


def run_seed(seed: int) -> tuple[Simulation, InvariantChecker, float | None]:
    """One adversarial schedule; returns the sim, its checker and the convergence time."""
    plan = random.Random(seed ^ 0x5EED)
    link = LinkModel(
        loss=plan.uniform(0.0, 0.2),
        latency=plan.uniform(0.0005, 0.03),
        jitter=plan.uniform(0.0, 0.05),
        duplicate=plan.uniform(0.0, 0.05),
    )
    sim = Simulation(seed, default_link=link)
    checker = InvariantChecker(sim, scan_interval=2.0)
    names = [f"n{i}" for i in range(N)]
    sim.add_node(names[0])
    for name in names[1:]:
        sim.add_node(name, join=[names[0]])

    def rejoin(name: str) -> None:
        peers = [n.name for n in sim.live_nodes() if n.name != name]
        if peers and sim.nodes[name].up:
            sim.join(name, (sim.nodes[plan.choice(peers)].address,))

    def restart(name: str) -> None:
        if not sim.nodes[name].up:
            sim.restart(name)
            rejoin(name)

    healed: list[bool] = []

    def fault(action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if not healed:
                action()

        return run

    t = 5.0
    while t < FAULT_SPAN:
        what = plan.randrange(6)
        victim = plan.choice(names)
        span = plan.uniform(1.0, 40.0)
        if what == 0:  # partition into two random groups
            cut = plan.randrange(1, N)
            shuffled = plan.sample(names, N)
            groups = (shuffled[:cut], shuffled[cut:])
            sim.at(t, fault(lambda g=groups: sim.partition(*g)))  # type: ignore[misc]
            sim.at(t + span, sim.heal)
        elif what == 1:  # crash, restart later
            sim.at(t, fault(lambda v=victim: sim.crash(v) if sim.nodes[v].up else None))  # type: ignore[misc]
            sim.at(t + span, lambda v=victim: restart(v))  # type: ignore[misc]
        elif what == 2:  # one-way link
            other = plan.choice(names)
            sim.at(t, fault(lambda a=victim, b=other: sim.block(a, b)))  # type: ignore[misc]
            sim.at(t + span, sim.heal)
        elif what == 3:  # stall the receive path
            sim.at(t, fault(lambda v=victim, d=span / 4: sim.stall(v, d)))  # type: ignore[misc]
        elif what == 4:  # graceful leave, then shut down; back later
            sim.at(t, fault(lambda v=victim: sim.leave(v, 5.0) if sim.nodes[v].up else None))  # type: ignore[misc]
            sim.at(t + 6.0, fault(lambda v=victim: sim.crash(v) if sim.nodes[v].up else None))  # type: ignore[misc]
            sim.at(t + 6.0 + span, lambda v=victim: restart(v))  # type: ignore[misc]
        else:  # a burst of heavier loss
            heavy = LinkModel(loss=0.5, latency=link.latency, jitter=link.jitter)
            sim.at(t, fault(lambda h=heavy: setattr(sim, "default_link", h)))  # type: ignore[misc]
            sim.at(t + span / 4, fault(lambda: setattr(sim, "default_link", link)))
        t += plan.uniform(3.0, 20.0)
    sim.run_until(FAULT_SPAN)
    # heal everything in the middle of whatever is going on: no partitions, plain links,
    # everyone up, one reconnect each; faults scheduled later do not start
    healed.append(True)
    sim.heal()
    sim.default_link = LinkModel(latency=link.latency, jitter=link.jitter)
    for name in names:
        node = sim.nodes[name]
        if node.up and node.core.state.leaving:  # left but not shut down yet: do it now
            sim.crash(name)
        restart(name)
    for name in names:
        rejoin(name)
    return sim, checker, converge_after_heal(sim, CONVERGE_BOUND)


@pytest.mark.parametrize("seed", _seeds())
def test_seed(seed: int) -> None:
    sim, checker, took = run_seed(seed)
    replay = f"replay: SERF_SIM_SEED={seed} pytest tests/sim/test_sweep.py"
    assert not checker.violations, f"seed {seed}: {checker.violations[:5]} ({replay})"
    if took is None:
        views = {
            n.name: {m.name: m.state.name for m in n.core.state.members()} for n in sim.live_nodes()
        }
        pytest.fail(f"seed {seed}: no convergence within {CONVERGE_BOUND}s: {views} ({replay})")
