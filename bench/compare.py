"""Go serf v0.11.0 agents and pyserf agents side by side: the same scenarios, one run, ratios.

Run: ``python bench/compare.py [--sizes 16 32 64 128] [--rest 60] [--load 20] [--write-docs]``.

How this works: for each cluster size N and each kind (Go's ``serf agent``, then ours), N
agents start on loopback (127.0.0.1, own ports, LAN profile, ``-log-level=info``, default
flags otherwise), ``--batch`` at a time, each batch waiting until its agents' RPC answers a
``members``; then the cluster's CPU must settle (under 1% of a core per agent over a second)
before anything is measured, so start-up costs stay out of every figure. Every agent joins
through agent 0, all at once (at most ``--join-at-once``, 64, at a time: a pyserf seed serves
push/pulls one after another, and 127 at once did not all finish within the 10 s stream
timeout on the shared host). Then, measured the same way for both:

* ``converge``: from the joins to every agent having logged ``EventMemberJoin`` for all N
  members (and no later ``EventMemberFailed``/``Leave``); the agents' log files are read as they
  grow (every 50 ms), so watching 128 agents costs them nothing, where polling each one's
  ``members`` would load the very CPU being measured;
* ``join CPU``: the cluster's CPU from the joins to 5 s after convergence, minus its rest CPU
  over the same time, per agent; ``join CPU wait``: the time each agent was runnable but
  waiting for a CPU during convergence (``/proc/<pid>/task/*/schedstat`` run delay), per agent;
* ``event``: from a user event sent through agent 0 to its arrival on the RPC ``stream`` of
  every agent (the last arrival); ``--events`` (15) events one after another, the median;
* ``rest CPU``: CPU over ``--rest`` seconds with nothing to do, per agent (ms per minute) and
  for the whole cluster (% of one core);
* ``load CPU``: the whole cluster's CPU while agent 0 sends a steady 30 user events/s for
  ``--load`` seconds (% of one core); ``CPU/event``: the cluster's CPU per user event, from the
  start of the load until the cluster is back at its rest rate (at most 30 s later), minus its
  rest CPU over the same time;
* ``RSS``: resident memory per agent (``/proc/<pid>/status`` VmRSS), median;
* ``detect``: from SIGKILL of an agent to every other agent having logged it failed; ``--kills``
  agents (6) one after another (N-1, then N-2, ...), each once the previous is failed
  everywhere: the median.

Every CPU figure is the time the agents' threads ran on a CPU, in nanoseconds
(``/proc/<pid>/task/*/schedstat``, both kinds alike): ``utime + stime`` counts 10 ms ticks per
process, as coarse as a small cluster's whole join (it put pyserf's join at 2.48x Go's at 16
agents in a run where the nanosecond count said 1.02x).

Printed side by side with the ratio pyserf/Go (below 1 is better for pyserf). ``--write-docs``
replaces the "Go serf side by side" table of docs/performance.md (its "Reading" notes below the
table are kept) and draws one plot per figure against N, docs/compare_<figure>.png (matplotlib);
``--loop asyncio`` runs the pyserf agents on asyncio's loop, as a plain ``pip install pyserf``
has them (without it they take uvloop when it is installed, as in a development venv).
``--docs-section TITLE`` instead writes the run's table as its own "### TITLE" subsection at the
end of that section (replacing one of the same title), leaving the main table and plots alone:
for a re-run at fewer sizes.
Linux only (``/proc``). Timings are wall clock on a shared machine: compare the ratios of one
run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from serf.cli.rpc_client import RPCClient, RPCError
from serf.testing.agent_probe import rss_mib
from serf.testing.bench_cluster import bench_agents, close_agents, start_agents
from serf.testing.gopeer import PYSERF_COMMAND, install_go_serf
from serf.testing.logwatch import LogWatch, watch
from serf.testing.procstat import on_cpu, run_delay

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
HEADING = "## Go serf side by side"
TABLE_END = "<!-- end of the compare.py table -->"
EVENTS_PER_SECOND = 30


@dataclass
class Result:
    """One kind at one size."""

    kind: str
    size: int
    figures: dict[str, float] = field(default_factory=dict)


class Bench:
    def __init__(self, kind: str, size: int, go_bin: Path, loop: str = "") -> None:
        self.kind, self.size = kind, size
        command: list[str] | None = None
        if kind == "py":  # (env execs the agent: the pid stays the agent's)
            command = ["env", f"SERF_EVENT_LOOP={loop}", *PYSERF_COMMAND] if loop else None
            command = command or list(PYSERF_COMMAND)
        self.agents = bench_agents(kind, size, go_bin, command)
        self.clients: list[RPCClient] = []

    def pids(self) -> list[int]:
        return [a.proc.pid for a in self.agents if a.proc is not None and a.proc.poll() is None]

    def cluster_cpu(self) -> float:
        """Seconds on a CPU of every live agent's threads (schedstat nanoseconds)."""
        return sum(on_cpu(pid) for pid in self.pids())

    async def cpu_rate(self, seconds: float = 1.0) -> float:
        """The cluster's CPU over the next ``seconds`` (cores)."""
        c0, t0 = self.cluster_cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        return (self.cluster_cpu() - c0) / (time.monotonic() - t0)

    async def start(self, batch: int) -> float:
        """Start the agents ``batch`` at a time, then wait for the CPU to settle; seconds."""
        began = time.monotonic()
        for first in range(0, self.size, batch):
            group = self.agents[first : first + batch]
            self.clients += await start_agents(group, at_once=len(group), timeout=300.0)
        # settled: under 1% of a core per agent over a second, twice in a row (at most 180 s)
        calm = 0
        while calm < 2 and time.monotonic() - began < 180:
            calm = calm + 1 if await self.cpu_rate() < 0.01 * self.size else 0
        return time.monotonic() - began

    async def run(
        self, rest: float, load: float, batch: int, join_at_once: int, kills: int, events: int
    ) -> Result:
        result = Result(self.kind, self.size)
        figures = result.figures
        figures["start_s"] = await self.start(batch)
        watches = [LogWatch(a.log_path) for a in self.agents]
        for w in watches:
            w.poll()

        # join through agent 0, all at once
        seed = self.agents[0].bind
        pids = self.pids()
        cpu0, wait0, t0 = self.cluster_cpu(), sum(map(run_delay, pids)), time.monotonic()
        at_once = asyncio.Semaphore(join_at_once)

        async def join(client: RPCClient) -> None:
            async with at_once:
                await client.join([seed])

        joins = asyncio.gather(*(join(c) for c in self.clients[1:]))
        converge = await watch(watches, lambda w: w.alive() == self.size, 300)
        await joins
        figures["converge_s"] = max(converge)
        figures["converge_median_s"] = statistics.median(converge)
        figures["join_wait_ms_per_agent"] = (sum(map(run_delay, pids)) - wait0) / self.size * 1e3
        await asyncio.sleep(5)
        join_cpu, join_wall = self.cluster_cpu() - cpu0, time.monotonic() - t0

        # user events, one at a time, each timed to its arrival on every agent's stream; the
        # median of ``events`` (one event's time depends on where it lands in the 200 ms
        # gossip grid of the agents that carry it)
        streams = [await c.stream("user") for c in self.clients]
        times = []
        for n in range(events):
            arrivals: list[float] = []

            async def arrival(sub: object, name: str, arrivals: list[float] = arrivals) -> None:
                async for rec in sub:  # type: ignore[attr-defined]
                    if rec.get("Name") == name:
                        arrivals.append(time.monotonic())
                        return

            waiters = [asyncio.create_task(arrival(s, f"probe{n}")) for s in streams]
            sent = time.monotonic()
            await self.clients[0].user_event(f"probe{n}", b"x" * 64, False)
            await asyncio.wait_for(asyncio.gather(*waiters), 60)
            times.append(max(arrivals) - sent)
            await asyncio.sleep(0.5)  # the next event meets an idle cluster
        figures["event_s"] = statistics.median(times)
        for sub in streams:
            await sub.stop()  # type: ignore[attr-defined]

        # rest
        await asyncio.sleep(3)  # let the event's gossip and the stream teardown settle
        cpu0, t0 = self.cluster_cpu(), time.monotonic()
        await asyncio.sleep(rest)
        rest_rate = (self.cluster_cpu() - cpu0) / (time.monotonic() - t0)  # cores
        figures["rest_cpu_ms_per_agent_min"] = rest_rate / self.size * 60 * 1000
        figures["rest_cpu_cluster_pct"] = rest_rate * 100
        figures["rss_mib"] = statistics.median(rss_mib(pid) for pid in self.pids())
        figures["join_cpu_ms_per_agent"] = (join_cpu - rest_rate * join_wall) / self.size * 1e3

        # steady user events, then until the cluster is back at its rest rate
        cpu0, t0, count = self.cluster_cpu(), time.monotonic(), 0
        while time.monotonic() - t0 < load:
            await self.clients[0].user_event(f"load{count % 8}", b"y" * 64, False)
            count += 1
            next_at = t0 + count / EVENTS_PER_SECOND
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        sending = time.monotonic() - t0
        tail = time.monotonic()
        while time.monotonic() - tail < 30 and await self.cpu_rate() > 1.5 * rest_rate:
            pass
        extra = self.cluster_cpu() - cpu0 - rest_rate * (time.monotonic() - t0)
        figures["cpu_ms_per_event"] = extra / count * 1000
        # the demand: rest plus what the events cost per second of sending (a starved cluster
        # finishes some of that work after the sending stopped; it counts all the same)
        figures["load_cpu_cluster_pct"] = (rest_rate + extra / sending) * 100

        # failure detection: ``kills`` agents, one after another, each once all the others
        # have marked the previous one failed; the median (one kill's time depends on where
        # the victim happens to sit in each prober's shuffled probe order)
        times = []
        for k in range(1, kills + 1):
            victim = self.agents[-k]
            await self.clients.pop().close()
            start = time.monotonic()
            victim.kill()
            name = victim.name
            await watch(watches[:-k], lambda w, name=name: w.failed(name), 180)
            times.append(time.monotonic() - start)
        figures["detect_s"] = statistics.median(times)
        return result

    async def close(self) -> None:
        await close_agents(self.agents, self.clients)


