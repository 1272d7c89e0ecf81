"""Event coalescers in virtual time (reference 3.9)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from serf.core.coalesce import (
    MemberEvent,
    MemberEventCoalescer,
    UserEventCoalescer,
    UserEventRecord,
)


@dataclass(frozen=True)
class M:
    name: str
    tag: str = ""


def ev(kind: str, *names: str) -> MemberEvent:
    return MemberEvent(f"member-{kind}", tuple(M(n) for n in names))


def as_dict(events: list[MemberEvent]) -> dict[str, list[str]]:
    return {e.type: sorted(m.name for m in e.members) for e in events}


def test_join_then_fail_is_one_failed() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    assert c.handle(ev("join", "a"), 0.0)
    assert c.handle(ev("failed", "a"), 0.1)
    assert as_dict(c.flush(0.2)) == {"member-failed": ["a"]}


def test_different_names_stay_separate_and_grouped_by_type() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    c.handle(ev("join", "a", "b"), 0.0)
    c.handle(ev("leave", "c"), 0.0)
    c.handle(ev("join", "d"), 0.0)
    assert as_dict(c.flush(0.0)) == {"member-join": ["a", "b", "d"], "member-leave": ["c"]}


def test_latest_member_data_wins() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    c.handle(MemberEvent("member-update", (M("a", "old"),)), 0.0)
    c.handle(MemberEvent("member-update", (M("a", "new"),)), 0.0)
    [out] = c.flush(0.0)
    assert out.members == (M("a", "new"),)


def test_non_member_events_pass_through() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    assert not c.handle(UserEventRecord(1, "x", b"", True), 0.0)
    assert not c.handle(MemberEvent("user", (M("a"),)), 0.0)
    assert not c.handle("anything", 0.0)
    assert c.next_deadline() is None


def test_repeat_of_last_sent_type_is_dropped() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    c.handle(ev("join", "a"), 0.0)
    assert as_dict(c.flush(0.0)) == {"member-join": ["a"]}
    c.handle(ev("join", "a"), 1.0)
    c.handle(ev("join", "b"), 1.0)
    assert as_dict(c.flush(1.0)) == {"member-join": ["b"]}
    # join -> fail -> join within one round: the latest (join) equals what was sent
    c.handle(ev("failed", "a"), 2.0)
    c.handle(ev("join", "a"), 2.1)
    assert c.flush(2.2) == []


def test_quirk_update_reemitted_at_every_later_flush() -> None:
    c = MemberEventCoalescer(5.0, 1.0)
    c.handle(ev("update", "a"), 0.0)
    assert as_dict(c.flush(0.0)) == {"member-update": ["a"]}
    # Any later round re-emits the stale update for "a".
    c.handle(ev("join", "b"), 10.0)
    assert as_dict(c.flush_due(11.0)) == {"member-join": ["b"], "member-update": ["a"]}
    c.handle(ev("join", "b"), 20.0)  # b already sent as join: dropped; a still re-emitted
    assert as_dict(c.flush_due(21.0)) == {"member-update": ["a"]}
    # A shutdown flush re-emits it too, even with nothing new.
    assert as_dict(c.flush(30.0)) == {"member-update": ["a"]}
    # Until a newer event for "a" replaces it.
    c.handle(ev("leave", "a"), 40.0)
    assert as_dict(c.flush_due(41.0)) == {"member-leave": ["a"]}
    c.handle(ev("join", "c"), 50.0)
    assert as_dict(c.flush_due(51.0)) == {"member-join": ["c"]}


def test_dedupe_updates_follows_newer_go() -> None:
    c = MemberEventCoalescer(5.0, 1.0, dedupe_updates=True)
    c.handle(MemberEvent("member-update", (M("a", "v1"),)), 0.0)
    assert as_dict(c.flush(0.0)) == {"member-update": ["a"]}
    c.handle(ev("join", "b"), 10.0)
    assert as_dict(c.flush_due(11.0)) == {"member-join": ["b"]}  # unchanged update dropped
    c.handle(MemberEvent("member-update", (M("a", "v1"),)), 20.0)
    assert c.flush_due(21.0) == []
    c.handle(MemberEvent("member-update", (M("a", "v2"),)), 30.0)
    [out] = c.flush_due(31.0)
    assert out.members == (M("a", "v2"),)


def test_quiescence_flushes_a_quiet_burst() -> None:
    c = MemberEventCoalescer(coalesce_period=10.0, quiescent_period=1.0)
    c.handle(ev("join", "a"), 0.0)
    assert c.next_deadline() == 1.0
    c.handle(ev("join", "b"), 0.5)
    assert c.next_deadline() == 1.5  # quiescence re-armed, quantum still at 10
    assert c.flush_due(1.4) == []
    assert as_dict(c.flush_due(1.5)) == {"member-join": ["a", "b"]}
    assert c.next_deadline() is None
    assert c.flush_due(100.0) == []


def test_quantum_caps_a_busy_stream() -> None:
    c = MemberEventCoalescer(coalesce_period=2.0, quiescent_period=1.0)
    expected = {0.0: 1.0, 0.5: 1.5, 1.0: 2.0, 1.5: 2.0}  # min(quantum 2.0, event + 1.0)
    for t, deadline in expected.items():
        assert c.flush_due(t) == []
        c.handle(ev("join", f"n{t}"), t)
        assert c.next_deadline() == deadline
    out = c.flush_due(2.0)  # the stream never went quiet: the quantum ends the round
    assert as_dict(out) == {"member-join": sorted(f"n{t}" for t in expected)}
    # The next event opens a new round with a fresh quantum.
    c.handle(ev("join", "late"), 2.2)
    assert c.next_deadline() == pytest.approx(3.2)
    c.handle(ev("join", "later"), 3.0)
    assert c.next_deadline() == pytest.approx(4.0)
    c.handle(ev("join", "latest"), 3.9)
    assert c.next_deadline() == pytest.approx(4.2)


def test_invalid_periods() -> None:
    with pytest.raises(ValueError, match="coalesce_period"):
        MemberEventCoalescer(0.0, 1.0)
    with pytest.raises(ValueError, match="quiescent_period"):
        UserEventCoalescer(1.0, -1.0)


def ue(ltime: int, name: str, payload: bytes = b"", coalesce: bool = True) -> UserEventRecord:
    return UserEventRecord(ltime, name, payload, coalesce)


def test_user_keeps_newest_per_name_including_ties() -> None:
    c = UserEventCoalescer(5.0, 1.0)
    for e in [
        ue(1, "deploy", b"a"),
        ue(3, "deploy", b"b"),
        ue(2, "deploy", b"c"),
        ue(3, "deploy", b"d"),
        ue(1, "other", b"e"),
    ]:
        assert c.handle(e, 0.0)
    out = c.flush(0.0)
    assert sorted((e.name, e.ltime, e.payload) for e in out) == [
        ("deploy", 3, b"b"),
        ("deploy", 3, b"d"),
        ("other", 1, b"e"),
    ]
    assert c.flush(1.0) == []  # table reset after a flush


def test_user_non_coalescable_passes_through() -> None:
    c = UserEventCoalescer(5.0, 1.0)
    assert not c.handle(ue(1, "x", coalesce=False), 0.0)
    assert not c.handle(ev("join", "a"), 0.0)
    assert c.next_deadline() is None


def test_user_timing_in_virtual_time() -> None:
    c = UserEventCoalescer(coalesce_period=3.0, quiescent_period=1.0)
    c.handle(ue(1, "x"), 0.0)
    c.handle(ue(2, "x"), 0.9)
    assert c.flush_due(1.8) == []
    assert [e.ltime for e in c.flush_due(1.9)] == [2]
    c.handle(ue(1, "x"), 5.0)  # older than what was flushed, but the table was reset
    assert [e.ltime for e in c.flush_due(6.0)] == [1]
