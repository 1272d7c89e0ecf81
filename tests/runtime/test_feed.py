"""Feed: the one async feed under every event stream of the async layer."""

from __future__ import annotations

import asyncio

import pytest

from serf.runtime.feed import Feed
from serf.runtime.query_response import QueryAck, QueryResponse, QueryResponseItem
from serf.runtime.subscription import Subscription
from serf.testing import run_virtual


async def _drain(feed: Feed[int]) -> list[int]:
    return [item async for item in feed]


def test_items_come_out_in_order_and_iteration_ends_after_the_buffered_ones() -> None:
    async def main() -> None:
        feed: Feed[int] = Feed()
        for i in range(5):
            assert feed.push(i)
        feed.end()
        assert feed.ended and len(feed) == 5
        assert not feed.push(99)  # nothing kept once ended
        assert await _drain(feed) == [0, 1, 2, 3, 4]
        assert await _drain(feed) == []  # stays ended for later readers

    run_virtual(main())


def test_a_reader_waiting_on_an_empty_feed_wakes_for_a_push_and_for_end() -> None:
    async def main() -> None:
        feed: Feed[int] = Feed()
        reader = asyncio.ensure_future(_drain(feed))
        await asyncio.sleep(1)
        assert not reader.done()
        feed.push(7)
        await asyncio.sleep(1)
        assert not reader.done()
        feed.end()
        assert await asyncio.wait_for(reader, 1) == [7]

    run_virtual(main())


class _Counting(Feed[int]):
    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.reports = 0

    def _dropped_one(self) -> None:
        self.reports += 1


def test_a_full_feed_drops_the_oldest_counts_and_reports_each_drop() -> None:
    async def main() -> None:
        feed = _Counting(3)
        for i in range(5):
            feed.push(i)
        feed.end()
        assert (feed.dropped, feed.reports) == (2, 2)
        assert await _drain(feed) == [2, 3, 4]

    run_virtual(main())


def test_discard_forgets_the_buffer_without_counting_drops() -> None:
    async def main() -> None:
        feed: Feed[int] = Feed(2)
        feed.push(1)
        feed.push(2)
        feed.discard()
        feed.end()
        assert feed.dropped == 0
        assert await _drain(feed) == []

    run_virtual(main())


@pytest.mark.parametrize("maxsize", [-1, 1.5, True, "3"])
def test_a_bad_maxsize_is_refused(maxsize: object) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Feed(maxsize)  # type: ignore[arg-type]


def test_subscription_keeps_its_kinds_and_close_drops_the_buffer() -> None:
    async def main() -> None:
        sub: Subscription[object] = Subscription(kinds=(int,), maxsize=4)
        assert sub.push(1) and not sub.push("text") and sub.push(2)
        assert len(sub) == 2
        sub.close()
        assert sub.closed and [x async for x in sub] == []

    run_virtual(main())


def test_query_response_records_answers_and_ignores_them_once_finished() -> None:
    async def main() -> None:
        closed: list[QueryResponse] = []
        resp = QueryResponse(1, asked=frozenset({"a", "b", "c"}), on_close=closed.append)
        resp.push(QueryAck("a"))
        resp.push(QueryResponseItem("b", b"yes"))
        resp.close()
        assert resp.finished and closed == [resp]
        assert not resp.push(QueryResponseItem("c", b"late"))
        assert await resp.collect() == (["a"], {"b": b"yes"})
        assert resp.missing_acks() == ["b", "c"] and resp.missing_responses() == ["a", "c"]

    run_virtual(main())