ROWS = [
    ("converge_s", "all see all after joining one seed", "s"),
    ("converge_median_s", "the median agent sees all", "s"),
    ("event_s", "user event reaches every agent (median of the events)", "s"),
    ("detect_s", "all mark a SIGKILLed agent failed (median of the kills)", "s"),
    ("join_cpu_ms_per_agent", "CPU of the join storm, per agent", "ms"),
    ("join_wait_ms_per_agent", "waiting for a CPU until converged, per agent", "ms"),
    ("rest_cpu_ms_per_agent_min", "CPU per agent at rest", "ms/min"),
    ("rest_cpu_cluster_pct", "CPU of the whole cluster at rest", "% of a core"),
    (
        "load_cpu_cluster_pct",
        f"CPU of the whole cluster, {EVENTS_PER_SECOND} events/s",
        "% of a core",
    ),
    ("cpu_ms_per_event", "CPU per user event, whole cluster", "ms"),
    ("rss_mib", "resident memory per agent (median)", "MiB"),
]


def shown(value: float, unit: str) -> str:
    # a figure net of the rest CPU is negative when the "rest" was not at rest (a cluster busy
    # with false failures): no figure then
    return f"{value:.3g} {unit}" if value >= 0 else "n/a"


def table(results: list[Result], sizes: list[int]) -> str:
    by = {(r.kind, r.size): r.figures for r in results}
    lines = [
        "| scenario | N | Go serf v0.11.0 | pyserf | pyserf / Go |",
        "|---|---|---|---|---|",
    ]
    for key, text, unit in ROWS:
        for n in sizes:
            if ("go", n) not in by or ("py", n) not in by:
                continue
            go, py = by[("go", n)][key], by[("py", n)][key]
            ratio = f"{py / go:.2f}" if go > 0 and py >= 0 else "-"
            lines.append(f"| {text} | {n} | {shown(go, unit)} | {shown(py, unit)} | {ratio} |")
    return "\n".join(lines)


