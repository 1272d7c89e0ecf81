"""trio stand-ins for the few asyncio primitives the runtime's bookkeeping uses.

How this works: the asyncio driver and facade keep their state in plain objects
(an inbox deque, request futures, the :class:`~serf.runtime.feed.Feed` buffers) and wait on
two asyncio primitives: ``asyncio.Event`` (set / clear / wait) and ``asyncio.Future`` (done /
set_result / set_exception, awaited once). The classes here have those same methods, built
on ``trio.Event``, so the trio runtime reuses that bookkeeping
(:class:`~serf.runtime.driver.MemberlistDriver`'s effect handling and every feed, whose
``_flag_type`` a trio subclass sets to :class:`Flag`) and replaces only the waiting.
Everything here runs on one trio thread; none of it is thread-safe.
"""

from __future__ import annotations

from typing import Generic, TypeVar

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    from serf._extras import missing_extra

    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["Flag", "OneShot"]

T = TypeVar("T")


class Flag:
    """An event that can be cleared again (``asyncio.Event``'s methods) on trio."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake every waiter; later waits return at once until :meth:`clear`."""
        self._event.set()

    def clear(self) -> None:
        """Make later waits block again."""
        if self._event.is_set():
            self._event = trio.Event()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    async def wait(self) -> bool:
        """Wait until the flag is set."""
        await self._event.wait()
        return True


class OneShot(Generic[T]):
    """One result or one exception, set once and awaited (``asyncio.Future``'s methods)."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """Whether a result or an exception was set."""
        return self._event.is_set()

    def set_result(self, value: T) -> None:
        """Set the result (RuntimeError when already done, as asyncio's InvalidStateError)."""
        if self._event.is_set():
            raise RuntimeError("result already set")
        self._value = value
        self._event.set()

    def set_exception(self, error: BaseException) -> None:
        """Set the exception that :meth:`wait` raises."""
        if self._event.is_set():
            raise RuntimeError("result already set")
        self._error = error
        self._event.set()

    async def wait(self) -> T:
        """The result once set (or raise the exception)."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.wait().__await__()
