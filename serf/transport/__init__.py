"""Transports: how bytes move between nodes (packets and one-request streams).

How this works: `base` defines the `Transport` / `Stream` protocols, `Address` and the name
resolvers; `net` is UDP + TCP on one port; `memory` is the simulator's in-process network;
`quic` is QUIC (aioquic, the ``pyserf[quic]`` extra; ``QuicTransport`` and
``QuicStream`` are imported from it on first use, as are `memory`'s names, which an agent on
sockets never needs) with DATAGRAM-frame packets and one
stream per request; `tls` holds the certificates that authenticate net (TLS streams)
and quic peers (imported on first use too: a plain TCP agent does without).
Every transport passes the suite in `serf.testing.conformance`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from serf.transport.base import (
    DEFAULT_STREAM_TIMEOUT,
    MAX_PACKET_SIZE,
    Address,
    AddressLike,
    AddressResolver,
    DnsResolver,
    PacketHandler,
    PacketTooLargeError,
    StaticResolver,
    Stream,
    StreamHandler,
    Transport,
    TransportStats,
)
from serf.transport.net import NetStream, NetTransport, TlsStream, install_uvloop

__all__ = [
    "DEFAULT_STREAM_TIMEOUT",
    "MAX_PACKET_SIZE",
    "Address",
    "AddressLike",
    "AddressResolver",
    "DnsResolver",
    "MemoryNetwork",
    "MemoryStream",
    "MemoryTransport",
    "NetStream",
    "NetTransport",
    "PacketFate",
    "PacketHandler",
    "PacketTooLargeError",
    "QuicStream",
    "QuicTransport",
    "StaticResolver",
    "Stream",
    "StreamHandler",
    "TlsConfig",
    "TlsConfigError",
    "TlsStream",
    "Transport",
    "TransportStats",
    "install_uvloop",
]

_LAZY = {
    "QuicStream": "serf.transport.quic",  # needs aioquic: the quic extra
    "QuicTransport": "serf.transport.quic",
    "PacketFate": "serf.transport.memory",
    "MemoryNetwork": "serf.transport.memory",
    "MemoryStream": "serf.transport.memory",
    "MemoryTransport": "serf.transport.memory",
    "TlsConfig": "serf.transport.tls",
    "TlsConfigError": "serf.transport.tls",
}

if TYPE_CHECKING:
    from serf.transport.memory import MemoryNetwork, MemoryStream, MemoryTransport, PacketFate
    from serf.transport.quic import QuicStream, QuicTransport
    from serf.transport.tls import TlsConfig, TlsConfigError
else:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is not None:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module 'serf.transport' has no attribute {name!r}")
