"""Lifeguard awareness and suspicion timing, on both twins (bit-identical floats)."""

from __future__ import annotations

import math
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.testing.sansio import FORBIDDEN, probe_imports
from serf.testing.twins import only_pure_reason

TWINS = _speedups.twins("suspicion")


@pytest.fixture(params=sorted(TWINS))
def sp(request: pytest.FixtureRequest) -> ModuleType:
    """Each available twin of the suspicion module."""
    return TWINS[request.param]


def bits(x: float) -> bytes:
    """The exact IEEE-754 bytes of a float, so -0.0 != 0.0 and NaNs compare by payload."""
    return struct.pack("<d", x)


# -- awareness --------------------------------------------------------------------------------


def test_awareness_starts_healthy_and_clamps(sp: ModuleType) -> None:
    a = sp.Awareness(8)
    assert a.score == 0
    assert a.max_multiplier == 8
    assert a.apply_delta(-1) == 0  # never below 0
    assert a.apply_delta(3) == 3
    assert a.apply_delta(10) == 7  # never above max - 1
    assert a.score == 7
    assert a.apply_delta(-2) == 5
    assert a.apply_delta(-100) == 0
    assert a.apply_delta(0) == 0


def test_awareness_scales_timeouts(sp: ModuleType) -> None:
    a = sp.Awareness(8)
    assert a.scale_timeout(0.5) == 0.5
    a.apply_delta(1)
    assert a.scale_timeout(0.5) == 1.0
    a.apply_delta(100)
    assert a.scale_timeout(1.0) == 8.0  # AwarenessMaxMultiplier: a probe stretches up to 8x
    assert type(a.scale_timeout(2)) is float
    assert a.scale_timeout(2) == 16.0


def test_awareness_with_multiplier_one_never_moves(sp: ModuleType) -> None:
    a = sp.Awareness(1)
    assert a.apply_delta(5) == 0
    assert a.scale_timeout(0.2) == 0.2


@pytest.mark.parametrize("bad", [0, -3])
def test_awareness_rejects_a_multiplier_below_one(sp: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="max_multiplier"):
        sp.Awareness(bad)


# -- suspicion_timeout ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    # LAN defaults: SuspicionMult=4, ProbeInterval=1 s.
    # 4 * max(1, log10(n)) * 1 s: log10 below 1 counts as 1; log10(50) = 1.69897 -> 1.698
    [(0, 4.0), (1, 4.0), (2, 4.0), (10, 4.0), (50, 6.792), (100, 8.0), (1000, 12.0)],
)
def test_suspicion_timeout_lan_defaults(sp: ModuleType, n: int, expected: float) -> None:
    assert sp.suspicion_timeout(4, n, 1.0) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    # memberlist's TestSuspicionTimeout: suspicionTimeout(3, n, 1 s) / 3
    [(5, 1.0), (10, 1.0), (50, 1.698), (100, 2.0), (500, 2.698), (1000, 3.0)],
)
def test_suspicion_timeout_go_vectors(sp: ModuleType, n: int, expected: float) -> None:
    assert sp.suspicion_timeout(3, n, 1.0) / 3 == pytest.approx(expected, abs=1e-12)


def test_suspicion_timeout_other_presets(sp: ModuleType) -> None:
    # WAN: SuspicionMult=6, ProbeInterval=5 s; local: SuspicionMult=3, ProbeInterval=1 s
    assert sp.suspicion_timeout(6, 1000, 5.0) == 90.0
    assert sp.suspicion_timeout(6, 3, 5.0) == 30.0
    assert sp.suspicion_timeout(3, 100, 1.0) == 6.0
    # the scale is truncated to thousandths, not rounded: log10(999) = 2.99957 -> 2.999
    assert sp.suspicion_timeout(1, 999, 1.0) == 2.999
    assert sp.suspicion_timeout(4, -5, 0.5) == 2.0  # n below 1 counts as 1
    assert type(sp.suspicion_timeout(4, 10, 1)) is float


# -- remaining_suspicion_time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "elapsed", "expected"),
    # memberlist's TestSuspicion_remainingSuspicionTime: min 2 s, max 30 s, k 3
    [(0, 0.0, 30.0), (1, 2.0, 14.0), (2, 3.0, 4.81), (3, 4.0, -2.0), (4, 4.0, -2.0)],
)
def test_remaining_suspicion_time_go_vectors(
    sp: ModuleType, n: int, elapsed: float, expected: float
) -> None:
    got = sp.remaining_suspicion_time(n, 3, elapsed, 2.0, 30.0)
    assert got == pytest.approx(expected, abs=1e-12)


