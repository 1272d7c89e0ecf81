"""Per transport and runtime: 8-node loopback convergence, CPU per node at rest and under
30 user events/s, and one packet round trip, beside net on asyncio (the baseline).

Run: ``python bench/transports.py [--nodes 8] [--window 5] [--write-docs]``.

How this works: for each (transport, runtime) pair, one process runs the whole cluster on one
event loop (asyncio or uvloop; trio for net and tls, bench/transports_trio.py's ``Runtime``):
``loopback()`` nodes with ``transport=`` set (net, tls, quic, quic+tls with a throwaway CA;
memory on a MemoryNetwork with real time). Convergence is the wall time from the first join
until every node sees every other alive (median of three
fresh clusters: an alive broadcast that dies out waits for a push/pull, as in Go). CPU per
node is the process's CPU time (``time.process_time``) over a window divided by the node
count, at rest and while node 0 sends 30 user events a second (each gossiped to all). The
packet round trip is two bare transports echoing one 100-byte packet, median of 200. Figures
are ratios to net on asyncio from the same run, so the machine's speed cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serf import MemberStatus, Serf, SerfConfig
from serf.config import local, loopback
from serf.testing.certs import TestCA
from serf.transport import Address, MemoryNetwork, NetTransport, QuicTransport, Transport

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
HEADING = "## Transports"
TRANSPORTS = ("net", "tls", "quic", "quic+tls", "memory")


@dataclass
class Row:
    transport: str
    runtime: str
    converge_s: float
    cpu_rest: float  # CPU seconds per node per second of wall time
    cpu_events: float
    rtt_ms: float


def _loop_factory(runtime: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if runtime == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def _config(name: str, transport: str, ca: TestCA | None) -> SerfConfig:
    if transport == "memory":
        return SerfConfig(node_name=name, memberlist=local(name, retransmit_mult=4))
    kind = transport.removesuffix("+tls")
    tls = ca.tls(name) if ca is not None else None
    # tcp_timeout 5 s (loopback()'s is 1 s): a QUIC join on a loaded 2-core machine can
    # take longer than 1 s, and a failed join would end the run
    ml = loopback(name, transport=kind, tls=tls, tcp_timeout=5.0)
    return SerfConfig(node_name=name, memberlist=ml)


@dataclass(frozen=True)
class Runtime:
    """What the measuring loop needs from an event loop library (asyncio here, trio in
    bench/transports_trio.py), so the loop is written once for both."""

    name: str
    sleep: Callable[[float], Awaitable[Any]]
    #: run_for(seconds, work): sleep ``seconds`` while ``work()`` (if any) runs, then stop it
    run_for: Callable[[float, Callable[[], Coroutine[Any, Any, None]] | None], Awaitable[None]]
    #: start_node(stack, config, transport): a started node that ``stack`` shuts down
    start_node: Callable[[AsyncExitStack, SerfConfig, Transport | None], Awaitable[Serf]]


async def _asyncio_run_for(
    seconds: float, work: Callable[[], Coroutine[Any, Any, None]] | None
) -> None:
    task = asyncio.create_task(work()) if work is not None else None
    await asyncio.sleep(seconds)
    if task is not None:
        task.cancel()


async def _asyncio_node(stack: AsyncExitStack, config: SerfConfig, wire: Transport | None) -> Serf:
    node = await Serf.create(config, transport=wire)
    stack.push_async_callback(node.shutdown)
    return node


ASYNCIO = Runtime("asyncio", asyncio.sleep, _asyncio_run_for, _asyncio_node)


async def _cpu_per_node(
    rt: Runtime, seconds: float, n: int, work: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> float:
    start_cpu, start = time.process_time(), time.monotonic()
    await rt.run_for(seconds, work)
    return (time.process_time() - start_cpu) / (time.monotonic() - start) / n


async def cluster_figures(
    rt: Runtime, transport: str, n: int, window: float, trials: int = 3
) -> tuple[float, float, float]:
    """Median convergence over ``trials`` fresh clusters; CPU figures from the last one."""
    times = []
    for trial in range(trials):
        converge, rest, busy = await _one_cluster(
            rt, transport, n, window if trial == trials - 1 else 0
        )
        times.append(converge)
    return statistics.median(times), rest, busy


async def _one_cluster(
    rt: Runtime, transport: str, n: int, window: float
) -> tuple[float, float, float]:
    ca = TestCA() if transport.endswith("+tls") or transport == "tls" else None
    network = MemoryNetwork() if transport == "memory" else None
    async with AsyncExitStack() as stack:
        nodes: list[Serf] = []
        for i in range(n):
            wire = network.transport(Address(f"10.0.0.{i + 1}", 7946)) if network else None
            nodes.append(await rt.start_node(stack, _config(f"n{i}", transport, ca), wire))
        seed = nodes[0].local_member
        seed_addr = str(Address.from_ip(seed.addr, seed.port))
        start = time.monotonic()
        for node in nodes[1:]:
            await node.join([seed_addr])
        while not all(len(x.members(MemberStatus.ALIVE)) == n for x in nodes):
            if time.monotonic() - start > 60:
                raise TimeoutError(f"{transport} on {rt.name}: no convergence in 60 s")
            await rt.sleep(0.01)
        converge = time.monotonic() - start
        if not window:
            return converge, 0.0, 0.0
        await rt.sleep(1.0)  # let the join traffic settle
        rest = await _cpu_per_node(rt, window, n)

        async def events() -> None:
            i = 0
            while True:
                await nodes[0].user_event("bench", str(i).encode(), coalesce=False)
                i += 1
                await rt.sleep(1 / 30)

        busy = await _cpu_per_node(rt, window, n, events)
        return converge, rest, busy


async def round_trip_median_ms(
    send: Callable[[], None], receive: Callable[[], Awaitable[Any]], count: int
) -> float:
    """The median of ``count`` round trips: ``send()`` one packet, await its echo."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        send()
        await receive()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _pair(transport: str) -> tuple[Transport, Transport]:
    if transport == "memory":
        net = MemoryNetwork()
        return net.transport(Address("10.0.0.1", 1)), net.transport(Address("10.0.0.2", 1))
    ca = TestCA()
    local_addr = Address("127.0.0.1", 0)
    if transport.startswith("quic"):
        tls = [ca.tls("a"), ca.tls("b")] if transport == "quic+tls" else [None, None]
        return QuicTransport(local_addr, tls=tls[0]), QuicTransport(local_addr, tls=tls[1])
    tls = [ca.tls("a"), ca.tls("b")] if transport == "tls" else [None, None]
    return NetTransport(local_addr, tls=tls[0]), NetTransport(local_addr, tls=tls[1])


