"""Building a serf core and the memberlist nodes it hears about, for tests of the sans-IO
serf core (one helper instead of a copy per test file).

How this works: :func:`serf_core` makes a :class:`~serf.core.serf.SerfCore` on the
simulator's memberlist config (:func:`serf.testing.sim.sim_config`), seeded, advertising
``10.0.0.1:7946``, and feeds it ``Start`` at time 0 unless told not to; :func:`member_node`
is a memberlist :class:`~serf.memberlist.state.Node` as the memberlist core would report an
alive peer.
"""

from __future__ import annotations

import random
from typing import Any

from serf.address import Address
from serf.config import SerfConfig
from serf.core.serf import SerfCore
from serf.core.snapshot import SnapshotState
from serf.memberlist import io as mio
from serf.memberlist.state import Node, NodeState
from serf.testing.sim import sim_config

__all__ = ["CORE_ADDRESS", "PROTOCOL_VERSIONS", "member_node", "serf_core"]

#: where :func:`serf_core` says it is
CORE_ADDRESS = Address("10.0.0.1", 7946)

#: the protocol versions a Go serf 0.10 node advertises (pmin, pmax, pcur, dmin, dmax, dcur)
PROTOCOL_VERSIONS = bytes([1, 5, 2, 2, 5, 4])


def serf_core(
    name: str = "a",
    *,
    seed: int = 7,
    start: bool = True,
    snapshot: SnapshotState | None = None,
    advertise: Address = CORE_ADDRESS,
    **config: Any,
) -> SerfCore:
    """A serf core named ``name`` (``config``: more :class:`~serf.config.SerfConfig`
    fields), its randomness seeded with ``seed``, started at time 0 unless ``start`` is
    False."""
    cfg = SerfConfig(name, memberlist=sim_config(name), **config)
    rng = random.Random(seed)
    core = SerfCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=advertise, snapshot=snapshot)
    if start:
        core.handle(mio.Start(), 0.0)
    return core


def member_node(
    name: str, ip: str = "10.0.0.2", *, port: int = 7946, meta: bytes = b"", incarnation: int = 1
) -> Node:
    """An alive memberlist node ``name`` at ``ip:port``."""
    return Node(
        name,
        Address(ip, port).ip_bytes(),
        port,
        meta,
        incarnation,
        NodeState.ALIVE,
        0.0,
        PROTOCOL_VERSIONS,
    )
