"""The trio driver against the asyncio driver's tiny fake core (tests/runtime/test_driver.py),
over real loopback sockets (TrioNetTransport): the same expectations on trio."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

trio = pytest.importorskip("trio")


from serf.address import Address  # noqa: E402
from serf.memberlist.io import JoinRequest, NodeJoined, ShutdownRequest, Start  # noqa: E402
from serf.runtime.trio_driver import TrioMemberlistDriver  # noqa: E402
from serf.testing.trio_kit import trio_eventually  # noqa: E402
from serf.transport.trio_net import TrioNetTransport  # noqa: E402
from serf.wire.framing import PacketFramer  # noqa: E402
from serf.wire.keyring import Keyring  # noqa: E402
from serf.wire.messages import Ping  # noqa: E402


def _load_fake_core() -> Any:
    """FakeCore of tests/runtime/test_driver.py (tests are not importable by name here)."""
    path = Path(__file__).with_name("test_driver.py")
    spec = importlib.util.spec_from_file_location("_asyncio_driver_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeCore


FakeCore = _load_fake_core()


def _run(body: Callable[[Any], Awaitable[None]], limit: float = 10.0) -> None:
    async def main() -> None:
        with trio.fail_after(limit):
            async with trio.open_nursery() as nursery:
                await body(nursery)

    trio.run(main)


async def _driver(nursery: Any, core: Any) -> TrioMemberlistDriver:
    transport = TrioNetTransport(Address("127.0.0.1", 0))
    driver = TrioMemberlistDriver(transport, core, stream_timeout=1.0)
    await driver.start(nursery)
    return driver


def test_timer_ticks_with_now_not_before_deadline() -> None:
    async def body(nursery: Any) -> None:
        core = FakeCore()
        driver = await _driver(nursery, core)
        # four 50 ms ticks, however late a loaded machine runs them (not a speed assertion)
        await trio_eventually(lambda: len(core.ticks) >= 4, 20)
        await driver.stop()
        assert all(now >= deadline for deadline, now in core.ticks)
        assert driver.stats.ticks == len(core.ticks)
        n = len(core.ticks)
        await trio.sleep(0.15)
        assert len(core.ticks) == n  # no timer after stop
        assert isinstance(core.inputs[0], Start)
        assert isinstance(core.inputs[-1], ShutdownRequest)

    _run(body)


def test_packets_echo_and_bad_input_does_not_kill() -> None:
    async def body(nursery: Any) -> None:
        a, b = FakeCore(), FakeCore()
        da, db = await _driver(nursery, a), await _driver(nursery, b)
        da.transport.send_packet(db.transport.local_address, b"boom")
        da.transport.send_packet(db.transport.local_address, b"ping")
        await trio_eventually(lambda: a.packets == [b"pong"], 5)
        assert b.packets == [b"ping"]
        assert db.stats.errors == 1 and db.stats.dropped == 1
        assert db.running
        await da.stop()
        await db.stop()

    _run(body)


def test_join_over_streams_and_events() -> None:
    async def body(nursery: Any) -> None:
        a, b = FakeCore(), FakeCore()
        da, db = await _driver(nursery, a), await _driver(nursery, b)
        sub = da.subscribe()
        target = Address.of(db.transport.local_address)
        done = await da.request(lambda rid: JoinRequest(rid, (target,)))
        assert done.result == 1, done
        with trio.fail_after(2):
            event = await sub.__anext__()
        assert isinstance(event, NodeJoined) and event.node.name == "peer"
        assert len(b.requests) == 1 and isinstance(b.requests[0].message.message, Ping)
        # refused: nobody listens on a closed port
        probe = TrioNetTransport(Address("127.0.0.1", 0))
        await probe.start(nursery)
        dead = Address.of(probe.local_address)
        await probe.close()
        done = await da.request(lambda rid: JoinRequest(rid, (dead,)))
        assert done.result == 0 and done.error and "refused" in done.error
        await da.stop()
        await db.stop()
        assert [e async for e in sub] == []  # the subscription ends at stop
        with pytest.raises(RuntimeError, match="shut down"):
            await da.request(lambda rid: JoinRequest(rid, (target,)))

    _run(body)


def test_rejected_stream_gets_err_resp(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="serf")

    async def body(nursery: Any) -> None:
        a = FakeCore(PacketFramer("lpe"))  # plaintext dialer
        b = FakeCore(PacketFramer("lpe", keyring=Keyring([bytes(range(16))])))  # encrypted
        da, db = await _driver(nursery, a), await _driver(nursery, b)
        target = Address.of(db.transport.local_address)
        done = await da.request(lambda rid: JoinRequest(rid, (target,)))
        assert done.result == 0
        assert a.results[0].error and "bad reply" in a.results[0].error
        assert db.stats.streams_rejected == 1
        assert b.requests == []
        await da.stop()
        await db.stop()

    _run(body)
    assert "memberlist: failed to receive" in caplog.text


def test_stream_timeout_reported_once() -> None:
    async def body(nursery: Any) -> None:
        async def silent(stream: Any) -> None:
            await trio.sleep(5)

        listener = TrioNetTransport(Address("127.0.0.1", 0))
        listener.set_handlers(on_stream=silent)
        await listener.start(nursery)
        a = FakeCore()
        da = await _driver(nursery, a)
        target = Address.of(listener.local_address)
        with trio.fail_after(3):
            done = await da.request(lambda rid: JoinRequest(rid, (target,)))
        assert done.result == 0 and done.error and "timed out" in done.error
        assert len(a.results) == 1
        await da.stop()
        await listener.close()

    _run(body)
