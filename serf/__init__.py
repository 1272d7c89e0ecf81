"""pyserf: HashiCorp serf for Python.

Decentralized cluster membership, failure detection and orchestration: members and their
status, user events, queries, tags, encryption, network coordinates, snapshots and rejoin.

>>> from serf import Serf, SerfConfig            # doctest: +SKIP
>>> node = await Serf.create(SerfConfig(node_name="a"))

The names below are imported lazily, so that importing a sans-IO module such as
``serf.memberlist.state`` or ``serf.core.serf`` pulls in no asyncio.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str]] = {
    "Serf": ("serf.runtime.serf", "Serf"),
    "SerfError": ("serf.runtime.serf", "SerfError"),
    "KeyManagerError": ("serf.runtime.serf", "KeyManagerError"),
    "Query": ("serf.runtime.serf", "Query"),
    "QueryAck": ("serf.runtime.serf", "QueryAck"),
    "QueryResponseItem": ("serf.runtime.serf", "QueryResponseItem"),
    "QueryResponse": ("serf.runtime.serf", "QueryResponse"),
    "KeyManager": ("serf.runtime.serf", "KeyManager"),
    "SerfConfig": ("serf.config", "SerfConfig"),
    "MemberlistConfig": ("serf.config", "MemberlistConfig"),
    "lan": ("serf.config", "lan"),
    "wan": ("serf.config", "wan"),
    "local": ("serf.config", "local"),
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

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'serf' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
