"""Issue 9 item 5: a large snapshot is compacted when the node starts (the recorder resumes
counting at the file's size, as Go's does), it is replayed line by line rather than whole,
and the lines it skips are logged (the first ``MAX_REPLAY_WARNINGS``, then a count)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from serf.address import Address
from serf.config import SerfConfig
from serf.core import io as sio
from serf.core.serf import SerfCore
from serf.core.snapshot import MAX_REPLAY_WARNINGS, replay, replay_lines
from serf.memberlist import io as mio
from serf.runtime.serf import _read_snapshot
from serf.testing.sim import sim_config

FLAP = "alive: b 10.0.0.2:7946\nnot-alive: b\n"


def test_a_large_snapshot_compacts_at_start() -> None:
    state = replay(FLAP * 10_000 + "clock: 5\n", rejoin_after_leave=False)
    assert state.size == len(FLAP) * 10_000 + len("clock: 5\n")
    cfg = SerfConfig("a", memberlist=sim_config("a"), snapshot_path="/x")
    rng = random.Random(7)
    core = SerfCore(
        cfg, rng=rng, token_bytes=rng.randbytes, advertise=Address("10.0.0.1", 7946), snapshot=state
    )
    (compact,) = [e for e in core.handle(mio.Start(), 0.0) if isinstance(e, sio.SnapshotCompact)]
    again = replay(compact.text, rejoin_after_leave=False)
    assert again.alive_nodes == {"a": "10.0.0.1:7946"} and again.last_clock == 5


def test_file_replay_matches_text_replay_and_ignores_an_incomplete_last_line(
    tmp_path: Path,
) -> None:
    text = "alive: a 1.2.3.4:1\nclock: 7\nbogus \udc9a\nalive: b 1.2.3.4:2"
    path = tmp_path / "snap"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    from_file = _read_snapshot(str(path), rejoin_after_leave=False)
    assert from_file == replay(text, False)
    assert from_file.alive_nodes == {"a": "1.2.3.4:1"}
    assert from_file.size == replay(text, False).size == path.stat().st_size
    lines = ["alive: a 1.2.3.4:1", "clock: 7"]
    assert replay_lines(lines, False) == replay("\n".join(lines) + "\n", False)


def test_skipped_lines_are_logged_and_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snap"
    path.write_bytes(b"clock: 3\n" + b"garbage \x9a\n" * (MAX_REPLAY_WARNINGS + 5))
    with caplog.at_level(logging.WARNING):
        state = _read_snapshot(str(path), rejoin_after_leave=False)
    assert state.last_clock == 3
    assert len(state.warnings) == MAX_REPLAY_WARNINGS and state.warnings_dropped == 5
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0].startswith("serf: Unrecognized snapshot line: 'garbage \\udc9a'")
    assert logged[-1] == "serf: 5 more snapshot lines skipped"
