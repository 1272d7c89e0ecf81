"""LamportClock: Go serf's uint64 Lamport clock semantics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serf.core.lamport import UINT64_MAX, LamportClock, LamportRing


def test_starts_at_zero_and_increments() -> None:
    clock = LamportClock()
    assert clock.time() == 0
    assert clock.increment() == 1
    assert clock.increment() == 2
    assert clock.time() == 2


def test_witness_moves_past_equal_or_newer() -> None:
    clock = LamportClock(5)
    clock.witness(3)
    assert clock.time() == 5  # older: no change
    clock.witness(5)
    assert clock.time() == 6  # equal: v + 1
    clock.witness(41)
    assert clock.time() == 42


def test_uint64_wraps_like_go() -> None:
    clock = LamportClock(UINT64_MAX)
    assert clock.increment() == 0
    clock = LamportClock(7)
    clock.witness(UINT64_MAX)
    assert clock.time() == 0


@pytest.mark.parametrize("bad", [-1, UINT64_MAX + 1])
def test_out_of_range_is_caller_misuse(bad: int) -> None:
    with pytest.raises(ValueError):
        LamportClock(bad)
    with pytest.raises(ValueError):
        LamportClock().witness(bad)


def test_non_int_rejected() -> None:
    with pytest.raises(TypeError):
        LamportClock().witness(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LamportClock(True)


@given(st.lists(st.integers(0, UINT64_MAX - 1), max_size=30))
def test_witness_is_monotonic_and_exceeds_everything_seen(values: list[int]) -> None:
    clock = LamportClock()
    previous = clock.time()
    for v in values:
        clock.witness(v)
        assert clock.time() >= previous
        assert clock.time() > v
        previous = clock.time()


def test_ring_refuses_duplicates_per_time_and_recycles_slots() -> None:
    ring: LamportRing[str] = LamportRing(4)
    assert ring.add(5, "a")
    assert not ring.add(5, "a")  # same key at the same time: a duplicate
    assert ring.add(5, "b")
    assert ring.add(9, "a")  # 9 % 4 == 5 % 4: the slot of time 5 is recycled
    assert ring.add(5, "a")  # ... so time 5 is new again
    assert list(ring.slots()) == [None, (5, ["a"]), None, None]


def test_ring_window() -> None:
    ring: LamportRing[int] = LamportRing(8)
    assert len(ring) == 8
    assert not ring.too_old(0, 8)  # the current time does not exceed the size yet
    assert not ring.too_old(2, 10)
    assert ring.too_old(1, 10)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=60))
def test_ring_matches_a_model(adds: list[tuple[int, int]]) -> None:
    ring: LamportRing[int] = LamportRing(5)
    model: dict[int, tuple[int, list[int]]] = {}
    for ltime, key in adds:
        slot = model.get(ltime % 5)
        fresh = slot is None or slot[0] != ltime or key not in slot[1]
        assert ring.add(ltime, key) == fresh
        if slot is None or slot[0] != ltime:
            model[ltime % 5] = (ltime, [key])
        elif fresh:
            slot[1].append(key)
    assert list(ring.slots()) == [model.get(i) for i in range(5)]
    assert ring.empty() == (not adds)


def test_empty_ring_until_the_first_key() -> None:
    ring: LamportRing[str] = LamportRing(3)
    assert ring.empty()
    ring.add(4, "a")
    assert not ring.empty()
