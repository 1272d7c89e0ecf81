"""Memory of one agent at rest: pyserf's ``serf agent`` with default flags against Go serf's.

Run::

    python bench/bench_agent_memory.py            # the table
    python bench/bench_agent_memory.py --modules  # also the modules the running agent loaded

Steps, each a fresh process (RSS from ``/proc/<pid>/status`` VmRSS, median of ``--runs``):

* ``python -c pass``: the interpreter alone (``-P``, the same flags as the agent);
* ``import asyncio``: the event loop's standard library;
* ``import serf.cli.main, serf.agent.run``: what the agent imports before it reads its flags;
* ``serf agent`` (default flags, only ``-node``, ``-bind`` and ``-rpc-addr`` set to loopback
  ports), once its RPC answers and after ``--settle`` seconds;
* Go serf v0.11.0's ``serf agent`` with the same flags, measured the same way in the same run
  (when Go serf is installed or installable, see :mod:`serf.testing.gopeer`).

The running agent is started and read by :func:`serf.testing.agent_probe.probe_agent` (its
``sys.modules`` through a small wrapper around ``serf.cli.main``, the same process).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serf.testing.agent_probe import probe_agent, rss_mib
from serf.testing.gopeer import GO_SERF_VERSION, GoSerfAgent, GoSerfError, install_go_serf


def rss_after(code: str) -> float:
    """RSS of a fresh ``python -P -c code`` that then waits on stdin."""
    script = code + "\nimport sys; print('ok', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ok", line
    rss = rss_mib(proc.pid)
    proc.stdin.close()
    proc.wait(timeout=10)
    return rss


def go_agent_rss(go_bin: Path, settle: float) -> float:
    """RSS of Go's ``serf agent`` (same flags as :func:`probe_agent`) after RPC + settle."""
    agent = GoSerfAgent(name="probe1", binary=go_bin, profile=None)
    try:
        agent.start(timeout=60.0, probe_timeout=10.0)
        time.sleep(settle)
        assert agent.proc is not None
        return rss_mib(agent.proc.pid)
    finally:
        agent.stop()


STEPS = (
    ("python -c pass", "pass"),
    ("import asyncio", "import asyncio"),
    ("import serf.cli.main, serf.agent.run", "import serf.cli.main, serf.agent.run"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--modules", action="store_true", help="print the agent's modules")
    args = parser.parse_args()
    try:
        go_bin: Path | None = install_go_serf()
    except (GoSerfError, subprocess.TimeoutExpired) as exc:
        print(f"Go serf not measured: {exc}", file=sys.stderr)
        go_bin = None
    figures: dict[str, list[float]] = {what: [] for what, _ in STEPS}
    agent_row = "serf agent, default flags"
    go_row = f"Go serf {GO_SERF_VERSION} agent, default flags"
    figures[agent_row] = []
    if go_bin is not None:
        figures[go_row] = []
    names: list[str] = []
    for _ in range(args.runs):
        for what, code in STEPS:
            figures[what].append(rss_after(code))
        probe = probe_agent(settle=args.settle)
        figures[agent_row].append(probe.rss_mib)
        names = sorted(probe.modules)
        if go_bin is not None:
            figures[go_row].append(go_agent_rss(go_bin, args.settle))
    go = statistics.median(figures[go_row]) if go_bin is not None else None
    print(f"Python {sys.version.split()[0]}, {len(names)} modules in the running agent")
    print("| step | RSS (MiB, median) | vs Go |")
    print("|---|---|---|")
    for what, values in figures.items():
        med = statistics.median(values)
        ratio = f"{med / go:.2f}x" if go else "-"
        print(f"| {what} | {med:.1f} | {ratio} |")
    if args.modules:
        print(" ".join(names))


if __name__ == "__main__":
    main()
