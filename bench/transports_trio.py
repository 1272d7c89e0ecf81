"""The trio rows of bench/transports.py: the same three figures for TrioSerf over
TrioNetTransport (net and tls), measured the same way as the asyncio rows.

How this works: ``measure_trio(transport, n, window)`` runs under ``trio.run``: three fresh
clusters of ``n`` TrioSerf nodes for the median convergence (first join until every node
sees every other alive), CPU per node (``time.process_time`` over a window / node count)
at rest and while node 0 sends 30 user events a second on the last cluster, then the
median round trip of one 100-byte packet between two bare TrioNetTransports. Only ``net``
and ``tls`` run on trio (QUIC is aioquic on asyncio; the memory transport is asyncio's).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import trio

from serf import MemberStatus, SerfConfig
from serf.config import loopback
from serf.runtime.trio_serf import TrioSerf
from serf.testing.certs import TestCA
from serf.transport import Address
from serf.transport.trio_net import TrioNetTransport

TRIO_TRANSPORTS = ("net", "tls")


def _config(name: str, transport: str, ca: TestCA | None) -> SerfConfig:
    tls = ca.tls(name) if ca is not None else None
    ml = loopback(name, transport=transport, tls=tls, tcp_timeout=5.0)  # as transports.py
    return SerfConfig(node_name=name, memberlist=ml)


async def _cpu_per_node(
    seconds: float, n: int, work: Callable[[], Awaitable[None]] | None = None
) -> float:
    start_cpu, start = time.process_time(), time.monotonic()
    async with trio.open_nursery() as nursery:
        if work is not None:
            nursery.start_soon(work)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    return (time.process_time() - start_cpu) / (time.monotonic() - start) / n


async def _one_cluster(transport: str, n: int, window: float) -> tuple[float, float, float]:
    ca = TestCA() if transport == "tls" else None
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(TrioSerf.create(_config(f"n{i}", transport, ca)))
            for i in range(n)
        ]
        seed = nodes[0].local_member
        seed_addr = str(Address.from_ip(seed.addr, seed.port))
        start = time.monotonic()
        for node in nodes[1:]:
            await node.join([seed_addr])
        while not all(len(x.members(MemberStatus.ALIVE)) == n for x in nodes):
            if time.monotonic() - start > 60:
                raise TimeoutError(f"{transport} on trio: no convergence in 60 s")
            await trio.sleep(0.01)
        converge = time.monotonic() - start
        if not window:
            return converge, 0.0, 0.0
        await trio.sleep(1.0)  # let the join traffic settle
        rest = await _cpu_per_node(window, n)

        async def events() -> None:
            i = 0
            while True:
                await nodes[0].user_event("bench", str(i).encode(), coalesce=False)
                i += 1
                await trio.sleep(1 / 30)

        busy = await _cpu_per_node(window, n, events)
        return converge, rest, busy


async def _round_trip_ms(transport: str, count: int = 200) -> float:
    ca = TestCA() if transport == "tls" else None
    tls = [ca.tls("a"), ca.tls("b")] if ca is not None else [None, None]
    a = TrioNetTransport(Address("127.0.0.1", 0), tls=tls[0])
    b = TrioNetTransport(Address("127.0.0.1", 0), tls=tls[1])
    send, receive = trio.open_memory_channel[bytes](count + 1)
    a.set_handlers(on_packet=lambda d, src, at: send.send_nowait(d))
    b.set_handlers(on_packet=lambda d, src, at: b.send_packet(src, d))
    async with trio.open_nursery() as nursery:
        await a.start(nursery)
        await b.start(nursery)
        payload = b"x" * 100
        samples = []
        with trio.fail_after(30):
            for _ in range(count):
                start = time.perf_counter()
                a.send_packet(b.local_address, payload)
                await receive.receive()
                samples.append((time.perf_counter() - start) * 1000)
        await a.close()
        await b.close()
    return statistics.median(samples)


def measure_trio(transport: str, n: int, window: float, trials: int = 3) -> tuple[Any, ...]:
    """(converge_s, cpu_rest, cpu_events, rtt_ms) for ``transport`` on trio."""
    if transport not in TRIO_TRANSPORTS:
        raise ValueError(f"{transport} does not run on trio (only {', '.join(TRIO_TRANSPORTS)})")

    async def main() -> tuple[float, float, float, float]:
        times = []
        rest = busy = 0.0
        for trial in range(trials):
            converge, rest, busy = await _one_cluster(
                transport, n, window if trial == trials - 1 else 0
            )
            times.append(converge)
        rtt = await _round_trip_ms(transport)
        return statistics.median(times), rest, busy, rtt

    return trio.run(main)
