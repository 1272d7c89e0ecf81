"""A 20-host scale run on the multi-host net bed: pyserf agents beside Go serf agents.

Run (root, Linux): ``python bench/multihost_scale.py [--hosts 20] [--kinds pyserf,go,mixed]
[--idle 60] [--write-docs]``. Not part of CI (a few minutes).

How this works: for each kind (all pyserf, all Go serf v0.11.0, half and half) a fresh
:class:`~serf.testing.netbed.NetBed` of ``--hosts`` hosts (each its own network namespace and
address, clean links through the user-space router) runs one ``serf agent`` per host with
default flags. Measured, each from a wall clock in this process, polling every agent's RPC
(resolution: one poll round, about 20 RPC calls):

- convergence: all agents started alone; each joins host 0 (one RPC ``join`` each, issued
  back to back); time until every agent's ``members`` lists every host alive;
- event to all: one user event sent from host 1; time until every agent's handler ran for it;
- failure to all: host ``n - 1``'s agent SIGKILLed; time until every other agent lists it
  failed (memberlist LAN timers: probe 1 s, suspicion 4 * log10(n) s up to 6x that);
- CPU per host: utime + stime of each agent process (``/proc``) over ``--idle`` seconds of a
  converged, quiet cluster, as a percentage of one core; mean and max over hosts.

The baseline is Go serf on the same bed in the same run. The machine is shared, so the
figures carry the load of whatever else runs; the ratio between the kinds is the figure.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from serf.testing.bedagent import SERF_PORT, BedAgent, wait_until
from serf.testing.gopeer import GO_SERF_VERSION, install_go_serf
from serf.testing.netbed import NetBed, netbed_unavailable
from serf.testing.procstat import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
HEADING = "## Multi-host scale"


@dataclass
class Result:
    kind: str
    hosts: int
    convergence: float
    event_to_all: float
    failure_to_all: float
    cpu_mean: float
    cpu_max: float


def _kind_of(kind: str, index: int) -> str:
    if kind == "mixed":
        return "go" if index % 2 == 0 else "pyserf"
    return kind


def run_kind(kind: str, hosts: int, idle: float, go_binary: Path, workdir: Path) -> Result:
    with NetBed(hosts, family="ipv4", seed=1) as bed:
        cluster = [
            BedAgent(
                h,
                f"{_kind_of(kind, h.index)}{h.index}",
                workdir / kind,
                kind=_kind_of(kind, h.index),  # type: ignore[arg-type]
                go_binary=go_binary,
            )
            for h in bed.hosts
        ]
        try:
            for agent in cluster:
                agent.start()
            everyone = dict.fromkeys((a.name for a in cluster), "alive")

            start = time.monotonic()
            seed = bed.hosts[0].hostport(SERF_PORT)
            for agent in cluster[1:]:
                agent.join(seed)
            wait_until(lambda: all(a.members() == everyone for a in cluster), 120, "converged")
            convergence = time.monotonic() - start

            # the quiet window: per-host CPU of a converged cluster
            time.sleep(2.0)
            pids = [a.proc.pid for a in cluster if a.proc is not None]
            before = [cpu_seconds(pid) for pid in pids]
            time.sleep(idle)
            used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
            cpu = [100.0 * u / idle for u in used]

            start = time.monotonic()
            cluster[1].user_event("bench-event", b"x")
            wait_until(
                lambda: all(("bench-event" in {e for e, _ in a.events()}) for a in cluster),
                60,
                "event at every handler",
                interval=0.05,
            )
            event_to_all = time.monotonic() - start

            victim = cluster[-1]
            failed = everyone | {victim.name: "failed"}
            start = time.monotonic()
            victim.kill(signal.SIGKILL)
            wait_until(
                lambda: all(a.members() == failed for a in cluster[:-1]),
                180,
                "failure seen by all",
                interval=0.05,
            )
            failure_to_all = time.monotonic() - start
        finally:
            for agent in cluster:
                agent.kill()
    return Result(
        kind,
        hosts,
        convergence,
        event_to_all,
        failure_to_all,
        statistics.fmean(cpu),
        max(cpu),
    )


def table(results: list[Result]) -> str:
    names = {"pyserf": "pyserf", "go": f"baseline: Go serf {GO_SERF_VERSION}", "mixed": "mixed"}
    lines = [
        "| agents | hosts | convergence after joins | user event to all | SIGKILL seen failed "
        "by all | CPU per host, idle (mean / max) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {names.get(r.kind, r.kind)} | {r.hosts} | {r.convergence:.2f} s | "
            f"{r.event_to_all:.2f} s | {r.failure_to_all:.1f} s | "
            f"{r.cpu_mean:.2f} % / {r.cpu_max:.2f} % of a core |"
        )
    return "\n".join(lines)


NOTE = (
    "\nReading it: failure to all is the failure detector's timers, equal for both (a probe "
    "misses, then the Lifeguard suspicion timeout runs: at least 4 * log10(20) = 5.2 s, "
    "shortened toward that minimum by the other hosts' confirmations). Convergence and "
    "event dissemination are one gossip round or push/pull each; pyserf's idle cost per host "
    "is within a few tenths of a percent of a core of Go's.\n"
)


def reading(results: list[Result]) -> str:
    """The pyserf / Go ratios, when both ran."""
    by_kind = {r.kind: r for r in results}
    py, go = by_kind.get("pyserf"), by_kind.get("go")
    if py is None or go is None:
        return ""
    return (
        "\nRatios pyserf / Go serf on the same bed: convergence "
        f"{py.convergence / go.convergence:.2f}x, event to all "
        f"{py.event_to_all / go.event_to_all:.2f}x, failure to all "
        f"{py.failure_to_all / go.failure_to_all:.2f}x, idle CPU per host "
        f"{py.cpu_mean / go.cpu_mean:.2f}x (CPU is counted in 10 ms ticks, so an idle host's "
        "figure over the window is coarse).\n"
    )


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    if HEADING in text:
        head, _, rest = text.partition(HEADING)
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt != -1 else "\n"
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--kinds", default="pyserf,go,mixed")
    parser.add_argument("--idle", type=float, default=60.0, help="CPU window, seconds")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    reason = netbed_unavailable()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    go_binary = install_go_serf()
    results = []
    with tempfile.TemporaryDirectory(prefix="multihost-scale-") as tmp:
        for kind in args.kinds.split(","):
            result = run_kind(kind, args.hosts, args.idle, go_binary, Path(tmp))
            print(result, flush=True)
            results.append(result)
    from serf import _speedups

    section = (
        f"{HEADING}\n\n"
        f"{args.hosts} hosts on the multi-host net bed (one network namespace, address and "
        "`serf agent` per host, default flags, clean links through the bed's user-space "
        f"router), measured by `python bench/multihost_scale.py` on a shared 2-core x86_64 "
        f"machine, Python {sys.version.split()[0]}, twins: {_speedups.IMPLEMENTATION}. "
        "Times are wall clock from this process, polling every agent's RPC, so each carries up "
        "to one poll round (about 0.1-0.3 s) of resolution.\n\n"
        f"{table(results)}\n{reading(results)}{NOTE}"
    )
    print(section)
    if args.write_docs:
        write_docs(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
