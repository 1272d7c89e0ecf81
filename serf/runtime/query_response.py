"""What :meth:`serf.Serf.query` returns: the acks and responses of one query, as they come.

How this works. The node pushes each :class:`QueryAck` and :class:`QueryResponseItem` of the
query into its :class:`QueryResponse` (a :class:`~serf.runtime.feed.Feed`) and ends it at
the deadline (or on :meth:`close`); iteration ends there. The response also knows which
nodes the query was for (the alive members that match its node and tag filters, in this
node's view when it was sent), so after the deadline :meth:`QueryResponse.missing_acks` and
:meth:`missing_responses` name the nodes that stayed silent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from serf.runtime.feed import Feed

__all__ = ["QueryAck", "QueryResponse", "QueryResponseItem"]


@dataclass(frozen=True, slots=True)
class QueryAck:
    """A node received our query (it asked for acks)."""

    from_: str


@dataclass(frozen=True, slots=True)
class QueryResponseItem:
    """A node's answer to our query."""

    from_: str
    payload: bytes


class QueryResponse(Feed[QueryAck | QueryResponseItem]):
    """The acks and responses to a query we started, as they arrive; ends at the deadline.

    ``deadline`` is the event loop's time (``loop.time()``) at which the query ends;
    ``asked`` the nodes it was for; ``acked`` and ``responded`` fill in as answers arrive.
    """

    def __init__(
        self,
        request_id: int,
        *,
        deadline: float = 0.0,
        asked: frozenset[str] = frozenset(),
        on_close: Callable[[QueryResponse], None] | None = None,
    ) -> None:
        super().__init__()
        self.request_id = request_id
        self.deadline = deadline
        self.asked = asked
        self.acked: set[str] = set()
        self.responded: dict[str, bytes] = {}
        self._on_close = on_close

    @property
    def finished(self) -> bool:
        """True once the deadline passed or :meth:`close` was called."""
        return self._ended

    def push(self, item: QueryAck | QueryResponseItem) -> bool:
        """Called by the node: record an ack or a response and queue it for the readers."""
        if self._ended:
            return False
        if isinstance(item, QueryAck):
            self.acked.add(item.from_)
        else:
            self.responded[item.from_] = item.payload
        return super().push(item)

    def close(self) -> None:
        """Stop listening before the deadline (Go's ``Close``): iteration ends, later
        answers are ignored."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)
        self.end()

    def missing_acks(self) -> list[str]:
        """The nodes asked that have not acked (meaningful with ``request_ack=True``)."""
        return sorted(self.asked - self.acked)

    def missing_responses(self) -> list[str]:
        """The nodes asked that have not responded (so far; final once ``finished``)."""
        return sorted(self.asked - set(self.responded))

    def __aiter__(self) -> QueryResponse:
        return self

    async def collect(self) -> tuple[list[str], dict[str, bytes]]:
        """Wait for the deadline: (nodes that acked, node -> response payload)."""
        acks: list[str] = []
        responses: dict[str, bytes] = {}
        async for item in self:
            if isinstance(item, QueryAck):
                acks.append(item.from_)
            else:
                responses[item.from_] = item.payload
        return acks, responses
