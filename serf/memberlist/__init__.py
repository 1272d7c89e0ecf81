"""Memberlist: SWIM + Lifeguard membership, the sans-IO core.

How this works: the submodules ``state``, ``core``, ``io``, ``delegates`` are pure (no
asyncio, sockets, clocks), and so is everything exported here (loaded lazily by a
module-level ``__getattr__``). The async facade that runs a core on a transport is
:class:`serf.runtime.memberlist.Memberlist`, one layer up; this package does not re-export
it, so nothing below the runtime layer names the runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serf.config import MemberlistConfig, lan, local, wan
    from serf.memberlist.delegates import (
        AliveDelegate,
        CompositeDelegate,
        ConflictDelegate,
        Delegate,
        EventDelegate,
        MergeDelegate,
        PingDelegate,
    )
    from serf.memberlist.io import Dropped, NodeJoined, NodeLeft, NodeUpdated
    from serf.memberlist.state import Node, NodeState

__all__ = [
    "AliveDelegate",
    "CompositeDelegate",
    "ConflictDelegate",
    "Delegate",
    "Dropped",
    "EventDelegate",
    "MemberlistConfig",
    "MergeDelegate",
    "Node",
    "NodeJoined",
    "NodeLeft",
    "NodeState",
    "NodeUpdated",
    "PingDelegate",
    "lan",
    "local",
    "wan",
]

_LAZY = {
    "MemberlistConfig": "serf.config",
    "lan": "serf.config",
    "wan": "serf.config",
    "local": "serf.config",
    "Delegate": "serf.memberlist.delegates",
    "EventDelegate": "serf.memberlist.delegates",
    "MergeDelegate": "serf.memberlist.delegates",
    "AliveDelegate": "serf.memberlist.delegates",
    "ConflictDelegate": "serf.memberlist.delegates",
    "PingDelegate": "serf.memberlist.delegates",
    "CompositeDelegate": "serf.memberlist.delegates",
    "NodeJoined": "serf.memberlist.io",
    "NodeLeft": "serf.memberlist.io",
    "NodeUpdated": "serf.memberlist.io",
    "Dropped": "serf.memberlist.io",
    "Node": "serf.memberlist.state",
    "NodeState": "serf.memberlist.state",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'serf.memberlist' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
