"""The transmit-limited broadcast queue, on both twins, against a literal model of Go's queue."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.testing.sansio import FORBIDDEN, probe_imports
from serf.testing.twins import only_pure_reason

TWINS = _speedups.twins("broadcast")


@pytest.fixture(params=sorted(TWINS))
def bc(request: pytest.FixtureRequest) -> ModuleType:
    """Each available twin of the broadcast module."""
    return TWINS[request.param]


def nodes(n: int) -> Callable[[], int]:
    return lambda: n


class Log:
    """Records on_finished calls by tag."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def cb(self, tag: str) -> Callable[[], None]:
        return lambda: self.calls.append(tag)


# -- a literal model of memberlist's queue.go: one sorted list, O(n) everything ------------


@dataclass
class _Entry:
    id: int
    message: bytes
    name: str | None
    tag: str
    transmits: int = 0


@dataclass
class ModelQueue:
    """Go's btree order and GetBroadcasts loop, written out plainly."""

    mult: int
    num_nodes: int
    log: list[str] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)
    next_id: int = 0

    @staticmethod
    def key(e: _Entry) -> tuple[int, int, int]:
        return (e.transmits, -len(e.message), -e.id)

    def ordered(self) -> list[_Entry]:
        return sorted(self.entries, key=self.key)

    def queue(self, message: bytes, name: str | None, tag: str) -> None:
        self.next_id += 1
        finished = []
        if name:
            for e in self.entries:
                if e.name == name:
                    self.entries.remove(e)
                    finished.append(e.tag)
                    break
        self.entries.append(_Entry(self.next_id, message, name or None, tag))
        self.log.extend(finished)

    def get(self, overhead: int, limit: int) -> list[bytes]:
        if not self.entries:
            return []
        transmit_limit = self.mult * math.ceil(math.log10(self.num_nodes + 1))
        order = self.ordered()
        transmits, highest = order[0].transmits, order[-1].transmits
        used, out, reinsert, finished = 0, [], [], []
        while transmits <= highest:
            free = limit - used - overhead
            if free <= 0:
                break
            fits = [
                e for e in self.ordered() if e.transmits == transmits and len(e.message) <= free
            ]
            if not fits:
                transmits += 1
                continue
            e = fits[0]
            self.entries.remove(e)
            out.append(e.message)
            used += overhead + len(e.message)
            if e.transmits + 1 >= transmit_limit:
                finished.append(e.tag)
            else:
                e.transmits += 1
                reinsert.append(e)
        self.entries.extend(reinsert)
        self.log.extend(finished)
        return out

    def prune(self, max_retain: int) -> None:
        while self.entries and len(self.entries) > max_retain:
            e = self.ordered()[-1]
            self.entries.remove(e)
            self.log.append(e.tag)

    def reset(self) -> None:
        self.log.extend(e.tag for e in self.ordered())
        self.entries = []
        self.next_id = 0

    def view(self) -> list[tuple[int, str | None, bytes]]:
        return [(e.transmits, e.name, e.message) for e in self.ordered()]


# -- retransmit limit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    # as memberlist's TestTransmitLimited_retransmitLimit (mult 3: 0, 3, 6) and beyond
    [(0, 0), (1, 3), (9, 3), (10, 6), (99, 6), (100, 9), (999, 9), (1000, 12), (10**6, 21)],
)
def test_retransmit_limit(bc: ModuleType, n: int, expected: int) -> None:
    assert bc.retransmit_limit(3, n) == expected


def test_retransmit_limit_scales_with_mult(bc: ModuleType) -> None:
    assert [bc.retransmit_limit(4, n) for n in (1, 10, 100, 1000)] == [4, 8, 12, 16]
    with pytest.raises(ValueError, match="node count"):
        bc.retransmit_limit(4, -1)


@pytest.mark.parametrize(("n", "sends"), [(0, 1), (1, 2), (9, 2), (10, 4), (100, 6)])
def test_each_message_is_sent_retransmit_limit_times(bc: ModuleType, n: int, sends: int) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(2, nodes(n))
    q.queue_broadcast(b"m", "a", on_finished=log.cb("a"))
    sent = 0
    while q.num_queued():
        assert not log.calls
        sent += len(q.get_broadcasts(0, 100))
    assert sent == sends  # at least once, even when the limit is 0
    assert log.calls == ["a"]
    assert q.get_broadcasts(0, 100) == []


