"""The stream listeners queue as many connections as Go's do (the kernel's maximum).

Go's ``net.Listen`` asks for ``net.core.somaxconn``; asyncio's default backlog is 100 and the
trio transport asked for 128. 127 agents joining through one seed at once (bench/compare.py at
128 agents) then overflow the seed's accept queue: the kernel drops the SYNs beyond it and the
clients retry after 1, 3, 7 s. Here the
listener's loop is kept from accepting while ``CONNECTIONS`` clients connect; every handshake
must complete (the kernel completes loopback handshakes within ``connect``).
"""

from __future__ import annotations

import asyncio
import select
import socket
from pathlib import Path
from typing import Any

import pytest

from serf.transport.base import Address
from serf.transport.net import NetTransport

CONNECTIONS = 200
LOOPBACK = Address("127.0.0.1", 0)


def _somaxconn() -> int:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return 0


pytestmark = pytest.mark.skipif(
    _somaxconn() < CONNECTIONS, reason="needs Linux with net.core.somaxconn >= 200"
)


def _completed_handshakes(port: int) -> int:
    """Connect ``CONNECTIONS`` non-blocking clients (without yielding to any event loop);
    how many completed their handshake."""
    socks = []
    try:
        for _ in range(CONNECTIONS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        _, writable, _ = select.select([], socks, [], 1.0)
        return sum(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in writable)
    finally:
        for sock in socks:
            sock.close()


def test_asyncio_listener_queues_a_join_storm() -> None:
    async def main() -> int:
        t = NetTransport(LOOPBACK)
        await t.start()
        try:
            return _completed_handshakes(t.local_address.port)
        finally:
            await t.close()

    assert asyncio.run(main()) == CONNECTIONS


def test_trio_listener_queues_a_join_storm() -> None:
    trio = pytest.importorskip("trio")
    from serf.transport.trio_net import TrioNetTransport

    completed: list[int] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            t: Any = TrioNetTransport(LOOPBACK)
            await t.start(nursery)
            completed.append(_completed_handshakes(t.local_address.port))
            await t.close()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert completed == [CONNECTIONS]
