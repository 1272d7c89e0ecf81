"""The wall-clock bounds of serf.testing.bounds are the protocol's timer arithmetic (worked by
hand here for the LAN defaults) times the load allowance, and they grow with the timers."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from serf.config import SerfConfig, lan
from serf.testing import bounds


def test_lan_figures_for_ten_nodes() -> None:
    # suspicion: 4 * log10(10) * 1 s = 4 s, at most 6x = 24 s
    assert bounds.suspicion_timeouts(10) == pytest.approx((4.0, 24.0))
    # retransmits: 4 * ceil(log10(11)) = 8 rounds of 0.2 s
    assert bounds.dissemination_time(10) == pytest.approx(1.6)
    # probe round 9 s + probe timeout 0.5 s * awareness 8 + 24 s + 1.6 s
    assert bounds.failure_detection_bound(10) == pytest.approx(1.5 * (9 + 4 + 24 + 1.6))
    assert bounds.convergence_bound(10) == pytest.approx(1.5 * (30 + 1.6))
    assert bounds.partition_heal_bound(10) == pytest.approx(1.5 * (60 + 3.2 + 1))


def test_small_clusters_use_a_suspicion_scale_of_one() -> None:
    low, high = bounds.suspicion_timeouts(2)
    assert low == 4.0 and high == 24.0
    assert bounds.suspicion_timeouts(1) == (4.0, 24.0)


def test_bounds_follow_the_timers() -> None:
    slow = replace(lan("x"), probe_interval=2.0, push_pull_interval=60.0)
    assert bounds.failure_detection_bound(8, slow) > bounds.failure_detection_bound(8)
    assert bounds.convergence_bound(8, slow) > bounds.convergence_bound(8)
    quick = SerfConfig("x", reconnect_interval=10.0)
    assert bounds.partition_heal_bound(8, serf=quick) < bounds.partition_heal_bound(8)
    # push/pull scales above 32 nodes, as memberlist's pushPullScale
    assert bounds.convergence_bound(64) > bounds.convergence_bound(32)
    assert math.isfinite(bounds.convergence_bound(250))
