"""Go serf's conveniences on the facade (issue #10, item 7): RTT estimates, node counts, the
default query timeout, a query's deadline / close / silent nodes, the keyring file read back.
On the memory network in virtual time."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from serf import Keyring, Query, Serf, SerfConfig, local
from serf.core.vivaldi import distance
from serf.testing import cluster, eventually, memory_address, run_virtual
from serf.transport.memory import MemoryNetwork
from serf.wire.messages import Coordinate

KEY_A = bytes(range(16))
KEY_B = bytes(range(16, 32))


def test_coordinate_distance_to_is_the_vivaldi_distance() -> None:
    a = Coordinate(vec=[0.003, 0.004] + [0.0] * 6, height=0.001)
    b = Coordinate(vec=[0.0] * 8, height=0.001, adjustment=0.0005)
    assert a.distance_to(b) == b.distance_to(a) == distance(a, b)
    assert a.distance_to(b) == pytest.approx(0.005 + 0.002 + 0.0005)
    with pytest.raises(ValueError, match="dimensions"):
        a.distance_to(Coordinate(vec=[0.0] * 3))


def test_estimated_rtt_num_nodes_and_default_query_timeout() -> None:
    async def main() -> None:
        async with cluster(3) as nodes:
            await eventually(lambda: nodes[0].get_cached_coordinate("node1") is not None, 30)
            rtt = nodes[0].estimated_rtt("node1")
            assert rtt is not None and rtt >= 0
            assert nodes[0].estimated_rtt("nobody") is None
            assert nodes[0].num_nodes() == 3
            # local(): gossip 0.1 s x query_timeout_mult 16 x ceil(log10(3 + 1))
            assert nodes[0].default_query_timeout() == pytest.approx(1.6)
            await nodes[2].shutdown()
            assert nodes[0].num_nodes() == 3  # a failed member still counts

    run_virtual(main())


def test_a_query_knows_its_deadline_and_the_nodes_that_stayed_silent() -> None:
    async def main() -> None:
        async with cluster(3) as nodes:
            await nodes[1].set_tags({"role": "db"})
            await eventually(
                lambda: {m.name: m.tags for m in nodes[0].members()}["node1"] == {"role": "db"}
            )

            async def answer(events: object) -> None:
                async for event in events:  # type: ignore[attr-defined]
                    await event.respond(b"here")

            responder = asyncio.create_task(answer(nodes[1].subscribe(kinds=(Query,))))
            await nodes[2].shutdown()  # silent, still listed alive by the others for a while
            loop = asyncio.get_running_loop()
            sent = loop.time()
            response = await nodes[0].query("who", request_ack=True)
            assert response.deadline == pytest.approx(sent + nodes[0].default_query_timeout())
            assert response.asked == {"node0", "node1", "node2"}
            await response.collect()
            assert loop.time() == pytest.approx(response.deadline)  # ended at its deadline
            assert response.missing_acks() == ["node2"]
            assert response.missing_responses() == ["node0", "node2"]
            assert response.responded == {"node1": b"here"}

            filtered = await nodes[0].query("who", filter_tags={"role": "^db$"}, timeout=1)
            assert filtered.asked == {"node1"}
            await filtered.collect()
            assert filtered.missing_responses() == []

            long = await nodes[0].query("who", timeout=3600)
            long.close()
            assert await long.collect() == ([], {})
            assert loop.time() < long.deadline
            responder.cancel()

    run_virtual(main())


def test_the_keyring_file_is_read_back_on_restart(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    net = MemoryNetwork()

    def config() -> SerfConfig:
        return SerfConfig(node_name="a", memberlist=local("a"), keyring_file=str(path))

    async def main() -> None:
        async with Serf.create(
            config(), transport=net.transport(memory_address(0)), keyring=Keyring([KEY_A])
        ) as node:
            await node.key_manager.install_key(KEY_B)
            await node.key_manager.use_key(KEY_B)
        async with Serf.create(config(), transport=net.transport(memory_address(0))) as again:
            listed = await again.key_manager.list_keys()
            assert listed.keys == {
                base64.b64encode(KEY_A).decode(): 1,
                base64.b64encode(KEY_B).decode(): 1,
            }
            assert again.core.keyring is not None
            assert again.core.keyring.primary_key == KEY_B
        path.write_text("not json", encoding="utf-8")
        with pytest.raises(ValueError, match="keyring_file"):
            await Serf.create(config(), transport=net.transport(memory_address(0)))
        assert not net.is_bound(memory_address(0))

    run_virtual(main())
