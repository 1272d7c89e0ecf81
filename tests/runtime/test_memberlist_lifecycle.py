"""The Memberlist facade over its whole life: a failed create frees its port, meta updates and
a graceful leave reach the peer, the views (health, stats, core) say what the node does, a
node on IPv6 advertises its IPv6 address, and ``async with`` shuts the node down."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Coroutine
from typing import Any

import pytest

from serf.memberlist import (
    CompositeDelegate,
    NodeJoined,
    NodeLeft,
    NodeState,
    NodeUpdated,
    local,
)
from serf.runtime.advertise import AdvertiseError
from serf.runtime.memberlist import Memberlist
from serf.testing import eventually
from serf.testing.gopeer import free_port


def _run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def _config(name: str, host: str = "127.0.0.1", port: int = 0, **changes: Any) -> Any:
    return dataclasses.replace(local(name), bind_addr=host, bind_port=port, **changes)


class Meta:
    """A delegate whose node meta the test changes."""

    def __init__(self, meta: bytes) -> None:
        self.meta = meta

    def node_meta(self, limit: int) -> bytes:
        return self.meta

    def notify_msg(self, payload: bytes) -> None:
        pass

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        return []

    def local_state(self, join: bool) -> bytes:
        return b""

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        pass


def test_a_create_that_fails_after_binding_frees_the_port() -> None:
    async def main() -> None:
        port = free_port()
        with pytest.raises(AdvertiseError):
            await Memberlist.create(_config("a", port=port, advertise_addr="not-an-ip"))
        # the transport the failed create had bound is closed: the same port binds again
        node = await Memberlist.create(_config("a", port=port))
        try:
            assert node.address.port == port
        finally:
            await node.shutdown()

    _run(main())


def test_meta_update_and_graceful_leave_reach_the_peer() -> None:
    async def main() -> None:
        meta = Meta(b"v1")
        a = await Memberlist.create(_config("a"))
        b = await Memberlist.create(_config("b"), delegate=CompositeDelegate(delegate=meta))
        events = a.events()
        try:
            assert await b.join([a.address]) == 1
            joined = await asyncio.wait_for(events.__anext__(), 10)
            assert isinstance(joined, NodeJoined) and joined.node.meta == b"v1"

            meta.meta = b"v2"
            await b.update_node(timeout=5.0)
            updated = await asyncio.wait_for(events.__anext__(), 10)
            assert isinstance(updated, NodeUpdated)
            assert (updated.node.name, updated.node.meta) == ("b", b"v2")

            await b.leave(timeout=5.0)
            left = await asyncio.wait_for(events.__anext__(), 10)
            assert isinstance(left, NodeLeft) and left.node.name == "b"
            assert left.node.state is NodeState.LEFT
            await b.leave(timeout=5.0)  # a second leave is a no-op, not an error
            assert [n.name for n in a.members()] == ["a"]
            assert {n.name: n.state for n in a.all_members()}["b"] is NodeState.LEFT
        finally:
            await b.shutdown()
            await a.shutdown()

    _run(main())


def test_views_say_what_the_node_does() -> None:
    async def main() -> None:
        a = await Memberlist.create(_config("a"))
        b = await Memberlist.create(_config("b"))
        try:
            assert a.health_score == 0
            assert a.core.local_node.name == "a" and a.local_node.name == "a"
            before = a.stats.inputs
            await b.join([a.address])
            await eventually(lambda: a.num_members() == 2, what="a sees b")
            assert a.stats.inputs > before  # the join's stream and packets went through it
            assert a.stats.errors == 0
        finally:
            await b.shutdown()
            await a.shutdown()

    _run(main())


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_a_node_bound_on_ipv6_advertises_its_ipv6_address() -> None:
    async def main() -> None:
        a = await Memberlist.create(_config("a", host="::1"))
        b = await Memberlist.create(_config("b", host="::1"))
        try:
            assert a.address.host == "::1" and a.address.port > 0
            assert await b.join([a.address]) == 1
            await eventually(lambda: a.num_members() == 2, what="a sees b")
        finally:
            await b.shutdown()
            await a.shutdown()

    _run(main())


def test_async_with_shuts_the_node_down() -> None:
    async def main() -> None:
        async with await Memberlist.create(_config("a")) as a:
            events = a.events()
            assert a.num_members() == 1
        # shut down: the event stream ended and sending is refused
        assert [e async for e in events] == []
        with pytest.raises(RuntimeError):
            a.send_best_effort(a.address, b"after shutdown")
        await a.shutdown()  # idempotent

    _run(main())
