"""Clusters of ``serf agent`` subprocesses for the side-by-side benches (bench/compare.py,
bench_detect.py, bench_join_cpu.py): N agents of one kind on loopback with the LAN profile and
``-log-level=info`` (default flags otherwise), an RPC client on each, every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serf.cli.rpc_client import RPCClient
from serf.testing.gopeer import GoSerfAgent

__all__ = ["bench_agents", "close_agents", "start_agents"]


def bench_agents(
    kind: str, size: int, go_bin: Path, command: Sequence[str] | None = None
) -> list[GoSerfAgent]:
    """``size`` unstarted agents named ``{kind}0``..: Go's ``serf`` at ``go_bin``, or
    ``command`` (pyserf's, say) with the same flags."""
    return [
        GoSerfAgent(
            name=f"{kind}{i}",
            binary=go_bin,
            command=command,
            profile="lan",
            extra_args=("-log-level=info",),
        )
        for i in range(size)
    ]


async def start_agents(
    agents: Sequence[GoSerfAgent], at_once: int = 4, timeout: float = 120.0
) -> list[RPCClient]:
    """Start ``agents`` (``at_once`` start-ups in parallel) and connect a client to each once
    its RPC answers ``members``; the clients in the agents' order."""
    with ThreadPoolExecutor(max(1, min(at_once, len(agents)))) as pool:
        list(pool.map(lambda a: a.start(timeout, probe=False), agents))
    clients = []
    for agent in agents:
        client = await RPCClient.connect(agent.rpc_addr)
        clients.append(client)
        await asyncio.wait_for(client.members(), timeout)
    return clients


async def close_agents(agents: Sequence[GoSerfAgent], clients: Sequence[RPCClient]) -> None:
    """Close ``clients`` (best effort) and stop ``agents``."""
    for client in clients:
        try:
            await client.close()
        except Exception:  # best effort at the end
            pass
    for agent in agents:
        agent.stop()
