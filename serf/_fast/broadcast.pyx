# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The transmit-limited broadcast queue (compiled twin of ``serf.memberlist.broadcast``).

How this works: exactly as the pure twin (read its module comment): as memberlist's
TransmitLimitedQueue, items are ordered by (transmits ascending, length descending, id
descending); ``get_broadcasts`` walks the transmit tiers from the lowest and takes the largest
message that fits, newest first; tiers -> sorted distinct lengths -> buckets of items.

Where this twin differs inside (never in behaviour): a bucket's heaps hold the items
themselves, compared on their C-level ids, instead of Python ints looked up in a dict; an
item knows the serial number of the bucket it sits in, so a stale heap entry is recognised by
comparing two C integers (no reference cycles between items and buckets). The length search
is a typed binary search instead of ``bisect``.
"""

cimport cython
from libc.math cimport ceil, log10

__all__ = ["TransmitLimitedQueue", "retransmit_limit"]

# heaps may hold this many stale entries (beyond twice the live ones) before they are rebuilt
cdef Py_ssize_t _COMPACT_SLACK = 16


cpdef Py_ssize_t retransmit_limit(Py_ssize_t retransmit_mult, Py_ssize_t n) except? -1:
    """How many times a broadcast is sent in a cluster of ``n`` nodes.

    As memberlist's ``retransmitLimit``: ``retransmit_mult * ceil(log10(n + 1))``, so 0 for
    n=0, ``retransmit_mult`` for n=1..9, twice that for n=10..99, and so on.
    """
    if n < 0:
        raise ValueError(f"the node count must be >= 0, got {n}")
    return retransmit_mult * <Py_ssize_t>ceil(log10(<double>(n + 1)))


@cython.final
cdef class _Item:
    """One queued broadcast."""

    cdef long long id
    cdef long long bucket  # serial of the bucket holding it, 0 when not queued
    cdef Py_ssize_t transmits
    cdef Py_ssize_t length
    cdef bytes message
    cdef object name
    cdef object on_finished


# -- binary heaps of items keyed on their ids ---------------------------------------------
# ``newest`` heaps put the highest id on top, ``oldest`` heaps the lowest.


cdef inline bint _above(_Item a, _Item b, bint newest):
    return a.id > b.id if newest else a.id < b.id


cdef int _sift_up(list heap, Py_ssize_t pos, bint newest) except -1:
    cdef _Item item = <_Item>heap[pos]
    cdef Py_ssize_t parent
    cdef _Item up
    while pos > 0:
        parent = (pos - 1) >> 1
        up = <_Item>heap[parent]
        if not _above(item, up, newest):
            break
        heap[pos] = up
        pos = parent
    heap[pos] = item
    return 0


cdef int _sift_down(list heap, Py_ssize_t pos, bint newest) except -1:
    cdef Py_ssize_t size = len(heap)
    cdef _Item item = <_Item>heap[pos]
    cdef Py_ssize_t child
    cdef _Item best
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        best = <_Item>heap[child]
        if child + 1 < size and _above(<_Item>heap[child + 1], best, newest):
            child += 1
            best = <_Item>heap[child]
        if not _above(best, item, newest):
            break
        heap[pos] = best
        pos = child
    heap[pos] = item
    return 0


cdef int _heap_push(list heap, _Item item, bint newest) except -1:
    heap.append(item)
    _sift_up(heap, len(heap) - 1, newest)
    return 0


cdef int _heap_pop(list heap, bint newest) except -1:
    last = heap.pop()
    if len(heap):
        heap[0] = last
        _sift_down(heap, 0, newest)
    return 0


cdef list _heap_of(list items, bint newest):
    cdef Py_ssize_t i
    for i in range((len(items) >> 1) - 1, -1, -1):
        _sift_down(items, i, newest)
    return items


@cython.final
cdef class _Bucket:
    """The items of one tier with one message length, as heaps with lazy deletion."""

    cdef long long serial
    cdef Py_ssize_t live
    cdef list newest
    cdef object oldest  # list, or None until the first prune looks here

    def __cinit__(self, long long serial):
        self.serial = serial
        self.live = 0
        self.newest = []
        self.oldest = None

    cdef int add(self, _Item item) except -1:
        item.bucket = self.serial
        self.live += 1
        _heap_push(self.newest, item, True)
        if self.oldest is not None:
            _heap_push(<list>self.oldest, item, False)
        return 0

    cdef int discard(self, _Item item) except -1:
        item.bucket = 0
        self.live -= 1
        cdef Py_ssize_t limit = 2 * self.live + _COMPACT_SLACK
        if len(self.newest) > limit:
            self.newest = _heap_of(self.live_items(self.newest), True)
        if self.oldest is not None and len(<list>self.oldest) > limit:
            self.oldest = _heap_of(self.live_items(<list>self.oldest), False)
        return 0

    cdef list live_items(self, list heap):
        cdef list out = []
        cdef _Item item
        for entry in heap:
            item = <_Item>entry
            if item.bucket == self.serial:
                out.append(item)
        return out

    cdef _Item newest_item(self):
        cdef list heap = self.newest
        while (<_Item>heap[0]).bucket != self.serial:
            _heap_pop(heap, True)
        return <_Item>heap[0]

    cdef _Item oldest_item(self):
        if self.oldest is None:
            self.oldest = _heap_of(self.live_items(self.newest), False)
        cdef list heap = <list>self.oldest
        while (<_Item>heap[0]).bucket != self.serial:
            _heap_pop(heap, False)
        return <_Item>heap[0]


@cython.final
cdef class _Tier:
    """The items with one transmit count, by message length."""

    cdef list lengths  # distinct lengths present, ascending
    cdef dict buckets

    def __cinit__(self):
        self.lengths = []
        self.buckets = {}


cdef Py_ssize_t _count_at_most(list lengths, Py_ssize_t value):
    """How many entries of the ascending ``lengths`` are <= value (bisect_right)."""
    cdef Py_ssize_t lo = 0
    cdef Py_ssize_t hi = len(lengths)
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if value < <Py_ssize_t>lengths[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef _run_callbacks(list callbacks):
    error = None
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:
            if error is None:
                error = exc
    if error is not None:
        raise error


@cython.final
cdef class TransmitLimitedQueue:
    """Broadcasts waiting to be piggybacked on gossip, each sent a limited number of times.

    ``retransmit_mult`` and ``num_nodes`` (called on every :meth:`get_broadcasts`) give the
    retransmit limit, see :func:`retransmit_limit`. See the pure twin's module comment for
    the order in which messages go out.
    """

    cdef Py_ssize_t _retransmit_mult
    cdef object _num_nodes
    cdef dict _tiers
    cdef dict _names
    cdef Py_ssize_t _count
    cdef long long _next_id
    cdef long long _next_bucket

    def __init__(self, Py_ssize_t retransmit_mult, num_nodes):
        self._retransmit_mult = retransmit_mult
        self._num_nodes = num_nodes
        self._tiers = {}
        self._names = {}
        self._count = 0
        self._next_id = 0
        self._next_bucket = 0

    @property
    def retransmit_mult(self):
        """The multiplier of the retransmit limit."""
        return self._retransmit_mult

    def queue_broadcast(self, message, name=None, *, bint unique=False, on_finished=None):
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
        cdef _Item item = _Item.__new__(_Item)
        item.id = self._next_id
        item.bucket = 0
        item.transmits = 0
        item.message = <bytes>message
        item.length = len(<bytes>message)
        item.name = name
        item.on_finished = on_finished
        cdef _Item old
        callback = None
        if name is not None:
            found = self._names.get(name)
            if found is not None:
                old = <_Item>found
                self._remove(old)
                callback = old.on_finished
        self._add(item, True)
        if callback is not None:
            _run_callbacks([callback])

    def get_broadcasts(self, Py_ssize_t overhead, Py_ssize_t limit):
        """Messages to send now, each costing ``overhead + len(message)``, within ``limit``.

        Each message returned counts one transmit; those that reach the retransmit limit
        leave the queue (their ``on_finished`` runs).
        """
        if not self._count:
            return []
        cdef Py_ssize_t transmit_limit = retransmit_limit(
            self._retransmit_mult, self._num_nodes()
        )
        cdef dict tiers = self._tiers
        cdef Py_ssize_t transmits = min(tiers)
        cdef Py_ssize_t highest = max(tiers)
        cdef Py_ssize_t used = 0
        cdef Py_ssize_t free, index, length
        cdef list out = []
        cdef list reinsert = []
        cdef list callbacks = []
        cdef _Tier tier = None  # the tier of ``transmits``, kept while it has items
        cdef _Bucket bucket
        cdef _Item item
        while transmits <= highest:
            free = limit - used - overhead
            if free <= 0:
                break
            if tier is None:
                found = tiers.get(transmits)
                if found is None:
                    transmits += 1
                    continue
                tier = <_Tier>found
            index = _count_at_most(tier.lengths, free)
            if index == 0:
                transmits += 1
                tier = None
                continue
            length = <Py_ssize_t>tier.lengths[index - 1]
            bucket = <_Bucket>tier.buckets[length]
            item = bucket.newest_item()
            out.append(item.message)
            used += overhead + length
            if item.transmits + 1 >= transmit_limit:
                self._detach(item, tier, bucket, True)
                if item.on_finished is not None:
                    callbacks.append(item.on_finished)
            else:
                # it comes back below under the same name: the name map keeps pointing at it
                self._detach(item, tier, bucket, False)
                item.transmits += 1
                reinsert.append(item)
            if not tier.lengths:  # emptied: _detach dropped it from the tiers
                tier = None
        for entry in reinsert:
            self._add(<_Item>entry, False)
        if callbacks:
            _run_callbacks(callbacks)
        return out

    def num_queued(self):
        """How many broadcasts are queued."""
        return self._count

    def prune(self, Py_ssize_t max_retain):
        """Drop broadcasts until at most ``max_retain`` remain, most transmitted first.

        As memberlist's ``Prune``: the far end of the order goes first (most transmits, then
        the smallest message, then the oldest).
        """
        cdef list callbacks = []
        cdef _Tier tier
        cdef _Bucket bucket
        cdef _Item item
        if max_retain < 0:
            max_retain = 0
        while self._count > max_retain:
            tier = <_Tier>self._tiers[max(self._tiers)]
            bucket = <_Bucket>tier.buckets[tier.lengths[0]]
            item = bucket.oldest_item()
            self._detach(item, tier, bucket, True)
            if item.on_finished is not None:
                callbacks.append(item.on_finished)
        if callbacks:
            _run_callbacks(callbacks)

    def reset(self):
        """Drop every broadcast, finishing each (in queue order)."""
        cdef list items = self._ordered()
        cdef _Item item
        self._tiers = {}
        self._names = {}
        self._count = 0
        self._next_id = 0
        cdef list callbacks = []
        for entry in items:
            item = <_Item>entry
            item.bucket = 0
            if item.on_finished is not None:
                callbacks.append(item.on_finished)
        if callbacks:
            _run_callbacks(callbacks)

    def ordered_view(self):
        """``(transmits, name, message)`` of every queued broadcast, in sending order.

        For tests and debugging; it sorts, so it costs O(n log n).
        """
        cdef _Item item
        cdef list out = []
        for entry in self._ordered():
            item = <_Item>entry
            out.append((item.transmits, item.name, item.message))
        return out

    # -- internals ---------------------------------------------------------------------

    cdef list _ordered(self):
        cdef list out = []
        cdef _Tier tier
        cdef _Bucket bucket
        cdef list items
        for transmits in sorted(self._tiers):
            tier = <_Tier>self._tiers[transmits]
            for length in reversed(tier.lengths):
                bucket = <_Bucket>tier.buckets[length]
                items = bucket.live_items(bucket.newest)
                items.sort(key=_item_id, reverse=True)
                out.extend(items)
        return out

    cdef int _add(self, _Item item, bint register) except -1:
        cdef _Tier tier
        cdef _Bucket bucket
        found = self._tiers.get(item.transmits)
        if found is None:
            tier = _Tier.__new__(_Tier)
            self._tiers[item.transmits] = tier
        else:
            tier = <_Tier>found
        found = tier.buckets.get(item.length)
        if found is None:
            self._next_bucket += 1
            bucket = _Bucket.__new__(_Bucket, self._next_bucket)
            tier.buckets[item.length] = bucket
            tier.lengths.insert(_count_at_most(tier.lengths, item.length), item.length)
        else:
            bucket = <_Bucket>found
        bucket.add(item)
        if register and item.name is not None:
            self._names[item.name] = item
        self._count += 1
        return 0

    cdef int _remove(self, _Item item) except -1:
        cdef _Tier tier = <_Tier>self._tiers[item.transmits]
        return self._detach(item, tier, <_Bucket>tier.buckets[item.length], True)

    cdef int _detach(self, _Item item, _Tier tier, _Bucket bucket, bint unregister) except -1:
        bucket.discard(item)
        if not bucket.live:
            del tier.buckets[item.length]
            del tier.lengths[_count_at_most(tier.lengths, item.length) - 1]
            if not tier.lengths:
                del self._tiers[item.transmits]
        if unregister and item.name is not None:
            del self._names[item.name]
        self._count -= 1
        return 0


def _item_id(_Item item):
    return item.id
