"""The invariant checkers themselves can fail: feed them views that break the rules."""

from __future__ import annotations

from dataclasses import replace

from serf.memberlist import io
from serf.memberlist.state import NodeState
from serf.testing.invariants import InvariantChecker
from serf.testing.sim import Simulation


def _setup() -> tuple[Simulation, InvariantChecker]:
    sim = Simulation(1)
    checker = InvariantChecker(sim, scan_interval=0)
    sim.add_node("a")
    sim.add_node("b", join=["a"])
    sim.run_for(2.0)
    return sim, checker


def test_incarnation_going_back_is_a_violation() -> None:
    sim, checker = _setup()
    observer = sim.nodes["a"]
    node = observer.core.state.get("b")
    assert node is not None
    checker.scan()
    assert not checker.violations
    back = replace(node, incarnation=node.incarnation + 3)
    checker._on_effect(sim.now, observer, io.NodeUpdated(back))
    checker._on_effect(sim.now, observer, io.NodeUpdated(node))
    assert checker.violations and "go back" in checker.violations[0]


def test_resurrection_after_leave_is_a_violation() -> None:
    sim, checker = _setup()
    observer = sim.nodes["a"]
    node = observer.core.state.get("b")
    assert node is not None
    checker._on_effect(sim.now, observer, io.NodeLeft(replace(node, state=NodeState.LEFT)))
    checker._on_effect(sim.now, observer, io.NodeJoined(replace(node, state=NodeState.ALIVE)))
    assert any("resurrected" in v for v in checker.violations)


def test_reaping_forgets_the_entry() -> None:
    sim, checker = _setup()
    observer = sim.nodes["a"]
    node = observer.core.state.get("b")
    assert node is not None
    checker._on_effect(sim.now, observer, io.NodeLeft(replace(node, state=NodeState.LEFT)))
    assert observer.core.on_reap is not None
    observer.core.on_reap([node])
    checker._on_effect(sim.now, observer, io.NodeJoined(replace(node, incarnation=1)))
    assert not checker.violations
