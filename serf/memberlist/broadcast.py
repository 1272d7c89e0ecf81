"""The transmit-limited broadcast queue (pure twin of ``serf._fast.broadcast``).

How this works
--------------
As memberlist's TransmitLimitedQueue (queue.go): every queued broadcast carries a transmit
count, and the queue is ordered by (transmits ascending, message length descending, insertion
id descending), so the freshest, biggest, newest gossip goes out first. ``get_broadcasts``
walks the transmit tiers from the lowest up; in each tier it repeatedly takes the largest
message that still fits in the space left (``limit - used - overhead``; among equal lengths
the newest), and moves on to the next tier when nothing in the tier fits. Every message taken
costs ``overhead + len(message)`` and gets one more transmit; one that has reached
``retransmit_limit(retransmit_mult, num_nodes())`` (checked as ``transmits + 1 >= limit``, so
every message goes out at least once) is dropped, the others move up one tier once the whole
call is done, so an item is taken at most once per call.

Invalidation, as memberlist: a named broadcast replaces the queued one with the same name (the
replaced one is finished); a ``unique`` broadcast (Go's UniqueBroadcast, serf's broadcasts)
never invalidates anything and is never invalidated. We differ from Go in one place on
purpose: Go asks plain (unnamed, non-unique) broadcasts ``Invalidates(other)`` against every
other plain one (a linear scan); here the name is the only invalidation key, so a plain
broadcast behaves like a unique one. Both memberlist's broadcasts (named by node) and serf's
(unique) fit this model.

``prune(max_retain)`` drops from the far end of the order (most transmits, then smallest,
then oldest) as Go's ``Prune`` does with ``btree.Max``. ``reset()`` finishes everything.

Data structure (why every operation is O(log n) amortised)
----------------------------------------------------------
Go keeps one btree. Python has no balanced tree in the standard library, and ``bisect.insort``
into one big list moves O(n) references per insertion, so we split the order along its keys:

* tiers: ``dict transmits -> _Tier``. Transmit counts only ever grow by one and stay below
  the retransmit limit (``mult * ceil(log10(N + 1))``, a few dozen at most), so scanning
  the tier keys for the lowest or highest costs O(T) with T tiny and independent of n.
* per tier: a sorted list of the distinct message lengths present, and ``dict length ->
  _Bucket``. ``bisect`` finds the largest length that fits in O(log D); adding or removing a
  length moves at most D entries, where D (distinct lengths in one tier) is bounded by the
  largest message size, not by the number of queued items.
* per bucket (one tier, one length): ``dict id -> item`` plus two binary heaps of ids (newest
  first for sending, oldest first for pruning) with lazy deletion: a removed item stays in the
  heaps until it reaches the top, and a heap holding more than twice the live items (+16) is
  rebuilt, which costs O(1) amortised per removal. The oldest-first heap is only built the
  first time ``prune`` looks into the bucket. Ids are never reused while queued and an item
  never comes back to a bucket it left, so a stale id is always recognised.
* a name index ``dict name -> item`` makes replacement O(1) + one removal.

So queueing, replacing, sending one message and pruning one item each cost O(log n + D + T).

Callbacks: ``on_finished`` runs exactly once per item (replaced, sent for the last time,
pruned or reset), after the queue's own state is consistent again, so a callback may call
back into the queue (Go calls ``Finished()`` midway, under the queue's lock). Callbacks must
not raise; if one does, the other callbacks of the same operation still run and the first
exception is raised afterwards.

Sans-IO: nothing here reads a clock, a socket or a random source.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from operator import index

__all__ = ["TransmitLimitedQueue", "retransmit_limit"]

#: heaps may hold this many stale ids (beyond twice the live ones) before they are rebuilt
_COMPACT_SLACK = 16


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    """How many times a broadcast is sent in a cluster of ``n`` nodes.

    As memberlist's ``retransmitLimit``: ``retransmit_mult * ceil(log10(n + 1))``, so 0 for
    n=0, ``retransmit_mult`` for n=1..9, twice that for n=10..99, and so on.
    """
    n = index(n)  # integers only, as the compiled twin's C integers
    if n < 0:
        raise ValueError(f"the node count must be >= 0, got {n}")
    return index(retransmit_mult) * math.ceil(math.log10(n + 1))


class _Item:
    """One queued broadcast."""

    __slots__ = ("id", "length", "message", "name", "on_finished", "transmits")

    def __init__(
        self,
        item_id: int,
        message: bytes,
        name: str | None,
        on_finished: Callable[[], None] | None,
    ) -> None:
        self.id = item_id
        self.transmits = 0
        self.length = len(message)
        self.message = message
        self.name = name
        self.on_finished = on_finished


class _Bucket:
    """The items of one tier with one message length, by id (see the module comment)."""

    __slots__ = ("items", "newest", "oldest")

    def __init__(self) -> None:
        self.items: dict[int, _Item] = {}
        self.newest: list[int] = []  # heap of -id
        self.oldest: list[int] | None = None  # heap of id, built by the first prune

    def add(self, item: _Item) -> None:
        self.items[item.id] = item
        heappush(self.newest, -item.id)
        if self.oldest is not None:
            heappush(self.oldest, item.id)

    def discard(self, item: _Item) -> None:
        items = self.items
        del items[item.id]
        limit = 2 * len(items) + _COMPACT_SLACK
        if len(self.newest) > limit:
            self.newest = [-i for i in items]
            heapify(self.newest)
        if self.oldest is not None and len(self.oldest) > limit:
            self.oldest = list(items)
            heapify(self.oldest)

    def newest_item(self) -> _Item:
        heap = self.newest
        items = self.items
        while -heap[0] not in items:
            heappop(heap)
        return items[-heap[0]]

    def oldest_item(self) -> _Item:
        items = self.items
        heap = self.oldest
        if heap is None:
            heap = self.oldest = list(items)
            heapify(heap)
        while heap[0] not in items:
            heappop(heap)
        return items[heap[0]]


class _Tier:
    """The items with one transmit count, by message length."""

    __slots__ = ("buckets", "lengths")

    def __init__(self) -> None:
        self.lengths: list[int] = []  # distinct lengths present, ascending
        self.buckets: dict[int, _Bucket] = {}


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    error: Exception | None = None
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:
            if error is None:
                error = exc
    if error is not None:
        raise error


class TransmitLimitedQueue:
    """Broadcasts waiting to be piggybacked on gossip, each sent a limited number of times.

    ``retransmit_mult`` and ``num_nodes`` (called on every :meth:`get_broadcasts`) give the
    retransmit limit, see :func:`retransmit_limit`. See the module comment for the order in
    which messages go out.
    """

    __slots__ = ("_count", "_names", "_next_id", "_num_nodes", "_retransmit_mult", "_tiers")

    def __init__(self, retransmit_mult: int, num_nodes: Callable[[], int]) -> None:
        self._retransmit_mult = index(retransmit_mult)
        self._num_nodes = num_nodes
        self._tiers: dict[int, _Tier] = {}
        self._names: dict[str, _Item] = {}
        self._count = 0
        self._next_id = 0

    @property
    def retransmit_mult(self) -> int:
        """The multiplier of the retransmit limit."""
        return self._retransmit_mult

    def queue_broadcast(
        self,
        message: bytes,
        name: str | None = None,
        *,
        unique: bool = False,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``message`` for gossip with no transmits yet.

        A ``name`` replaces (and finishes) the queued broadcast with the same name; an empty
        name counts as no name. ``unique`` marks a broadcast that never invalidates another
        (it cannot have a name). ``on_finished`` is called once, when the broadcast is
        replaced, sent for the last time, pruned or reset.
        """
        if not isinstance(message, bytes):
            raise TypeError(f"message must be bytes, not {type(message).__name__}")
        if not name:
            name = None
        elif unique:
            raise ValueError("a unique broadcast cannot have a name")
        self._next_id += 1
        item = _Item(self._next_id, message, name, on_finished)
        callbacks: list[Callable[[], None]] = []
        if name is not None:
            old = self._names.get(name)
            if old is not None:
                self._remove(old)
                if old.on_finished is not None:
                    callbacks.append(old.on_finished)
        self._add(item)
        if callbacks:
            _run_callbacks(callbacks)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Messages to send now, each costing ``overhead + len(message)``, within ``limit``.

        Each message returned counts one transmit; those that reach the retransmit limit
        leave the queue (their ``on_finished`` runs).
        """
        overhead = index(overhead)
        limit = index(limit)
        if not self._count:
            return []
        transmit_limit = retransmit_limit(self._retransmit_mult, self._num_nodes())
        tiers = self._tiers
        transmits = min(tiers)
        highest = max(tiers)
        used = 0
        out: list[bytes] = []
        reinsert: list[_Item] = []
        callbacks: list[Callable[[], None]] = []
        while transmits <= highest:
            free = limit - used - overhead
            if free <= 0:
                break
            tier = tiers.get(transmits)
            if tier is None:
                transmits += 1
                continue
            lengths = tier.lengths
            fitting = bisect_right(lengths, free)  # how many lengths fit
            if fitting == 0:
                transmits += 1
                continue
            length = lengths[fitting - 1]
            bucket = tier.buckets[length]
            item = bucket.newest_item()
            self._detach(item, tier, bucket)
            out.append(item.message)
            used += overhead + length
            if item.transmits + 1 >= transmit_limit:
                if item.on_finished is not None:
                    callbacks.append(item.on_finished)
            else:
                item.transmits += 1
                reinsert.append(item)
        for item in reinsert:
            self._add(item)
        if callbacks:
            _run_callbacks(callbacks)
        return out

    def num_queued(self) -> int:
        """How many broadcasts are queued."""
        return self._count

    def prune(self, max_retain: int) -> None:
        """Drop broadcasts until at most ``max_retain`` remain, most transmitted first.

        As memberlist's ``Prune``: the far end of the order goes first (most transmits, then
        the smallest message, then the oldest).
        """
        callbacks: list[Callable[[], None]] = []
        tiers = self._tiers
        max_retain = max(index(max_retain), 0)
        while self._count > max_retain:
            tier = tiers[max(tiers)]
            bucket = tier.buckets[tier.lengths[0]]
            item = bucket.oldest_item()
            self._detach(item, tier, bucket)
            if item.on_finished is not None:
                callbacks.append(item.on_finished)
        if callbacks:
            _run_callbacks(callbacks)

    def reset(self) -> None:
        """Drop every broadcast, finishing each (in queue order)."""
        items = self._ordered()
        self._tiers = {}
        self._names = {}
        self._count = 0
        self._next_id = 0
        callbacks = [item.on_finished for item in items if item.on_finished is not None]
        if callbacks:
            _run_callbacks(callbacks)

    def ordered_view(self) -> list[tuple[int, str | None, bytes]]:
        """``(transmits, name, message)`` of every queued broadcast, in sending order.

        For tests and debugging; it sorts, so it costs O(n log n).
        """
        return [(item.transmits, item.name, item.message) for item in self._ordered()]

    # -- internals ---------------------------------------------------------------------

    def _ordered(self) -> list[_Item]:
        out: list[_Item] = []
        for transmits in sorted(self._tiers):
            tier = self._tiers[transmits]
            for length in reversed(tier.lengths):
                items = tier.buckets[length].items
                out.extend(items[i] for i in sorted(items, reverse=True))
        return out

    def _add(self, item: _Item) -> None:
        tier = self._tiers.get(item.transmits)
        if tier is None:
            tier = self._tiers[item.transmits] = _Tier()
        bucket = tier.buckets.get(item.length)
        if bucket is None:
            bucket = tier.buckets[item.length] = _Bucket()
            insort(tier.lengths, item.length)
        bucket.add(item)
        if item.name is not None:
            self._names[item.name] = item
        self._count += 1

    def _remove(self, item: _Item) -> None:
        tier = self._tiers[item.transmits]
        self._detach(item, tier, tier.buckets[item.length])

    def _detach(self, item: _Item, tier: _Tier, bucket: _Bucket) -> None:
        bucket.discard(item)
        if not bucket.items:
            del tier.buckets[item.length]
            lengths = tier.lengths
            del lengths[bisect_right(lengths, item.length) - 1]
            if not lengths:
                del self._tiers[item.transmits]
        if item.name is not None:
            del self._names[item.name]
        self._count -= 1
