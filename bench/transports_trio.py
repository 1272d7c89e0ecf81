"""The trio rows of bench/transports.py: the same three figures for TrioSerf over
TrioNetTransport (net and tls), measured by the same loop as the asyncio rows.

How this works: ``measure_trio(transport, n, window)`` runs under ``trio.run`` the measuring
loop of bench/transports.py (``cluster_figures``: three fresh clusters for the median
convergence, CPU per node at rest and under 30 user events/s on the last one) with
:data:`TRIO`, trio's sleep, background work and node start, then the median round trip of
one 100-byte packet between two bare TrioNetTransports. Only ``net`` and ``tls`` run on trio
(QUIC is aioquic on asyncio; the memory transport is asyncio's).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import trio
from transports import Runtime, cluster_figures, round_trip_median_ms

from serf import Serf, SerfConfig
from serf.runtime.trio_serf import TrioSerf
from serf.testing.certs import TestCA
from serf.transport import Address, Transport
from serf.transport.trio_net import TrioNetTransport

TRIO_TRANSPORTS = ("net", "tls")


async def _trio_run_for(
    seconds: float, work: Callable[[], Coroutine[Any, Any, None]] | None
) -> None:
    async with trio.open_nursery() as nursery:
        if work is not None:
            nursery.start_soon(work)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def _trio_node(stack: AsyncExitStack, config: SerfConfig, wire: Transport | None) -> Serf:
    assert wire is None  # TrioSerf makes its TrioNetTransport from the config
    return await stack.enter_async_context(TrioSerf.create(config))


TRIO = Runtime("trio", trio.sleep, _trio_run_for, _trio_node)


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
        with trio.fail_after(30):
            rtt = await round_trip_median_ms(
                lambda: a.send_packet(b.local_address, payload), receive.receive, count
            )
        await a.close()
        await b.close()
    return rtt


def measure_trio(
    transport: str, n: int, window: float, trials: int = 3
) -> tuple[float, float, float, float]:
    """(converge_s, cpu_rest, cpu_events, rtt_ms) for ``transport`` on trio."""
    if transport not in TRIO_TRANSPORTS:
        raise ValueError(f"{transport} does not run on trio (only {', '.join(TRIO_TRANSPORTS)})")

    async def main() -> tuple[float, float, float, float]:
        converge, rest, busy = await cluster_figures(TRIO, transport, n, window, trials)
        return converge, rest, busy, await _round_trip_ms(transport)

    return trio.run(main)
