"""serf.testing.logwatch: member states from agent log lines, as the benches read them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from serf.testing.logwatch import LogTail, LogWatch, watch

LINES = (
    b"    2026/12/07 23:00:46 [INFO] serf: EventMemberJoin: a 127.0.0.1\n"
    b"    2026/12/07 23:00:46 [INFO] serf: EventMemberJoin: b 127.0.0.1\n"
    b"    2026/12/07 23:00:47 [INFO] agent: Received event: member-join\n"
    b"    2026/12/07 23:00:48 [INFO] serf: EventMemberFailed: b 127.0.0.1\n"
    b"    2026/12/07 23:00:49 [INFO] serf: EventMemberJo"  # a line still being written
)


def test_states_follow_the_last_line_and_wait_for_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(LINES)
    w = LogWatch(log)
    w.poll()
    assert w.alive() == 1 and w.failed("b") and not w.failed("a")
    with log.open("ab") as f:
        f.write(b"in: c 127.0.0.1\n")
    w.poll()
    assert w.alive() == 2


def test_watch_returns_when_done_and_times_out_otherwise(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(LINES)
    took = asyncio.run(watch([LogWatch(log)], lambda w: w.failed("b"), 5))
    assert len(took) == 1
    with pytest.raises(RuntimeError, match="1 agents not there"):
        asyncio.run(watch([LogWatch(log)], lambda w: w.failed("a"), 0.1))


def test_tail_from_the_end_reads_only_what_comes_later(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"old line\n")
    tail = LogTail(log, from_end=True)
    assert tail.lines() == []
    with log.open("ab") as f:
        f.write(b"new line\nhalf")
    assert tail.lines() == [b"new line"]
    with log.open("ab") as f:
        f.write(b" done\n")
    assert tail.lines() == [b"half done"]
    assert LogTail(log).lines() == [b"old line", b"new line", b"half done"]
