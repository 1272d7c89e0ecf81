"""Idle cost of a node: CPU seconds and resident memory per node of an 8-node loopback cluster.

Run: ``python bench/bench_idle.py [--nodes 8] [--window 20] [--write-docs]``.

How this works: every node runs in its own process (this script with ``--node``), so the
kernel's per-process accounting (``/proc/<pid>/stat`` utime + stime, ``/proc/<pid>/status``
VmRSS) gives per-node figures directly. pyserf nodes use the ``local()`` preset, bind
127.0.0.<i+1> and join node 0. After a warm-up (the cluster converges), CPU time is sampled at
the start and end of a fixed wall-clock window; RSS is read at the end.

Baselines measured in the same run, the same way: an idle asyncio (uvloop) process that
imported the same modules (the interpreter's floor), and, when ``go`` is installed, 8 Go serf
agents (``-profile=local``) in a cluster. Go serf runs the serf layer on top of memberlist
(tags, Lamport clocks, coordinates, reaping), so it does more work per node than a bare
pyserf Memberlist. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
HEADING = "## Real sockets"


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


# -- the node processes --------------------------------------------------------------------


async def _node_main(index: int, port: int, seed: str | None, idle: bool) -> None:
    import uvloop  # noqa: F401 - imported so the floor includes it

    from serf.config import local
    from serf.runtime.memberlist import Memberlist

    if idle:
        print("ready", flush=True)
        await asyncio.Event().wait()
        return
    config = dataclasses.replace(
        local(f"node{index}"), bind_addr=f"127.0.0.{index + 1}", bind_port=port
    )
    node = await Memberlist.create(config)
    if seed is not None:
        await node.join([seed])
    print("ready", flush=True)
    await asyncio.Event().wait()


def _run_node(args: argparse.Namespace) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(_node_main(args.node, args.port, args.seed, args.idle))


# -- the measurement -----------------------------------------------------------------------


@dataclasses.dataclass
class Figures:
    """Per-process figures over one window."""

    label: str
    processes: int
    cpu_per_node: float  # CPU seconds per node over the window
    rss_per_node: float  # MiB
    window: float

    def line(self) -> str:
        pct = 100 * self.cpu_per_node / self.window
        return (
            f"| {self.label} | {self.processes} | {self.cpu_per_node:.3f} s ({pct:.2f} % of a "
            f"core) | {self.rss_per_node:.1f} MiB |"
        )


def _measure(label: str, pids: list[int], window: float) -> Figures:
    start = [cpu_seconds(p) for p in pids]
    time.sleep(window)
    end = [cpu_seconds(p) for p in pids]
    rss = [rss_mib(p) for p in pids]
    n = len(pids)
    return Figures(
        label, n, sum(e - s for s, e in zip(start, end, strict=True)) / n, sum(rss) / n, window
    )


def _spawn_py(nodes: int, idle: bool) -> list[subprocess.Popen[str]]:
    from serf.testing.gopeer import free_port

    procs: list[subprocess.Popen[str]] = []
    seed: str | None = None
    for i in range(nodes):
        port = free_port(f"127.0.0.{i + 1}")
        cmd = [sys.executable, __file__, "--node", str(i), "--port", str(port)]
        if idle:
            cmd.append("--idle")
        elif seed is not None:
            cmd += ["--seed", seed]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        if "ready" not in line:
            raise RuntimeError(f"node {i} did not start")
        procs.append(proc)
        if seed is None:
            seed = f"127.0.0.1:{port}"
    return procs


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait(timeout=10)


def run(nodes: int, window: float, warmup: float) -> list[Figures]:
    """Measure pyserf, the idle floor and (if present) Go serf; return the figures."""
    out: list[Figures] = []
    procs = _spawn_py(nodes, idle=False)
    try:
        time.sleep(warmup)
        out.append(_measure("pyserf Memberlist, local()", [p.pid for p in procs], window))
    finally:
        _stop(procs)
    procs = _spawn_py(1, idle=True)
    try:
        time.sleep(1.0)
        out.append(_measure("baseline: idle uvloop process, same imports", [procs[0].pid], window))
    finally:
        _stop(procs)
    from serf.testing import gopeer

    if gopeer.go_available():
        binary = gopeer.install_go_serf()
        agents = [
            gopeer.GoSerfAgent(binary=binary, name=f"go{i}", host=f"127.0.0.{i + 1}")
            for i in range(nodes)
        ]
        try:
            for agent in agents:
                agent.start()
            for agent in agents[1:]:
                agent.join(agents[0].bind)
            time.sleep(warmup)
            pids = [a.proc.pid for a in agents if a.proc is not None]
            out.append(
                _measure(
                    f"baseline: Go serf {gopeer.GO_SERF_VERSION} agent, -profile=local",
                    pids,
                    window,
                )
            )
        finally:
            for agent in agents:
                agent.stop()
    return out


def _table(figures: list[Figures], nodes: int, window: float) -> str:
    import platform

    from serf import _speedups

    head = [
        f"Idle cost per node, {nodes}-node cluster on loopback (127.0.0.1..{nodes}), one",
        f"process per node, CPU over a {window:.0f} s wall window after a warm-up; measured by",
        f"`python bench/bench_idle.py` on {platform.machine()}, Python",
        f"{platform.python_version()}, twins: {_speedups.IMPLEMENTATION}.",
        "",
        "| what | processes | CPU per node over the window | RSS per node |",
        "|---|---|---|---|",
    ]
    return "\n".join(head + [f.line() for f in figures]) + "\n"


def _write_docs(table: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    section = f"{HEADING}\n\n{table}"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        _run_node(args)
        return
    figures = run(args.nodes, args.window, args.warmup)
    table = _table(figures, args.nodes, args.window)
    print(table)
    if args.write_docs:
        _write_docs(table)


if __name__ == "__main__":
    main()
