"""Follow serf agents' log files for their member events (Go's and pyserf's agents log the same
``serf: EventMember...`` lines): the benches time convergence and failure detection with it
without polling the agents' RPC, which would load the CPU being measured."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

#: how often :func:`watch` reads the logs, seconds
POLL = 0.05
#: a member's state as its last ``serf: EventMember...`` log line says (both kinds log these)
EVENT_LINE = re.compile(rb"\[INFO\] serf: EventMember(Join|Update|Failed|Leave|Reap): (\S+)")


class LogTail:
    """The lines a growing log file gained since the last read (a line still being written
    waits for its end); from the file's start, or from its end at creation (``from_end``)."""

    def __init__(self, path: Path, *, from_end: bool = False) -> None:
        self.path = path
        self.offset = path.stat().st_size if from_end else 0
        self.partial = b""

    def lines(self) -> list[bytes]:
        """The complete lines written since the last call."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        return lines


class LogWatch:
    """Follows one agent's log file: each member's state as its last event line says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tail = LogTail(path)
        self.state: dict[bytes, bytes] = {}

    def poll(self) -> None:
        """Read what the log gained since the last poll (a line still being written waits)."""
        for line in self.tail.lines():
            match = EVENT_LINE.search(line)
            if match:
                self.state[match.group(2)] = match.group(1)

    def alive(self) -> int:
        """How many members this agent last saw join or update."""
        return sum(v in (b"Join", b"Update") for v in self.state.values())

    def failed(self, name: str) -> bool:
        """Whether this agent's last event for ``name`` was a failure."""
        return self.state.get(name.encode()) == b"Failed"


async def watch(
    watches: list[LogWatch], done: Callable[[LogWatch], bool], timeout: float
) -> list[float]:
    """Poll the logs until ``done`` holds for each; the seconds each took (RuntimeError after
    ``timeout``). After 5 s the agents not there yet are summed up on stderr."""
    start = time.monotonic()
    pending = list(watches)
    took: list[float] = []
    told = False
    while pending:
        if not told and time.monotonic() - start > 5:
            told = True
            counts = Counter(w.alive() for w in pending)
            print(f"   after 5 s, not there: {len(pending)} agents (members alive: agents "
                  f"{dict(sorted(counts.items()))})", file=sys.stderr, flush=True)  # fmt: skip
        for w in pending:
            w.poll()
        now = time.monotonic() - start
        took.extend(now for w in pending if done(w))
        pending = [w for w in pending if not done(w)]
        if not pending:
            break
        if now > timeout:
            raise RuntimeError(f"timed out after {timeout}s: {len(pending)} agents not there")
        await asyncio.sleep(POLL)
    return took
