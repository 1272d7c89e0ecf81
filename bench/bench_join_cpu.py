"""CPU of a join: N Go serf v0.11.0 agents and N pyserf agents joining one seed, ratios.

Run: ``python bench/bench_join_cpu.py [--size 5] [--rounds 3] [--baseline DIR]``.

How this works: per round and per kind, N agents start on loopback (LAN profile,
``-log-level=info``, default flags otherwise) and settle; then agents 1..N-1 join through
agent 0 all at once (RPC ``join``), and the CPU from the joins to ``--after`` seconds after
every agent has logged ``EventMemberJoin`` for all N members, minus the cluster's CPU at rest
over as long (measured next, over ``--rest`` seconds), is the join's CPU (as compare.py's).
Printed per agent, and split into the seed's (agent 0, which serves N-1 push/pulls) and a
joiner's (mean of the others). CPU is the kernel's nanosecond count of time on a CPU
(``/proc/<pid>/task/*/schedstat``), not ``/proc/<pid>/stat``'s 10 ms ticks. The kinds take
turns being first each round; compare ratios of one run (the machine is shared).

``--baseline DIR`` adds the ``serf`` package found in DIR (a copy of another tree's ``serf/``
with its compiled twins) as a third kind: a before/after pair in the same run.
``--pyspy DIR`` records each pyserf agent's join window and then a rest window as long with
py-spy (raw collapsed stacks, ``DIR/join-<kind><i>.txt`` and ``DIR/rest-...``; py-spy on
PATH; ``PYSPY_ARGS=--native`` passes options). The figures are then py-spy's load too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from serf.cli.rpc_client import RPCClient
from serf.testing.bench_cluster import bench_agents, close_agents, start_agents
from serf.testing.gopeer import PYSERF_COMMAND, install_go_serf
from serf.testing.logwatch import LogWatch, watch
from serf.testing.procstat import on_cpu


def command_for(kind: str, baseline: str) -> list[str] | None:
    if kind == "py":
        return list(PYSERF_COMMAND)
    if kind == "base":  # another tree's serf package first on the path
        return ["env", f"PYTHONPATH={baseline}", *PYSERF_COMMAND]
    return None


def spy(pids: list[int], kind: str, window: str, args: argparse.Namespace) -> list[Any]:
    """py-spy on each of ``pids`` for the join window's length (raw stacks in ``--pyspy``)."""
    out = Path(args.pyspy)
    out.mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("PYSPY_ARGS", "").split()
    seconds = str(int(args.after + 2))
    spy_cmd = ["py-spy", "record", *extra, "-r", "1000", "-f", "raw", "-p"]
    return [
        subprocess.Popen(
            [*spy_cmd, str(pid), "-d", seconds, "-o", str(out / f"{window}-{kind}{i}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, pid in enumerate(pids)
    ]


async def one_join(
    kind: str, size: int, go_bin: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """(ms per agent, the seed's ms, a joiner's mean ms) of one join of ``size`` agents."""
    agents = bench_agents(kind, size, go_bin, command_for(kind, args.baseline))
    clients: list[RPCClient] = []
    spies: list[Any] = []
    try:
        clients = await start_agents(agents)
        pids = [a.proc.pid for a in agents if a.proc is not None]
        await asyncio.sleep(args.settle)
        watches = [LogWatch(a.log_path) for a in agents]
        for w in watches:
            w.poll()
        if args.pyspy and kind != "go":
            spies = spy(pids, kind, "join", args)
            await asyncio.sleep(1.0)  # py-spy attaches
        seed = agents[0].bind
        cpu0, t0 = [on_cpu(p) for p in pids], time.monotonic()
        joins = asyncio.gather(*(c.join([seed]) for c in clients[1:]))
        await watch(watches, lambda w: w.alive() == size, 120)
        await joins
        await asyncio.sleep(args.after)
        cpu1, wall = [on_cpu(p) for p in pids], time.monotonic() - t0
        for proc in spies:
            proc.wait(60)
        # the cluster at rest afterwards (all members probing each other), as long
        if args.pyspy and kind != "go":
            spies = spy(pids, kind, "rest", args)
            await asyncio.sleep(1.0)
        cpu2, t2 = [on_cpu(p) for p in pids], time.monotonic()
        await asyncio.sleep(args.rest)
        cpu3, t3 = [on_cpu(p) for p in pids], time.monotonic()
        rest = [(b - a) / (t3 - t2) for a, b in zip(cpu2, cpu3, strict=True)]
        per = [(b - a - r * wall) * 1e3 for a, b, r in zip(cpu0, cpu1, rest, strict=True)]
        for proc in spies:
            proc.wait(60)
        return statistics.fmean(per), per[0], statistics.fmean(per[1:])
    finally:
        await close_agents(agents, clients)


async def measure(args: argparse.Namespace) -> None:
    go_bin = install_go_serf()
    kinds = [k for k in args.kinds if k != "base"] + (["base"] if args.baseline else [])
    figures: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    for rnd in range(args.rounds):
        line = []
        for i in range(len(kinds)):
            kind = kinds[(rnd + i) % len(kinds)]
            fig = await one_join(kind, args.size, go_bin, args)
            figures[kind].append(fig)
            line.append(f"{kind} {fig[0]:.1f} (seed {fig[1]:.1f}, joiner {fig[2]:.1f})")
        print(f"round {rnd}: join CPU ms per agent: " + ", ".join(line), flush=True)
    medians = {
        k: [statistics.median(f[j] for f in v) for j in range(3)] for k, v in figures.items()
    }
    for kind, (agent, seed, joiner) in medians.items():
        ratio = ""
        if "go" in medians and kind != "go":
            ratio = f" = {agent / medians['go'][0]:.2f}x Go"
        print(
            f"N={args.size} {kind}: median of {args.rounds} rounds, ms per agent {agent:.1f}"
            f" (seed {seed:.1f}, joiner {joiner:.1f}){ratio}"
        )
    if "base" in medians and "py" in medians:
        pairs = [p[0] / b[0] for p, b in zip(figures["py"], figures["base"], strict=True)]
        median = statistics.median(pairs)
        print(f"N={args.size}: py/base per agent, median of rounds: {median:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=5, help="agents per cluster")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", choices=("go", "py", "base"), default=["go", "py"])
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after start")
    parser.add_argument("--rest", type=float, default=3.0, help="rest window, seconds")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after convergence")
    parser.add_argument("--baseline", default="", help="also run the serf package in this tree")
    parser.add_argument("--pyspy", default="", help="record pyserf agents here (py-spy raw)")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
