"""One async feed of items: what every event stream of the async layer is built on.

How this works. A :class:`Feed` is a buffer that one producer fills with :meth:`Feed.push`
(never blocking) and any number of ``async for`` loops drain, in order. :meth:`Feed.end`
ends iteration after the buffered items; a feed made with ``maxsize`` drops its oldest item
when full and counts it in :attr:`Feed.dropped`. Subclasses add what their items mean:
:class:`serf.runtime.subscription.Subscription` (a node's events, filtered by kind),
:class:`serf.runtime.driver.EventSubscription` (memberlist's member events),
:class:`serf.runtime.query_response.QueryResponse` (the answers to one query) and the RPC
client's record streams (:class:`serf.cli.rpc_client.Subscription`).

The producer and the readers run on one event loop; waking a reader is one flag with
``asyncio.Event``'s ``set``/``clear``/``wait``, made by the class attribute ``_flag_type``
(a trio subclass sets :class:`serf.runtime.trio_sync.Flag`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, ClassVar, Generic, Protocol, TypeVar

__all__ = ["Feed", "WakeFlag"]

T = TypeVar("T", covariant=True)  # readers see a Feed[Sub] as a Feed[Base]


class WakeFlag(Protocol):
    """What a feed wakes its readers with (``asyncio.Event``'s methods)."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    async def wait(self) -> Any: ...


class Feed(Generic[T]):
    """Items in the order pushed, for ``async for``; ends after :meth:`end`.

    ``maxsize`` (0: unbounded) is how many unread items are held; beyond it the oldest is
    dropped, counted in :attr:`dropped` and reported to :meth:`_dropped_one`.
    """

    #: makes the flag that wakes the readers (a runtime other than asyncio sets its own)
    _flag_type: ClassVar[type[WakeFlag]] = asyncio.Event

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be an integer >= 0, got {maxsize!r}")
        self.maxsize = maxsize
        self.dropped = 0
        """Items dropped because ``maxsize`` unread items were already held."""
        self._items: deque[T] = deque()
        self._ended = False
        self._ready = self._flag_type()

    @property
    def ended(self) -> bool:
        """True once :meth:`end` was called (buffered items may remain to be read)."""
        return self._ended

    def push(self, item: T) -> bool:  # type: ignore[misc]  # called by the producer only
        """Buffer ``item`` for the readers (dropping the oldest when full); False, and
        nothing kept, once the feed has ended."""
        if self._ended:
            return False
        if self.maxsize and len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
            self._dropped_one()
        self._items.append(item)
        self._ready.set()
        return True

    def end(self) -> None:
        """No more items: iteration ends once the buffered ones are read."""
        self._ended = True
        self._ready.set()

    def discard(self) -> None:
        """Forget the buffered items (they are not counted as dropped)."""
        self._items.clear()

    def _dropped_one(self) -> None:
        """Called after each drop of the oldest item (a subclass counts or logs it)."""

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __len__(self) -> int:
        """Items pushed and not read yet."""
        return len(self._items)
