"""serf.testing.procstat: the /proc figures the side-by-side benches read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from serf.testing.procstat import cpu_seconds, on_cpu, run_delay

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: a child that burns CPU until it has used 0.3 s of it, then waits for stdin to close
BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.3: pass\n"
    "print('done', flush=True); sys.stdin.read()\n"
)


def test_cpu_seconds_counts_a_childs_cpu_time() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"done\n"
        # the kernel counts 10 ms ticks: 0.3 s of CPU is at least 0.25 s of them
        assert 0.25 <= cpu_seconds(child.pid) < 30
        assert run_delay(child.pid) >= 0.0
        assert 0.29 <= on_cpu(child.pid) < 30  # nanoseconds: no tick rounding
    finally:
        child.communicate(b"")
    with pytest.raises(OSError):
        cpu_seconds(child.pid)


def test_own_process_figures() -> None:
    before = cpu_seconds(os.getpid())
    total = 0
    for i in range(3_000_000):  # ~0.1 s of CPU, so at least one 10 ms tick passes
        total += i
    assert total > 0 and cpu_seconds(os.getpid()) > before
