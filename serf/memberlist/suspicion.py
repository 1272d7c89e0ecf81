"""Lifeguard's timing: awareness and suspicion timeouts (pure twin of ``serf._fast.suspicion``).

How this works
--------------
* :class:`Awareness`, as memberlist's awareness.go: a health score in
  ``[0, max_multiplier - 1]`` that failed probes, missed nacks and refutations raise and
  successful probes lower; probe timeouts are scaled by ``score + 1``.
* :func:`suspicion_timeout`, as memberlist's ``suspicionTimeout``: the base (minimum) time a
  suspect has to refute, ``mult * max(1, log10(max(1, n))) * interval``, with the log scale
  truncated to thousandths as Go does.
* :class:`SuspicionTimer`, as memberlist's suspicion.go: a suspicion starts with the maximum
  timeout when ``k >= 1`` independent confirmations are wanted (the minimum when k < 1), and
  every new confirmer (the accuser counts as already seen, at most k count) brings the
  deadline down logarithmically towards the minimum:
  ``max - log(n + 1) / log(k + 1) * (max - min)``, floored to the millisecond and never below
  the minimum (:func:`remaining_suspicion_time`).

Sans-IO: there is no timer here. The caller asks :meth:`SuspicionTimer.deadline` after
creating the timer and after every confirmation that returned True, and (re)arms its own
timer; Go's "fire at once when the remaining time is negative" is a deadline in the past.
Nothing here reads a clock, a socket or a random source.

The compiled twin performs the same floating-point operations in the same order, so both give
bit-identical results.
"""

from __future__ import annotations

import math
from operator import index

__all__ = ["Awareness", "SuspicionTimer", "remaining_suspicion_time", "suspicion_timeout"]


class Awareness:
    """Lifeguard's local health score, as memberlist's ``awareness``.

    The score starts at 0 (healthy) and stays within ``[0, max_multiplier - 1]``.
    """

    __slots__ = ("_max_multiplier", "_score")

    def __init__(self, max_multiplier: int) -> None:
        max_multiplier = index(max_multiplier)  # integers only, as the compiled twin's
        if max_multiplier < 1:
            raise ValueError(f"max_multiplier must be >= 1, got {max_multiplier}")
        self._max_multiplier = max_multiplier
        self._score = 0

    @property
    def max_multiplier(self) -> int:
        """The largest factor :meth:`scale_timeout` applies (the score stays below it)."""
        return self._max_multiplier

    @property
    def score(self) -> int:
        """The current health score: 0 is healthy (Go's ``GetHealthScore``)."""
        return self._score

    def apply_delta(self, delta: int) -> int:
        """Add ``delta`` to the score, clamp it to ``[0, max_multiplier - 1]``, return it."""
        score = self._score + index(delta)
        if score < 0:
            score = 0
        elif score > self._max_multiplier - 1:
            score = self._max_multiplier - 1
        self._score = score
        return score

    def scale_timeout(self, timeout: float) -> float:
        """``timeout * (score + 1)``."""
        return timeout * float(self._score + 1)


def suspicion_timeout(suspicion_mult: int, n: int, interval: float) -> float:
    """The minimum suspicion timeout for a cluster of ``n`` nodes, in seconds.

    As memberlist's ``suspicionTimeout``: ``suspicion_mult * scale * interval`` where
    ``scale = max(1, log10(max(1, n)))`` truncated to thousandths (Go keeps it as an integer
    count of thousandths), so for mult 4 and interval 1 s: 4 s up to n=10, 8 s at n=100,
    12 s at n=1000, and 6.792 s at n=50.
    """
    node_scale = max(1.0, math.log10(max(1.0, float(index(n)))))
    scale_ms = int(node_scale * 1000.0)
    return float(index(suspicion_mult) * scale_ms) * interval / 1000.0


def remaining_suspicion_time(
    n: int, k: int, elapsed: float, min_timeout: float, max_timeout: float
) -> float:
    """Time left on a suspicion with ``n`` of ``k`` confirmations after ``elapsed`` seconds.

    As memberlist's ``remainingSuspicionTime``: the timeout
    ``max - log(n + 1) / log(k + 1) * (max - min)`` is floored to the millisecond and raised
    to ``min_timeout`` if below it; ``elapsed`` is then subtracted (the result may be
    negative: the suspicion is overdue). Needs ``k >= 1`` and ``n >= 0``.
    """
    n = index(n)
    k = index(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (math.isfinite(min_timeout) and math.isfinite(max_timeout)):
        raise ValueError("min_timeout and max_timeout must be finite")
    frac = math.log(float(n) + 1.0) / math.log(float(k) + 1.0)
    raw = max_timeout - frac * (max_timeout - min_timeout)
    timeout = math.floor(1000.0 * raw) / 1000.0
    if timeout < min_timeout:
        timeout = min_timeout
    return timeout - elapsed


class SuspicionTimer:
    """The deadline of one suspicion, shortened by independent confirmations (Lifeguard).

    ``from_node`` is the accuser: it counts as already seen but not as a confirmation. ``k``
    is how many confirmations are wanted (memberlist uses ``SuspicionMult - 2``, or 0 when
    the cluster has fewer than ``k + 2`` nodes), ``min_timeout``/``max_timeout`` bound the
    timeout in seconds and ``start`` is when the suspicion began (the caller's clock).
    """

    __slots__ = ("_k", "_max_timeout", "_min_timeout", "_n", "_seen", "_start")

    def __init__(
        self, from_node: str, k: int, min_timeout: float, max_timeout: float, start: float
    ) -> None:
        if not (math.isfinite(min_timeout) and math.isfinite(max_timeout)):
            raise ValueError("min_timeout and max_timeout must be finite")
        if not math.isfinite(start):
            raise ValueError("start must be finite")
        self._k = index(k)
        self._min_timeout = min_timeout
        self._max_timeout = max_timeout
        self._start = start
        self._n = 0
        self._seen = {from_node}

    @property
    def k(self) -> int:
        """How many confirmations are wanted."""
        return self._k

    @property
    def confirmations(self) -> int:
        """How many distinct confirmations were counted so far (at most ``k``)."""
        return self._n

    @property
    def start(self) -> float:
        """When the suspicion began."""
        return self._start

    @property
    def min_timeout(self) -> float:
        """The shortest the timeout can become."""
        return self._min_timeout

    @property
    def max_timeout(self) -> float:
        """The timeout before any confirmation (when ``k >= 1``)."""
        return self._max_timeout

    def confirm(self, from_node: str, now: float) -> bool:
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

    def deadline(self) -> float:
        """When the suspicion expires, on the caller's clock."""
        if self._k < 1:
            return self._start + self._min_timeout
        if self._n == 0:
            return self._start + self._max_timeout
        return self._start + remaining_suspicion_time(
            self._n, self._k, 0.0, self._min_timeout, self._max_timeout
        )

    def remaining(self, now: float) -> float:
        """Seconds left at ``now`` (negative once overdue)."""
        return self.deadline() - now
