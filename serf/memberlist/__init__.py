"""Memberlist: SWIM + Lifeguard membership, the sans-IO core.

How this works: the submodules ``state``, ``core``, ``io``, ``delegates`` are pure (no
asyncio, sockets, clocks), and so is everything exported here (loaded lazily by a
module-level ``__getattr__``). The async facade that runs a core on a transport is
:class:`serf.runtime.memberlist.Memberlist`, one layer up; this package does not re-export
it, so nothing below the runtime layer names the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf._lazy import lazy_exports

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

# name -> (module, attribute): must list exactly the TYPE_CHECKING imports above
_LAZY: dict[str, tuple[str, str]] = {
    "MemberlistConfig": ("serf.config", "MemberlistConfig"),
    "lan": ("serf.config", "lan"),
    "wan": ("serf.config", "wan"),
    "local": ("serf.config", "local"),
    "Delegate": ("serf.memberlist.delegates", "Delegate"),
    "EventDelegate": ("serf.memberlist.delegates", "EventDelegate"),
    "MergeDelegate": ("serf.memberlist.delegates", "MergeDelegate"),
    "AliveDelegate": ("serf.memberlist.delegates", "AliveDelegate"),
    "ConflictDelegate": ("serf.memberlist.delegates", "ConflictDelegate"),
    "PingDelegate": ("serf.memberlist.delegates", "PingDelegate"),
    "CompositeDelegate": ("serf.memberlist.delegates", "CompositeDelegate"),
    "NodeJoined": ("serf.memberlist.io", "NodeJoined"),
    "NodeLeft": ("serf.memberlist.io", "NodeLeft"),
    "NodeUpdated": ("serf.memberlist.io", "NodeUpdated"),
    "Dropped": ("serf.memberlist.io", "Dropped"),
    "Node": ("serf.memberlist.state", "Node"),
    "NodeState": ("serf.memberlist.state", "NodeState"),
}


if not TYPE_CHECKING:  # hidden from type checkers, so an unknown name is an error there
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
