"""Go serf v0.11.0 agents and pyserf agents side by side: the same scenarios, one run, ratios.

Run: ``python bench/compare.py [--sizes 16 32] [--rest 60] [--load 20] [--write-docs]``.

How this works: for each cluster size N and each kind (Go's ``serf agent``, then ours), N
agents start on loopback (127.0.0.1, own ports, LAN profile, ``-log-level=info``, default
flags otherwise) and every agent joins through agent 0. Then, measured the same way for both:

* ``converge``: from the joins to every agent listing N alive members (RPC ``members``);
* ``event``: from a user event sent through agent 0 to its arrival on the RPC ``stream`` of
  every agent (the last arrival);
* ``rest CPU``: CPU seconds per agent per minute over ``--rest`` seconds with nothing to do
  (``/proc/<pid>/stat`` utime + stime);
* ``CPU/event``: CPU seconds of the whole cluster per user event while agent 0 sends a steady
  30 events/s for ``--load`` seconds, minus the cluster's rest CPU over the same time;
* ``RSS``: resident memory per agent (``/proc/<pid>/status`` VmRSS), median;
* ``detect``: from SIGKILL of agent N-1 to every other agent listing it ``failed``.

Printed side by side with the ratio pyserf/Go (below 1 is better for pyserf). ``--write-docs``
replaces the "Go serf side by side" section of docs/performance.md and writes the plot
docs/compare.png (matplotlib). Linux only (``/proc``). Timings are wall clock on a shared
machine: compare the ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from serf.cli.rpc_client import RPCClient
from serf.testing.gopeer import PYSERF_COMMAND, GoSerfAgent, install_go_serf

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "compare.png"
HEADING = "## Go serf side by side"
EVENTS_PER_SECOND = 30


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


@dataclass
class Result:
    """One kind at one size."""

    kind: str
    size: int
    figures: dict[str, float] = field(default_factory=dict)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took (RuntimeError after ``timeout``)."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class Bench:
    def __init__(self, kind: str, size: int, go_bin: Path) -> None:
        self.kind, self.size = kind, size
        command = None if kind == "go" else PYSERF_COMMAND
        self.agents = [
            GoSerfAgent(
                name=f"{kind}{i}",
                binary=go_bin,
                command=command,
                profile="lan",
                extra_args=("-log-level=info",),
            )
            for i in range(size)
        ]
        self.clients: list[RPCClient] = []

    def pids(self, agents: list[GoSerfAgent] | None = None) -> list[int]:
        return [a.proc.pid for a in (agents or self.agents) if a.proc is not None]

    def cluster_cpu(self, agents: list[GoSerfAgent] | None = None) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids(agents))

    async def alive_everywhere(self, n: int, clients: list[RPCClient]) -> bool:
        views = await asyncio.gather(*(c.members() for c in clients))
        return all(sum(m.status == "alive" for m in view) == n for view in views)

    async def run(self, rest: float, load: float) -> Result:
        result = Result(self.kind, self.size)
        figures = result.figures
        # four at a time: 32 Python interpreters starting at once on two cores would starve
        # the CLI probes that wait for them
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda a: a.start(120.0, 15.0), self.agents))
        self.clients = [await RPCClient.connect(a.rpc_addr) for a in self.agents]
        seed = self.agents[0].bind
        start = time.monotonic()
        await asyncio.gather(*(c.join([seed]) for c in self.clients[1:]))
        await until(lambda: self.alive_everywhere(self.size, self.clients), 120, "all to see all")
        figures["converge_s"] = time.monotonic() - start

        # one user event, timed to its arrival on every agent's stream
        streams = [await c.stream("user") for c in self.clients]
        arrivals: list[float] = []

        async def arrival(sub: object) -> None:
            async for rec in sub:  # type: ignore[attr-defined]
                if rec.get("Name") == "probe":
                    arrivals.append(time.monotonic())
                    return

        waiters = [asyncio.create_task(arrival(s)) for s in streams]
        sent = time.monotonic()
        await self.clients[0].user_event("probe", b"x" * 64, False)
        await asyncio.wait_for(asyncio.gather(*waiters), 60)
        figures["event_s"] = max(arrivals) - sent
        for sub in streams:
            await sub.stop()  # type: ignore[attr-defined]

        # rest
        await asyncio.sleep(3)  # let the event's gossip and the stream teardown settle
        cpu0, t0 = self.cluster_cpu(), time.monotonic()
        await asyncio.sleep(rest)
        rest_cpu, rest_wall = self.cluster_cpu() - cpu0, time.monotonic() - t0
        figures["rest_cpu_ms_per_agent_min"] = rest_cpu / self.size / rest_wall * 60 * 1000
        figures["rss_mib"] = statistics.median(rss_mib(pid) for pid in self.pids())

        # steady user events
        cpu0, t0, count = self.cluster_cpu(), time.monotonic(), 0
        while time.monotonic() - t0 < load:
            await self.clients[0].user_event(f"load{count % 8}", b"y" * 64, False)
            count += 1
            next_at = t0 + count / EVENTS_PER_SECOND
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.sleep(2)  # the last events' gossip
        load_cpu, load_wall = self.cluster_cpu() - cpu0, time.monotonic() - t0
        extra = load_cpu - rest_cpu / rest_wall * load_wall
        figures["cpu_ms_per_event"] = extra / count * 1000

        # failure detection
        victim = self.agents[-1]
        others = self.clients[:-1]
        await self.clients[-1].close()
        start = time.monotonic()
        victim.kill()

        async def seen_failed() -> bool:
            views = await asyncio.gather(*(c.members() for c in others))
            return all(
                any(m.name == victim.name and m.status == "failed" for m in view) for view in views
            )

        await until(seen_failed, 120, f"{victim.name} failed everywhere")
        figures["detect_s"] = time.monotonic() - start
        return result

    async def close(self) -> None:
        for client in self.clients:
            try:
                await client.close()
            except Exception:  # best effort at the end
                pass
        for agent in self.agents:
            agent.stop()


ROWS = [
    ("converge_s", "all see all after joining one seed", "s"),
    ("event_s", "user event reaches every agent", "s"),
    ("detect_s", "all mark a SIGKILLed agent failed", "s"),
    ("rest_cpu_ms_per_agent_min", "CPU per agent at rest", "ms/min"),
    ("cpu_ms_per_event", f"CPU per user event, cluster ({EVENTS_PER_SECOND}/s)", "ms"),
    ("rss_mib", "resident memory per agent (median)", "MiB"),
]


def table(results: list[Result], sizes: list[int]) -> str:
    by = {(r.kind, r.size): r.figures for r in results}
    lines = [
        "| scenario | N | Go serf v0.11.0 | pyserf | pyserf / Go |",
        "|---|---|---|---|---|",
    ]
    for key, text, unit in ROWS:
        for n in sizes:
            go, py = by[("go", n)][key], by[("py", n)][key]
            ratio = py / go if go > 0 else float("inf")
            lines.append(f"| {text} | {n} | {go:.3g} {unit} | {py:.3g} {unit} | {ratio:.2f} |")
    return "\n".join(lines)


def plot(results: list[Result], sizes: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r.kind, r.size): r.figures for r in results}
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for ax, (key, text, unit) in zip(axes.flat, ROWS, strict=True):
        width = 0.38
        xs = range(len(sizes))
        ax.bar([x - width / 2 for x in xs], [by[("go", n)][key] for n in sizes], width,
               label="Go serf v0.11.0")  # fmt: skip
        ax.bar([x + width / 2 for x in xs], [by[("py", n)][key] for n in sizes], width,
               label="pyserf")  # fmt: skip
        ax.set_xticks(list(xs), [f"N={n}" for n in sizes])
        ax.set_title(text, fontsize=9)
        ax.set_ylabel(unit)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Go serf and pyserf agents on loopback, LAN profile (one run)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    section = (
        f"{HEADING}\n\n"
        "`python bench/compare.py --write-docs`: N Go serf v0.11.0 agents, then N pyserf agents,\n"
        "on loopback with the LAN profile and default flags, one run on the shared 2-core\n"
        "development machine; each figure is measured the same way for both kinds (see the\n"
        "script's docstring). Ratios below 1 favour pyserf.\n\n"
        f"{text}\n\n![Go serf and pyserf side by side](compare.png)\n"
    )
    if HEADING in doc:
        start = doc.index(HEADING)
        end = doc.find("\n## ", start + len(HEADING))
        doc = doc[:start] + section + (doc[end + 1 :] if end != -1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    DOCS.write_text(doc)


async def main_async(args: argparse.Namespace) -> list[Result]:
    go_bin = install_go_serf()
    results = []
    for size in args.sizes:
        for kind in ("go", "py"):
            bench = Bench(kind, size, go_bin)
            try:
                print(f"== {kind} N={size}", file=sys.stderr, flush=True)
                result = await bench.run(args.rest, args.load)
                print(f"   {result.figures}", file=sys.stderr, flush=True)
                results.append(result)
            finally:
                await bench.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--rest", type=float, default=60.0, help="rest window, seconds")
    parser.add_argument("--load", type=float, default=20.0, help="30 events/s for this long")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results = asyncio.run(main_async(args))
    text = table(results, args.sizes)
    print(text)
    if args.write_docs:
        plot(results, args.sizes)
        write_docs(text)


if __name__ == "__main__":
    main()
