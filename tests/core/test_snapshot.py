"""Snapshot text format, replay rules and recorder (reference 3.10)."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serf.core.snapshot import (
    COMPACTION_MIN_BYTES,
    LEAVE_LINE,
    SnapshotRecorder,
    SnapshotState,
    alive_line,
    clock_line,
    compacted,
    compaction_threshold,
    event_clock_line,
    format_address,
    not_alive_line,
    query_clock_line,
    replay,
)


@dataclass(frozen=True)
class Mem:
    name: str
    addr: bytes | str
    port: int


# -- formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "port", "text"),
    [
        (b"\x01\x02\x03\x04", 7946, "1.2.3.4:7946"),
        ("10.0.0.1", 7946, "10.0.0.1:7946"),
        (ipaddress.ip_address("::1").packed, 7946, "[::1]:7946"),
        ("::1", 8000, "[::1]:8000"),
        (ipaddress.ip_address("::ffff:1.2.3.4").packed, 7946, "1.2.3.4:7946"),
        (ipaddress.ip_address("2001:db8:0:0:1:0:0:1"), 1, "[2001:db8::1:0:0:1]:1"),
        (b"", 7946, ":7946"),
        (b"\x01\x02\x03", 7946, "?010203:7946"),
    ],
)
def test_go_style_address(ip: bytes | str, port: int, text: str) -> None:
    assert format_address(ip, port) == text


def test_line_formats() -> None:
    assert alive_line("node one", (b"\x7f\x00\x00\x01", 7946)) == "alive: node one 127.0.0.1:7946\n"
    assert alive_line("n", "[::1]:1") == "alive: n [::1]:1\n"
    assert not_alive_line("n") == "not-alive: n\n"
    assert clock_line(5) == "clock: 5\n"
    assert event_clock_line(6) == "event-clock: 6\n"
    assert query_clock_line(7) == "query-clock: 7\n"
    assert LEAVE_LINE == "leave\n"


# -- replay ---------------------------------------------------------------------------------

SAMPLE = (
    "alive: node-a 10.0.0.1:7946\n"
    "clock: 1\n"
    "alive: node-b 10.0.0.2:7946\n"
    "clock: 2\n"
    "alive: node-c [fd00::3]:7946\n"
    "clock: 3\n"
    "event-clock: 4\n"
    "query-clock: 2\n"
    "not-alive: node-b\n"
    "clock: 4\n"
    'coordinate: {"Vec":[0,0,0,0,0,0,0,0],"Error":1.5}\n'
    "query-clock: 5\n"
    "event-clock: 9\n"
)


GO_VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "go_vectors.json").read_text()
)


@pytest.mark.parametrize("vector", GO_VECTORS["snapshot"], ids=lambda v: v["name"])
def test_go_written_snapshot(vector: dict[str, Any]) -> None:
    """Snapshot files written by tests/govectors the way serf's Snapshotter writes them."""
    state = replay(vector["text"], rejoin_after_leave=False)
    assert state.alive_nodes == vector["alive"]
    clocks = (state.last_clock, state.last_event_clock, state.last_query_clock)
    assert clocks == (vector["clock"], vector["event_clock"], vector["query_clock"])
    assert state.left == vector["left"]
    assert state.warnings == []


def test_sample() -> None:
    state = replay(SAMPLE, rejoin_after_leave=False)
    assert state.alive_nodes == {"node-a": "10.0.0.1:7946", "node-c": "[fd00::3]:7946"}
    assert (state.last_clock, state.last_event_clock, state.last_query_clock) == (4, 9, 5)
    assert not state.left
    assert state.warnings == []


def test_name_is_everything_before_last_space() -> None:
    state = replay("alive: my node name 1.2.3.4:1\nalive: nospace\n", False)
    assert state.alive_nodes == {"my node name": "1.2.3.4:1"}
    assert len(state.warnings) == 1


def test_incomplete_last_line_ignored() -> None:
    state = replay("clock: 5\nclock: 9", False)
    assert state.last_clock == 5
    state = replay("alive: a 1.2.3.4:1\nalive: b 1.2.3.4:2", False)
    assert list(state.alive_nodes) == ["a"]


LEAVE_TEXT = "alive: a 1.2.3.4:1\nclock: 7\nevent-clock: 3\nquery-clock: 2\nleave\nclock: 8\n"


