"""Issue 9 item 3: each inbound query kept an entry and a timer until the Timeout its sender
chose (2**62 ns: forever), so a flood of queries grew memory without bound. What a node keeps
per inbound query is now bounded in count and lifetime, with no timer per query."""

from __future__ import annotations

import asyncio

import pytest

from serf.address import Address
from serf.cli.rpc_client import RPCError
from serf.core import io as sio
from serf.core.queries import MAX_INBOUND_QUERIES, MAX_INBOUND_QUERY_LIFETIME
from serf.core.serf import SerfCore
from serf.memberlist import io as mio
from serf.testing.agents import cluster, run, until
from serf.testing.cores import serf_core
from serf.wire.messages import MessageQuery, UserMsg

FOREVER = 2**62  # ns, as the attack sent


def _core() -> SerfCore:
    return serf_core(query_buffer=64)


def _query(core: SerfCore, ltime: int, timeout: int = FOREVER, now: float = 0.0) -> list[object]:
    msg = MessageQuery(ltime, ltime, b"\x0a\x00\x00\x02", 7946, "x", None, 0, 0, timeout, "q", b"")
    data = core.framer.encode_message(UserMsg(core.codec.encode(msg)), crc=False)
    return core.handle(mio.PacketReceived(data, Address("10.0.0.2", 7946)), now)


def test_a_query_flood_keeps_bounded_state() -> None:
    core = _core()
    timers_before = core.services.live_timers()
    for ltime in range(1, 3 * MAX_INBOUND_QUERIES):
        core.query_clock.witness(ltime)  # as if each arrived in order, none too old
        _query(core, ltime)
    assert len(core.queries.in_queries) == MAX_INBOUND_QUERIES
    assert core.services.live_timers() <= timers_before + 2  # no timer per query


def test_inbound_query_lifetime_is_capped() -> None:
    core = _core()
    (received,) = [e for e in _query(core, 1) if isinstance(e, sio.QueryReceived)]
    assert received.query.deadline == MAX_INBOUND_QUERY_LIFETIME  # not 146 years away
    late = MAX_INBOUND_QUERY_LIFETIME + 1
    (done,) = core.handle(sio.RespondRequest(1, received.query, b"late"), late)
    assert done == mio.RequestCompleted(1, error="Response is past the deadline")
    core.query_clock.witness(2)
    (second,) = [e for e in _query(core, 2, 10**9, late) if isinstance(e, sio.QueryReceived)]
    assert list(core.queries.in_queries) == [(2, 2)]  # the expired entry left
    out = core.handle(sio.RespondRequest(2, second.query, b"ok"), late)
    assert [e for e in out if isinstance(e, mio.RequestCompleted)] == [mio.RequestCompleted(2)]


@pytest.mark.integration
def test_rpc_stream_query_ids_expire_without_timers() -> None:
    from serf.agent import rpc_server

    async def body() -> None:
        async with cluster(2) as (a, b), await a.client() as ca, await b.client() as cb:
            stream = await cb.stream("query")
            await ca.query("late", b"", timeout=0.3)
            rec = await asyncio.wait_for(stream.__anext__(), 10)
            loop = asyncio.get_running_loop()
            conn = next(c for c in b.rpc.conns if c.pending)  # the stream's connection
            (query,) = conn.pending.values()
            await until(lambda: loop.time() > query.handle.deadline, timeout=10)
            assert conn.pending  # no timer removed it: it expires when looked at
            with pytest.raises(RPCError, match=rpc_server.NO_PENDING_QUERY):
                await cb.respond(rec["ID"], b"too late")

    run(body(), timeout=60)
