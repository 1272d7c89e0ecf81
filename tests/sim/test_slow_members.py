"""Lifeguard's slow members in virtual time: the two slow-node models of the simulator
(:meth:`Simulation.stall`, a slow receive path whose timers keep running, and
:meth:`Simulation.freeze`, a CPU-starved node that does nothing at all until it resumes) and
what each does to false dead declarations with and without Lifeguard."""

from __future__ import annotations

from serf.memberlist import io
from serf.testing.invariants import build_cluster, dead_declarations
from serf.testing.sim import Simulation, sim_config


def _record_inputs(sim: Simulation, name: str) -> list[tuple[float, str]]:
    """Wrap ``name``'s core so every input it handles is logged as (time, input type)."""
    node = sim.nodes[name]
    seen: list[tuple[float, str]] = []
    handle = node.core.handle

    def spy(inp: io.Input, now: float) -> list[io.Effect]:
        seen.append((now, type(inp).__name__))
        return handle(inp, now)

    node.core.handle = spy  # type: ignore[method-assign]
    return seen


def test_a_frozen_node_runs_nothing_then_fires_its_timers_and_reads_its_backlog() -> None:
    sim, _ = build_cluster(5, seed=3, scan_interval=0)
    seen = _record_inputs(sim, "n2")
    sent: list[float] = []
    sim.observers.append(
        lambda t, node, eff: (
            sent.append(t) if node.name == "n2" and isinstance(eff, io.SendPacket) else None
        )
    )
    start = sim.now
    sim.freeze("n2", 10.0)
    sim.run_for(9.999)
    # nothing ran: no timer (its probe ticks every 1 s), no packet, nothing sent
    assert seen == [] and sent == []
    # ... while the others kept probing it: their pings wait in its backlog
    assert len(sim.nodes["n2"].backlog) >= 5
    sim.run_for(0.002)
    resumed = [kind for t, kind in seen if t == start + 10.0]
    # it resumes at the end of the freeze: its overdue timers first, then the backlog
    assert resumed[0] == "Tick"
    assert resumed.count("PacketReceived") >= 5
    assert sim.nodes["n2"].backlog == []
    assert sent and min(sent) == start + 10.0  # the acks (and its own probe) go out at once


def test_a_stalled_receive_path_keeps_its_timers_running() -> None:
    # the other model: inbound traffic queues, but its own timers fire on time (so its probes
    # fail: the acks queue with everything else), and so do its TCP fallback dials' timeouts
    sim, _ = build_cluster(5, seed=3, scan_interval=0)
    seen = _record_inputs(sim, "n2")
    start = sim.now
    sim.stall("n2", 10.0)
    sim.run_for(9.999)
    assert {kind for _, kind in seen} == {"Tick", "StreamResult"}
    assert len([t for t, _ in seen if t < start + 9.0]) >= 9
    assert sim.nodes["n2"].core.stats["probe_failures"] >= 2  # awareness stretches its period


def _false_dead(seed: int, lifeguard: bool) -> int:
    """10 nodes, n3's receive path stalls 8 s of every 10 s for 3 minutes: views marking a
    healthy node dead."""
    config = lambda name: sim_config(  # noqa: E731
        name,
        awareness_max_multiplier=8 if lifeguard else 1,
        suspicion_max_timeout_mult=6 if lifeguard else 1,
    )
    sim, _ = build_cluster(10, seed=seed, config=config, scan_interval=0)
    for node in sim.nodes.values():
        node.core.buddy_system = lifeguard
    start = sim.now
    for k in range(18):
        sim.at(start + 10.0 * k, lambda: sim.stall("n3", 8.0))
    sim.run_for(180.0)
    healthy = {f"n{i}" for i in range(10)} - {"n3"}
    return len(dead_declarations(sim, healthy))


def test_lifeguard_removes_the_false_positives_of_a_slow_receive_path() -> None:
    # SWIM (suspicion fixed at its minimum, 4 * max(1, log10 10) * 1 s = 4 s, no awareness, no
    # buddy): n3 suspects the peers whose acks it cannot read and, 4 s later, declares them
    # dead while their refutations wait in its backlog. Lifeguard: a suspicion n3 raises alone
    # waits the maximum 6 * 4 s = 24 s, longer than the 8 s stall, so every refutation is
    # read in time (and awareness slows its probing). Measured on seeds 1-6: SWIM 53-54,
    # Lifeguard 0 each.
    for seed in (1, 2, 3):
        swim = _false_dead(seed, lifeguard=False)
        lifeguard = _false_dead(seed, lifeguard=True)
        assert swim >= 10, (seed, swim)
        assert lifeguard * 20 <= swim, (seed, lifeguard, swim)


def test_a_frozen_member_blames_nobody_and_is_declared_dead_itself() -> None:
    # SWIM timings (no Lifeguard): n3 freezes 16 s of every 22 s for 3 minutes. Its failure
    # detector is frozen with it, so it never declares a healthy node dead (at resume the
    # overdue probe timeout fires before the queued ack is read, but the ack still counts
    # until the probe's end); the others hear nothing from it for 16 s, longer than probe +
    # suspicion (1 + 4 s), so they declare it dead (and it refutes when it resumes).
    config = lambda name: sim_config(  # noqa: E731
        name, awareness_max_multiplier=1, suspicion_max_timeout_mult=1
    )
    sim, _ = build_cluster(10, seed=4, config=config, scan_interval=0)
    for node in sim.nodes.values():
        node.core.buddy_system = False
    start = sim.now
    for k in range(9):
        sim.at(start + 22.0 * k, lambda: sim.freeze("n3", 16.0))
    sim.run_for(9 * 22.0)
    healthy = {f"n{i}" for i in range(10)} - {"n3"}
    assert dead_declarations(sim, healthy) == []
    by_view = {obs for _, obs, _ in dead_declarations(sim, {"n3"})}
    assert by_view == healthy
    assert sim.all_alive()  # it refuted after its last freeze
