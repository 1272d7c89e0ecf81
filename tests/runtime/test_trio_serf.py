"""TrioSerf's own surface: how a node is started and stopped on trio, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

trio = pytest.importorskip("trio")

from serf import MemberStatus, SerfConfig, SerfError  # noqa: E402
from serf.config import loopback  # noqa: E402
from serf.runtime.trio_serf import TrioSerf  # noqa: E402
from serf.testing.trio_kit import trio_cluster  # noqa: E402


def _config(name: str, **ml: Any) -> SerfConfig:
    return SerfConfig(node_name=name, memberlist=loopback(name, **ml))


def test_quic_is_refused_on_trio_with_the_reason() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="does not run on trio"):
            async with TrioSerf.create(_config("q", transport="quic")):
                pass  # pragma: no cover - the start fails

    trio.run(main)


def test_awaiting_create_needs_a_nursery() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match="needs nursery="):
            await TrioSerf.create(_config("a"))

    trio.run(main)


def test_a_node_runs_in_the_callers_nursery_until_shutdown() -> None:
    async def main() -> None:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                node = await TrioSerf.create(_config("n0"), nursery=nursery)
                assert [m.name for m in node.members(MemberStatus.ALIVE)] == ["n0"]
                await node.shutdown()
                await node.wait_closed()
                assert node.closed
                with pytest.raises(SerfError, match="shut down"):
                    await node.user_event("late", b"")
            # the nursery ended: the node left no task behind

    trio.run(main)


def test_a_query_answers_on_trios_clock_and_ends_at_its_deadline() -> None:
    async def main() -> None:
        with trio.fail_after(30):
            async with trio_cluster(2) as nodes:
                start = trio.current_time()
                response = await nodes[0].query("nobody-answers", timeout=0.5)
                assert start + 0.5 <= response.deadline <= trio.current_time() + 0.5
                acks, responses = await response.collect()
                assert trio.current_time() >= response.deadline - 0.05
                assert (acks, responses) == ([], {})
                assert response.missing_responses() == ["node0", "node1"]

    trio.run(main)
