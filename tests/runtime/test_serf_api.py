"""The Serf facade as an asyncio user meets it: subscriptions and the node's lifecycle.

Runs on the in-memory network (no sockets), each test bounded in wall time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from serf import (
    Address,
    MemberJoined,
    MemberLeft,
    MemberStatus,
    Query,
    Serf,
    SerfConfig,
    SerfError,
    SerfState,
    Subscription,
    UserEvent,
    local,
)
from serf.testing import cluster, eventually, memory_address, run_virtual
from serf.transport.memory import MemoryNetwork


def _config(name: str) -> SerfConfig:
    return SerfConfig(node_name=name, memberlist=replace(local(name), retransmit_mult=4))


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[Serf, Serf]]:
    net = MemoryNetwork()
    a = await Serf.create(_config("a"), transport=net.transport(Address("10.0.0.1", 7946)))
    b = await Serf.create(_config("b"), transport=net.transport(Address("10.0.0.2", 7946)))
    try:
        yield a, b
    finally:
        await a.shutdown()
        await b.shutdown()


async def _next(sub: Subscription[object], timeout: float = 10) -> object:
    return await asyncio.wait_for(anext(sub), timeout)


# -- subscriptions ------------------------------------------------------------------------


def test_events_keeps_what_arrives_before_the_consumer_starts_reading() -> None:
    async def main() -> None:
        async with _pair() as (a, b):
            events = b.events()  # registered here, read only after the event arrived
            await a.join(["10.0.0.2:7946"])
            before = int(b.stats()["event_time"])
            await a.user_event("deploy", b"v1", coalesce=False)
            await eventually(lambda: int(b.stats()["event_time"]) > before, 10)
            event = await _next(events)
            while not isinstance(event, UserEvent):
                event = await _next(events)
            assert (event.name, event.payload) == ("deploy", b"v1")

    run_virtual(main())


def test_subscribe_keeps_only_the_kinds_asked_for() -> None:
    async def main() -> None:
        async with _pair() as (a, b):
            users = b.subscribe(kinds=(UserEvent,))
            joins = b.subscribe(kinds=(MemberJoined,))
            await a.join(["10.0.0.2:7946"])
            await a.user_event("deploy", b"", coalesce=False)
            event = await _next(users)
            assert isinstance(event, UserEvent) and event.name == "deploy"
            joined = await _next(joins)
            assert isinstance(joined, MemberJoined) and [m.name for m in joined.members] == ["a"]
            assert all(isinstance(e, MemberJoined) for e in list(joins._items))

    run_virtual(main())


def test_a_full_subscription_drops_the_oldest_counts_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with _pair() as (a, b):
            sub = b.subscribe(kinds=(UserEvent,), maxsize=2)
            await a.join(["10.0.0.2:7946"])
            for i in range(5):
                await a.user_event(f"e{i}", b"", coalesce=False)
            await eventually(lambda: sub.dropped == 3, 10)
            assert len(sub) == 2
            sub.close()

    with caplog.at_level(logging.WARNING, logger="serf"):
        run_virtual(main())
    drops = [r for r in caplog.records if "subscription full" in r.getMessage()]
    assert len(drops) == 1
    assert "b:" in drops[0].getMessage()


def test_close_ends_iteration_at_once_and_unregisters() -> None:
    async def main() -> None:
        async with _pair() as (_, b):
            sub = b.subscribe()
            reader = asyncio.create_task(anext(sub, "ended"))
            await asyncio.sleep(0)  # the reader is waiting
            sub.close()
            assert await asyncio.wait_for(reader, 5) == "ended"
            assert sub not in b._subscribers
            async with b.subscribe() as scoped:
                assert scoped in b._subscribers
            assert scoped.closed and scoped not in b._subscribers

    run_virtual(main())


def test_shutdown_ends_subscriptions_after_their_buffered_events() -> None:
    async def main() -> None:
        async with _pair() as (a, b):
            sub = b.subscribe(kinds=(UserEvent,))
            await a.join(["10.0.0.2:7946"])
            await a.user_event("last", b"", coalesce=False)
            await eventually(lambda: len(sub) == 1, 10)
            await b.shutdown()
            assert [e.name async for e in sub] == ["last"]  # type: ignore[attr-defined]

    run_virtual(main())


def test_subscribing_on_a_closed_node_ends_at_once() -> None:
    async def main() -> None:
        async with _pair() as (a, _):
            await a.shutdown()
            assert await asyncio.wait_for(anext(a.events(), "ended"), 5) == "ended"
            assert [e async for e in a.subscribe(kinds=(Query,))] == []

    run_virtual(main())


def test_subscribe_rejects_bad_arguments() -> None:
    async def main() -> None:
        async with _pair() as (a, _):
            with pytest.raises(ValueError, match="maxsize"):
                a.subscribe(maxsize=0)
            with pytest.raises(TypeError, match="kinds"):
                a.subscribe(kinds=("UserEvent",))  # type: ignore[list-item]

    run_virtual(main())


# -- lifecycle ----------------------------------------------------------------------------


def test_create_as_context_manager_shuts_down_at_the_end() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        async with Serf.create(
            _config("a"), transport=net.transport(Address("10.0.0.1", 7946))
        ) as node:
            assert node.state is SerfState.ALIVE and not node.closed
            assert net.is_bound(Address("10.0.0.1", 7946))
        assert node.closed and node.state is SerfState.SHUTDOWN
        assert not net.is_bound(Address("10.0.0.1", 7946))
        await asyncio.wait_for(node.wait_closed(), 1)
        with pytest.raises(SerfError, match="shut down"):
            await node.user_event("late")

    run_virtual(main())


def test_leave_on_exit_makes_peers_see_a_leave_not_a_failure() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        async with Serf.create(
            _config("a"), transport=net.transport(Address("10.0.0.1", 7946))
        ) as a:
            events = a.subscribe(kinds=(MemberLeft,))
            async with Serf.create(
                _config("b"), transport=net.transport(Address("10.0.0.2", 7946)), leave_on_exit=True
            ) as b:
                await b.join(["10.0.0.1:7946"])
                await eventually(lambda: len(a.members(MemberStatus.ALIVE)) == 2, 10)
            assert b.closed
            left = await _next(events)
            assert isinstance(left, MemberLeft) and [m.name for m in left.members] == ["b"]
            assert [m.name for m in a.members("left")] == ["b"]

    run_virtual(main())


def test_state_follows_leave_and_shutdown() -> None:
    async def main() -> None:
        async with _pair() as (a, _):
            assert a.state is SerfState.ALIVE
            await a.leave()
            assert a.state is SerfState.LEFT
            await a.shutdown()
            assert a.state is SerfState.SHUTDOWN

    run_virtual(main())


def test_members_holds_self_as_soon_as_create_returns_and_filters_by_status() -> None:
    async def main() -> None:
        async with _pair() as (a, _):
            assert [(m.name, m.status) for m in a.members()] == [("a", MemberStatus.ALIVE)]
            assert [m.name for m in a.members(MemberStatus.ALIVE)] == ["a"]
            assert [m.name for m in a.members("alive")] == ["a"]
            assert a.members(MemberStatus.FAILED) == []
            with pytest.raises(ValueError, match="status must be one of"):
                a.members("dead")

    run_virtual(main())


def test_a_node_that_loses_a_name_conflict_ends_wait_closed_and_its_subscriptions() -> None:
    async def main() -> None:
        async with cluster(3, seed=3) as nodes:
            assert nodes.network is not None
            # a second "node1" at another address: the others know the first one, so the
            # newcomer loses the _serf_conflict vote and shuts itself down (Go's ShutdownCh)
            impostor = await Serf.create(
                _config("node1"), transport=nodes.network.transport(memory_address(9))
            )
            try:
                events = impostor.subscribe()
                await impostor.join([str(memory_address(0))])
                await asyncio.wait_for(impostor.wait_closed(), 60)
                assert impostor.closed and impostor.state is SerfState.SHUTDOWN
                assert [e async for e in events if not isinstance(e, MemberJoined)] == []
                assert not nodes[1].closed and nodes[1].state is SerfState.ALIVE
            finally:
                await impostor.shutdown()

    run_virtual(main())


# -- requests -----------------------------------------------------------------------------


def test_a_query_the_core_refuses_raises_and_the_next_one_still_gets_answers() -> None:
    async def main() -> None:
        async with _pair() as (a, b):
            await a.join(["10.0.0.2:7946"])
            with pytest.raises(SerfError, match="query exceeds limit of 1024 bytes"):
                await a.query("big", b"x" * 2048, timeout=5)
            replies = b.subscribe(kinds=(Query,))
            resp = await a.query("small", b"", timeout=5)

            async def answer() -> None:
                async for q in replies:
                    await q.respond(b"pong")
                    return

            await asyncio.gather(answer(), asyncio.wait_for(resp.collect(), 10))
            assert resp.responded == {"b": b"pong"}

    run_virtual(main())


def test_key_manager_on_a_shut_down_node_raises_serf_error() -> None:
    async def main() -> None:
        async with _pair() as (a, _b):
            await a.shutdown()
            with pytest.raises(SerfError, match="shut down"):
                await a.key_manager.list_keys()
            with pytest.raises(SerfError, match="shut down"):
                await a.query("late")

    run_virtual(main())
