"""An asyncio event loop on virtual time, for tests of the Serf facade on the memory network.

How this works. :class:`VirtualTimeLoop` is asyncio's selector loop with two changes: its
clock (:meth:`~VirtualTimeLoop.time`) is a number it keeps itself, starting at 0, and its
selector never sleeps. When the loop would wait for ``t`` seconds (nothing is ready and the
next timer is ``t`` away), the selector polls the real file descriptors without blocking and,
if none is ready, moves the clock forward by ``t`` at once. Every timer then fires in order,
at its virtual time, with no wall time spent waiting: a failure-detection test that needs
several seconds of protocol time runs in milliseconds.

Everything that goes through the loop's clock follows it: ``asyncio.sleep``,
``asyncio.timeout``/``wait_for``, ``loop.call_later``, and pyserf's driver (its ``now`` is
``loop.time()``) and :class:`~serf.transport.memory.MemoryTransport`. Real sockets still
work but their latency is not simulated (they answer "instantly" in virtual time), so use the
memory network; code that reads ``time.time()`` or ``time.monotonic()`` itself sees wall time.
Work handed to threads (``run_in_executor``, ``getaddrinfo``, ``to_thread``) takes no virtual
time: the clock stands still until it is done.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple, Unpack

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _VirtualSelector(selectors.BaseSelector):
    """A selector that polls the real one and turns a wait into a jump of the clock."""

    def __init__(self, advance: Callable[[float], None], busy: Callable[[], bool]) -> None:
        self._real = selectors.DefaultSelector()
        self._advance = advance
        self._busy = busy

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._busy():
            # no timer at all, or work in a thread (getaddrinfo, run_in_executor): wait for
            # it in real time, so that it takes no virtual time (and runs repeat exactly)
            return self._real.select(None)
        self._advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose clock jumps to the next timer instead of sleeping (see above).

    ``VirtualTimeLoop()`` starts at virtual time ``start`` (0). Use it with
    ``asyncio.Runner(loop_factory=VirtualTimeLoop)`` or :func:`run_virtual`.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = float(start)
        self._in_threads = 0
        super().__init__(selector=_VirtualSelector(self._advance, lambda: self._in_threads > 0))

    def time(self) -> float:
        """The virtual clock, in seconds."""
        return self._virtual_now

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[Unpack[Ts]], T], *args: *Ts
    ) -> asyncio.Future[T]:
        """As asyncio's; while the call runs in its thread, virtual time stands still."""
        future = super().run_in_executor(executor, func, *args)
        self._in_threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: object) -> None:
        self._in_threads -= 1


def run_virtual(main: Coroutine[Any, Any, T], *, timeout: float | None = 600.0) -> T:
    """Run ``main`` to completion on a new :class:`VirtualTimeLoop` (as ``asyncio.run``).

    ``timeout`` is in virtual seconds (TimeoutError after it; None: no limit): a test that
    waits for something that never happens fails fast, as virtual time runs freely.
    """
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main if timeout is None else asyncio.wait_for(main, timeout))
