"""Idle CPU and wake-ups per agent: N Go serf v0.11.0 agents and N pyserf agents at rest,
measured in the same windows.

Run: ``python bench/bench_idle.py [--sizes 16 64] [--windows 6] [--window 20]``.

How this works: for each size N, two clusters run at once on loopback: N Go ``serf agent``
processes and N ``python -m serf.cli.main agent`` processes, default flags (the LAN profile;
``-log-level=info``), each agent joined through agent 0 of its kind. After every agent lists
N alive members and a warm-up, the two clusters are sampled in the same windows (paired: the
shared machine's load falls on both alike), ``--windows`` windows of ``--window`` seconds:

* CPU: the sum over each process's threads of ``/proc/<pid>/task/<tid>/schedstat``'s run
  time (nanoseconds; utime + stime in ``/proc/<pid>/stat`` count 10 ms ticks, too coarse
  for an idle agent), as milliseconds per agent per minute;
* wake-ups: voluntary context switches summed over the threads (``voluntary_ctxt_switches``
  in ``/proc/<pid>/task/<tid>/status``: each is a thread that went to sleep, so each is
  followed by a wake-up), per agent per second.

Printed per window with the ratio pyserf / Go, then the median ratio and its spread over the
windows, as the markdown table of docs/performance.md's "Idle CPU per agent" section. Linux
only (``/proc``). A thread that exits within a window takes its time with it (Go keeps its
threads; a pyserf agent at rest has one).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serf.testing.gopeer import GoSerfAgent

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("go", "py")


def _threads(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def run_ns(pid: int) -> int:
    """CPU time of every live thread of ``pid``, nanoseconds (schedstat)."""
    total = 0
    for tid in _threads(pid):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread exited
    return total


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every live thread of ``pid`` (its sleeps)."""
    total = 0
    for tid in _threads(pid):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M)
        if match:
            total += int(match.group(1))
    return total


@dataclass
class Window:
    """One paired window: per kind, CPU ms per agent per minute and wake-ups per agent per s."""

    cpu: dict[str, float] = field(default_factory=dict)
    wakeups: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.cpu["py"] / self.cpu["go"] if self.cpu["go"] > 0 else float("inf")


def _sample(pids: dict[str, list[int]]) -> dict[str, tuple[int, int]]:
    return {k: (sum(map(run_ns, v)), sum(map(voluntary_switches, v))) for k, v in pids.items()}


def measure(pids: dict[str, list[int]], windows: int, seconds: float) -> list[Window]:
    """``windows`` paired windows of ``seconds`` over both clusters."""
    out = []
    for i in range(windows):
        start, t0 = _sample(pids), time.monotonic()
        time.sleep(seconds)
        end, wall = _sample(pids), time.monotonic() - t0
        w = Window()
        for kind, group in pids.items():
            n = len(group)
            w.cpu[kind] = (end[kind][0] - start[kind][0]) / 1e6 / n / wall * 60
            w.wakeups[kind] = (end[kind][1] - start[kind][1]) / n / wall
        out.append(w)
        print(
            f"  window {i}: CPU ms/agent/min Go {w.cpu['go']:.1f} pyserf {w.cpu['py']:.1f} "
            f"(ratio {w.ratio:.2f}); wake-ups/agent/s Go {w.wakeups['go']:.1f} "
            f"pyserf {w.wakeups['py']:.1f}",
            file=sys.stderr,
            flush=True,
        )
    return out


def run_size(size: int, windows: int, seconds: float, warmup: float) -> list[Window]:
    """Start both clusters of ``size`` agents, measure, stop them."""
    from serf.testing.gopeer import PYSERF_COMMAND, GoSerfAgent, install_go_serf

    go = install_go_serf()
    agents = {
        kind: [
            GoSerfAgent(
                name=f"{kind}{i}",
                binary=go,
                command=PYSERF_COMMAND if kind == "py" else None,
                profile=None,
                extra_args=("-log-level=info",),
            )
            for i in range(size)
        ]
        for kind in KINDS
    }
    everyone = agents["go"] + agents["py"]
    try:
        # four at a time: dozens of interpreters starting at once on two cores would starve
        # the probes that wait for them
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda a: a.start(300.0, 30.0), everyone))
        for group in agents.values():
            seed = group[0].bind
            with ThreadPoolExecutor(4) as pool:
                cmds = [[str(go), "join", f"-rpc-addr={a.rpc_addr}", seed] for a in group[1:]]
                list(pool.map(lambda c: subprocess.run(c, capture_output=True, check=True), cmds))
        for kind, group in agents.items():
            _converge(str(go), group, size, kind)
        time.sleep(warmup)
        pids = {k: [a.proc.pid for a in g if a.proc is not None] for k, g in agents.items()}
        return measure(pids, windows, seconds)
    finally:
        for agent in everyone:
            agent.stop()


def _converge(go: str, group: list[GoSerfAgent], size: int, kind: str) -> None:
    """Wait (at most 120 s) until every agent of ``group`` lists ``size`` alive members."""
    end = time.monotonic() + 120
    for agent in group:
        while True:
            out = subprocess.run(
                [go, "members", f"-rpc-addr={agent.rpc_addr}", "-status=alive"],
                capture_output=True,
                text=True,
            ).stdout
            if len(out.strip().splitlines()) == size:
                break
            if time.monotonic() > end:
                raise RuntimeError(f"{kind} cluster of {size} did not converge")
            time.sleep(0.5)


def table(results: dict[int, list[Window]], seconds: float) -> str:
    """The markdown table: medians and spreads per size."""
    lines = [
        "| N | Go: CPU per agent | pyserf: CPU per agent | pyserf / Go: median (min-max) "
        "| wake-ups per agent per s: Go / pyserf |",
        "|---|---|---|---|---|",
    ]
    for size, ws in results.items():
        go = statistics.median(w.cpu["go"] for w in ws)
        py = statistics.median(w.cpu["py"] for w in ws)
        ratios = [w.ratio for w in ws]
        wake_go = statistics.median(w.wakeups["go"] for w in ws)
        wake_py = statistics.median(w.wakeups["py"] for w in ws)
        lines.append(
            f"| {size} | {go:.0f} ms/min | {py:.0f} ms/min | {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ws)} windows of {seconds:.0f} s) "
            f"| {wake_go:.1f} / {wake_py:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per window")
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()
    results: dict[int, list[Window]] = {}
    for size in args.sizes:
        print(f"== N={size}", file=sys.stderr, flush=True)
        results[size] = run_size(size, args.windows, args.window, args.warmup)
    text = table(results, args.window)
    print(text)


if __name__ == "__main__":
    main()
