"""Interop with a real Go serf agent (pinned in serf.testing.gopeer): join both ways,
plain and encrypted, and each side detects the other's failure."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from serf.config import local
from serf.memberlist import CompositeDelegate
from serf.memberlist.state import NodeState
from serf.runtime.memberlist import Memberlist
from serf.testing.gopeer import GoSerfAgent, go_serf_or_skip

pytestmark = [pytest.mark.go, pytest.mark.integration, pytest.mark.slow]

KEY = bytes(range(100, 132))
EMPTY_SERF_TAGS = b"\xff\x80"  # serf's tag encoding: magic 0xff + msgpack {} (reference 3.4)


@pytest.fixture(scope="module")
def go_serf() -> Path:
    return go_serf_or_skip()


class SerfLikeDelegate:
    """What Go serf's delegate expects of a peer without the serf layer: empty tags."""

    def node_meta(self, limit: int) -> bytes:
        return EMPTY_SERF_TAGS

    def notify_msg(self, payload: bytes) -> None:
        pass

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        return []

    def local_state(self, join: bool) -> bytes:
        return b""

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        pass


def _py_host() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        return "127.0.0.1"
    return "127.0.0.2"


async def _py_node(encrypted: bool, key: bytes | None = None) -> Memberlist:
    config = dataclasses.replace(
        local("py1"),
        bind_addr=_py_host(),
        bind_port=0,
        codec="go",
        # Go serf's memberlist checks the delegate version range (serf protocol 2..5, cur 4).
        delegate_protocol_min=2,
        delegate_protocol_max=5,
        delegate_protocol_version=4,
        secret_key=(key or KEY) if encrypted else None,
    )
    return await Memberlist.create(config, delegate=CompositeDelegate(delegate=SerfLikeDelegate()))


async def _until(
    check: Callable[[], object], timeout: float, what: str, agent: GoSerfAgent
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if await asyncio.to_thread(check):
            return
        if loop.time() > end:
            raise AssertionError(f"{what} within {timeout}s; Go log:\n{agent.log_text()[-3000:]}")
        await asyncio.sleep(0.2)


def _view(node: Memberlist) -> dict[str, NodeState]:
    return {m.name: m.state for m in node.all_members()}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_pyserf_joins_go_and_sees_it_killed(go_serf: Path, encrypted: bool) -> None:
    async def main() -> None:
        agent = GoSerfAgent(binary=go_serf, encrypt=KEY if encrypted else None)
        await asyncio.to_thread(agent.start)
        node = await _py_node(encrypted)
        try:
            assert await node.join([agent.bind]) == 1
            await _until(lambda: agent.status_of("py1") == "alive", 10, "Go sees py1", agent)
            await _until(
                lambda: _view(node).get("go1") is NodeState.ALIVE, 10, "py1 sees go1", agent
            )
            assert node.num_members() == 2
            await asyncio.to_thread(agent.kill)
            await _until(
                lambda: _view(node).get("go1") is NodeState.DEAD, 30, "py1 finds go1 dead", agent
            )
        finally:
            await node.shutdown()
            agent.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_go_joins_pyserf_and_sees_it_failed(go_serf: Path, encrypted: bool) -> None:
    async def main() -> None:
        agent = GoSerfAgent(binary=go_serf, encrypt=KEY if encrypted else None)
        await asyncio.to_thread(agent.start)
        node = await _py_node(encrypted)
        try:
            await asyncio.to_thread(agent.join, str(node.address))
            await _until(lambda: agent.status_of("py1") == "alive", 10, "Go sees py1", agent)
            await _until(
                lambda: _view(node).get("go1") is NodeState.ALIVE, 10, "py1 sees go1", agent
            )
            await node.shutdown()  # no leave
            await _until(
                lambda: agent.status_of("py1") == "failed", 30, "Go finds py1 failed", agent
            )
        finally:
            await node.shutdown()
            agent.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


@pytest.mark.parametrize(
    ("py_key", "why"),
    [(None, "not encrypted"), (bytes(32), "no installed keys could decrypt")],
    ids=["no-key", "wrong-key"],
)
def test_go_turns_away_wrong_key(go_serf: Path, py_key: bytes | None, why: str) -> None:
    async def main() -> None:
        agent = GoSerfAgent(binary=go_serf, encrypt=KEY)
        await asyncio.to_thread(agent.start)
        node = await _py_node(py_key is not None, key=py_key)
        try:
            with pytest.raises(ConnectionError):
                await node.join([agent.bind])
            await asyncio.sleep(0.5)
            assert await asyncio.to_thread(agent.status_of, "py1") is None
            assert why in agent.log_text().lower(), agent.log_text()[-3000:]
        finally:
            await node.shutdown()
            agent.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