def test_leave_clears_and_resets_then_clock_sets_again() -> None:
    state = replay(LEAVE_TEXT, rejoin_after_leave=False)
    assert state.alive_nodes == {}
    assert (state.last_clock, state.last_event_clock, state.last_query_clock) == (8, 0, 0)
    assert state.left


def test_leave_ignored_with_rejoin_after_leave() -> None:
    state = replay(LEAVE_TEXT, rejoin_after_leave=True)
    assert state.alive_nodes == {"a": "1.2.3.4:1"}
    assert (state.last_clock, state.last_event_clock, state.last_query_clock) == (8, 3, 2)


def test_alive_after_leave_clears_left() -> None:
    assert not replay("leave\nalive: a 1.2.3.4:1\n", False).left


def test_prefixes_must_match_exactly() -> None:
    text = "Alive: a 1:1\nalive:a 1:1\n leave\nleave \nclock:5\nclock 5\n#c\n# comment\n\n"
    state = replay(text, False)
    assert state.alive_nodes == {}
    assert not state.left
    assert state.last_clock == 0
    assert len(state.warnings) == 7  # all but the two comments


@pytest.mark.parametrize(
    "value", ["-1", "+1", " 1", "1 ", "1_000", "0x10", "18446744073709551616", "", "١٢", "1.0"]
)
def test_unparsable_clock_is_a_warning(value: str) -> None:
    state = replay(f"clock: 3\nclock: {value}\nevent-clock: {value}\nquery-clock: {value}\n", False)
    assert state.last_clock == 3
    assert (state.last_event_clock, state.last_query_clock) == (0, 0)
    assert len(state.warnings) == 3


def test_max_uint64_clock_accepted() -> None:
    assert replay("clock: 18446744073709551615\n", False).last_clock == 2**64 - 1


def test_crlf_lines_are_go_faithful() -> None:
    state = replay("clock: 5\r\nalive: a 1.2.3.4:1\r\n", False)
    assert state.last_clock == 0 and len(state.warnings) == 1
    assert state.alive_nodes == {"a": "1.2.3.4:1\r"}


def test_not_alive_of_unknown_is_harmless() -> None:
    assert replay("not-alive: ghost\n", False) == SnapshotState()


@given(st.text())
def test_hostile_text_never_raises(text: str) -> None:
    state = replay(text, rejoin_after_leave=False)
    assert all(0 <= c < 2**64 for c in (state.last_clock, state.last_event_clock))


@given(st.binary())
def test_binary_junk_never_raises(data: bytes) -> None:
    for encoding in ("utf-8", "latin-1"):
        replay(data.decode(encoding, "replace"), rejoin_after_leave=True)
    replay(data.decode("utf-8", "surrogateescape"), rejoin_after_leave=False)


def test_huge_numbers_and_long_lines() -> None:
    text = "clock: " + "9" * 5000 + "\n" + "alive: " + "x" * 100_000 + " 1:1\n" + "\x00\n" * 10
    state = replay(text, False)
    assert state.last_clock == 0
    assert list(state.alive_nodes) == ["x" * 100_000]
    assert len(state.warnings) == 11


# -- compaction round trip ------------------------------------------------------------------


def test_compacted_round_trip() -> None:
    state = replay(SAMPLE, False)
    text = compacted(state)
    assert text == (
        "alive: node-a 10.0.0.1:7946\n"
        "alive: node-c [fd00::3]:7946\n"
        "clock: 4\nevent-clock: 9\nquery-clock: 5\n"
    )
    again = replay(text, False)
    assert again == state


