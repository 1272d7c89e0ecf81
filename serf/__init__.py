"""pyserf: HashiCorp serf for Python.

Decentralized cluster membership, failure detection and orchestration: members and their
status, user events, queries, tags, encryption, network coordinates, snapshots and rejoin.

>>> from serf import Serf, SerfConfig            # doctest: +SKIP
>>> async with Serf.create(SerfConfig(node_name="a")) as node:
...     print(node.members())

The names below are imported lazily at run time, so that importing a sans-IO module such as
``serf.memberlist.state`` or ``serf.core.serf`` pulls in no asyncio; type checkers see the
real classes through the ``TYPE_CHECKING`` imports, and ``dir(serf)`` / ``help(serf)`` list
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from serf.address import Address
    from serf.config import MemberlistConfig, SerfConfig, lan, local, loopback, wan
    from serf.core.io import (
        KeyResponse,
        MemberFailed,
        MemberJoined,
        MemberLeft,
        MemberReaped,
        MemberStatus,
        MemberUpdated,
        SerfMember,
    )
    from serf.core.io import UserEventReceived as UserEvent
    from serf.core.serf import ReconnectDelegate
    from serf.core.serf import SerfMergeDelegate as MergeDelegate
    from serf.core.state import SerfState
    from serf.memberlist.delegates import CompositeDelegate
    from serf.runtime.serf import (
        Event,
        KeyManager,
        KeyManagerError,
        Query,
        QueryAck,
        QueryResponse,
        QueryResponseItem,
        Serf,
        SerfError,
        SerfStartup,
    )
    from serf.runtime.subscription import Subscription
    from serf.transport.tls import TlsConfig
    from serf.wire.keyring import Keyring

# name -> (module, attribute): must list exactly the TYPE_CHECKING imports above
_LAZY: dict[str, tuple[str, str]] = {
    "Serf": ("serf.runtime.serf", "Serf"),
    "SerfError": ("serf.runtime.serf", "SerfError"),
    "KeyManagerError": ("serf.runtime.serf", "KeyManagerError"),
    "Event": ("serf.runtime.serf", "Event"),
    "Query": ("serf.runtime.serf", "Query"),
    "QueryAck": ("serf.runtime.serf", "QueryAck"),
    "QueryResponseItem": ("serf.runtime.serf", "QueryResponseItem"),
    "QueryResponse": ("serf.runtime.serf", "QueryResponse"),
    "KeyManager": ("serf.runtime.serf", "KeyManager"),
    "SerfStartup": ("serf.runtime.serf", "SerfStartup"),
    "Subscription": ("serf.runtime.subscription", "Subscription"),
    "SerfState": ("serf.core.state", "SerfState"),
    "SerfConfig": ("serf.config", "SerfConfig"),
    "MemberlistConfig": ("serf.config", "MemberlistConfig"),
    "lan": ("serf.config", "lan"),
    "TlsConfig": ("serf.transport.tls", "TlsConfig"),
    "wan": ("serf.config", "wan"),
    "local": ("serf.config", "local"),
    "loopback": ("serf.config", "loopback"),
    "Address": ("serf.address", "Address"),
    "Keyring": ("serf.wire.keyring", "Keyring"),
    "SerfMember": ("serf.core.io", "SerfMember"),
    "MemberStatus": ("serf.core.io", "MemberStatus"),
    "MemberJoined": ("serf.core.io", "MemberJoined"),
    "MemberLeft": ("serf.core.io", "MemberLeft"),
    "MemberFailed": ("serf.core.io", "MemberFailed"),
    "MemberUpdated": ("serf.core.io", "MemberUpdated"),
    "MemberReaped": ("serf.core.io", "MemberReaped"),
    "UserEvent": ("serf.core.io", "UserEventReceived"),
    "KeyResponse": ("serf.core.io", "KeyResponse"),
    "MergeDelegate": ("serf.core.serf", "SerfMergeDelegate"),
    "ReconnectDelegate": ("serf.core.serf", "ReconnectDelegate"),
    "CompositeDelegate": ("serf.memberlist.delegates", "CompositeDelegate"),
}

__all__ = [
    "__version__",
    "Address",
    "CompositeDelegate",
    "Event",
    "KeyManager",
    "KeyManagerError",
    "KeyResponse",
    "Keyring",
    "MemberFailed",
    "MemberJoined",
    "MemberLeft",
    "MemberReaped",
    "MemberStatus",
    "MemberUpdated",
    "MemberlistConfig",
    "MergeDelegate",
    "Query",
    "QueryAck",
    "QueryResponse",
    "QueryResponseItem",
    "ReconnectDelegate",
    "Serf",
    "SerfConfig",
    "SerfError",
    "SerfMember",
    "SerfStartup",
    "SerfState",
    "Subscription",
    "TlsConfig",
    "UserEvent",
    "lan",
    "local",
    "loopback",
    "wan",
]


if not TYPE_CHECKING:  # hidden from type checkers, so an unknown name is an error there
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
