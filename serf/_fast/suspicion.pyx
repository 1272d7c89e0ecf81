# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Lifeguard's timing math (compiled twin of ``serf.memberlist.suspicion``).

How this works: exactly as the pure twin (read its module comment): memberlist's awareness
score, ``suspicionTimeout`` and the suspicion timer whose deadline falls from max towards min
with each independent confirmation. Every floating-point operation is the same C double
operation, in the same order, as in the pure twin (Python's ``math.log``/``log10``/``floor``
call the same libm functions), so the results are bit-identical.
"""

from libc.math cimport floor, isfinite, log, log10

__all__ = ["Awareness", "SuspicionTimer", "remaining_suspicion_time", "suspicion_timeout"]


cdef class Awareness:
    """Lifeguard's local health score, as memberlist's ``awareness``.

    The score starts at 0 (healthy) and stays within ``[0, max_multiplier - 1]``.
    """

    cdef Py_ssize_t _max_multiplier
    cdef Py_ssize_t _score

    def __init__(self, Py_ssize_t max_multiplier):
        if max_multiplier < 1:
            raise ValueError(f"max_multiplier must be >= 1, got {max_multiplier}")
        self._max_multiplier = max_multiplier
        self._score = 0

    @property
    def max_multiplier(self):
        """The largest factor :meth:`scale_timeout` applies (the score stays below it)."""
        return self._max_multiplier

    @property
    def score(self):
        """The current health score: 0 is healthy (Go's ``GetHealthScore``)."""
        return self._score

    cpdef Py_ssize_t apply_delta(self, Py_ssize_t delta):
        """Add ``delta`` to the score, clamp it to ``[0, max_multiplier - 1]``, return it."""
        cdef Py_ssize_t score = self._score + delta
        if score < 0:
            score = 0
        elif score > self._max_multiplier - 1:
            score = self._max_multiplier - 1
        self._score = score
        return score

    cpdef double scale_timeout(self, double timeout):
        """``timeout * (score + 1)``."""
        return timeout * <double>(self._score + 1)


cpdef double suspicion_timeout(Py_ssize_t suspicion_mult, Py_ssize_t n, double interval):
    """The minimum suspicion timeout for a cluster of ``n`` nodes, in seconds.

    As memberlist's ``suspicionTimeout``: ``suspicion_mult * scale * interval`` where
    ``scale = max(1, log10(max(1, n)))`` truncated to thousandths (Go keeps it as an integer
    count of thousandths).
    """
    cdef double count = <double>n
    if count < 1.0:
        count = 1.0
    cdef double node_scale = log10(count)
    if node_scale < 1.0:
        node_scale = 1.0
    cdef long long scale_ms = <long long>(node_scale * 1000.0)
    return <double>(suspicion_mult * scale_ms) * interval / 1000.0


cpdef double remaining_suspicion_time(
    Py_ssize_t n, Py_ssize_t k, double elapsed, double min_timeout, double max_timeout
) except? -1.0:
    """Time left on a suspicion with ``n`` of ``k`` confirmations after ``elapsed`` seconds.

    As memberlist's ``remainingSuspicionTime``: the timeout
    ``max - log(n + 1) / log(k + 1) * (max - min)`` is floored to the millisecond and raised
    to ``min_timeout`` if below it; ``elapsed`` is then subtracted (the result may be
    negative: the suspicion is overdue). Needs ``k >= 1`` and ``n >= 0``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (isfinite(min_timeout) and isfinite(max_timeout)):
        raise ValueError("min_timeout and max_timeout must be finite")
    cdef double frac = log(<double>n + 1.0) / log(<double>k + 1.0)
    cdef double raw = max_timeout - frac * (max_timeout - min_timeout)
    cdef double timeout = floor(1000.0 * raw) / 1000.0
    if timeout < min_timeout:
        timeout = min_timeout
    return timeout - elapsed


cdef class SuspicionTimer:
    """The deadline of one suspicion, shortened by independent confirmations (Lifeguard).

    ``from_node`` is the accuser: it counts as already seen but not as a confirmation. ``k``
    is how many confirmations are wanted (memberlist uses ``SuspicionMult - 2``, or 0 when
    the cluster has fewer than ``k + 2`` nodes), ``min_timeout``/``max_timeout`` bound the
    timeout in seconds and ``start`` is when the suspicion began (the caller's clock).
    """

    cdef Py_ssize_t _k
    cdef Py_ssize_t _n
    cdef double _min_timeout
    cdef double _max_timeout
    cdef double _start
    cdef set _seen

    def __init__(
        self, from_node, Py_ssize_t k, double min_timeout, double max_timeout, double start
    ):
        if not (isfinite(min_timeout) and isfinite(max_timeout)):
            raise ValueError("min_timeout and max_timeout must be finite")
        if not isfinite(start):
            raise ValueError("start must be finite")
        self._k = k
        self._min_timeout = min_timeout
        self._max_timeout = max_timeout
        self._start = start
        self._n = 0
        self._seen = {from_node}

    @property
    def k(self):
        """How many confirmations are wanted."""
        return self._k

    @property
    def confirmations(self):
        """How many distinct confirmations were counted so far (at most ``k``)."""
        return self._n

    @property
    def start(self):
        """When the suspicion began."""
        return self._start

    @property
    def min_timeout(self):
        """The shortest the timeout can become."""
        return self._min_timeout

    @property
    def max_timeout(self):
        """The timeout before any confirmation (when ``k >= 1``)."""
        return self._max_timeout

    cpdef bint confirm(self, from_node, double now) except -1:
        """Count a confirmation from ``from_node``; True only if it was new and counted.

        As memberlist's ``Confirm``: once ``k`` confirmations are in, or for a node already
        seen (the accuser included), nothing changes and the answer is False. After True the
        caller re-arms its timer at :meth:`deadline`, which may already be past ``now``.
        ``now`` does not change the result: Go subtracts the time elapsed since ``start``
        from the new timeout and counts from now, which is the same absolute deadline.
        """
        if self._n >= self._k or from_node in self._seen:
            return False
        self._seen.add(from_node)
        self._n += 1
        return True

    cpdef double deadline(self) except? -1.0:
        """When the suspicion expires, on the caller's clock."""
        if self._k < 1:
            return self._start + self._min_timeout
        if self._n == 0:
            return self._start + self._max_timeout
        return self._start + remaining_suspicion_time(
            self._n, self._k, 0.0, self._min_timeout, self._max_timeout
        )

    cpdef double remaining(self, double now) except? -1.0:
        """Seconds left at ``now`` (negative once overdue)."""
        return self.deadline() - now