async def _round_trip_ms(transport: str, count: int = 200) -> float:
    a, b = _pair(transport)
    got: asyncio.Queue[bytes] = asyncio.Queue()
    a.set_handlers(on_packet=lambda d, src, at: got.put_nowait(d))
    b.set_handlers(on_packet=lambda d, src, at: b.send_packet(src, d))
    await a.start()
    await b.start()
    try:
        payload = b"x" * 100
        a.send_packet(b.local_address, payload)  # warm up (a QUIC handshake)
        await asyncio.wait_for(got.get(), 10)
        return await round_trip_median_ms(
            lambda: a.send_packet(b.local_address, payload),
            lambda: asyncio.wait_for(got.get(), 10),
            count,
        )
    finally:
        await a.close()
        await b.close()


def measure(transport: str, runtime: str, n: int, window: float) -> Row:
    if runtime == "trio":  # TrioSerf over TrioNetTransport: bench/transports_trio.py
        from transports_trio import measure_trio

        return Row(transport, runtime, *measure_trio(transport, n, window))

    async def main() -> Row:
        converge, rest, busy = await cluster_figures(ASYNCIO, transport, n, window)
        rtt = await _round_trip_ms(transport)
        return Row(transport, runtime, converge, rest, busy, rtt)

    with asyncio.Runner(loop_factory=_loop_factory(runtime)) as runner:
        return runner.run(main())


def table(rows: list[Row]) -> str:
    base = next(r for r in rows if (r.transport, r.runtime) == ("net", "asyncio"))
    out = [
        "| transport | runtime | converge (8 nodes) | CPU/node at rest | CPU/node, 30 events/s "
        "| packet round trip |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.transport} | {r.runtime}"
            f" | {r.converge_s:.2f} s ({r.converge_s / base.converge_s:.1f}x)"
            f" | {r.cpu_rest * 100:.2f} % ({r.cpu_rest / base.cpu_rest:.1f}x)"
            f" | {r.cpu_events * 100:.2f} % ({r.cpu_events / base.cpu_events:.1f}x)"
            f" | {r.rtt_ms * 1000:.0f} us ({r.rtt_ms / base.rtt_ms:.1f}x) |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--runtimes", default="asyncio,uvloop,trio")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    for runtime in args.runtimes.split(","):
        for transport in args.transports.split(","):
            if runtime == "trio" and transport not in ("net", "tls"):
                continue  # QUIC (aioquic) and memory are asyncio-only
            row = measure(transport, runtime, args.nodes, args.window)
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
    text = table(rows)
    print(text)
    if args.write_docs:
        _write_docs(text, args.nodes, args.window)


def _write_docs(text: str, nodes: int, window: float) -> None:
    from serf import _speedups

    section = (
        f"{HEADING}\n\nPer transport and runtime, {nodes} serf nodes on loopback in one process "
        f"(`loopback()` timings, tcp_timeout 5 s), CPU over {window:g} s windows, ratios to "
        f"net on asyncio from the same run; measured by `python bench/transports.py` on Python "
        f"{sys.version.split()[0]}, twins: {_speedups.IMPLEMENTATION}.\n\n{text}\n\n"
        "Reading it: CPU per node is the share of one core. TLS costs only on streams (joins, "
        "push/pull), so at rest it is close to net; QUIC runs every packet through aioquic's "
        "pure-Python packet protection and loss recovery, which is where its extra CPU and "
        "round-trip time go; its convergence includes one handshake per pair of nodes. "
        "Convergence is noisy (gossip luck; median of three). The memory transport runs on "
        "the real clock here (no sockets). Which transports run on which runtime: all of them "
        "on asyncio and uvloop; net and tls on trio (`TrioSerf` over `TrioNetTransport`; "
        "QUIC is aioquic on asyncio, the memory transport is asyncio's), see "
        "[Runtimes and transports](runtimes.md). Reproduce with "
        "`python bench/transports.py --write-docs` (about five minutes).\n"
    )
    doc = DOCS.read_text()
    if HEADING in doc:
        start = doc.index(HEADING)
        end = doc.find("\n## ", start + len(HEADING))
        doc = doc[:start] + section + (doc[end + 1 :] if end != -1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    DOCS.write_text(doc)


if __name__ == "__main__":
    main()
