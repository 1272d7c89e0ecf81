"""One cluster suite over every transport: net, net + TLS, QUIC, QUIC with mutual TLS (real
loopback sockets) and memory (virtual time). Each case swaps the transport by one config field
(``MemberlistConfig.transport``), as an application would.

Scenarios: converge, a user event and a query reach everyone, key rotation, a killed node is
declared failed, a leaving node is seen as left. The real-socket cases use short protocol
timings (``_fast``) so each case takes seconds; the memory case runs them on the virtual
clock.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from serf import (
    Event,
    MemberStatus,
    Query,
    QueryResponseItem,
    Serf,
    SerfConfig,
    Subscription,
    UserEvent,
)
from serf.config import loopback
from serf.testing import cluster, eventually, run_virtual
from serf.testing.certs import TestCA
from serf.wire.keyring import Keyring

TRANSPORTS = ["memory", "net", "tls", "quic", "quic+tls"]
KEY_A = bytes(range(16))
KEY_B = bytes(range(100, 132))


def _fast(name: str, transport: str, ca: TestCA | None) -> SerfConfig:
    """loopback() with a quicker failure detector, on ``transport``."""
    ml = loopback(
        name,
        transport=transport,
        tls=ca.tls(name) if ca is not None else None,
        probe_interval=0.4,
        probe_timeout=0.2,
        suspicion_mult=2,
        gossip_interval=0.05,
    )
    return SerfConfig(node_name=name, memberlist=ml, reap_interval=1.0)


def _run(transport: str, body: Callable[[Callable[..., Any]], Awaitable[None]]) -> None:
    """Run ``body(make_cluster)`` on the right clock for ``transport``."""
    if transport == "memory":
        run_virtual(body(lambda n, **kw: cluster(n, "memory", **kw)), timeout=300)
        return
    ca = TestCA() if transport in ("tls", "quic+tls") else None
    kind = transport.removesuffix("+tls")

    def make(n: int, **kw: Any) -> Any:
        return cluster(n, "net", config=lambda name: _fast(name, kind, ca), **kw)

    async def main() -> None:
        await asyncio.wait_for(body(make), 60)

    asyncio.run(main())


def _alive(nodes: list[Serf], n: int) -> bool:
    return all(len(node.members(MemberStatus.ALIVE)) == n for node in nodes)


async def _first(events: Subscription[Event], want: Callable[[Event], bool]) -> Event:
    async for event in events:
        if want(event):
            return event
    raise AssertionError("subscription ended")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_converge_user_event_and_query(transport: str) -> None:
    async def body(make: Callable[..., Any]) -> None:
        async with make(4) as nodes:
            assert _alive(nodes, 4)
            streams = [n.subscribe(kinds=(UserEvent,)) for n in nodes]
            await nodes[1].user_event("deploy", b"v1", coalesce=False)
            got = await asyncio.wait_for(
                asyncio.gather(*(_first(s, lambda e: True) for s in streams)), 10
            )
            assert {(e.name, e.payload) for e in got} == {("deploy", b"v1")}  # type: ignore[attr-defined]

            async def answer(node: Serf, events: Subscription[Event]) -> None:
                async for event in events:
                    if isinstance(event, Query) and event.name == "who":
                        await event.respond(node.local_member.name.encode())

            tasks = [asyncio.create_task(answer(n, n.subscribe(kinds=(Query,)))) for n in nodes]
            try:
                # a deadline a loaded machine meets (a QUIC+TLS answer once came 1.5 s late:
                # "reply for non-running query"); the query ends as soon as all four answered
                response = await nodes[0].query("who", timeout=20)
                responses: dict[str, bytes] = {}
                async for item in response:
                    if isinstance(item, QueryResponseItem):
                        responses[item.from_] = item.payload
                        if len(responses) == 4:
                            response.close()
                assert responses == {f"node{i}": f"node{i}".encode() for i in range(4)}
            finally:
                for task in tasks:
                    task.cancel()

    _run(transport, body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_key_rotation(transport: str) -> None:
    async def body(make: Callable[..., Any]) -> None:
        async with make(3, keyring=Keyring([KEY_A])) as nodes:
            km = nodes[0].key_manager
            installed = await km.install_key(base64.b64encode(KEY_B).decode())
            assert (installed.num_nodes, installed.num_resp, installed.num_err) == (3, 3, 0)
            used = await km.use_key(KEY_B)
            assert used.num_err == 0
            removed = await km.remove_key(KEY_A)
            assert (removed.num_resp, removed.num_err) == (3, 0)
            listed = await km.list_keys()
            assert listed.keys == {base64.b64encode(KEY_B).decode(): 3}
            streams = [n.subscribe(kinds=(UserEvent,)) for n in nodes]
            await nodes[2].user_event("after", b"", coalesce=False)
            await asyncio.wait_for(
                asyncio.gather(*(_first(s, lambda e: True) for s in streams)), 10
            )
            assert _alive(nodes, 3)

    _run(transport, body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_killed_node_fails_and_leaver_leaves(transport: str) -> None:
    async def body(make: Callable[..., Any]) -> None:
        async with make(4) as nodes:
            await nodes[3].shutdown()  # killed: no leave
            await nodes[2].leave()
            await nodes[2].shutdown()
            rest = nodes[:2]

            def settled() -> bool:
                for node in rest:
                    status = {m.name: m.status for m in node.members()}
                    if status.get("node3") is not MemberStatus.FAILED:
                        return False
                    if status.get("node2") is not MemberStatus.LEFT:
                        return False
                return True

            await eventually(settled, 30, what="node3 failed and node2 left everywhere")

    _run(transport, body)