def test_num_nodes_is_asked_on_every_get(bc: ModuleType) -> None:
    asked = []
    size = [1]

    def num_nodes() -> int:
        asked.append(size[0])
        return size[0]

    q = bc.TransmitLimitedQueue(1, num_nodes)
    assert q.get_broadcasts(0, 100) == []  # empty queue: not asked
    assert asked == []
    q.queue_broadcast(b"x", "x")
    size[0] = 100  # limit 3
    assert q.get_broadcasts(0, 100) == [b"x"]
    size[0] = 1  # limit 1: transmits + 1 = 2 >= 1, finished
    assert q.get_broadcasts(0, 100) == [b"x"]
    assert q.num_queued() == 0
    assert asked == [100, 1]


# -- invalidation ---------------------------------------------------------------------------


def test_same_name_replaces_and_finishes_the_old(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"suspect", "node-1", on_finished=log.cb("suspect"))
    q.queue_broadcast(b"other", "node-2", on_finished=log.cb("other"))
    q.queue_broadcast(b"alive", "node-1", on_finished=log.cb("alive"))
    assert log.calls == ["suspect"]
    assert q.num_queued() == 2
    assert sorted(m for _, _, m in q.ordered_view()) == [b"alive", b"other"]


def test_replacement_also_reaches_transmitted_items(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"old", "n", on_finished=log.cb("old"))
    assert q.get_broadcasts(0, 100) == [b"old"]
    assert q.ordered_view() == [(1, "n", b"old")]
    q.queue_broadcast(b"new", "n")
    assert log.calls == ["old"]
    assert q.ordered_view() == [(0, "n", b"new")]


