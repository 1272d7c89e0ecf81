"""The test kit (serf.testing): virtual time, cluster(), eventually()."""

from __future__ import annotations

import asyncio
import math

import pytest

import serf
from serf import MemberStatus, Serf, UserEvent
from serf.testing import VirtualTimeLoop, cluster, eventually, memory_address, run_virtual
from serf.testing.sansio import probe_imports


def test_virtual_time_jumps_to_each_timer_in_order() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        fired: list[tuple[str, float]] = []
        loop.call_later(3600, lambda: fired.append(("hour", loop.time())))
        loop.call_later(0.25, lambda: fired.append(("quarter", loop.time())))
        await asyncio.sleep(7200)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 30)
        fired.append(("end", loop.time()))
        return fired

    expected = [("quarter", 0.25), ("hour", 3600.0), ("end", 7230.0)]
    assert run_virtual(main(), timeout=None) == expected


def test_a_wait_for_what_never_happens_fails_after_the_virtual_timeout() -> None:
    with pytest.raises(TimeoutError):
        run_virtual(asyncio.Event().wait(), timeout=86_400)


def test_eventually_polls_on_the_loops_clock_and_names_what_failed() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await eventually(lambda: loop.time() - start >= 5, timeout=10)

        async def never() -> bool:
            return False

        with pytest.raises(AssertionError, match="the moon did not hold within 2 s"):
            await eventually(never, timeout=2, what="the moon")

    run_virtual(main())


def test_the_facade_detects_a_failure_in_virtual_time_within_the_protocols_bound() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with cluster(3) as nodes:
            assert [str(n.local_member.port) for n in nodes] == ["7946"] * 3
            await nodes[2].shutdown()  # no leave: the others must detect it
            killed = loop.time()

            def failed() -> bool:
                return {m.name: m.status for m in nodes[0].members()}["node2"] is (
                    MemberStatus.FAILED
                )

            await eventually(failed, timeout=60)
            return loop.time() - killed

    detected = run_virtual(main())
    # local(): probe every 1 s, suspicion timeout suspicion_mult(3) * log10(3) * 1 s scaled
    # up to x suspicion_max_timeout_mult(6) without confirmations; plus one probe round
    ml = serf.local("x")
    base = ml.suspicion_mult * max(1.0, math.log10(3)) * ml.probe_interval
    assert base <= detected <= base * ml.suspicion_max_timeout_mult + 2 * ml.probe_interval


def test_cluster_on_the_memory_network_exposes_it_and_joins_everyone() -> None:
    async def main() -> None:
        async with cluster(4, names="web-{}".format) as nodes:
            assert nodes.network is not None
            assert nodes.network.is_bound(memory_address(3))
            for node in nodes:
                assert sorted(m.name for m in node.members(MemberStatus.ALIVE)) == [
                    "web-0", "web-1", "web-2", "web-3"
                ]  # fmt: skip
            events = nodes[3].subscribe(kinds=(UserEvent,))
            await nodes[0].user_event("hello", b"")
            got = await asyncio.wait_for(anext(events), 10)
            assert isinstance(got, UserEvent) and got.name == "hello"
        assert all(node.closed for node in nodes)
        assert not nodes.network.is_bound(memory_address(0))

    run_virtual(main())


def test_cluster_apart_and_bad_arguments() -> None:
    async def main() -> None:
        async with cluster(2, join=False) as nodes:
            assert [len(n.members()) for n in nodes] == [1, 1]
        with pytest.raises(ValueError, match="transport must be"):
            async with cluster(2, transport="carrier-pigeon"):  # type: ignore[arg-type]
                pass
        with pytest.raises(ValueError, match="n must be >= 1"):
            async with cluster(0):
                pass

    run_virtual(main())


def test_cluster_on_real_loopback_sockets() -> None:
    async def main() -> None:
        async with cluster(2, transport="net") as nodes:
            assert nodes.network is None
            assert {n.local_member.addr for n in nodes} == {bytes([127, 0, 0, 1])}
            assert all(isinstance(n, Serf) for n in nodes)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_importing_serf_testing_pulls_in_no_asyncio() -> None:
    added, _ = probe_imports("serf.testing")
    assert "asyncio" not in added


def test_a_seeded_cluster_in_virtual_time_repeats_exactly() -> None:
    async def main() -> tuple[float, list[tuple[str, str]]]:
        loop = asyncio.get_running_loop()
        async with cluster(4, seed=7) as nodes:
            await nodes[3].shutdown()
            killed = loop.time()
            await eventually(
                lambda: len(nodes[0].members(MemberStatus.FAILED)) == 1, timeout=60, interval=0.01
            )
            view = sorted((m.name, str(m.status)) for m in nodes[1].members())
            return loop.time() - killed, view

    assert run_virtual(main()) == run_virtual(main())


def test_work_in_a_thread_takes_no_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(asyncio.sleep(1))  # a timer the loop could jump to
        start = loop.time()
        await asyncio.to_thread(sum, range(100_000))
        elapsed = loop.time() - start
        await ticker
        return elapsed

    assert run_virtual(main()) == 0.0
