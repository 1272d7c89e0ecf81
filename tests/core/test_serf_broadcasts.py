"""serf's three gossip queues drained into one packet (Broadcasts.get_broadcasts)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from serf.config import SerfConfig
from serf.core.services import Broadcasts
from serf.telemetry import MetricSample


class _Services:
    def __init__(self) -> None:
        self.config = SerfConfig("a")
        self.out: list[Any] = []

    def emit(self, effect: Any) -> None:
        self.out.append(effect)


def _filled(queues: list[list[bytes]]) -> tuple[Broadcasts, _Services]:
    s = _Services()
    b = Broadcasts(s, 4, lambda: 8)  # type: ignore[arg-type]
    for queue, msgs in zip((b.intents, b.queries, b.events), queues, strict=True):
        for i, m in enumerate(msgs):
            queue.queue_broadcast(m + bytes([i % 256]) * 3, unique=True)
    return b, s


def _reference(b: Broadcasts, overhead: int, limit: int) -> list[bytes]:
    """The drain as written first: intents, queries, events, each given what is left."""
    msgs: list[bytes] = []
    for queue in (b.intents, b.queries, b.events):
        used = sum(len(m) + overhead for m in msgs)
        if limit - used <= overhead:
            break
        msgs.extend(queue.get_broadcasts(overhead, limit - used))
    return msgs


@settings(max_examples=200, deadline=None)
@given(
    queues=st.lists(
        st.lists(st.binary(min_size=1, max_size=300), max_size=12), min_size=3, max_size=3
    ),
    overhead=st.integers(0, 4),
    limit=st.integers(0, 1400),
)
def test_drain_matches_the_reference_and_samples_each_message(
    queues: list[list[bytes]], overhead: int, limit: int
) -> None:
    b, s = _filled(queues)
    ref, _ = _filled(queues)
    got = b.get_broadcasts(overhead, limit)
    assert got == _reference(ref, overhead, limit)
    assert sum(len(m) + overhead for m in got) <= limit
    assert s.out == [MetricSample("sample", ("serf", "msgs", "sent"), float(len(m))) for m in got]
