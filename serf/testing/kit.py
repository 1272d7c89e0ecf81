"""A test kit for applications built on serf: a joined cluster in one call, and ``eventually``.

How this works. :func:`cluster` starts ``n`` :class:`~serf.Serf` nodes, on an in-process
:class:`~serf.transport.memory.MemoryNetwork` (``transport="memory"``, the default) or on
real UDP + TCP sockets on 127.0.0.1 (``transport="net"``), joins them all through the first
one and waits until every node sees every other alive; at the end of the block it shuts them
all down. On the memory network it runs unchanged on a
:class:`~serf.testing.virtual_time.VirtualTimeLoop`, where protocol time costs no wall time.
:func:`eventually` polls a condition on the loop's clock until it holds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

from serf.address import Address
from serf.config import SerfConfig, local, loopback
from serf.core.io import MemberStatus
from serf.runtime.serf import Serf
from serf.transport.memory import MemoryNetwork
from serf.wire.keyring import Keyring

__all__ = ["Cluster", "cluster", "eventually", "memory_address"]

log = logging.getLogger(__name__)

_FIRST_MEMORY_HOST = ipaddress.IPv4Address("10.0.0.1")


class Cluster(list[Serf]):
    """The nodes of a :func:`cluster`, in order (``nodes[0]`` is the one the others joined).

    ``network`` is the :class:`MemoryNetwork` they share (None on ``transport="net"``):
    set its ``link_model`` to drop, delay or duplicate packets between chosen nodes.
    """

    network: MemoryNetwork | None = None


def memory_address(index: int) -> Address:
    """The memory-network address :func:`cluster` gives node ``index`` (10.0.0.1:7946, ...)."""
    return Address(str(_FIRST_MEMORY_HOST + index), 7946)


def _default_config(name: str, transport: str) -> SerfConfig:
    # retransmit_mult=4 (LAN's): local()'s 2 can leave a broadcast short of some nodes
    ml = loopback(name) if transport == "net" else local(name, retransmit_mult=4)
    return SerfConfig(node_name=name, memberlist=ml)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "",
) -> None:
    """Poll ``check`` (a function returning a bool, or an awaitable one) every ``interval``
    seconds until it returns true; AssertionError naming ``what`` after ``timeout``.

    Both durations are on the running loop's clock (virtual on a VirtualTimeLoop).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = bool(await result)
        if result:
            return
        if loop.time() >= deadline:
            name = what or getattr(check, "__name__", "condition")
            raise AssertionError(f"{name} did not hold within {timeout} s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def cluster(
    n: int,
    transport: Literal["memory", "net"] | MemoryNetwork = "memory",
    *,
    config: Callable[[str], SerfConfig] | None = None,
    names: Callable[[int], str] = "node{}".format,
    keyring: Keyring | None = None,
    join: bool = True,
    converge_timeout: float = 30.0,
    seed: int | None = None,
) -> AsyncIterator[Cluster]:
    """``async with cluster(3) as nodes:`` three joined nodes, shut down at the end.

    ``transport``: ``"memory"`` (default; or a :class:`MemoryNetwork` of your own, e.g.
    with a link model), or ``"net"`` for UDP + TCP on 127.0.0.1 (free ports). ``config``
    maps a node name to its :class:`SerfConfig` (default: ``local()`` timings with
    ``retransmit_mult=4``; on ``"net"``, :func:`~serf.config.loopback`). ``names`` maps an
    index to a name (``node0``, ``node1``, ...). ``keyring``: every node gets a copy.
    ``join=False`` leaves the nodes apart. AssertionError when they do not all see each
    other alive within ``converge_timeout`` seconds (of the loop's clock). ``seed`` seeds
    each node's protocol randomness (node ``i`` gets ``random.Random(seed + i)``): with the
    memory network and virtual time, a run then repeats exactly.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    if isinstance(transport, MemoryNetwork):
        network: MemoryNetwork | None = transport
        kind = "memory"
    elif transport in ("memory", "net"):
        network = MemoryNetwork() if transport == "memory" else None
        kind = transport
    else:
        raise ValueError(f"transport must be 'memory', 'net' or a MemoryNetwork, got {transport!r}")
    nodes = Cluster()
    nodes.network = network
    try:
        for i in range(n):
            name = names(i)
            cfg = config(name) if config is not None else _default_config(name, kind)
            ring = Keyring(keyring.keys, keyring.primary_key) if keyring is not None else None
            wire = network.transport(memory_address(i)) if network is not None else None
            rng = random.Random(seed + i) if seed is not None else None
            nodes.append(await Serf.create(cfg, transport=wire, keyring=ring, rng=rng))
        if join and n > 1:
            first = nodes[0].local_member
            seed_addr = str(Address.from_ip(first.addr, first.port))
            for node in nodes[1:]:
                await node.join([seed_addr])
            await eventually(
                lambda: all(len(node.members(MemberStatus.ALIVE)) == n for node in nodes),
                converge_timeout,
                what=f"{n} alive members on every node",
            )
        yield nodes
    finally:
        await asyncio.gather(*(node.shutdown() for node in nodes), return_exceptions=True)
