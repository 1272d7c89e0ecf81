"""Invariant checkers that run inside a simulation (design: "Simulator").

* :class:`InvariantChecker` watches every node's view while the run goes on:

  - **monotonic incarnations**: while an entry stays in an observer's table (it is not reaped
    and the observer does not restart), the incarnation it holds never goes down;
  - **no resurrection**: once an observer saw a node LEFT at incarnation ``i``, it never sees
    that node ALIVE again at an incarnation ``<= i`` (until the entry is reaped);

  checked on every membership effect and on every :meth:`InvariantChecker.scan` (which the
  checker schedules itself every ``scan_interval`` virtual seconds).
* :func:`converge_after_heal`: once the network heals, every live node is alive in every
  live view within a bound.

Violations are collected in :attr:`InvariantChecker.violations` (text, with the virtual
time), so a test can print them together with its seed.
"""

from __future__ import annotations

from collections.abc import Callable

from serf.config import MemberlistConfig
from serf.memberlist import io
from serf.memberlist.state import Node, NodeState
from serf.testing.sim import SimNode, Simulation

__all__ = ["InvariantChecker", "build_cluster", "converge_after_heal", "dead_declarations"]


class InvariantChecker:
    """Watches ``sim`` (attach before adding nodes, or call :meth:`attach_node` for each)."""

    def __init__(self, sim: Simulation, scan_interval: float = 1.0) -> None:
        self.sim = sim
        self.scan_interval = scan_interval
        self.violations: list[str] = []
        # (observer, generation, name) -> highest incarnation seen / LEFT incarnation
        self._inc: dict[tuple[str, int, str], int] = {}
        self._left: dict[tuple[str, int, str], int] = {}
        sim.observers.append(self._on_effect)
        sim.on_boot.append(self.attach_node)
        for node in sim.nodes.values():
            if node.up:
                self.attach_node(node)
        if scan_interval > 0:
            sim.at(sim.now + scan_interval, self._periodic)

    def attach_node(self, node: SimNode) -> None:
        """Start watching ``node``'s (new) core."""
        gen = node.generation
        name = node.name

        def forget(gone: list[Node]) -> None:
            for n in gone:
                self._inc.pop((name, gen, n.name), None)
                self._left.pop((name, gen, n.name), None)

        node.core.on_reap = forget

    def _periodic(self) -> None:
        self.scan()
        self.sim.at(self.sim.now + self.scan_interval, self._periodic)

    def _see(self, observer: SimNode, node: Node) -> None:
        key = (observer.name, observer.generation, node.name)
        last = self._inc.get(key)
        if last is not None and node.incarnation < last:
            self.violations.append(
                f"t={self.sim.now:.3f} {observer.name} saw {node.name}'s incarnation go back "
                f"from {last} to {node.incarnation}"
            )
        if last is None or node.incarnation > last:
            self._inc[key] = node.incarnation
        left = self._left.get(key)
        if node.state is NodeState.LEFT:
            if left is None or node.incarnation > left:
                self._left[key] = node.incarnation
        elif node.state is NodeState.ALIVE and left is not None and node.incarnation <= left:
            self.violations.append(
                f"t={self.sim.now:.3f} {observer.name} saw {node.name} resurrected alive at "
                f"incarnation {node.incarnation} after it left at {left}"
            )

    def _on_effect(self, now: float, observer: SimNode, eff: io.Effect) -> None:
        if isinstance(eff, io.NodeJoined | io.NodeLeft | io.NodeUpdated):
            self._see(observer, eff.node)

    def scan(self) -> None:
        """Check every live view now."""
        for observer in self.sim.live_nodes():
            for node in observer.core.state.entries():  # read only: no copies
                self._see(observer, node)


def converge_after_heal(sim: Simulation, bound: float, step: float = 0.5) -> float | None:
    """Run until every live node is alive in every live view; the time it took, or None if
    that did not happen within ``bound`` virtual seconds."""
    return sim.run_until_converged(lambda s: s.all_alive(), bound, step)


def build_cluster(
    n: int,
    seed: int,
    *,
    config: Callable[[str], MemberlistConfig] | None = None,
    converge_within: float = 60.0,
    scan_interval: float = 5.0,
) -> tuple[Simulation, InvariantChecker]:
    """``n`` nodes that all joined through ``n0`` at t=0 and converged (asserted)."""
    sim = Simulation(seed)
    checker = InvariantChecker(sim, scan_interval=scan_interval)
    sim.add_node("n0", config("n0") if config else None)
    for i in range(1, n):
        name = f"n{i}"
        sim.add_node(name, config(name) if config else None, join=["n0"])
    took = sim.run_until_converged(
        lambda s: all(x.core.num_members() == n for x in s.live_nodes()), converge_within, 0.5
    )
    assert took is not None, f"seed {seed}: {n} nodes did not converge in {converge_within}s"
    return sim, checker


def dead_declarations(
    sim: Simulation, about: set[str] | None = None
) -> list[tuple[float, str, str]]:
    """Trace entries where some view marked a node DEAD (``about``: only those nodes)."""
    out = []
    for t, observer, event in sim.trace:
        if event.startswith("NodeLeft ") and " DEAD " in event:
            target = event.split()[1]
            if about is None or target in about:
                out.append((t, observer, event))
    return out
