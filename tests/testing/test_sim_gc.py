"""The simulator raises the garbage collector's thresholds while it runs, and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from serf.testing.sim import Simulation


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_run_raises_the_thresholds_and_restores_the_processs_own() -> None:
    gc.set_threshold(1234, 5, 200)
    sim = Simulation(1)
    sim.add_node("n0")
    sim.add_node("n1", join=["n0"])
    seen: list[tuple[int, ...]] = []
    sim.at(0.5, lambda: seen.append(gc.get_threshold()))
    sim.run_for(1.0)
    assert seen == [(100_000, 50, 200)]  # the larger of each pair
    assert gc.get_threshold() == (1234, 5, 200)
    assert sim.all_alive()


@pytest.mark.usefixtures("thresholds")
def test_thresholds_are_restored_when_a_callback_raises() -> None:
    gc.set_threshold(700, 10, 10)
    sim = Simulation(1)

    def boom() -> None:
        raise RuntimeError("boom")

    sim.at(0.1, boom)
    with pytest.raises(RuntimeError, match="boom"):
        sim.run_for(1.0)
    assert gc.get_threshold() == (700, 10, 10)