@given(
    st.dictionaries(
        st.text(st.characters(blacklist_characters="\n"), min_size=1, max_size=20),
        st.from_regex(r"\A[0-9a-f.:\[\]]{1,20}\Z"),
        max_size=10,
    ),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
@pytest.mark.slow
def test_compacted_round_trip_property(
    nodes: dict[str, str], clock: int, event: int, query: int
) -> None:
    state = SnapshotState(dict(nodes), clock, event, query)
    assert replay(compacted(state), False) == state


# -- recorder -------------------------------------------------------------------------------


def test_recorder_member_events() -> None:
    rec = SnapshotRecorder()
    a = Mem("a", b"\x0a\x00\x00\x01", 7946)
    b = Mem("b", ipaddress.ip_address("::1").packed, 7946)
    assert rec.record_member_event("member-join", [a, b], clock_time=3) == [
        "alive: a 10.0.0.1:7946\n",
        "alive: b [::1]:7946\n",
        "clock: 2\n",
    ]
    # no clock advance -> no clock line
    assert rec.record_member_event("member-failed", [a], clock_time=3) == ["not-alive: a\n"]
    assert rec.record_member_event("member-leave", [b], clock_time=5) == [
        "not-alive: b\n",
        "clock: 4\n",
    ]
    assert rec.record_member_event("member-update", [a], clock_time=5) == []
    assert rec.record_member_event("member-reap", [a], clock_time=7) == ["clock: 6\n"]
    assert rec.alive_nodes == {}


def test_recorder_user_and_query_clocks_only_advance() -> None:
    rec = SnapshotRecorder()
    assert rec.record_user_event(5) == ["event-clock: 5\n"]
    assert rec.record_user_event(5) == []
    assert rec.record_user_event(4) == []
    assert rec.record_query(2) == ["query-clock: 2\n"]
    assert rec.record_query(1) == []


def test_recorder_clock_sample_and_zero_clock() -> None:
    rec = SnapshotRecorder()
    assert rec.sample_clock(0) == []  # Go would wrap Time()-1; serf clocks start at 1
    assert rec.sample_clock(1) == []  # 0 is not above last_clock 0
    assert rec.sample_clock(10) == ["clock: 9\n"]
    assert rec.sample_clock(10) == []


def test_recorder_after_leave() -> None:
    rec = SnapshotRecorder()
    rec.record_member_event("member-join", [Mem("a", "1.2.3.4", 1)], 2)
    assert rec.leave() == ["leave\n"]
    assert rec.alive_nodes == {}
    assert rec.record_member_event("member-join", [Mem("b", "1.2.3.4", 2)], 9) == []
    assert rec.record_user_event(100) == []
    assert rec.record_query(100) == []
    assert rec.sample_clock(9) == ["clock: 8\n"]  # the ticker keeps running


def test_recorder_rejoin_after_leave_keeps_nodes() -> None:
    rec = SnapshotRecorder(rejoin_after_leave=True)
    rec.record_member_event("member-join", [Mem("a", "1.2.3.4", 1)], 2)
    rec.leave()
    assert rec.alive_nodes == {"a": "1.2.3.4:1"}


def test_recorder_resumes_from_replayed_state() -> None:
    state = replay(SAMPLE, False)
    rec = SnapshotRecorder(state, offset=len(SAMPLE))
    assert rec.sample_clock(5) == []  # 4 already recorded
    assert rec.record_user_event(9) == []
    assert rec.record_user_event(10) == ["event-clock: 10\n"]
    assert rec.offset == len(SAMPLE) + len("event-clock: 10\n")


def test_recorded_text_replays_to_recorder_state() -> None:
    rec = SnapshotRecorder()
    lines: list[str] = []
    for i in range(20):
        lines += rec.record_member_event("member-join", [Mem(f"n{i}", "10.0.0.1", 7000 + i)], i + 2)
        if i % 3 == 0:
            lines += rec.record_member_event("member-failed", [Mem(f"n{i}", "", 0)], i + 2)
        lines += rec.record_user_event(i)
        lines += rec.record_query(i * 2)
    text = "".join(lines)
    assert rec.offset == len(text)
    state = replay(text, False)
    assert state == rec.state()
    assert replay(rec.compact(), False) == state
    assert rec.offset == len(compacted(state))


def test_compaction_threshold() -> None:
    assert compaction_threshold(0) == COMPACTION_MIN_BYTES == 131072
    assert compaction_threshold(512) == 131072
    assert compaction_threshold(513) == 513 * 256
    rec = SnapshotRecorder(offset=COMPACTION_MIN_BYTES)
    assert not rec.needs_compaction()
    assert rec.needs_compaction(COMPACTION_MIN_BYTES + 1)
    rec.sample_clock(2)
    assert rec.needs_compaction()


def test_compacted_form_has_no_leave_line_like_go() -> None:
    rec = SnapshotRecorder()
    rec.record_member_event("member-join", [Mem("a", "1.2.3.4", 1)], 2)
    rec.record_user_event(4)
    rec.leave()
    assert rec.compact() == "clock: 1\nevent-clock: 4\nquery-clock: 0\n"
