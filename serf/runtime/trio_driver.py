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
* Inbound and outbound streams are the asyncio driver's own code too: its runtime hooks
  (``_future``, ``_deadline``, ``_shielded``) return trio's one-shot result,
  ``trio.fail_after`` and a shielded cancel scope here.

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

from serf.memberlist.io import (
    Effect,
    ShutdownRequest,
    Start,
)
from serf.runtime.driver import CoreLike, EventSubscription, MemberlistDriver, _TimedTick
from serf.runtime.trio_sync import Flag, OneShot
from serf.transport.trio_net import deadline

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
        self._fail_waiters()

    # -- feeding -------------------------------------------------------------------------

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
        wakeup = self._wakeup
        while True:
            deadline = core.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await wakeup.wait()
            wakeup.clear()
            # once stop() has queued ShutdownRequest no Tick may follow it into the core (a
            # deadline that passed while that request woke us would queue one after it), as
            # the asyncio driver's timer does
            if deadline is not None and not self._stopped and trio.current_time() >= deadline:
                self._inbox.append((_TimedTick(deadline), None))
            self._drain_inbox()

    def _future(self) -> Any:
        return OneShot()

    def _deadline(self, seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        return deadline(seconds)

    def _shielded(self) -> contextlib.AbstractContextManager[Any]:
        return trio.CancelScope(shield=True)

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
