"""A subscription to a node's events: registered when created, bounded, counted drops.

How this works. :meth:`serf.Serf.subscribe` makes a :class:`Subscription` and registers it
with the node at once, so an event the node publishes after that call is kept even if the
consumer has not started iterating yet. The node pushes each event into every subscription
whose ``kinds`` match; a full subscription drops its oldest event, counts it in
:attr:`Subscription.dropped` and logs the first drop. Iteration ends when the subscription
is closed (at once, buffered events are discarded) or when the node shuts down (after the
buffered events are read). A subscription made on a closed node ends at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from serf.runtime.feed import Feed

__all__ = ["Subscription", "DEFAULT_MAXSIZE"]

log = logging.getLogger("serf.runtime.serf")

DEFAULT_MAXSIZE = 4096
"""How many unread events a subscription holds before it drops the oldest."""

E = TypeVar("E", covariant=True)


class Subscription(Feed[E]):
    """Events of one node, from the moment this was made: an async iterator and a context
    manager (``async with node.subscribe() as events: async for event in events: ...``).

    ``kinds`` (the event classes to keep; empty keeps every event) and ``maxsize`` (unread
    events held; beyond it the oldest is dropped and counted in :attr:`dropped`) are set when
    it is made. :meth:`close` ends it; so does leaving its ``with`` block.
    """

    def __init__(
        self,
        *,
        kinds: Iterable[type] = (),
        maxsize: int = DEFAULT_MAXSIZE,
        on_close: Callable[[Subscription[Any]], None] | None = None,
        name: str = "",
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an integer >= 1, got {maxsize!r}")
        super().__init__(maxsize)
        self.kinds: tuple[type, ...] = tuple(kinds)
        for kind in self.kinds:
            if not isinstance(kind, type):
                raise TypeError(f"kinds must hold event classes, got {kind!r}")
        self._on_close = on_close
        self._name = name

    @property
    def closed(self) -> bool:
        """True once closed or once the node shut down (buffered events may remain)."""
        return self._ended

    def wants(self, event: object) -> bool:
        """Whether ``event`` is of one of the kinds asked for."""
        return not self.kinds or isinstance(event, self.kinds)

    def push(self, event: Any) -> bool:
        """Called by the node: keep ``event`` if it is of the kinds asked for (dropping the
        oldest when full); whether it was kept."""
        return self.wants(event) and super().push(event)

    def _dropped_one(self) -> None:
        if self.dropped == 1:
            log.warning(
                "%s: subscription full (%d unread events): dropping the oldest; "
                "read faster or subscribe with a larger maxsize",
                self._name or "serf",
                self.maxsize,
            )

    def close(self) -> None:
        """Stop receiving; iteration ends at once (buffered events are discarded)."""
        self.discard()
        self.end()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    def __aiter__(self) -> Subscription[E]:
        return self

    async def __aenter__(self) -> Subscription[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> Subscription[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ended else "open"
        kinds = ",".join(k.__name__ for k in self.kinds) or "all"
        return f"<Subscription {state} kinds={kinds} unread={len(self)} dropped={self.dropped}>"
