"""Vivaldi coordinate client (reference 3.11)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serf.core.vivaldi import (
    CoordinateCache,
    CoordinateClient,
    VivaldiConfig,
    distance,
    is_valid,
    new_coordinate,
)
from serf.wire.messages import Coordinate


def coord(
    x: float = 0.0, error: float = 1.5, height: float = 10e-6, adj: float = 0.0
) -> Coordinate:
    return Coordinate(vec=[x] + [0.0] * 7, error=error, adjustment=adj, height=height)


def test_defaults_match_go() -> None:
    cfg = VivaldiConfig()
    assert (cfg.dimensionality, cfg.vivaldi_error_max, cfg.vivaldi_ce, cfg.vivaldi_cc) == (
        8,
        1.5,
        0.25,
        0.25,
    )
    assert (cfg.adjustment_window_size, cfg.height_min, cfg.latency_filter_size) == (20, 10e-6, 3)
    assert cfg.gravity_rho == 150
    fresh = CoordinateClient(None, random.Random(1)).get_coordinate()
    assert fresh == Coordinate(vec=[0.0] * 8, error=1.5, adjustment=0.0, height=10e-6)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="dimensionality"):
        VivaldiConfig(dimensionality=0)
    with pytest.raises(ValueError, match="latency_filter_size"):
        VivaldiConfig(latency_filter_size=0)


def test_distance() -> None:
    a = Coordinate(vec=[0.0, 3.0], error=1.0, adjustment=0.0, height=0.5)
    b = Coordinate(vec=[4.0, 0.0], error=1.0, adjustment=0.0, height=0.25)
    assert distance(a, b) == pytest.approx(5.75)
    a.adjustment, b.adjustment = 0.5, 0.25
    assert distance(a, b) == pytest.approx(6.5)
    a.adjustment, b.adjustment = -3.0, -3.0  # would go negative: adjustments ignored
    assert distance(a, b) == pytest.approx(5.75)
    with pytest.raises(ValueError, match="dimensions"):
        distance(a, coord())


def test_single_step_hand_computed() -> None:
    client = CoordinateClient(VivaldiConfig(), random.Random(0))
    other = coord(x=0.010)
    rtt = 0.020
    out = client.update("peer", other, rtt)

    # 1. filter: one sample -> 0.020. 2. Vivaldi step.
    dist = 0.010 + 10e-6 + 10e-6  # 0.01002 s = 10_020_000 ns exactly
    wrongness = abs(dist - rtt) / rtt  # 0.499
    weight = 1.5 / (1.5 + 1.5)  # 0.5
    error = 0.25 * weight * wrongness + 1.5 * (1 - 0.25 * weight)  # 1.374875
    force = 0.25 * weight * (rtt - dist)  # 0.0012475, pushing away from the peer (-x)
    x = -force
    height = (10e-6 + 10e-6) * force / 0.010 + 10e-6  # 1.2495e-5
    # 3. adjustment: one sample of rtt - raw distance in a window of 20.
    raw = abs(x - 0.010) + height + 10e-6
    adjustment = (rtt - raw) / (2 * 20)
    # 4. gravity toward the origin (distance truncated to whole ns, as Go's Duration).
    to_origin = int((abs(x) + 10e-6 + height + adjustment) * 1e9) / 1e9
    gforce = -((to_origin / 150) ** 2)
    x2 = x - gforce  # unit vector from the origin toward us is -x
    height2 = max((height + 10e-6) * gforce / abs(x) + height, 10e-6)

    assert error == pytest.approx(1.374875)
    assert out.error == pytest.approx(error, rel=1e-12)
    assert out.vec is not None
    assert out.vec[0] == pytest.approx(x2, rel=1e-9)
    assert out.vec[1:] == [0.0] * 7
    assert out.height == pytest.approx(height2, rel=1e-9)
    assert out.adjustment == pytest.approx(adjustment, rel=1e-9)
    assert client.get_coordinate() == out
    assert client.distance_to(other) == pytest.approx(distance(out, other))


def test_error_capped_and_height_floor() -> None:
    client = CoordinateClient(None, random.Random(0))
    # A peer much further than measured pulls us toward it; height cannot go below the min.
    out = client.update("p", coord(x=1.0), 0.0)
    assert out.error <= 1.5
    assert out.height >= 10e-6


def test_coincident_peer_uses_injected_rng() -> None:
    seed = 42
    client = CoordinateClient(None, random.Random(seed))
    out = client.update("p", new_coordinate(VivaldiConfig()), 0.010)
    rng = random.Random(seed)
    direction = [rng.random() - 0.5 for _ in range(8)]
    norm = math.sqrt(sum(d * d for d in direction))
    assert out.vec is not None
    got = math.sqrt(sum(v * v for v in out.vec))
    assert got > 0
    for v, d in zip(out.vec, direction, strict=True):
        assert v / got == pytest.approx(d / norm, rel=1e-6, abs=1e-12)
    # Same seed, same run.
    again = CoordinateClient(None, random.Random(seed)).update(
        "p", new_coordinate(VivaldiConfig()), 0.010
    )
    assert again == out


def test_median_filter_and_forget() -> None:
    client = CoordinateClient(None, random.Random(0))
    f = client._latency_filter
    assert f("a", 0.5) == 0.5
    assert f("a", 0.1) == 0.5  # [0.1, 0.5] -> index 1
    assert f("a", 0.3) == 0.3
    assert f("a", 0.9) == 0.3  # window of 3: [0.1, 0.3, 0.9]
    assert f("b", 0.7) == 0.7  # per node
    client.forget_node("a")
    assert f("a", 0.2) == 0.2
    client.forget_node("unknown")


@pytest.mark.parametrize("rtt", [-0.001, 10.000001, -1e-9, math.nan, math.inf, -math.inf])
def test_invalid_rtt_rejected(rtt: float) -> None:
    client = CoordinateClient(None, random.Random(0))
    before = client.get_coordinate()
    with pytest.raises(ValueError, match="round trip time"):
        client.update("p", coord(0.01), rtt)
    assert client.get_coordinate() == before


def test_boundary_rtts_accepted() -> None:
    client = CoordinateClient(None, random.Random(0))
    client.update("p", coord(0.01), 0.0)
    client.update("p", coord(0.01), 10.0)


@pytest.mark.parametrize(
    "other",
    [
        Coordinate(vec=[0.0] * 7),
        Coordinate(vec=[0.0] * 9),
        Coordinate(vec=None),
        Coordinate(vec=[math.nan] + [0.0] * 7),
        Coordinate(vec=[math.inf] + [0.0] * 7),
        coord(error=math.nan),
        coord(height=math.inf),
        coord(adj=-math.inf),
    ],
)
def test_invalid_coordinates_rejected(other: Coordinate) -> None:
    client = CoordinateClient(None, random.Random(0))
    with pytest.raises(ValueError, match=r"dimensions|valid"):
        client.update("p", other, 0.01)
    with pytest.raises(ValueError):
        client.set_coordinate(other)
    assert client.resets == 0


def test_invalid_result_resets_and_counts() -> None:
    client = CoordinateClient(None, random.Random(0))
    huge = Coordinate(vec=[1e308] * 8, error=1.5, adjustment=0.0, height=10e-6)
    assert is_valid(huge)
    out = client.update("p", huge, 0.01)
    assert client.resets == 1
    assert client.stats() == {"resets": 1}
    assert out == new_coordinate(VivaldiConfig())
    client.update("p", huge, 0.01)
    assert client.resets == 2


def test_returned_coordinates_are_copies() -> None:
    client = CoordinateClient(None, random.Random(0))
    got = client.get_coordinate()
    assert got.vec is not None
    got.vec[0] = 99.0
    assert client.get_coordinate().vec == [0.0] * 8


def test_convergence_five_nodes_on_a_line() -> None:
    """Nodes 10 ms apart on a line; random probes; estimates approach the true RTTs."""
    rng = random.Random(2024)
    n = 5
    clients = [CoordinateClient(None, random.Random(rng.random())) for _ in range(n)]

    def true_rtt(i: int, j: int) -> float:
        return 0.010 * abs(i - j)

    for _ in range(400):
        for i in range(n):
            j = rng.choice([k for k in range(n) if k != i])
            clients[i].update(str(j), clients[j].get_coordinate(), true_rtt(i, j))
    for i in range(n):
        for j in range(i + 1, n):
            est = clients[i].distance_to(clients[j].get_coordinate())
            assert abs(est - true_rtt(i, j)) <= max(0.2 * true_rtt(i, j), 0.003), (i, j, est)
    assert all(c.resets == 0 for c in clients)
    assert all(c.get_coordinate().error < 0.5 for c in clients)


def test_cache() -> None:
    cache = CoordinateCache()
    c = coord(0.5)
    cache.set("a", c)
    assert "a" in cache and len(cache) == 1 and list(cache) == ["a"]
    got = cache.get("a")
    assert got == c and got is not c
    cache.remove("a")
    cache.remove("a")
    assert cache.get("a") is None and len(cache) == 0


_finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.lists(_finite, min_size=8, max_size=8),
    _finite,
    _finite,
    _finite,
    st.floats(min_value=0.0, max_value=10.0),
    st.integers(0, 2**32),
)
def test_update_with_extreme_finite_peers_stays_valid(
    vec: list[float], error: float, adj: float, height: float, rtt: float, seed: int
) -> None:
    client = CoordinateClient(None, random.Random(seed))
    other = Coordinate(vec=vec, error=error, adjustment=adj, height=height)
    for _ in range(3):
        out = client.update("p", other, rtt)
        assert is_valid(out)
