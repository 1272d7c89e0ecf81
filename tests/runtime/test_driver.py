"""The asyncio driver against a tiny fake core, over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from serf.address import Address
from serf.memberlist.core import answer_unreadable
from serf.memberlist.io import (
    Dropped,
    Effect,
    Input,
    JoinRequest,
    NodeJoined,
    OpenStream,
    PacketReceived,
    RequestCompleted,
    SendPacket,
    ShutdownRequest,
    Start,
    StreamRequest,
    StreamRespond,
    StreamResult,
    StreamUnreadable,
    Tick,
)
from serf.memberlist.state import Node
from serf.runtime.driver import MemberlistDriver
from serf.testing.kit import eventually
from serf.transport.net import NetTransport
from serf.wire.framing import PacketFramer, StreamReader
from serf.wire.keyring import Keyring
from serf.wire.messages import AckResp, Ping

Arun = Callable[[Coroutine[Any, Any, Any], float], Any]
Poll = Callable[..., Awaitable[None]]


class FakeCore:
    """Ticks every 50 ms, echoes packets, answers stream pings, joins by pinging."""

    def __init__(self, framer: PacketFramer | None = None) -> None:
        self.framer = framer or PacketFramer("lpe")
        self.deadline: float | None = None
        self.ticks: list[tuple[float, float]] = []  # (deadline, now)
        self.packets: list[bytes] = []
        self.results: list[StreamResult] = []
        self.requests: list[StreamRequest] = []
        self.inputs: list[Input] = []
        self.pending_joins: dict[int, int] = {}
        self.next_stream = 1

    def next_deadline(self) -> float | None:
        return self.deadline

    def stream_reader(self, *, listener: bool) -> StreamReader:
        return self.framer.stream_reader(listener=listener)

    def handle(self, item: Input, now: float) -> list[Effect]:
        self.inputs.append(item)
        out: list[Effect] = []
        if isinstance(item, Start):
            self.deadline = now + 0.05
        elif isinstance(item, Tick):
            assert self.deadline is not None
            self.ticks.append((self.deadline, now))
            self.deadline = now + 0.05
        elif isinstance(item, PacketReceived):
            if item.data == b"boom":
                raise ValueError("bad packet")
            self.packets.append(item.data)
            if item.data == b"ping":
                out.append(SendPacket(item.source, b"pong"))
            out.append(Dropped("just testing", item.source))
        elif isinstance(item, StreamRequest):
            self.requests.append(item)
            msg = item.message.message
            if isinstance(msg, Ping):
                data = self.framer.encode_stream_message(AckResp(msg.seq_no), dialer=False)
                out.append(StreamRespond(item.stream_id, data))
            elif msg.__class__.__name__ != "Never":
                out.append(StreamRespond(item.stream_id, None))
        elif isinstance(item, StreamUnreadable):  # the real cores' rule (ErrResp or close)
            out += answer_unreadable(self.framer, item)
        elif isinstance(item, JoinRequest):
            for addr in item.addresses:
                sid = self.next_stream
                self.next_stream += 1
                self.pending_joins[sid] = item.request_id
                data = self.framer.encode_stream_message(Ping(sid, "x"), dialer=True)
                out.append(OpenStream(sid, addr, data, True, 1.0))
        elif isinstance(item, StreamResult):
            self.results.append(item)
            rid = self.pending_joins.pop(item.stream_id)
            ok = (
                item.reply is not None
                and isinstance(item.reply.message, AckResp)
                and item.reply.message.seq_no == item.stream_id
            )
            if ok:
                node = Node("peer", b"\x7f\x00\x00\x01", 1)
                out.append(NodeJoined(node))
                out.append(RequestCompleted(rid, result=1))
            else:
                out.append(RequestCompleted(rid, result=0, error=item.error or "bad reply"))
        elif isinstance(item, ShutdownRequest):
            self.deadline = None
        return out


async def _driver(core: FakeCore) -> MemberlistDriver:
    driver = MemberlistDriver(NetTransport(Address("127.0.0.1", 0)), core, stream_timeout=1.0)
    await driver.start()
    return driver


def test_timer_ticks_with_now_not_before_deadline(arun: Arun) -> None:
    async def main() -> None:
        core = FakeCore()
        driver = await _driver(core)
        # four 50 ms ticks, however late a loaded machine runs them (not a speed assertion)
        await eventually(lambda: len(core.ticks) >= 4, 20, what="four ticks")
        await driver.stop()
        assert all(now >= deadline for deadline, now in core.ticks)
        n = len(core.ticks)
        await asyncio.sleep(0.15)
        assert len(core.ticks) == n  # no timer after stop
        assert isinstance(core.inputs[0], Start)
        assert isinstance(core.inputs[-1], ShutdownRequest)

    arun(main(), 10)


def test_packets_echo_and_bad_input_does_not_kill(arun: Arun, poll: Poll) -> None:
    async def main() -> None:
        a, b = FakeCore(), FakeCore()
        da, db = await _driver(a), await _driver(b)
        try:
            da.transport.send_packet(db.transport.local_address, b"boom")
            da.transport.send_packet(db.transport.local_address, b"ping")
            await poll(lambda: a.packets == [b"pong"], 5)
            assert b.packets == [b"ping"]
            assert db.stats.errors == 1 and db.stats.dropped == 1
            assert db.running
        finally:
            await da.stop()
            await db.stop()

    arun(main(), 10)


def test_join_over_streams_and_events(arun: Arun) -> None:
    async def main() -> None:
        a, b = FakeCore(), FakeCore()
        da, db = await _driver(a), await _driver(b)
        sub = da.subscribe()
        try:
            done = await da.request(
                lambda rid: JoinRequest(rid, (Address.of(db.transport.local_address),))
            )
            assert done.result == 1, done
            event = await asyncio.wait_for(sub.__anext__(), 2)
            assert isinstance(event, NodeJoined) and event.node.name == "peer"
            assert len(b.requests) == 1 and isinstance(b.requests[0].message.message, Ping)
            # refused: nobody listens on a closed port
            probe = NetTransport(Address("127.0.0.1", 0))
            await probe.start()
            dead = Address.of(probe.local_address)
            await probe.close()
            done = await da.request(lambda rid: JoinRequest(rid, (dead,)))
            assert done.result == 0 and done.error and "refused" in done.error
        finally:
            await da.stop()
            await db.stop()
        # the subscription ends at stop
        assert [e async for e in sub] == []

    arun(main(), 10)


def test_rejected_stream_gets_err_resp(arun: Arun, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="serf")

    async def main() -> None:
        key = bytes(range(16))
        a = FakeCore(PacketFramer("lpe"))  # plaintext dialer
        b = FakeCore(PacketFramer("lpe", keyring=Keyring([key])))  # encrypted listener
        da, db = await _driver(a), await _driver(b)
        try:
            done = await da.request(
                lambda rid: JoinRequest(rid, (Address.of(db.transport.local_address),))
            )
            assert done.result == 0
            # The listener answered with an ErrResp sealed with its key, which the
            # plaintext dialer cannot read (as in Go): the dialer reports a bad reply.
            assert a.results[0].error and "bad reply" in a.results[0].error
            assert db.stats.streams_rejected == 1
            assert b.requests == []
        finally:
            await da.stop()
            await db.stop()

    arun(main(), 10)
    assert "memberlist: failed to receive" in caplog.text  # Go's line for a rejected stream


def test_stream_timeout_reported_once(arun: Arun) -> None:
    async def main() -> None:
        # A listener that accepts and never answers.
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            await asyncio.sleep(5)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        a = FakeCore()
        da = await _driver(a)
        try:
            a_join = da.request(lambda rid: JoinRequest(rid, (Address("127.0.0.1", port),)))
            done = await asyncio.wait_for(a_join, 3)
            assert done.result == 0 and done.error and "timed out" in done.error
            assert len(a.results) == 1
        finally:
            await da.stop()
            server.close()
            # the accepted side too: left open, its writer outlived the loop and warned
            # later in another test ("loop is closed", an unclosed socket)
            for writer in accepted:
                writer.close()
            await server.wait_closed()

    arun(main(), 10)


class _Marker:
    """An effect the memberlist driver does not know (as the serf layer's are)."""

    def __init__(self, n: int) -> None:
        self.n = n


class _EmittingCore(FakeCore):
    """Answers a ping packet with a mix of known and unknown effects."""

    def handle(self, item: Input, now: float) -> list[Effect]:
        if isinstance(item, PacketReceived):
            marks: list[Any] = [_Marker(1), _Marker(2), _Marker(3)]
            return [marks[0], SendPacket(item.source, b"pong"), marks[1], marks[2]]
        return super().handle(item, now)


def test_effects_the_driver_does_not_know_go_to_on_effect_in_order(
    arun: Arun, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        seen: list[int] = []

        def on_effect(effect: Any) -> bool:
            seen.append(effect.n)
            return effect.n != 3  # the third one is nobody's: logged as unknown

        driver = MemberlistDriver(
            NetTransport(Address("127.0.0.1", 0)),
            _EmittingCore(),
            stream_timeout=1.0,
            on_effect=on_effect,
        )
        await driver.start()
        try:
            with caplog.at_level(logging.WARNING, logger="serf.runtime.driver"):
                await driver.submit(PacketReceived(b"ping", Address("127.0.0.1", 9)))
            assert seen == [1, 2, 3]
            assert [r.getMessage().startswith("unknown effect") for r in caplog.records] == [True]
            assert driver.stats.errors == 0
        finally:
            await driver.stop()

    arun(main(), 10)


def test_owner_wakeup_blocks_until_set_and_survives_cancel(arun: Arun) -> None:
    """The owner's wake-up (``_Wakeup``): set before wait returns at once, clear blocks, a
    cancelled wait leaves it usable, and several sets wake one wait."""
    from serf.runtime.driver import _Wakeup

    async def main() -> None:
        w = _Wakeup()
        w.set()
        assert w.is_set()
        await w.wait()  # already set: no block
        w.clear()
        assert not w.is_set()
        waiter = asyncio.ensure_future(w.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        waiter = asyncio.ensure_future(w.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        w.set()
        w.set()
        await asyncio.wait_for(waiter, 5)
        assert w.is_set()

    arun(main(), 10)
