"""The facade's extension points (issue #10, item 6): custom join addresses, memberlist
delegates through Serf.create, a codec of one's own. On the memory network, virtual time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from serf import CompositeDelegate, MemberStatus, Serf, SerfConfig, UserEvent, local
from serf.memberlist.state import Node
from serf.testing import cluster, eventually, memory_address, run_virtual
from serf.transport.memory import MemoryNetwork
from serf.wire.codec import Codec, get_codec, register_codec
from serf.wire.messages import Message


@dataclass(frozen=True)
class PeerAddress:
    """A user's own address type: anything with .host and .port."""

    host: str
    port: int
    zone: str = "eu-1"


def test_join_takes_any_object_with_host_and_port() -> None:
    async def main() -> None:
        async with cluster(2, join=False) as (_, b):
            where = memory_address(0)
            assert await b.join([PeerAddress(where.host, where.port)]) == 1
            with pytest.raises(TypeError, match="must be 'host:port' strings"):
                await b.join([1234])  # type: ignore[list-item]

    run_virtual(main())


class Recorder:
    """Memberlist EventDelegate + PingDelegate + AliveDelegate parts of a user."""

    def __init__(self, refuse: str = "") -> None:
        self.joined: list[str] = []
        self.pinged: set[str] = set()
        self.refuse = refuse

    def notify_join(self, node: Node) -> None:
        self.joined.append(node.name)

    def notify_leave(self, node: Node) -> None:
        pass

    def notify_update(self, node: Node) -> None:
        pass

    def ack_payload(self) -> bytes:
        return b"never sent: serf's coordinates ride on acks"

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        self.pinged.add(node.name)

    def notify_alive(self, node: Node) -> str | None:
        return "not this one" if node.name == self.refuse else None


def test_memberlist_delegates_plug_into_serf_create_after_serfs_own() -> None:
    async def main() -> None:
        rec = Recorder(refuse="node2")
        hooks = CompositeDelegate(events=rec, ping=rec, alive=rec)

        def config(name: str) -> SerfConfig:
            return SerfConfig(node_name=name, memberlist=local(name, retransmit_mult=4))

        async with cluster(3, join=False, config=config) as nodes:
            await nodes[0].shutdown()
            observed = await Serf.create(
                config("node0"),
                transport=nodes.network.transport(memory_address(0)),  # type: ignore[union-attr]
                memberlist_delegate=hooks,
            )
            try:
                await nodes[1].join([str(memory_address(0))])
                await nodes[2].join([str(memory_address(1))])
                await eventually(lambda: len(nodes[2].members(MemberStatus.ALIVE)) == 3)
                await eventually(lambda: "node1" in rec.pinged, 10)
                assert rec.joined == ["node0", "node1"]  # node2 vetoed by our alive part
                names = {m.name for m in observed.members()}
                assert names == {"node0", "node1"}
                assert observed.get_coordinate() is not None  # serf's ping part still runs
            finally:
                await observed.shutdown()

    run_virtual(main())


def test_the_delegate_part_stays_serfs() -> None:
    class Meta:
        def node_meta(self, limit: int) -> bytes:
            return b""

    async def main() -> None:
        with pytest.raises(ValueError, match="only one Delegate"):
            await Serf.create(
                SerfConfig(node_name="a", memberlist=local("a")),
                transport=MemoryNetwork().transport(memory_address(0)),
                memberlist_delegate=CompositeDelegate(delegate=Meta()),  # type: ignore[arg-type]
            )

    run_virtual(main())


class CountingCodec:
    """A user's codec: lpe underneath, counting what it encodes."""

    name = "counting-lpe"

    def __init__(self) -> None:
        self._inner = get_codec("lpe")
        self.encoded = 0

    def encode(self, message: Message) -> bytes:
        self.encoded += 1
        return self._inner.encode(message)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


def test_a_codec_of_ones_own_is_named_in_the_config() -> None:
    codec = CountingCodec()
    register_codec("counting-lpe", lambda: codec)  # type: ignore[arg-type, return-value]
    assert isinstance(get_codec("counting-lpe"), Codec)

    def config(name: str) -> SerfConfig:
        ml = local(name, retransmit_mult=4, codec="counting-lpe")
        return SerfConfig(node_name=name, memberlist=ml)

    async def main() -> None:
        async with cluster(2, config=config) as nodes:
            events = nodes[1].subscribe(kinds=(UserEvent,))
            await nodes[0].user_event("via-my-codec", b"")
            await eventually(lambda: len(events) == 1)
        assert codec.encoded > 0

    run_virtual(main())
    with pytest.raises(ValueError, match="register your own"):
        local("x", codec="nope")