def plot_path(key: str) -> Path:
    return ROOT / "docs" / f"compare_{key}.png"


def plot(results: list[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, text, unit in ROWS:
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        for kind, label, style in (("go", "Go serf v0.11.0", "o-"), ("py", "pyserf", "s-")):
            points = sorted(
                (r.size, r.figures[key]) for r in results if r.kind == kind and r.figures[key] >= 0
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        sizes = sorted({r.size for r in results})
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("agents (N)")
        ax.set_ylabel(unit)
        ax.set_title(text, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot_path(key), dpi=80)
        plt.close(fig)


def write_section(text: str, when: str, title: str, doc: str) -> str:
    """``doc`` with the run's table as the subsection ``### title`` at the end of the side by
    side section (an existing subsection of that title is replaced)."""
    heading = f"### {title}"
    section = (
        f"{heading}\n\n`python bench/compare.py` (the main table's method), run {when}:\n\n{text}\n"
    )
    if heading in doc:
        start = doc.index(heading)
        end = doc.find("\n## ", start)
        nxt = doc.find("\n### ", start + len(heading))
        stop = min(x for x in (end, nxt, len(doc)) if x != -1)
        return doc[:start] + section + "\n" + doc[stop:].lstrip("\n")
    start = doc.index(HEADING)
    end = doc.find("\n## ", start + len(HEADING))
    if end == -1:
        return doc.rstrip("\n") + "\n\n" + section
    return doc[:end].rstrip("\n") + "\n\n" + section + doc[end:]


def write_docs(text: str, when: str) -> None:
    doc = DOCS.read_text()
    plots = " ".join(f"![{t}](compare_{k}.png)" for k, t, _ in ROWS)
    section = (
        f"{HEADING}\n\n"
        "`python bench/compare.py --write-docs`: N Go serf v0.11.0 agents, then N pyserf agents,\n"
        "on loopback with the LAN profile and default flags, one run on the shared 2-core\n"
        "development machine; each figure is measured the same way for both kinds (see the\n"
        f"script's docstring). Ratios below 1 favour pyserf. Run: {when}.\n\n"
        f"{text}\n\n{plots}\n\n{TABLE_END}\n"
    )
    if HEADING in doc:
        start = doc.index(HEADING)
        end = doc.find("\n## ", start + len(HEADING))
        old = doc[start : end + 1 if end != -1 else len(doc)]
        # the notes after the table are kept (a re-run replaces the table, not the reading)
        notes = old.split(TABLE_END + "\n", 1)[1] if TABLE_END in old else "\n"
        doc = doc[:start] + section + notes + (doc[end + 1 :] if end != -1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    DOCS.write_text(doc)


async def main_async(args: argparse.Namespace, failures: list[str]) -> list[Result]:
    go_bin = install_go_serf()
    results = []
    for size in args.sizes:
        for kind in args.kinds:
            bench = Bench(kind, size, go_bin, args.loop)
            try:
                print(f"== {kind} N={size}", file=sys.stderr, flush=True)
                result = await bench.run(
                    args.rest, args.load, args.batch, args.join_at_once, args.kills, args.events
                )
                figures = {k: round(v, 3) for k, v in result.figures.items()}
                print(f"   {figures}", file=sys.stderr, flush=True)
                results.append(result)
            except (RuntimeError, OSError, RPCError, TimeoutError) as exc:
                # one size failing (a join timing out, say) is a result too: note it, go on
                failures.append(f"{kind} at N={size} failed: {exc}".replace("\n", " "))
                print(f"   {failures[-1]}", file=sys.stderr, flush=True)
            finally:
                await bench.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--kinds", nargs="+", choices=("go", "py"), default=["go", "py"])
    parser.add_argument("--rest", type=float, default=60.0, help="rest window, seconds")
    parser.add_argument("--load", type=float, default=20.0, help="30 events/s for this long")
    parser.add_argument("--batch", type=int, default=8, help="agents started at a time")
    parser.add_argument("--join-at-once", type=int, default=64, help="concurrent join calls")
    parser.add_argument("--events", type=int, default=15, help="user events timed one by one")
    parser.add_argument("--kills", type=int, default=6, help="agents killed one after another")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="",
        help="the pyserf agents' event loop (SERF_EVENT_LOOP; default: uvloop when installed)",
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-section", metavar="TITLE", help="write the table as ### TITLE")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    failures: list[str] = []
    results = asyncio.run(main_async(args, failures))
    text = "\n\n".join([table(results, args.sizes), *failures])
    print(text)
    if args.docs_section:
        DOCS.write_text(write_section(text, when, args.docs_section, DOCS.read_text()))
    elif args.write_docs:
        plot(results)
        write_docs(text, when)


if __name__ == "__main__":
    main()
