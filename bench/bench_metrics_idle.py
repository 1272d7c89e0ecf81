"""Idle CPU per serf node with metrics on against metrics off, measured side by side.

Run: ``python bench/bench_metrics_idle.py [--nodes 4] [--window 30] [--warmup 5]``.

How this works: two loopback clusters of ``--nodes`` serf nodes (``local()`` preset), each
node its own process, run at the same time: one records no metrics (``metrics=None``, the
cores' samples are dropped by the driver), the other records every sample into an in-memory
sink and a statsd sink aimed at a UDP socket nobody reads (as an agent with ``-statsd``).
Both are measured over the same wall-clock window (utime + stime from ``/proc``), so the
machine's load affects both alike; the figure is the ratio on/off. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import socket
import subprocess
import sys
import time

from bench_idle import cpu_seconds


async def _node_main(index: int, port: int, seed: str | None, metrics_on: bool, sink: int) -> None:
    from serf.address import Address
    from serf.config import SerfConfig, local
    from serf.metrics import InmemSink, Metrics, StatsdSink
    from serf.runtime.serf import Serf

    ml = dataclasses.replace(local(f"n{index}"), bind_addr="127.0.0.1", bind_port=port)
    metrics = None
    if metrics_on:
        statsd = StatsdSink(Address("127.0.0.1", sink))
        statsd.start()
        metrics = Metrics([InmemSink(), statsd], service_name="serf-agent")
    node = await Serf.create(SerfConfig(f"n{index}", memberlist=ml), metrics=metrics)
    if seed is not None:
        await node.join([seed])
    print("ready", flush=True)
    await asyncio.Event().wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(nodes: int, metrics_on: bool, sink: int) -> list[subprocess.Popen[str]]:
    procs: list[subprocess.Popen[str]] = []
    seed: str | None = None
    for i in range(nodes):
        port = _free_port()
        cmd = [sys.executable, __file__, "--node", str(i), "--port", str(port)]
        cmd += ["--sink", str(sink)]
        if metrics_on:
            cmd.append("--on")
        if seed is not None:
            cmd += ["--seed", seed]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        if "ready" not in line:
            raise RuntimeError(f"node {i} did not start")
        procs.append(proc)
        if seed is None:
            seed = f"127.0.0.1:{port}"
    return procs


def run(nodes: int, window: float, warmup: float) -> tuple[float, float]:
    """CPU seconds per node over ``window``: (metrics off, metrics on)."""
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    sink = blackhole.getsockname()[1]
    off = _spawn(nodes, False, sink)
    on = _spawn(nodes, True, sink)
    try:
        time.sleep(warmup)
        pids_off, pids_on = [p.pid for p in off], [p.pid for p in on]
        start_off = [cpu_seconds(p) for p in pids_off]
        start_on = [cpu_seconds(p) for p in pids_on]
        time.sleep(window)
        end_off = [cpu_seconds(p) for p in pids_off]
        end_on = [cpu_seconds(p) for p in pids_on]
    finally:
        for proc in off + on:
            proc.kill()
        for proc in off + on:
            proc.wait(timeout=10)
        blackhole.close()
    cpu_off = sum(e - s for s, e in zip(start_off, end_off, strict=True)) / nodes
    cpu_on = sum(e - s for s, e in zip(start_on, end_on, strict=True)) / nodes
    return cpu_off, cpu_on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--node", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sink", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--on", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node >= 0:
        with asyncio.Runner() as runner, contextlib.suppress(KeyboardInterrupt):
            runner.run(_node_main(args.node, args.port, args.seed, args.on, args.sink))
        return
    cpu_off, cpu_on = run(args.nodes, args.window, args.warmup)
    pct = lambda c: 100 * c / args.window  # noqa: E731
    print(f"| metrics | CPU per node over {args.window:.0f} s |")
    print("|---|---|")
    print(f"| off (baseline) | {cpu_off:.3f} s ({pct(cpu_off):.2f} % of a core) |")
    print(f"| on (in-memory + statsd) | {cpu_on:.3f} s ({pct(cpu_on):.2f} % of a core) |")
    print(f"on/off = {cpu_on / cpu_off:.3f} ({100 * (cpu_on / cpu_off - 1):+.1f} %)")


if __name__ == "__main__":
    main()
