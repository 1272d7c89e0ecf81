"""The one switch: the transport a node builds from its `MemberlistConfig`.

How this works: `transport_for` reads ``config.transport`` (``"net"``, ``"tls"`` or
``"quic"``), ``config.tls`` and the bind address, and returns an unstarted transport.
`serf.Serf.create` and `serf.runtime.memberlist.Memberlist.create` call it when no ``transport=`` is
passed in, and the agent's ``-transport`` flag sets the same field, so swapping transports is
a one-line change. The memory transport needs a shared `MemoryNetwork` object, so it is
passed in as ``transport=`` rather than named here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf.address import Address
from serf.transport.base import Transport

if TYPE_CHECKING:
    from serf.config import MemberlistConfig

__all__ = ["transport_for"]


def transport_for(config: MemberlistConfig) -> Transport:
    """An unstarted transport for ``config`` (bind address, ``transport``, ``tls``)."""
    bind = Address(config.bind_addr, config.bind_port)
    if config.transport == "quic":
        from serf.transport.quic import QuicTransport

        return QuicTransport(bind, stream_timeout=config.tcp_timeout, tls=config.tls)
    from serf.transport.net import NetTransport

    tls = config.tls if config.transport == "tls" else None
    return NetTransport(bind, stream_timeout=config.tcp_timeout, tls=tls)
