"""Simulated serf layer: user-event dissemination and query round trip against cluster size.

Run: ``python bench/bench_serf_sim.py [--sizes 10 100 1000] [--write-docs]``.

How this works: N serf cores (Go's LAN timings, compression off) run in the seeded
simulator (1 ms +- 0.5 ms one-way links, no loss). After the cluster converges (every node
knows all N members), one node sends a user event; we record the virtual time at which 99%
and 100% of the nodes delivered it, over several events from different origins (median).
Then a node sends a query that every node answers; we record the virtual time to the first
response, to 99% of responses and to all N. Beside the figures: serf's convergence-simulator
model (anchors 3.1: x = ln((N+1) f/(1-f)) / (fanout/2) rounds of 0.2 s; its 99.99% column
stands in for "100%"). Virtual time is protocol time, not CPU time; CPU seconds are printed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from serf.core import io as sio
from serf.testing.serf_sim import SerfSimulation, serf_sim_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
HEADING = "## Simulated serf layer"
MODEL_9999 = {10: 1.6, 30: 1.8, 100: 2.0, 1000: 2.2, 10000: 2.6}  # anchors 3.1, 0% loss


def model_time(n: int, f: float, fanout: int = 3, interval: float = 0.2) -> float:
    """The reference model's time to reach fraction ``f`` of ``n`` nodes (anchors 3.1)."""
    return math.log((n + 1) * f / (1 - f)) / (fanout / 2) * interval


def build(n: int, seed: int) -> SerfSimulation:
    sim = SerfSimulation(seed)
    for i in range(n):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name), join=[f"n{sim.rng.randrange(i)}"] if i else ())
        if i % 50 == 0:
            sim.run_for(0.5)

    def converged(_: object) -> bool:
        return all(len(sim.serf(x).members()) == n for x in sim.nodes)

    took = sim.run_until_converged(converged, 600.0, 1.0)
    if took is None:
        raise RuntimeError(f"{n} nodes did not converge")
    sim.run_for(5.0)
    return sim


def percentile_time(times: list[float], n: int, frac: float) -> float:
    times = sorted(times)
    k = max(1, math.ceil(frac * n))
    return times[k - 1] if len(times) >= k else math.inf


def measure(n: int, seed: int = 1, events: int = 5) -> dict[str, Any]:
    cpu0 = time.process_time()
    sim = build(n, seed)
    cpu_build = time.process_time() - cpu0
    got: dict[str, float] = {}
    tag = [""]

    def on_event(now: float, name: str, eff: Any) -> None:
        if isinstance(eff, sio.UserEventReceived) and eff.name == tag[0]:
            got.setdefault(name, now)
        elif isinstance(eff, sio.QueryReceived):
            q = eff.query

            def answer() -> None:
                sim.request(name, lambda r: sio.RespondRequest(r, q, b"ok"))

            sim.at(now, answer)

    sim.on_serf_effect.append(on_event)
    p99: list[float] = []
    p100: list[float] = []
    for k in range(events):
        tag[0] = f"ev{k}"
        got.clear()
        origin = f"n{sim.rng.randrange(n)}"
        start = sim.now
        sim.user_event(origin, tag[0], b"payload")
        sim.run_for(20.0)
        times = [t - start for t in got.values()]
        p99.append(percentile_time(times, n, 0.99))
        p100.append(percentile_time(times, n, 1.0))
    origin = "n0"
    start = sim.now
    rid = sim.request(origin, lambda r: sio.QueryRequest(r, "rtt", b"", timeout=30.0))
    sim.run_for(31.0)
    resp: list[float] = []
    for t, eff in sim.events[origin]:
        if (
            isinstance(eff, sio.QueryResponseReceived)
            and eff.request_id == rid
            and eff.from_ != origin
        ):
            resp.append(t - start)
    cpu_total = time.process_time() - cpu0
    return {
        "n": n,
        "p99": statistics.median(p99),
        "p100": statistics.median(p100),
        "q_first": min(resp) if resp else math.inf,
        "q_p99": percentile_time(resp, n - 1, 0.99),
        "q_all": percentile_time(resp, n - 1, 1.0),
        "responses": len(resp),
        "cpu_build": cpu_build,
        "cpu_total": cpu_total,
    }


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        HEADING,
        "",
        "Virtual seconds in the simulator (`python bench/bench_serf_sim.py --write-docs`): serf",
        "cores with Go's LAN timings (gossip every 0.2 s to 3 peers, retransmit mult 4),",
        "compression off, links 1 ms +- 0.5 ms one way, no loss, seed 1; event figures are the",
        "median of 5 user events from random origins; the query is answered by every node. Model",
        "= serf's convergence-simulator formula (reference anchors 3.1, `_simulator.js`), whose",
        "99.99% column stands in for 100%.",
        "",
        "| N | event to 99% | model 99% | event to 100% | model 99.99% "
        "| query: first / 99% / all remote responses | CPU (build + run) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r["n"]
        model100 = MODEL_9999.get(n, model_time(n, 0.9999))
        lines.append(
            f"| {n} | {r['p99']:.2f} s | {model_time(n, 0.99):.2f} s | {r['p100']:.2f} s | "
            f"{model100:.1f} s | {r['q_first']:.3f} / {r['q_p99']:.2f} / {r['q_all']:.2f} s "
            f"({r['responses']}/{n - 1}) | {r['cpu_build']:.0f} + "
            f"{r['cpu_total'] - r['cpu_build']:.0f} s |"
        )
    lines += [
        "",
        "Reading it: events ride memberlist gossip (each message retransmitted",
        "4 x ceil(log10(N+1)) times), so the time to reach everyone grows with log N, as the",
        "model says, and stays under it: the model counts a contact as useful half the time",
        "(its 0.5 factor), while here every gossip contact delivers and serf messages also",
        "piggyback on probe traffic. Query responses go straight back to the originator over",
        "UDP, so the last response lands about one dissemination time after the query is sent",
        "(plus up to one gossip interval). CPU is the simulator's (one core, compiled twins):",
        "building and converging 1000 nodes dominates; protocol time is virtual.",
        "",
    ]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    if HEADING in doc:
        head, _, rest = doc.partition(HEADING)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1 :] if nxt >= 0 else ""
        doc = head + text + ("\n" + tail if tail else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOCS.write_text(doc, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        row = measure(n, args.seed)
        print(row, flush=True)
        rows.append(row)
    text = render(rows)
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