def test_unnamed_broadcasts_are_never_invalidated(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(3, nodes(10))
    for i in range(3):
        q.queue_broadcast(b"same", on_finished=log.cb(str(i)))
    q.queue_broadcast(b"same", "", on_finished=log.cb("empty name"))  # "" is no name
    q.queue_broadcast(b"same", "")
    assert q.num_queued() == 5
    assert log.calls == []


def test_unique_broadcasts_never_invalidate(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"named", "n", on_finished=log.cb("named"))
    q.queue_broadcast(b"plain", on_finished=log.cb("plain"))
    q.queue_broadcast(b"named", unique=True, on_finished=log.cb("u1"))
    q.queue_broadcast(b"named", unique=True, on_finished=log.cb("u2"))
    assert q.num_queued() == 4
    assert log.calls == []
    # and a named broadcast does not replace unique ones either
    q.queue_broadcast(b"again", "n")
    assert log.calls == ["named"]
    assert q.num_queued() == 4
    assert [name for _, name, _ in q.ordered_view()].count(None) == 3


def test_unique_broadcast_cannot_have_a_name(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    with pytest.raises(ValueError, match="unique"):
        q.queue_broadcast(b"x", "n", unique=True)
    assert q.num_queued() == 0


@pytest.mark.parametrize("bad", ["text", bytearray(b"x"), memoryview(b"x"), None, 3])
def test_message_must_be_bytes(bc: ModuleType, bad: Any) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    with pytest.raises(TypeError, match="bytes"):
        q.queue_broadcast(bad, "n")
    assert q.num_queued() == 0


def test_integers_only_where_the_compiled_twin_has_c_integers(bc: ModuleType) -> None:
    with pytest.raises(TypeError):
        bc.TransmitLimitedQueue(2.0, nodes(1))
    with pytest.raises(TypeError):
        bc.retransmit_limit(3, 1.5)
    q = bc.TransmitLimitedQueue(2, lambda: 3.5)
    with pytest.raises(TypeError):
        q.get_broadcasts(2.0, 100)  # even with nothing queued
    with pytest.raises(TypeError):
        q.prune("1")
    q.queue_broadcast(b"x", "x")
    with pytest.raises(TypeError):
        q.get_broadcasts(2, 100)  # num_nodes gave a float
    assert q.ordered_view() == [(0, "x", b"x")]


# -- ordering and packing ---------------------------------------------------------------------


def test_order_fewest_transmits_then_largest_then_newest(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"aaa", "a")
    q.queue_broadcast(b"bbbbb", "b")
    q.queue_broadcast(b"ccccc", "c")
    q.queue_broadcast(b"d", "d")
    assert [n for _, n, _ in q.ordered_view()] == ["c", "b", "a", "d"]
    assert q.get_broadcasts(0, 1000) == [b"ccccc", b"bbbbb", b"aaa", b"d"]
    q.queue_broadcast(b"e", "e")
    # the fresh message goes first even though it is the smallest
    assert q.get_broadcasts(0, 1) == [b"e"]
    assert q.ordered_view() == [
        (1, "c", b"ccccc"),
        (1, "b", b"bbbbb"),
        (1, "a", b"aaa"),
        (1, "e", b"e"),  # newer than d, same length and transmits
        (1, "d", b"d"),
    ]


def test_newest_first_among_equal_transmits_and_length(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    for i in range(5):
        q.queue_broadcast(bytes([48 + i]) * 4, f"n{i}")
    assert q.get_broadcasts(0, 8) == [b"4444", b"3333"]
    assert q.get_broadcasts(0, 8) == [b"2222", b"1111"]
    assert q.get_broadcasts(0, 8) == [b"0000", b"4444"]  # tier 0 empty: tier 1, newest


def test_largest_that_fits_then_next_tier(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"x" * 10, "ten")
    q.queue_broadcast(b"x" * 6, "six")
    q.queue_broadcast(b"x" * 4, "four")
    assert q.get_broadcasts(0, 12) == [b"x" * 10]  # nothing else fits in the 2 left
    # six then four fit together; ten (now in tier 1) does not fit after them
    assert q.get_broadcasts(0, 12) == [b"x" * 6, b"x" * 4]
    assert q.get_broadcasts(0, 12) == [b"x" * 10]


def test_each_item_is_taken_at_most_once_per_call(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(100, nodes(10))
    for i in range(3):
        q.queue_broadcast(b"m%d" % i, f"n{i}")
    assert q.get_broadcasts(0, 10_000) == [b"m2", b"m1", b"m0"]
    assert [t for t, _, _ in q.ordered_view()] == [1, 1, 1]


def test_overhead_counts_per_message(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"", "empty")
    assert q.get_broadcasts(5, 5) == []  # no free space at all, even for an empty message
    assert q.get_broadcasts(2, 3) == [b""]
    for i in range(4):
        q.queue_broadcast(b"abc", f"n{i}")
    # each costs 2 + 3 = 5: three fit in 15, a fourth would need 20
    assert len(q.get_broadcasts(2, 15)) == 3


def test_message_larger_than_any_budget_stays_queued(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"x" * 2000, "big")
    q.queue_broadcast(b"small", "small")
    for _ in range(10):
        assert b"x" * 2000 not in q.get_broadcasts(2, 1400)
    assert q.ordered_view() == [(0, "big", b"x" * 2000)]


@pytest.mark.parametrize("twin", sorted(TWINS))
@settings(max_examples=200)
@given(
    lengths=st.lists(st.integers(0, 60), max_size=40),
    overhead=st.integers(0, 8),
    limit=st.integers(-5, 300),
    calls=st.integers(1, 5),
)
def test_packing_never_exceeds_the_limit(
    twin: str, lengths: list[int], overhead: int, limit: int, calls: int
) -> None:
    q = TWINS[twin].TransmitLimitedQueue(3, nodes(20))
    for i, length in enumerate(lengths):
        q.queue_broadcast(b"z" * length, f"n{i % 30}")
    for _ in range(calls):
        picked = q.get_broadcasts(overhead, limit)
        assert sum(overhead + len(m) for m in picked) <= max(limit, 0)
        # greedy: whatever is left in the lowest tier does not fit in the space left
        # (with no space left at all the search stops, as Go's, even for empty messages)
        left = max(limit, 0) - sum(overhead + len(m) for m in picked) - overhead
        view = q.ordered_view()
        if picked and left > 0 and view and view[0][0] == 0:
            assert all(len(m) > left for t, _, m in view if t == 0)


# -- on_finished, prune, reset ---------------------------------------------------------------


def test_prune_drops_most_transmitted_then_smallest_then_oldest(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(100, nodes(10))
    q.queue_broadcast(b"old-sent", "a", on_finished=log.cb("a"))
    q.get_broadcasts(0, 100)
    q.get_broadcasts(0, 100)  # a: 2 transmits
    q.queue_broadcast(b"sent", "b", on_finished=log.cb("b"))
    q.get_broadcasts(0, 4)  # b: 1 transmit (a does not fit)
    q.queue_broadcast(b"xx", "c", on_finished=log.cb("c"))
    q.queue_broadcast(b"xx", "d", on_finished=log.cb("d"))
    q.queue_broadcast(b"xxxxxx", "e", on_finished=log.cb("e"))
    assert [(t, n) for t, n, _ in q.ordered_view()] == [
        (0, "e"),
        (0, "d"),
        (0, "c"),
        (1, "b"),
        (2, "a"),
    ]
    q.prune(5)
    assert log.calls == []
    q.prune(3)
    assert log.calls == ["a", "b"]
    q.prune(1)
    assert log.calls == ["a", "b", "c", "d"]  # same length: the older c goes first
    assert q.ordered_view() == [(0, "e", b"xxxxxx")]
    q.prune(-1)
    assert log.calls == ["a", "b", "c", "d", "e"]
    assert q.num_queued() == 0
    q.prune(0)


def test_reset_finishes_everything_in_queue_order(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(3, nodes(10))
    q.queue_broadcast(b"1", "one", on_finished=log.cb("one"))
    q.get_broadcasts(0, 10)
    q.queue_broadcast(b"22", on_finished=log.cb("two"))
    q.queue_broadcast(b"3", unique=True, on_finished=log.cb("three"))
    q.queue_broadcast(b"4")
    q.reset()
    assert log.calls == ["two", "three", "one"]
    assert q.num_queued() == 0
    assert q.ordered_view() == []
    q.queue_broadcast(b"again", "one")
    assert q.get_broadcasts(0, 10) == [b"again"]
    assert log.calls == ["two", "three", "one"]


def test_callbacks_may_call_back_into_the_queue(bc: ModuleType) -> None:
    q = bc.TransmitLimitedQueue(1, nodes(1))  # limit 1: finished on the first send

    def requeue() -> None:
        q.queue_broadcast(b"follow-up", "f")

    q.queue_broadcast(b"first", "a", on_finished=requeue)
    assert q.get_broadcasts(0, 100) == [b"first"]
    assert q.ordered_view() == [(0, "f", b"follow-up")]


def test_a_raising_callback_does_not_stop_the_others(bc: ModuleType) -> None:
    log = Log()
    q = bc.TransmitLimitedQueue(1, nodes(1))

    def boom() -> None:
        log.calls.append("boom")
        raise RuntimeError("callback failed")

    q.queue_broadcast(b"aa", "a", on_finished=boom)
    q.queue_broadcast(b"b", "b", on_finished=log.cb("b"))
    q.queue_broadcast(b"c", "c")
    with pytest.raises(RuntimeError, match="callback failed"):
        q.get_broadcasts(0, 100)
    assert log.calls == ["boom", "b"]
    assert q.num_queued() == 0
    q.queue_broadcast(b"d", "a")
    assert q.get_broadcasts(0, 100) == [b"d"]


def test_ten_thousand_items_each_sent_limit_times_and_finished_once(bc: ModuleType) -> None:
    rng = random.Random(1)
    finished: dict[int, int] = {}
    sent: dict[bytes, int] = {}

    def done(i: int) -> Callable[[], None]:
        return lambda: finished.__setitem__(i, finished.get(i, 0) + 1)

    q = bc.TransmitLimitedQueue(4, nodes(999))  # limit 4 * ceil(log10(1000)) = 12
    for i in range(10_000):
        message = i.to_bytes(4, "big") * rng.randrange(10, 30)
        q.queue_broadcast(message, f"n{i}", on_finished=done(i))
    assert q.num_queued() == 10_000
    while q.num_queued():
        for m in q.get_broadcasts(2, 1400):
            sent[m] = sent.get(m, 0) + 1
    assert set(sent.values()) == {12}
    assert len(sent) == 10_000
    assert set(finished.values()) == {1}
    assert len(finished) == 10_000


# -- model-based and differential tests --------------------------------------------------------

_op = st.one_of(
    st.tuples(
        st.just("queue"),
        st.integers(0, 12),  # message length (few distinct lengths: shared buckets)
        st.one_of(st.none(), st.sampled_from(["", "a", "b", "c", "d", "e", "f"])),
        st.booleans(),  # unique
    ),
    st.tuples(st.just("get"), st.integers(0, 4), st.integers(-2, 60)),
    st.tuples(st.just("prune"), st.integers(-1, 12)),
    st.tuples(st.just("nodes"), st.integers(0, 150)),
    st.tuples(st.just("reset")),
)


def _run(ops: list[tuple[Any, ...]], mult: int) -> None:
    """Run ``ops`` on the model and every twin; all must agree after every step."""
    model = ModelQueue(mult, 5)
    size = [5]
    logs = {name: Log() for name in TWINS}
    queues = {
        name: module.TransmitLimitedQueue(mult, lambda: size[0]) for name, module in TWINS.items()
    }
    for step, op in enumerate(ops):
        kind = op[0]
        results: dict[str, Any] = {}
        if kind == "queue":
            _, length, name, unique = op
            message = bytes([step % 256]) * length
            tag = f"{step}"
            if unique:
                name = None
            model.queue(message, name, tag)
            results["model"] = None
            for twin, q in queues.items():
                results[twin] = q.queue_broadcast(
                    message, name, unique=unique, on_finished=logs[twin].cb(tag)
                )
        elif kind == "get":
            results["model"] = model.get(op[1], op[2])
            for twin, q in queues.items():
                results[twin] = q.get_broadcasts(op[1], op[2])
        elif kind == "prune":
            model.prune(op[1])
            for q in queues.values():
                q.prune(op[1])
        elif kind == "nodes":
            size[0] = model.num_nodes = op[1]
        else:
            model.reset()
            for q in queues.values():
                q.reset()
        for twin, q in queues.items():
            context = f"{twin} diverged at step {step}: {op}"
            assert results.get(twin) == results.get("model"), context
            assert q.ordered_view() == model.view(), context
            assert q.num_queued() == len(model.entries), context
            assert logs[twin].calls == model.log, context


@settings(max_examples=300)
@given(ops=st.lists(_op, max_size=120), mult=st.integers(1, 4))
def test_twins_match_the_model_of_gos_queue(ops: list[tuple[Any, ...]], mult: int) -> None:
    _run(ops, mult)


def test_long_random_run_matches_the_model() -> None:
    """Long enough for the lazy heaps to be compacted many times."""
    rng = random.Random(20240611)
    ops: list[tuple[Any, ...]] = []
    for _ in range(4000):
        roll = rng.random()
        if roll < 0.6:
            name = rng.choice([None, "a", "b", "c", "d", "e", "f", "g", "h"])
            ops.append(("queue", rng.choice([1, 2, 3]), name, False))
        elif roll < 0.95:
            ops.append(("get", 1, rng.randrange(0, 12)))
        elif roll < 0.99:
            ops.append(("prune", rng.randrange(0, 40)))
        else:
            ops.append(("nodes", rng.randrange(0, 2000)))
    _run(ops, 3)


def test_twins_expose_the_same_api() -> None:
    if len(TWINS) < 2:
        pytest.skip(only_pure_reason("broadcast"))
    pure, compiled = TWINS["pure"], TWINS["compiled"]
    assert pure.__all__ == compiled.__all__
    public = {n for n in dir(pure.TransmitLimitedQueue) if not n.startswith("_")}
    assert public <= set(dir(compiled.TransmitLimitedQueue))
    assert public == {
        "get_broadcasts",
        "num_queued",
        "ordered_view",
        "prune",
        "queue_broadcast",
        "reset",
        "retransmit_mult",
    }
    q = compiled.TransmitLimitedQueue(3, nodes(1))
    assert q.retransmit_mult == pure.TransmitLimitedQueue(3, nodes(1)).retransmit_mult == 3


# -- sans-IO --------------------------------------------------------------------------------


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_imports_nothing_with_io_or_clocks(twin: str) -> None:
    """Importing the module pulls in none of the forbidden modules, nor keeps one around."""
    target = TWINS[twin].__name__
    added, bad = probe_imports(target)
    assert target in added
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []
