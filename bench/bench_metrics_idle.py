"""Idle cost per serf node with metrics on against metrics off: paired windows, a CI.

Run::

    python bench/bench_metrics_idle.py                      # CPU time, 12 windows of 30 s
    python bench/bench_metrics_idle.py --counter callgrind  # instructions (valgrind)
    python bench/bench_metrics_idle.py --on-sinks none      # A/A: both sides off

How this works: two loopback clusters of ``--nodes`` serf nodes (``--profile``: ``lan``, the
agent's default, or ``local``), each node its own process, run at the same time: the *off*
cluster records no metrics (``metrics=None``: the driver drops the cores' samples), the *on*
cluster records every sample into ``--on-sinks`` (default: an in-memory sink and a statsd sink
aimed at a UDP socket nobody reads, as an agent with ``-statsd``); the two clusters' nodes are
started alternately. After ``--warmup`` seconds
the bench reads every node's counter at the end of each of ``--windows`` consecutive windows of
``--window`` seconds, so each window gives a pair (mean per node off, mean per node on) measured
over the same stretch of time, under the same machine load. The counter is either

* ``cpu``: the process's time on a CPU from ``/proc/PID/schedstat`` (nanoseconds, not the
  10 ms ticks of ``/proc/PID/stat``, which an idle node only crosses a few times a second), or
* ``callgrind``: instructions executed, each node run under ``valgrind --tool=callgrind``
  with instrumentation switched on after the warm-up and dumped at each window's end
  (``callgrind_control -d``). Instruction counts do not depend on the machine's load or
  caches, only on the work done; valgrind slows each node about 50-fold, which an idle node
  (well under 1 % of a core) absorbs without missing its probe deadlines.

The figure is on/off: the ratio of the summed counters, with a 95 % confidence interval from
a bootstrap over the windows (resampling whole windows keeps the pairing). ``--on-sinks
none`` runs the same bench with both sides off (an A/A run): its ratio shows how far apart
two identical clusters land, i.e. what the method can resolve. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import glob
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SINK_CHOICES = ("inmem,statsd", "inmem", "statsd", "none")


async def _node_main(
    index: int, port: int, seed: str | None, sinks: str, sink: int, profile: str
) -> None:
    from serf.address import Address
    from serf.config import SerfConfig, lan, local
    from serf.metrics import InmemSink, Metrics, MetricsSink, StatsdSink
    from serf.runtime.serf import Serf

    preset = lan if profile == "lan" else local
    ml = dataclasses.replace(preset(f"n{index}"), bind_addr="127.0.0.1", bind_port=port)
    chosen: list[MetricsSink] = []
    for name in sinks.split(","):
        if name == "inmem":
            chosen.append(InmemSink())
        elif name == "statsd":
            statsd = StatsdSink(Address("127.0.0.1", sink))
            statsd.start()
            chosen.append(statsd)
    metrics = Metrics(chosen, service_name="serf-agent") if chosen else None
    node = await Serf.create(SerfConfig(f"n{index}", memberlist=ml), metrics=metrics)
    if seed is not None:
        await node.join([seed])
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def answer() -> None:  # a line on stdin: reply with the driver's input count
        if not sys.stdin.readline():
            done.set()
            return
        stats = node._driver.stats if node._driver is not None else None
        print(stats.inputs if stats is not None else 0, flush=True)

    loop.add_reader(sys.stdin.fileno(), answer)
    await done.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def schedstat_ns(pid: int) -> int:
    """Nanoseconds ``pid`` has spent on a CPU (first field of ``/proc/PID/schedstat``)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class Node:
    """One node process and its counter."""

    def __init__(self, argv: list[str], counter: str, outdir: Path) -> None:
        self.counter = counter
        self.outdir = outdir
        if counter == "callgrind":
            argv = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={outdir}/cg.%p",
                *argv,
            ]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.last = 0.0
        self.last_inputs = 0

    def wait_ready(self, timeout: float) -> None:
        """Block until the node has joined (its ``ready`` line)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if "ready" not in line or time.monotonic() > deadline:
            raise RuntimeError(f"node {self.proc.args} did not start")

    def start_counting(self) -> None:
        """Switch the counter on (callgrind) and take the first reading."""
        if self.counter == "callgrind":
            self._control("-i", "on")
        self.read()
        self.inputs()

    def inputs(self) -> int:
        """How many inputs (packets, timer ticks, requests) the node's driver handled since
        the last call: the protocol work done, the same whether metrics are on or off."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        total = int(self.proc.stdout.readline())
        delta, self.last_inputs = total - self.last_inputs, total
        return delta

    def read(self) -> float:
        """The counter's growth since the last read (ns of CPU, or instructions)."""
        if self.counter == "cpu":
            now = float(schedstat_ns(self.proc.pid))
            delta, self.last = now - self.last, now
            return delta
        before = set(glob.glob(f"{self.outdir}/cg.{self.proc.pid}.*"))
        self._control("-d")
        deadline = time.monotonic() + 60
        while True:  # the dump is written when the node next runs (it polls for commands)
            new = set(glob.glob(f"{self.outdir}/cg.{self.proc.pid}.*")) - before
            for path in new:
                for line in Path(path).read_text().splitlines():
                    if line.startswith("totals:"):
                        return float(line.split()[1])
            if time.monotonic() > deadline:
                raise RuntimeError(f"no callgrind dump from {self.proc.pid}")
            time.sleep(0.05)

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.proc.pid)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        """Kill the process."""
        self.proc.kill()
        self.proc.wait(timeout=30)


def _clusters(
    out: tuple[list[Node], list[Node]],
    nodes: int,
    sinks: tuple[str, str],
    sink: int,
    counter: str,
    outdir: Path,
    profile: str,
) -> None:
    """Both clusters into ``out``, their nodes started alternately (off 0, on 0, off 1, on 1,
    ...) so that neither side gets the earlier or later processes (two clusters started one
    after the other measured about 2 % apart with both off)."""
    seeds: list[str | None] = [None, None]
    for i in range(nodes):
        for side in (0, 1):
            port = _free_port()
            argv = [sys.executable, __file__, "--node", str(i), "--port", str(port)]
            argv += ["--sink", str(sink), "--sinks", sinks[side], "--profile", profile]
            seed = seeds[side]
            if seed is not None:
                argv += ["--seed", seed]
            node = Node(argv, counter, outdir)
            out[side].append(node)
            node.wait_ready(300)
            if seed is None:
                seeds[side] = f"127.0.0.1:{port}"


@dataclasses.dataclass
class Result:
    """Per window: the mean counter growth per node, off and on."""

    off: list[float]
    on: list[float]
    inputs_off: list[float]
    inputs_on: list[float]
    window: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def ratio(self) -> float:
        """on/off over all windows."""
        return sum(self.on) / sum(self.off)

    def per_input(self) -> float:
        """on/off of the counter per driver input (the protocol work each side did)."""
        return (sum(self.on) / sum(self.inputs_on)) / (sum(self.off) / sum(self.inputs_off))

    def interval(
        self, level: float = 0.95, resamples: int = 10_000, per_input: bool = False
    ) -> tuple[float, float]:
        """Bootstrap CI of :meth:`ratio` (or :meth:`per_input`), resampling whole windows."""
        rng = random.Random(1)
        n = len(self.off)
        ratios = []
        ones = [1.0] * n
        in_on = self.inputs_on if per_input else ones
        in_off = self.inputs_off if per_input else ones
        for _ in range(resamples):
            picks = [rng.randrange(n) for _ in range(n)]
            on = sum(self.on[i] for i in picks) / sum(in_on[i] for i in picks)
            off = sum(self.off[i] for i in picks) / sum(in_off[i] for i in picks)
            ratios.append(on / off)
        ratios.sort()
        lo = ratios[int((1 - level) / 2 * resamples)]
        hi = ratios[int((1 + level) / 2 * resamples) - 1]
        return lo, hi


