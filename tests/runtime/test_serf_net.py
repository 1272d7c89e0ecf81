"""The async Serf facade on real loopback sockets: the whole stack, bounded in wall time.

Protocol behaviour that does not depend on sockets (event delivery, query filters, leave
versus failure) is tested on the memory network in virtual time, in test_serf_virtual.py.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from serf import (
    Keyring,
    MemberJoined,
    Serf,
    SerfConfig,
    SerfError,
    UserEvent,
    loopback,
)
from serf.core.snapshot import replay

from .conftest import collect

KEY_A = bytes(range(16))
KEY_B = bytes(range(100, 132))


def _config(name: str, **serf_kw: Any) -> SerfConfig:
    # loopback(): local() timings on 127.0.0.1 with LAN's retransmit_mult (4); with local()'s
    # 2, a broadcast may miss a node until the next push/pull (as in Go).
    return SerfConfig(node_name=name, memberlist=loopback(name), **serf_kw)


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


async def _cluster(n: int, **kw: Any) -> list[Serf]:
    keyring = kw.pop("keyring", None)
    nodes: list[Serf] = []
    for i in range(n):
        ring = Keyring(keyring.keys, keyring.primary_key) if keyring else None
        nodes.append(await Serf.create(_config(f"node{i}", **kw), keyring=ring))
    seed = nodes[0].local_member
    for node in nodes[1:]:
        assert await node.join([f"127.0.0.1:{seed.port}"]) == 1
    await _until(
        lambda: all(sum(m.status.name == "ALIVE" for m in node.members()) == n for node in nodes),
        20,
        f"{n} alive members everywhere",
    )
    return nodes


async def _shutdown(nodes: list[Serf]) -> None:
    for node in nodes:
        await node.shutdown()


async def _next(
    events: AsyncIterator[Any], want: Callable[[Any], bool], timeout: float = 10
) -> Any:
    """The first event ``want`` accepts; AssertionError if none comes within ``timeout``."""

    async def first() -> Any:
        async for event in events:
            if want(event):
                return event
        raise AssertionError("the event stream ended")

    try:
        return await asyncio.wait_for(first(), timeout)
    except TimeoutError:
        raise AssertionError(f"no matching event within {timeout}s") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def run(coro: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(coro(), timeout))


@pytest.mark.slow
def test_key_rotation_across_an_encrypted_cluster_loses_nobody() -> None:
    async def main() -> None:
        nodes = await _cluster(3, keyring=Keyring([KEY_A]))
        try:
            km = nodes[0].key_manager
            installed = await km.install_key(base64.b64encode(KEY_B).decode())
            assert (installed.num_nodes, installed.num_resp, installed.num_err) == (3, 3, 0)
            await km.use_key(KEY_B)
            await km.remove_key(KEY_A)
            listed = await km.list_keys()
            assert listed.keys == {base64.b64encode(KEY_B).decode(): 3}
            # still one cluster, now on the new key only: gossip reaches everyone ...
            subs = [node.events() for node in nodes[:2]]
            await nodes[2].user_event("after-rotation", b"", coalesce=False)
            for sub in subs:
                await _next(sub, lambda e: isinstance(e, UserEvent) and e.name == "after-rotation")
            # ... a node holding only the new key joins (push/pull), one holding the old fails
            newcomer = await Serf.create(_config("newcomer"), keyring=Keyring([KEY_B]))
            stale = await Serf.create(_config("stale"), keyring=Keyring([KEY_A]))
            nodes += [newcomer, stale]
            seed = f"127.0.0.1:{nodes[0].local_member.port}"
            assert await newcomer.join([seed]) == 1
            with pytest.raises(SerfError):
                await stale.join([seed])
            await _until(
                lambda: all(
                    {m.name for m in node.members() if m.status.name == "ALIVE"}
                    == {"node0", "node1", "node2", "newcomer"}
                    for node in [*nodes[:3], newcomer]
                ),
                20,
                "the newcomer alive everywhere, the stale node nowhere",
            )
            with pytest.raises(SerfError):
                await km.remove_key(KEY_B)  # the primary cannot be removed
        finally:
            await _shutdown(nodes)

    run(main)


def test_wrong_key_never_joins() -> None:
    async def main() -> None:
        nodes = await _cluster(2, keyring=Keyring([KEY_A]))
        stranger = await Serf.create(_config("stranger"), keyring=Keyring([KEY_B]))
        try:
            with pytest.raises(SerfError):
                await stranger.join([f"127.0.0.1:{nodes[0].local_member.port}"])
            await asyncio.sleep(0.5)
            assert "stranger" not in {m.name for m in nodes[0].members()}
        finally:
            await _shutdown([*nodes, stranger])

    run(main)


@pytest.mark.slow
def test_restart_from_snapshot_rejoins_without_replaying_events(tmp_path: Path) -> None:
    async def main() -> None:
        nodes = await _cluster(2)
        snap = tmp_path / "node9.snapshot"
        restarted: Serf | None = None
        try:
            node9 = await Serf.create(_config("node9", snapshot_path=str(snap)))
            await node9.join([f"127.0.0.1:{nodes[0].local_member.port}"])
            events = node9.events()
            waiter = asyncio.create_task(collect(events, 2.0, lambda e: isinstance(e, UserEvent)))
            await nodes[0].user_event("old", b"1", coalesce=False)
            (old,) = await waiter
            assert old.name == "old"
            await _until(  # the snapshot's periodic flush records the event clock
                lambda: replay(_read(snap), False).last_event_clock >= old.ltime,
                10,
                "the snapshot to record the event clock",
            )
            await node9.shutdown()  # a crash: no leave

            text = snap.read_text()
            assert "alive: node0 127.0.0.1:" in text
            assert "event-clock:" in text

            restarted = await Serf.create(_config("node9", snapshot_path=str(snap)))
            replayed = restarted.events()
            seen = await collect(replayed, 3.0, lambda e: isinstance(e, UserEvent | MemberJoined))
            assert not [e for e in seen if isinstance(e, UserEvent)], "old event replayed"
            await _until(
                lambda: sum(m.status.name == "ALIVE" for m in restarted.members()) == 3,
                15,
                "the restarted node rejoined from its snapshot",
            )
        finally:
            await _shutdown([*nodes, *([restarted] if restarted else [])])

    run(main, timeout=90)


def test_coordinates_are_exchanged() -> None:
    async def main() -> None:
        nodes = await _cluster(2)
        try:
            await _until(
                lambda: nodes[0].get_cached_coordinate("node1") is not None,
                10,
                "a coordinate for node1",
            )
            own = nodes[0].get_coordinate()
            assert own is not None and own.vec is not None and len(own.vec) == 8
        finally:
            await _shutdown(nodes)

    run(main)
