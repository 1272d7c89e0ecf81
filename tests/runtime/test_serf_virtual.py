"""The Serf facade on the memory network in virtual time (serf.testing): event delivery,
query filters, leave versus failure. Protocol seconds cost no wall time here."""

from __future__ import annotations

import asyncio

from serf import Event, MemberStatus, Query, Serf, Subscription, UserEvent
from serf.testing import cluster, eventually, run_virtual

from .conftest import collect


def test_user_event_reaches_every_member_exactly_once() -> None:
    async def main() -> None:
        async with cluster(4) as nodes:
            streams = [node.subscribe(kinds=(UserEvent,)) for node in nodes]
            await nodes[1].user_event("deploy", b"v42", coalesce=False)
            # 5 s is many gossip rounds and push/pulls: a duplicate would show up
            results = await asyncio.gather(*(collect(s, 5) for s in streams))
            for got in results:
                assert [(e.name, e.payload) for e in got] == [("deploy", b"v42")]

    run_virtual(main())


def test_query_filters_get_exactly_the_expected_responders() -> None:
    async def main() -> None:
        async with cluster(4) as nodes:
            await nodes[2].set_tags({"role": "web"})
            await nodes[3].set_tags({"role": "db"})
            await eventually(
                lambda: all(
                    {m.name: m.tags.get("role") for m in n.members()}.get("node2") == "web"
                    for n in nodes
                ),
                what="the new tags everywhere",
            )

            async def answer(node: Serf, events: Subscription[Event]) -> None:
                async for event in events:
                    if isinstance(event, Query) and event.name == "who":
                        await event.respond(node.local_member.name.encode())

            tasks = [asyncio.create_task(answer(n, n.subscribe(kinds=(Query,)))) for n in nodes]
            every = await nodes[0].query("who", request_ack=True, timeout=1.5)
            acks, responses = await every.collect()
            assert sorted(acks) == ["node0", "node1", "node2", "node3"]
            assert set(responses) == {"node0", "node1", "node2", "node3"}
            web = await nodes[0].query("who", filter_tags={"role": "^we"}, timeout=1.5)
            assert (await web.collect())[1] == {"node2": b"node2"}
            named = await nodes[0].query(
                "who", filter_nodes=["node1", "node3"], request_ack=True, timeout=1.5
            )
            acks, responses = await named.collect()
            assert sorted(acks) == ["node1", "node3"]
            assert sorted(responses) == ["node1", "node3"]
            for task in tasks:
                task.cancel()

    run_virtual(main())


def test_leave_is_seen_as_left_and_shutdown_as_failed() -> None:
    async def main() -> None:
        async with cluster(3) as nodes:
            await nodes[1].leave()
            await nodes[2].shutdown()

            def status(name: str) -> MemberStatus | None:
                return {m.name: m.status for m in nodes[0].members()}.get(name)

            await eventually(lambda: status("node1") is MemberStatus.LEFT, 10, what="left")
            await eventually(lambda: status("node2") is MemberStatus.FAILED, 20, what="failed")

    run_virtual(main())
