"""CPU figures of another process, read from Linux's ``/proc`` (benches and tests).

``cpu_seconds`` counts in the kernel's 10 ms ticks (``utime + stime``); ``run_delay`` is the
time a process's threads were runnable but waited for a CPU (``schedstat``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (OSError once the process is gone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _schedstat(pid: int, field: int) -> float:
    """One field of ``/proc/<pid>/task/*/schedstat`` summed over the live threads, seconds."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(Path(path).read_text().split()[field])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            pass
    return total / 1e9


def run_delay(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (schedstat)."""
    return _schedstat(pid, 1)


def on_cpu(pid: int) -> float:
    """Seconds the threads of ``pid`` spent on a CPU (schedstat nanoseconds, finer than
    :func:`cpu_seconds`'s ticks); threads that already ended are not counted."""
    return _schedstat(pid, 0)
