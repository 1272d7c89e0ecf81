"""The test kit's :func:`~serf.testing.kit.cluster` for the trio runtime: :func:`trio_cluster`.

How this works: it starts ``n`` :class:`~serf.runtime.trio_serf.TrioSerf` nodes on
127.0.0.1 (free ports; ``memberlist.transport`` ``"net"`` or ``"tls"`` from ``config``),
joins them all through the first one, waits until every node sees all ``n`` alive, yields
them and shuts them down when the block ends. Needs the ``pyserf[trio]`` extra.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from serf.address import Address
from serf.config import SerfConfig, loopback
from serf.core.io import MemberStatus
from serf.runtime.trio_serf import TrioSerf
from serf.wire.keyring import Keyring

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    from serf._extras import missing_extra

    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["trio_cluster", "trio_eventually"]


async def trio_eventually(
    check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``check`` every ``interval`` seconds until it holds; AssertionError naming
    ``what`` after ``timeout`` (trio's clock)."""
    deadline = trio.current_time() + timeout
    while not check():
        if trio.current_time() >= deadline:
            name = what or getattr(check, "__name__", "condition")
            raise AssertionError(f"{name} did not hold within {timeout} s")
        await trio.sleep(interval)


@asynccontextmanager
async def trio_cluster(
    n: int,
    *,
    config: Callable[[str], SerfConfig] | None = None,
    names: Callable[[int], str] = "node{}".format,
    keyring: Keyring | None = None,
    join: bool = True,
    converge_timeout: float = 30.0,
    seed: int | None = None,
) -> AsyncIterator[list[TrioSerf]]:
    """``async with trio_cluster(3) as nodes:`` three joined trio nodes on loopback (the
    arguments are :func:`serf.testing.cluster`'s for ``transport="net"``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    nodes: list[TrioSerf] = []
    async with AsyncExitStack() as stack:
        for i in range(n):
            name = names(i)
            cfg = (
                config(name)
                if config is not None
                else SerfConfig(node_name=name, memberlist=loopback(name))
            )
            ring = Keyring(keyring.keys, keyring.primary_key) if keyring is not None else None
            rng = random.Random(seed + i) if seed is not None else None
            startup = TrioSerf.create(cfg, keyring=ring, rng=rng)
            nodes.append(await stack.enter_async_context(startup))
        if join and n > 1:
            first = nodes[0].local_member
            seed_addr = str(Address.from_ip(first.addr, first.port))
            for node in nodes[1:]:
                await node.join([seed_addr])
            await trio_eventually(
                lambda: all(len(node.members(MemberStatus.ALIVE)) == n for node in nodes),
                converge_timeout,
                what=f"{n} alive members on every node",
            )
        yield nodes