def test_remaining_suspicion_time_floors_to_the_millisecond(sp: ModuleType) -> None:
    # raw = 30 - log(3)/log(4) * 28 = 7.81052...: Go keeps whole milliseconds
    assert sp.remaining_suspicion_time(2, 3, 0.0, 2.0, 30.0) == 7.81


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1, 0, 0.0, 1.0, 2.0), "k must be"),
        ((-1, 3, 0.0, 1.0, 2.0), "n must be"),
        ((1, 3, 0.0, math.inf, 2.0), "finite"),
        ((1, 3, 0.0, 1.0, math.nan), "finite"),
    ],
)
def test_remaining_suspicion_time_rejects_bad_input(
    sp: ModuleType, args: tuple[int, int, float, float, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sp.remaining_suspicion_time(*args)


# -- SuspicionTimer ----------------------------------------------------------------------------


def test_timer_deadlines_with_zero_to_k_confirmations(sp: ModuleType) -> None:
    t = sp.SuspicionTimer("accuser", 3, 2.0, 30.0, 100.0)
    assert (t.k, t.confirmations, t.start, t.min_timeout, t.max_timeout) == (
        3,
        0,
        100.0,
        2.0,
        30.0,
    )
    assert t.deadline() == 130.0  # k >= 1: starts at max
    assert t.remaining(110.0) == 20.0
    assert t.confirm("b", 101.0) is True
    assert t.deadline() == 116.0  # 30 - (ln 2 / ln 4) * 28 = 16
    assert t.confirm("c", 102.0) is True
    assert t.deadline() == 100.0 + 7.81
    assert t.confirm("d", 103.0) is True
    assert t.deadline() == 102.0  # all k in: the minimum
    assert t.confirm("e", 104.0) is False  # no more than k are counted
    assert t.confirmations == 3
    assert t.deadline() == 102.0
    assert t.remaining(105.0) == -3.0  # overdue: the caller fires at once


def test_timer_ignores_duplicates_and_the_accuser(sp: ModuleType) -> None:
    t = sp.SuspicionTimer("accuser", 3, 2.0, 30.0, 0.0)
    assert t.confirm("accuser", 1.0) is False
    assert t.confirm("b", 1.0) is True
    assert t.confirm("b", 2.0) is False
    assert t.confirm("b", 3.0) is False
    assert t.confirmations == 1
    assert t.deadline() == 16.0


def test_deadline_does_not_depend_on_when_confirmations_arrive(sp: ModuleType) -> None:
    early = sp.SuspicionTimer("a", 2, 1.0, 6.0, 50.0)
    late = sp.SuspicionTimer("a", 2, 1.0, 6.0, 50.0)
    early.confirm("b", 50.0)
    late.confirm("b", 55.5)
    assert early.deadline() == late.deadline()


@pytest.mark.parametrize("k", [0, -1])
def test_timer_without_confirmations_wanted_uses_the_minimum(sp: ModuleType, k: int) -> None:
    t = sp.SuspicionTimer("a", k, 4.0, 24.0, 10.0)
    assert t.deadline() == 14.0
    assert t.confirm("b", 11.0) is False
    assert t.confirmations == 0
    assert t.deadline() == 14.0


def test_timer_with_min_equal_to_max(sp: ModuleType) -> None:
    t = sp.SuspicionTimer("a", 3, 5.0, 5.0, 1.0)
    deadlines = [t.deadline()]
    for node in "bcde":
        t.confirm(node, 2.0)
        deadlines.append(t.deadline())
    assert deadlines == [6.0] * 5


def test_timer_with_k_one_drops_straight_to_the_minimum(sp: ModuleType) -> None:
    t = sp.SuspicionTimer("a", 1, 4.0, 24.0, 0.0)
    assert t.deadline() == 24.0
    assert t.confirm("b", 1.0) is True
    assert t.deadline() == 4.0


def test_timer_max_is_not_floored_before_any_confirmation(sp: ModuleType) -> None:
    # as Go: the timer starts at max itself; only recomputed timeouts are whole milliseconds
    t = sp.SuspicionTimer("a", 2, 1.0, 6.0005, 0.0)
    assert t.deadline() == 6.0005
    t.confirm("b", 0.0)
    raw = 6.0005 - math.log(2) / math.log(3) * 5.0005
    assert t.deadline() == math.floor(raw * 1000) / 1000


def test_timer_rejects_non_finite_bounds(sp: ModuleType) -> None:
    with pytest.raises(ValueError, match="finite"):
        sp.SuspicionTimer("a", 3, 1.0, math.inf, 0.0)
    with pytest.raises(ValueError, match="finite"):
        sp.SuspicionTimer("a", 3, 1.0, 2.0, math.nan)


@pytest.mark.parametrize(
    "call",
    [
        lambda sp: sp.Awareness(8.0),
        lambda sp: sp.Awareness(8).apply_delta(1.5),
        lambda sp: sp.Awareness(8).scale_timeout("1"),
        lambda sp: sp.suspicion_timeout(4.0, 10, 1.0),
        lambda sp: sp.suspicion_timeout(4, 10.0, 1.0),
        lambda sp: sp.suspicion_timeout(4, 10, "1"),
        lambda sp: sp.remaining_suspicion_time(1.0, 3, 0.0, 1.0, 2.0),
        lambda sp: sp.remaining_suspicion_time(1, 3, 0.0, "1", 2.0),
        lambda sp: sp.SuspicionTimer("a", 3.0, 1.0, 2.0, 0.0),
        lambda sp: sp.SuspicionTimer("a", 3, 1.0, 2.0, "0"),
    ],
)
def test_both_twins_raise_type_error_for_wrong_types(sp: ModuleType, call: Any) -> None:
    with pytest.raises(TypeError):
        call(sp)


def test_lan_suspicion_end_to_end(sp: ModuleType) -> None:
    """How memberlist sizes a suspicion in a 100-node LAN cluster (reference section 1.3)."""
    n, suspicion_mult, max_mult = 100, 4, 6
    k = suspicion_mult - 2 if n - 2 >= suspicion_mult - 2 else 0
    low = sp.suspicion_timeout(suspicion_mult, n, 1.0)
    t = sp.SuspicionTimer("accuser", k, low, max_mult * low, 0.0)
    assert (low, t.deadline()) == (8.0, 48.0)
    t.confirm("x", 1.0)
    assert t.deadline() == math.floor(1000 * (48 - math.log(2) / math.log(3) * 40)) / 1000
    t.confirm("y", 2.0)
    assert t.deadline() == 8.0


# -- both twins give bit-identical results ----------------------------------------------------

_finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


def _both() -> tuple[ModuleType, ModuleType]:
    if len(TWINS) < 2:
        pytest.skip(only_pure_reason("suspicion"))
    return TWINS["pure"], TWINS["compiled"]


PURE = TWINS["pure"]
#: the twins to compare with the pure one (none when the compiled twin is not built, and
#: then the properties below are still checked on the pure twin)
OTHERS = [module for name, module in sorted(TWINS.items()) if name != "pure"]


@settings(max_examples=500)
@given(mult=st.integers(0, 20), n=st.integers(-10, 10**9), interval=_finite)
def test_twins_agree_on_suspicion_timeout(mult: int, n: int, interval: float) -> None:
    expected = PURE.suspicion_timeout(mult, n, interval)
    for other in OTHERS:
        assert bits(other.suspicion_timeout(mult, n, interval)) == bits(expected)
    # and both agree with the integer arithmetic Go does, up to the final rounding
    scale_ms = int(max(1.0, math.log10(max(1, n))) * 1000)
    assert expected == pytest.approx(mult * scale_ms * interval / 1000, rel=1e-15, abs=0)


@settings(max_examples=500)
@given(
    n=st.integers(0, 50),
    k=st.integers(1, 50),
    elapsed=_finite,
    low=_finite,
    spread=_finite,
)
def test_twins_agree_on_remaining_time(
    n: int, k: int, elapsed: float, low: float, spread: float
) -> None:
    args = (n, k, elapsed, low, low + spread)
    expected = PURE.remaining_suspicion_time(*args)
    for other in OTHERS:
        assert bits(other.remaining_suspicion_time(*args)) == bits(expected)
    assert expected >= low - elapsed


@settings(max_examples=300)
@given(
    k=st.integers(-1, 6),
    low=_finite,
    spread=_finite,
    start=_finite,
    confirmers=st.lists(st.sampled_from("abcdefghij"), max_size=12),
)
def test_twins_agree_on_timers(
    k: int, low: float, spread: float, start: float, confirmers: list[str]
) -> None:
    timers = [m.SuspicionTimer("a", k, low, low + spread, start) for m in (PURE, *OTHERS)]
    previous = math.inf
    for i, node in enumerate(confirmers):
        answers = [t.confirm(node, start + i) for t in timers]
        deadlines = [t.deadline() for t in timers]
        assert all(answer is answers[0] for answer in answers)
        assert {bits(deadline) for deadline in deadlines} == {bits(deadlines[0])}
        assert {t.confirmations for t in timers} == {timers[0].confirmations}
        assert timers[0].confirmations <= max(k, 0)
        assert deadlines[0] <= previous  # confirmations only ever bring the deadline closer
        assert deadlines[0] >= start + low
        previous = deadlines[0]


@settings(max_examples=300)
@given(
    multiplier=st.integers(1, 12),
    deltas=st.lists(st.integers(-5, 5), max_size=20),
    timeout=_finite,
)
def test_twins_agree_on_awareness(multiplier: int, deltas: list[int], timeout: float) -> None:
    a, *others = [m.Awareness(multiplier) for m in (PURE, *OTHERS)]
    for delta in deltas:
        score = a.apply_delta(delta)
        assert [b.apply_delta(delta) for b in others] == [score] * len(others)
        assert 0 <= a.score == score < multiplier
        scaled = a.scale_timeout(timeout)
        assert scaled == timeout * (score + 1)
        assert [bits(b.scale_timeout(timeout)) for b in others] == [bits(scaled)] * len(others)


def test_twins_expose_the_same_api() -> None:
    pure, compiled = _both()
    assert pure.__all__ == compiled.__all__
    for name in ("Awareness", "SuspicionTimer"):
        public = {n for n in dir(getattr(pure, name)) if not n.startswith("_")}
        assert public <= set(dir(getattr(compiled, name))), name


# -- sans-IO --------------------------------------------------------------------------------


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_imports_nothing_with_io_or_clocks(twin: str) -> None:
    """Importing the module pulls in none of the forbidden modules, nor keeps one around."""
    target = TWINS[twin].__name__
    added, bad = probe_imports(target)
    assert target in added
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []
