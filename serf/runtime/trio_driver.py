"""The trio driver of a sans-IO memberlist core, beside the asyncio one.

How this works. :class:`TrioMemberlistDriver` is :class:`~serf.runtime.driver.MemberlistDriver`
with trio doing the waiting: the inbox, the counters, the request / stream bookkeeping and
the whole effect handling (``_carry_out``: packets, streams, requests, events, logs,
metrics) are the asyncio driver's own code, fed with trio stand-ins for its futures and
queues (:mod:`serf.runtime.trio_sync`). What differs is structure, as trio wants it:

* :meth:`start` takes a ``trio.Nursery``. The driver runs one task there that owns a cancel
  scope with the transport's tasks, the owner task and the outbound stream tasks inside it;
  :meth:`stop` cancels that scope and waits for all of them.
* The owner waits for the inbox with ``trio.move_on_at(core.next_deadline())``: that is the
  one timer (design principle 3); when it expires the owner feeds ``Tick`` with
  ``now = max(deadline, trio.current_time())``.
* Inbound and outbound streams are the asyncio driver's steps with ``trio.fail_after`` for
  ``asyncio.timeout``.

The transport must be a trio transport (:class:`~serf.transport.trio_net.TrioNetTransport`):
its ``start`` takes the nursery too. QUIC (aioquic's asyncio protocol) and the memory
transport (asyncio's loop clock) have no trio twin.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, cast

from serf.address import Address
from serf.memberlist.io import (
    Effect,
    Input,
    OpenStream,
    RequestCompleted,
    ShutdownRequest,
    Start,
    StreamRequest,
    StreamResult,
    Tick,
)
from serf.runtime.driver import CoreLike, EventSubscription, MemberlistDriver, _TimedTick, ml_log
from serf.runtime.trio_sync import Flag, OneShot
from serf.telemetry import TRACE
from serf.transport.base import Stream
from serf.transport.trio_net import fail_after
from serf.wire.errors import DecodeError
from serf.wire.framing import StreamRejected
from serf.wire.messages import ErrResp

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    from serf._extras import missing_extra

    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["TrioEventSubscription", "TrioMemberlistDriver"]

log = logging.getLogger("serf.runtime.driver")


class TrioEventSubscription(EventSubscription):
    """:class:`~serf.runtime.driver.EventSubscription` on trio (same bounded buffer rules)."""

    _flag_type = Flag


async def _run_awaitable(awaitable: Awaitable[Any]) -> None:
    await awaitable


class TrioMemberlistDriver(MemberlistDriver):
    """Runs one :class:`~serf.runtime.driver.CoreLike` on trio over a trio transport.

    Use as the asyncio driver: :meth:`attach` (or pass ``core``), :meth:`start` (with the
    nursery to run in), :meth:`request` / :meth:`submit` / :meth:`submit_nowait`, then
    :meth:`stop`.
    """

    def __init__(
        self,
        transport: Any,
        core: CoreLike | None = None,
        *,
        stream_timeout: float = 10.0,
        on_effect: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(transport, core, stream_timeout=stream_timeout, on_effect=on_effect)
        self._wakeup = Flag()  # type: ignore[assignment]
        self._nursery: trio.Nursery | None = None
        self._tasks_nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._transport_started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start_transport(self, nursery: trio.Nursery | None = None) -> None:
        """Start the transport in ``nursery`` (packets that arrive before :meth:`start` are
        queued)."""
        if nursery is not None:
            self._nursery = nursery
        if self._nursery is None:
            raise TypeError("the trio driver needs a nursery: start_transport(nursery)")
        await cast(Any, self.transport).start(self._nursery)
        self._transport_started = True

    async def start(self, nursery: trio.Nursery | None = None) -> None:
        """Start the transport if needed, then the owner task, and feed ``Start``; returns
        once the core has handled it."""
        if self.core is None:
            raise RuntimeError("no core attached")
        if self._running or self._stopped:
            raise RuntimeError("driver already started")
        if nursery is not None:
            self._nursery = nursery
        if not self._transport_started:
            await self.start_transport()
        assert self._nursery is not None
        self._running = True
        started: OneShot[list[Effect]] = OneShot()
        self._inbox.appendleft((Start(), started))  # type: ignore[arg-type]
        await self._nursery.start(self._main)
        self._wakeup.set()
        await started.wait()

    async def _main(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as tasks:
                    self._tasks_nursery = tasks
                    tasks.start_soon(self._own)
                    task_status.started()
        finally:
            self._tasks_nursery = None
            self._done.set()

    async def stop(self, *, shutdown_input: bool = True) -> None:
        """Feed ``ShutdownRequest``, stop the owner and the stream tasks, close the
        transport, fail whatever still waits."""
        if self._stopped:
            return
        self._stopped = True
        if self._running and shutdown_input:
            with contextlib.suppress(Exception):
                await self.submit(ShutdownRequest())
        self._running = False
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()
        await self.transport.close()
        shut = "memberlist is shut down"
        for fut in self._requests.values():
            if not fut.done():
                fut.set_exception(RuntimeError(shut))
        self._requests.clear()
        for sfut in self._stream_waiters.values():
            if not sfut.done():
                sfut.set_result(shut)
        for _item, waiter in self._inbox:
            if waiter is not None and not waiter.done():
                waiter.set_exception(RuntimeError(shut))
        self._inbox.clear()
        for sub in list(self._subscribers):
            sub.end()
        self._subscribers.clear()

    # -- feeding -------------------------------------------------------------------------

    async def submit(self, item: Input) -> list[Effect]:
        """Queue an input and wait until the core handled it; returns its effects."""
        if self._stopped and not isinstance(item, ShutdownRequest):
            raise RuntimeError("memberlist is shut down")
        fut: OneShot[list[Effect]] = OneShot()
        self._inbox.append((item, fut))  # type: ignore[arg-type]
        self._wakeup.set()
        return await fut.wait()

    async def request(self, make: Callable[[int], Input]) -> RequestCompleted:
        """Feed ``make(request_id)`` and wait for its ``RequestCompleted``."""
        rid = self.new_request_id()
        fut: OneShot[RequestCompleted] = OneShot()
        self._requests[rid] = fut  # type: ignore[assignment]
        try:
            await self.submit(make(rid))
            return await fut.wait()
        finally:
            self._requests.pop(rid, None)

    async def submit_and_wait_streams(self, item: Input) -> list[str]:
        """Feed ``item``, then wait for every stream it opened; the error texts (if any)."""
        effects = await self.submit(item)
        waiters: list[OneShot[str | None]] = [
            self._stream_waiters.setdefault(e.stream_id, OneShot())  # type: ignore[arg-type,misc]
            for e in effects
            if isinstance(e, OpenStream)
        ]
        errors = [err for w in waiters if (err := await w.wait()) is not None]
        return errors

    def subscribe(self) -> EventSubscription:
        """A new event subscription (see :class:`~serf.runtime.driver.EventSubscription`)."""
        sub = TrioEventSubscription(self)
        if self._stopped:
            sub.end()
        else:
            self._subscribers.append(sub)
        return sub

    # -- the owner -----------------------------------------------------------------------

    async def _own(self) -> None:
        assert self.core is not None
        core = self.core
        inbox = self._inbox
        wakeup = self._wakeup
        while True:
            deadline = core.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await wakeup.wait()
            wakeup.clear()
            if deadline is not None and trio.current_time() >= deadline:
                inbox.append((_TimedTick(deadline), None))
            while inbox:
                item, waiter = inbox.popleft()
                if isinstance(item, _TimedTick):
                    now = max(item.deadline, trio.current_time())
                    item = Tick()
                    self.stats.ticks += 1
                else:
                    now = trio.current_time()
                self.stats.inputs += 1
                try:
                    effects = core.handle(item, now)
                except Exception as exc:
                    if waiter is not None:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    else:
                        self.stats.errors += 1
                        log.exception("core failed on %s", type(item).__name__)
                    continue
                if waiter is not None and not waiter.done():
                    waiter.set_result(effects)
                self._carry_out(effects)

    def _now(self) -> float:
        return trio.current_time() if self._running else 0.0

    def _spawn(self, coro: Any) -> None:
        nursery = self._tasks_nursery
        if nursery is None:  # stopping: nothing new starts
            coro.close()
            return
        nursery.start_soon(_run_awaitable, coro)

    def _cancel_timer(self) -> None:
        pass  # the owner's move_on_at is the timer

    # -- network -------------------------------------------------------------------------

    async def _outbound(self, effect: OpenStream) -> None:
        assert self.core is not None
        framer = self.core.framer
        reply = None
        error: str | None = None
        stream: Stream | None = None
        try:
            with fail_after(effect.timeout):
                stream = await self.transport.open_stream(effect.dest, timeout=effect.timeout)
                stream.write(effect.data)
                await stream.drain()
                stream.write_eof()  # one request per stream
                if effect.want_reply:
                    reply = await self._read_one(stream, framer, listener=False)
        except TimeoutError:
            error = f"stream to {effect.dest} timed out after {effect.timeout}s"
        except ConnectionRefusedError:
            error = f"dial tcp {effect.dest}: connect: connection refused"  # as Go's net.Dial
        except DecodeError as exc:
            error = f"bad reply from {effect.dest}: {exc}"
        except (OSError, EOFError) as exc:
            error = f"stream to {effect.dest} failed: {exc!r}"
        except trio.Cancelled:
            error = "stream cancelled"
            raise
        except Exception as exc:  # never let one stream take the driver down
            self.stats.errors += 1
            log.exception("outbound stream to %s failed", effect.dest)
            error = f"stream to {effect.dest} failed: {exc!r}"
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await stream.close()
            waiter = self._stream_waiters.pop(effect.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(error)
            if error is not None:
                log.log(TRACE, "stream %d: %s", effect.stream_id, error)
            if not self._stopped:
                self._inbox.append((StreamResult(effect.stream_id, reply, error), None))
                self._wakeup.set()

    async def _on_stream(self, stream: Stream) -> None:
        core = self.core
        if core is None or not self._running:
            return
        framer = core.framer
        try:
            with fail_after(self.stream_timeout):
                message = await self._read_one(stream, framer, listener=True)
        except StreamRejected as exc:
            self.stats.streams_rejected += 1
            ml_log.error("memberlist: failed to receive: %s from=%s", exc, stream.remote_address)
            reply = framer.encode_stream_message(ErrResp(str(exc)), dialer=False)
            with contextlib.suppress(Exception):
                stream.write(reply)
                await stream.drain(timeout=self.stream_timeout)
            return
        except DecodeError as exc:
            self.stats.streams_rejected += 1
            ml_log.error("memberlist: failed to receive: %s from=%s", exc, stream.remote_address)
            return
        except (TimeoutError, OSError, EOFError) as exc:
            self.stats.errors += 1
            ml_log.error("memberlist: failed to receive: %r from=%s", exc, stream.remote_address)
            return
        stream_id = next(self._inbound_ids)
        answer: OneShot[bytes | None] = OneShot()
        self._inbound[stream_id] = answer  # type: ignore[assignment]
        try:
            self._inbox.append(
                (StreamRequest(stream_id, message, Address.of(stream.remote_address)), None)
            )
            self._wakeup.set()
            data = None
            with trio.move_on_after(self.stream_timeout) as waited:
                data = await answer.wait()
            if waited.cancelled_caught:
                self.stats.errors += 1
                log.debug("no answer from the core for stream %d in time", stream_id)
                return
            if data:
                stream.write(data)
                await stream.drain(timeout=self.stream_timeout)
        finally:
            self._inbound.pop(stream_id, None)