def run(
    nodes: int,
    windows: int,
    window: float,
    warmup: float,
    counter: str,
    on_sinks: str,
    profile: str = "lan",
    keep: str = "",
) -> Result:
    """Both clusters side by side; ``windows`` paired readings."""
    if counter == "callgrind" and shutil.which("valgrind") is None:
        raise SystemExit("--counter callgrind needs valgrind (apt-get install valgrind)")
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    sink = blackhole.getsockname()[1]
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    tmp.mkdir(parents=True, exist_ok=True)
    off: list[Node] = []
    on: list[Node] = []
    try:
        _clusters((off, on), nodes, ("none", on_sinks), sink, counter, tmp, profile)
        time.sleep(warmup)
        pairs = [n for pair in zip(off, on, strict=True) for n in pair]  # read interleaved
        for n in pairs:
            n.start_counting()
        load_before = os.getloadavg()
        per_off: list[float] = []
        per_on: list[float] = []
        in_off: list[float] = []
        in_on: list[float] = []
        for _ in range(windows):
            time.sleep(window)
            readings = {id(n): (n.read(), n.inputs()) for n in pairs}
            per_off.append(sum(readings[id(n)][0] for n in off) / nodes)
            per_on.append(sum(readings[id(n)][0] for n in on) / nodes)
            in_off.append(sum(readings[id(n)][1] for n in off) / nodes)
            in_on.append(sum(readings[id(n)][1] for n in on) / nodes)
            print(
                f"  window {len(per_off):2d}: off {per_off[-1]:.4g} on {per_on[-1]:.4g} "
                f"on/off {per_on[-1] / per_off[-1]:.3f}; driver inputs off {in_off[-1]:.0f} "
                f"on {in_on[-1]:.0f}",
                file=sys.stderr,
                flush=True,
            )
        load_after = os.getloadavg()
    finally:
        for n in off + on:
            with contextlib.suppress(Exception):
                n.stop()
        blackhole.close()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            pids = {"off": [n.proc.pid for n in off], "on": [n.proc.pid for n in on]}
            (tmp / "pids.txt").write_text(repr(pids) + "\n")
    return Result(per_off, per_on, in_off, in_on, window, load_before, load_after)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--counter", choices=("cpu", "callgrind"), default="cpu")
    parser.add_argument("--on-sinks", choices=SINK_CHOICES, default="inmem,statsd")
    parser.add_argument("--profile", choices=("lan", "local"), default="lan")
    parser.add_argument("--keep", default="", help="keep the callgrind dumps in this folder")
    parser.add_argument("--node", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sink", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sinks", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node >= 0:
        with asyncio.Runner() as runner, contextlib.suppress(KeyboardInterrupt):
            runner.run(
                _node_main(args.node, args.port, args.seed, args.sinks, args.sink, args.profile)
            )
        return
    res = run(
        args.nodes,
        args.windows,
        args.window,
        args.warmup,
        args.counter,
        args.on_sinks,
        args.profile,
        args.keep,
    )
    lo, hi = res.interval()
    plo, phi = res.interval(per_input=True)
    activity = sum(res.inputs_on) / sum(res.inputs_off)
    span = args.windows * args.window
    if args.counter == "cpu":
        off_s, on_s = sum(res.off) / 1e9, sum(res.on) / 1e9
        off_txt = f"{off_s:.3f} s CPU ({100 * off_s / span:.3f} % of a core)"
        on_txt = f"{on_s:.3f} s CPU ({100 * on_s / span:.3f} % of a core)"
    else:
        off_txt = f"{sum(res.off) / span / 1e6:.2f} M instructions/s"
        on_txt = f"{sum(res.on) / span / 1e6:.2f} M instructions/s"
    print(
        f"{args.nodes} nodes a side ({args.profile}), {args.windows} windows of "
        f"{args.window:g} s ({args.counter})"
    )
    print(
        f"load average (1, 5, 15 min): {res.load_before} -> {res.load_after} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"per node, off (baseline): {off_txt}")
    print(f"per node, on ({args.on_sinks}): {on_txt}")
    print(
        f"on/off = {res.ratio():.4f} ({100 * (res.ratio() - 1):+.2f} %), "
        f"95 % CI [{lo:.4f}, {hi:.4f}] ({100 * (lo - 1):+.2f} % .. {100 * (hi - 1):+.2f} %)"
    )
    print(
        f"driver inputs on/off = {activity:.4f} (the protocol work each side did; far from 1: "
        "the load disturbed one side)"
    )
    print(
        f"per driver input: on/off = {res.per_input():.4f} ({100 * (res.per_input() - 1):+.2f} %), "
        f"95 % CI [{plo:.4f}, {phi:.4f}]"
    )


if __name__ == "__main__":
    main()
