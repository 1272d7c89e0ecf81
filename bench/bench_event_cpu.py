"""CPU per user event: N Go serf v0.11.0 agents and N pyserf agents, the same windows, ratios.

Run: ``python bench/bench_event_cpu.py [--size 8] [--rounds 3] [--window 10]``.

How this works: two clusters run side by side on loopback (LAN profile, ``-log-level=info``,
default flags otherwise, every agent joined through its agent 0), each agent with an RPC
``stream`` subscriber for user events that reads every record (as the side-by-side bench's
client does). Each round measures, one window each: both clusters at rest (the same window),
then Go's agent 0 sending a steady 30 user events/s (64-byte payload, not coalesced) through
its RPC, then pyserf's the same. CPU per event is the loaded cluster's CPU
(``/proc/<pid>/stat`` utime + stime of every agent) minus its rest CPU over as long, divided
by the events sent (its system CPU, from ``stime``, in brackets). The loaded windows take
turns: each round starts one kind later. Printed per round and as the median of the
per-round ratios pyserf/Go (below 1 favours pyserf); compare ratios, not figures across
runs (the machine is shared).

``--baseline DIR`` adds a third cluster running the ``serf`` package found in DIR (a copy
of another tree's ``serf/`` with its compiled twins): a before/after pair in the same windows.
``--hold SECONDS`` instead keeps only the pyserf cluster under load that long and prints its
agents' pids, for a profiler (``py-spy record -p PID``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serf.cli.rpc_client import RPCClient
from serf.testing.bench_cluster import bench_agents, close_agents
from serf.testing.gopeer import PYSERF_COMMAND, install_go_serf

CLK_TCK = os.sysconf("SC_CLK_TCK")
EVENTS_PER_SECOND = 30


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime + stime, stime) of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[12]) / CLK_TCK


class Cluster:
    """N agents of one kind, joined through agent 0, each with a user-event stream reader."""

    def __init__(self, kind: str, size: int, go_bin: Path, baseline: str = "") -> None:
        self.kind = kind
        command: list[str] | None = None
        if kind == "py":
            command = list(PYSERF_COMMAND)
        elif kind == "base":  # another tree's serf package first on the path
            command = ["env", f"PYTHONPATH={baseline}", *PYSERF_COMMAND]
        self.agents = bench_agents(kind, size, go_bin, command)
        self.clients: list[RPCClient] = []
        self.readers: list[asyncio.Task[None]] = []
        self.received = 0

    async def start(self) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda a: a.start(120.0, 15.0), self.agents))
        self.clients = [await RPCClient.connect(a.rpc_addr) for a in self.agents]
        seed = self.agents[0].bind
        await asyncio.gather(*(c.join([seed]) for c in self.clients[1:]))
        size = len(self.agents)
        deadline = time.monotonic() + 120
        while True:
            views = await asyncio.gather(*(c.members() for c in self.clients))
            if all(sum(m.status == "alive" for m in view) == size for view in views):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}: not all see all after 120 s")
            await asyncio.sleep(0.1)
        for client in self.clients:
            sub = await client.stream("user")
            self.readers.append(asyncio.create_task(self._read(sub)))

    async def _read(self, sub: object) -> None:
        async for _ in sub:  # type: ignore[attr-defined]
            self.received += 1

    def pids(self) -> list[int]:
        return [a.proc.pid for a in self.agents if a.proc is not None]

    def cpu(self) -> tuple[float, float]:
        """(CPU, system CPU) seconds of all agents."""
        both = [cpu_seconds(pid) for pid in self.pids()]
        return sum(c for c, _ in both), sum(s for _, s in both)

    async def load(self, seconds: float) -> int:
        """Send 30 events/s through agent 0 for ``seconds``; the count sent."""
        t0, count = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            await self.clients[0].user_event(f"load{count % 8}", b"y" * 64, False)
            count += 1
            await asyncio.sleep(max(0.0, t0 + count / EVENTS_PER_SECOND - time.monotonic()))
        return count

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await close_agents(self.agents, self.clients)


async def loaded_cpu_per_event(
    cluster: Cluster, window: float, rest_rate: tuple[float, float]
) -> tuple[float, float]:
    """ms of cluster CPU and of its system CPU per event over one loaded window (plus 2 s
    for the last gossip)."""
    (cpu0, sys0), t0 = cluster.cpu(), time.monotonic()
    count = await cluster.load(window)
    await asyncio.sleep(2)
    (cpu1, sys1), wall = cluster.cpu(), time.monotonic() - t0
    return (
        (cpu1 - cpu0 - rest_rate[0] * wall) / count * 1000,
        (sys1 - sys0 - rest_rate[1] * wall) / count * 1000,
    )


async def measure(args: argparse.Namespace) -> None:
    go_bin = install_go_serf()
    kinds = ["py"] if args.hold else ["go", "py"] + (["base"] if args.baseline else [])
    clusters = {k: Cluster(k, args.size, go_bin, args.baseline) for k in kinds}
    try:
        for cluster in clusters.values():
            await cluster.start()
        if args.hold:
            py = clusters["py"]
            print("pids:", " ".join(map(str, py.pids())), flush=True)
            await py.load(args.hold)
            return
        ratios: dict[str, list[float]] = {k: [] for k in kinds if k != "go"}
        for rnd in range(args.rounds):
            await asyncio.sleep(3)  # earlier gossip settles
            before = {k: c.cpu() for k, c in clusters.items()}
            t0 = time.monotonic()
            await asyncio.sleep(args.window)
            wall = time.monotonic() - t0
            rest = {}
            for kind, cluster in clusters.items():
                cpu, sys_cpu = cluster.cpu()
                rest[kind] = ((cpu - before[kind][0]) / wall, (sys_cpu - before[kind][1]) / wall)
            per_event, sys_per_event = {}, {}
            # the loaded windows in turn, starting one later each round (no kind always first)
            for i in range(len(kinds)):
                kind = kinds[(rnd + i) % len(kinds)]
                per_event[kind], sys_per_event[kind] = await loaded_cpu_per_event(
                    clusters[kind], args.window, rest[kind]
                )
                await asyncio.sleep(3)
            for kind in ratios:
                ratios[kind].append(per_event[kind] / per_event["go"])
            print(
                f"round {rnd}: CPU/event (ms, system CPU in brackets) "
                + ", ".join(f"{k} {per_event[k]:.2f} ({sys_per_event[k]:.2f})" for k in kinds)
                + "; rest (cluster ms/s) "
                + ", ".join(f"{k} {v[0] * 1000:.1f}" for k, v in rest.items()),
                flush=True,
            )
        for kind, values in ratios.items():
            print(
                f"N={args.size}: {kind}/Go CPU per event, median of {len(values)} rounds: "
                f"{statistics.median(values):.2f}x (range {min(values):.2f}-{max(values):.2f})"
            )
        if "base" in ratios:
            pairs = [p / b for p, b in zip(ratios["py"], ratios["base"], strict=True)]
            print(f"N={args.size}: py/base, median: {statistics.median(pairs):.2f}x")
        received = {k: c.received for k, c in clusters.items()}
        print(f"stream records read: {received}", file=sys.stderr)
    finally:
        for cluster in clusters.values():
            await cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=8, help="agents per cluster")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument(
        "--baseline", default="", help="also run pyserf from this tree (a copy of serf/)"
    )
    parser.add_argument("--hold", type=float, default=0.0, help="pyserf only, for a profiler")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
