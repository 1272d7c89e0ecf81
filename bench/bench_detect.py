"""Failure detection in phases: N Go serf v0.11.0 agents and N pyserf agents, many kills, ratios.

Run: ``python bench/bench_detect.py [--size 16] [--kills 6] [--rounds 2]``.

How this works: per round and per kind (the kinds take turns being first), N agents start on
loopback (LAN profile, ``-log-level=info``, default flags otherwise), join through agent 0 and
converge (every agent logged ``EventMemberJoin`` for all N). Then ``--kills`` agents are
SIGKILLed one after another (the last first), each once every survivor has logged it failed.
Each kill is split into the phases memberlist logs on every survivor (both kinds log Go's
lines; the logs are read as they grow, every 20 ms, so nothing polls the agents' RPC):

* ``suspect``: from the kill to the first ``Suspect X has failed, no acks received`` anywhere
  (a survivor's probe reached the victim in its shuffled probe order, plus the probe's own
  ``ProbeInterval``);
* ``timeout``: from there to the first ``Marking X as failed, suspect timeout reached (k peer
  confirmations)`` (Lifeguard's suspicion timeout, shortened by the confirmations: the line's
  count is kept);
* ``spread``: from there to the last survivor's ``EventMemberFailed`` (the dead message's
  gossip, or each survivor's own timer);
* ``all``: the sum, compare.py's ``detect`` figure.

Printed: the median of each phase over all kills of a kind and the ratio pyserf/Go. Where the
victim sits in each prober's probe order decides the ``suspect`` phase, so one kill says
little: compare.py's median of 3 kills moved between 0.90x and 1.16x Go's from run to run.
POSIX only (signals; the Go binary).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from serf.cli.rpc_client import RPCClient
from serf.testing.bench_cluster import bench_agents, close_agents, start_agents
from serf.testing.gopeer import PYSERF_COMMAND, GoSerfAgent, install_go_serf
from serf.testing.logwatch import LogTail, LogWatch, watch

SUSPECT = re.compile(rb"Suspect (\S+) has failed, no acks received")
MARKED = re.compile(rb"Marking (\S+) as failed, suspect timeout reached \((\d+) peer")
PHASES = ("suspect", "timeout", "spread", "all")


@dataclass
class Kill:
    """One kill's phases, seconds, and the confirmations each ``Marking`` line counted."""

    phases: dict[str, float]
    confirmations: list[int] = field(default_factory=list)


async def one_kill(agents: list[GoSerfAgent], watches: list[LogWatch], victim: GoSerfAgent) -> Kill:
    """Kill ``victim`` and time the phases on the ``agents`` (its survivors) until all of them
    logged it failed."""
    name = victim.name.encode()
    tails = [LogTail(a.log_path, from_end=True) for a in agents]
    firsts: dict[str, float] = {}
    confirmations: list[int] = []
    start = time.monotonic()

    async def follow() -> None:
        while True:
            now = time.monotonic() - start
            for tail in tails:
                for line in tail.lines():
                    m = SUSPECT.search(line)
                    if m and m.group(1) == name:
                        firsts.setdefault("suspect", now)
                    m = MARKED.search(line)
                    if m and m.group(1) == name:
                        confirmations.append(int(m.group(2)))
                        firsts.setdefault("marked", now)
            await asyncio.sleep(0.02)

    follower = asyncio.create_task(follow())
    victim.kill()
    try:
        took = await watch(watches, lambda w: w.failed(victim.name), 120)
    finally:
        follower.cancel()
    done = max(took)
    suspect = firsts.get("suspect", done)
    marked = firsts.get("marked", done)
    phases = {
        "suspect": suspect,
        "timeout": marked - suspect,
        "spread": done - marked,
        "all": done,
    }
    return Kill(phases, confirmations)


async def one_round(kind: str, size: int, kills: int, go_bin: Path) -> list[Kill]:
    agents = bench_agents(kind, size, go_bin, None if kind == "go" else PYSERF_COMMAND)
    clients: list[RPCClient] = []
    out: list[Kill] = []
    try:
        clients = await start_agents(agents)
        watches = [LogWatch(a.log_path) for a in agents]
        seed = agents[0].bind
        await asyncio.gather(*(c.join([seed]) for c in clients[1:]))
        await watch(watches, lambda w: w.alive() == size, 120)
        await asyncio.sleep(3)  # the join's gossip settles
        for k in range(1, kills + 1):
            await clients.pop().close()
            kill = await one_kill(agents[:-k], watches[:-k], agents[-k])
            shown = " ".join(f"{p} {kill.phases[p]:.2f}" for p in PHASES)
            print(f"  {kind} N={size} kill {k}: {shown} (confirmations {kill.confirmations})")
            out.append(kill)
            await asyncio.sleep(1)
        return out
    finally:
        await close_agents(agents, clients)


async def measure(args: argparse.Namespace) -> None:
    go_bin = install_go_serf()
    kinds = ["go", "py"]
    kills: dict[str, list[Kill]] = {k: [] for k in kinds}
    for rnd in range(args.rounds):
        for i in range(len(kinds)):
            kind = kinds[(rnd + i) % len(kinds)]
            kills[kind] += await one_round(kind, args.size, args.kills, go_bin)
    print(f"\nN={args.size}, {len(kills['go'])} kills of each kind; medians, seconds:")
    print("| phase | Go serf v0.11.0 | pyserf | pyserf / Go |")
    print("|---|---|---|---|")
    for phase in PHASES:
        go = statistics.median(k.phases[phase] for k in kills["go"])
        py = statistics.median(k.phases[phase] for k in kills["py"])
        print(f"| {phase} | {go:.2f} | {py:.2f} | {py / go:.2f} |")
    for kind in kinds:
        counts = [c for k in kills[kind] for c in k.confirmations]
        share = sum(c >= 2 for c in counts) / max(1, len(counts))
        print(f"{kind}: {len(counts)} Marking lines, {share:.0%} with 2 or more confirmations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--kills", type=int, default=6, help="kills per round and kind")
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
