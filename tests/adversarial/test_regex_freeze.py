"""Issue 9 item 1: a hostile regex in a query's tag filter or an RPC ``members-filtered``
request froze a node (Python's backtracking ``re`` on the event loop). Patterns now run on
RE2, as Go's regexp does: linear time, and a pattern RE2 rejects matches nothing (query
filter) or closes the RPC connection (members-filtered), as in Go."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from serf.cli.rpc_client import RPCClient
from serf.testing.agents import Raw, cluster, run

ATTACK = """
from serf.core.filters import anchored_match, matches
from serf.wire.messages import FilterTag
value = "x" * 4000
print(matches([FilterTag("env", "(.*.*)*Z")], "n1", {"env": value}))
print(anchored_match("(.*.*)*Z", value))
print(anchored_match("(a|aa)*b", "a" * 4000))
"""


def test_catastrophic_patterns_finish(run_or_hang: Callable[[str], str]) -> None:
    assert run_or_hang(ATTACK).split() == ["False", "False", "False"]


@pytest.mark.integration
def test_rpc_members_filtered_uses_re2() -> None:
    async def body() -> None:
        async with cluster(1, tags={"env": "x" * 40}) as (a,):
            async with await a.client() as c:
                assert await c.members_filtered(tags={"env": "(.*.*)*Z"}) == []
                assert [m.name for m in await c.members_filtered(name="(n|n0)*")] == ["n0"]
            raw = await Raw.open(a.addr)
            await raw.send({"Command": "handshake", "Seq": 1}, {"Version": 1})
            await raw.recv()
            # lookahead: Python's re accepts it, RE2 (and Go) reject it -> closed, no reply
            await raw.send({"Command": "members-filtered", "Seq": 2}, {"Name": "(?=n)n0"})
            assert await raw.closed()

    run(body())


async def _acks(c: RPCClient, filter_tags: dict[str, str]) -> list[str]:
    sub = await c.query("q", b"", filter_tags=filter_tags, request_ack=True, timeout=1.0)
    return [rec.from_ async for rec in sub if rec.type == "ack"]


@pytest.mark.slow
@pytest.mark.integration
def test_query_with_hostile_filter_leaves_node_responsive() -> None:
    async def body() -> None:
        async with cluster(2, tags={"env": "x" * 40}) as (a, b):
            async with await a.client() as c:
                acks = await _acks(c, {"env": "(.*.*)*Z"})
                assert acks == []
                assert sorted(await _acks(c, {"env": "(x|xx)*"})) == ["n0", "n1"]
                # both nodes still gossip and answer RPC
                assert len(await c.members_filtered(status="alive")) == 2
            async with await b.client() as c:
                assert len(await c.members()) == 2

    run(body())
