"""Queries (reference 3.7): the queries we start, the ones we receive, responses and relays.

:class:`QueryManager` is owned by :class:`serf.core.serf.SerfCore` and works on its state
(clocks, members, timers, effects) through the ``core`` it is given; it owns only the query
bookkeeping: the queries we started (by ltime), the ones we may still answer, and the
duplicate-suppression buffer. Internal (``_serf_``) queries go to
:class:`serf.core.internal.InternalQueries` once they pass the filters.

What an inbound query leaves behind is bounded whatever its sender asks for (Go keeps
nothing per query in its core): at most ``MAX_INBOUND_QUERIES`` entries, oldest forgotten
first, each answerable for at most ``MAX_INBOUND_QUERY_LIFETIME`` seconds (a sender-chosen
``Timeout`` of 2**62 ns no longer pins an entry and a timer for a century). Entries need no
timers: they leave from the front as they age, or when newer ones push them out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from serf.address import Address
from serf.core import io as sio
from serf.core.filters import matches_encoded
from serf.core.lamport import LamportRing
from serf.core.state import MemberRecord, SerfState
from serf.memberlist import io as mio
from serf.telemetry import COUNTER, WARN, MetricSample
from serf.wire.messages import (
    FilterNode,
    FilterTag,
    MessageQuery,
    MessageQueryResponse,
    MessageRelay,
    UDPAddr,
)

if TYPE_CHECKING:
    from serf.core.serf import SerfCore

__all__ = [
    "INTERNAL_QUERY_PREFIX",
    "MAX_INBOUND_QUERIES",
    "MAX_INBOUND_QUERY_LIFETIME",
    "QUERY_FLAG_ACK",
    "QUERY_FLAG_NO_BROADCAST",
    "InQuery",
    "OutQuery",
    "QueryManager",
]

QUERY_FLAG_ACK = 1
QUERY_FLAG_NO_BROADCAST = 2
INTERNAL_QUERY_PREFIX = "_serf_"
#: inbound queries kept for answering (the oldest is forgotten when one more arrives)
MAX_INBOUND_QUERIES = 4096
#: the longest an inbound query stays answerable, whatever Timeout its sender chose (s)
MAX_INBOUND_QUERY_LIFETIME = 3600.0

_QUERIES = MetricSample(COUNTER, ("serf", "queries"), 1.0)
_ACKS = MetricSample(COUNTER, ("serf", "query_acks"), 1.0)
_DUPLICATE_ACKS = MetricSample(COUNTER, ("serf", "query_duplicate_acks"), 1.0)
_RESPONSES = MetricSample(COUNTER, ("serf", "query_responses"), 1.0)
_DUPLICATE_RESPONSES = MetricSample(COUNTER, ("serf", "query_duplicate_responses"), 1.0)


class OutQuery:
    """A query we started: its answers so far and who consumes them."""

    __slots__ = (
        "acks",
        "deadline",
        "finished",
        "id",
        "ltime",
        "on_finish",
        "on_response",
        "request_ack",
        "request_id",
        "responses",
        "token",
    )

    def __init__(self, request_id: int, ltime: int, qid: int, deadline: float, ack: bool) -> None:
        self.request_id = request_id
        self.ltime = ltime
        self.id = qid
        self.deadline = deadline
        self.request_ack = ack
        self.acks: set[str] = set()
        self.responses: set[str] = set()
        self.finished = False
        self.token = 0
        self.on_response: Callable[[OutQuery, str, bytes], None] | None = None
        self.on_finish: Callable[[], None] | None = None


class InQuery:
    """A query we received and may answer once."""

    __slots__ = ("addr", "deadline", "kept_until", "port", "relay_factor", "responded", "source")

    def __init__(
        self,
        addr: bytes,
        port: int,
        relay_factor: int,
        deadline: float,
        source: str,
        kept_until: float,
    ) -> None:
        self.source = source
        self.addr = addr
        self.port = port
        self.relay_factor = relay_factor
        self.deadline = deadline
        self.kept_until = kept_until
        self.responded = False


class QueryManager:
    """Query state and handling for one :class:`~serf.core.serf.SerfCore`."""

    def __init__(self, core: SerfCore, query_buffer: int) -> None:
        self.core = core
        self.query_buf: LamportRing[int] = LamportRing(query_buffer)
        self.out_queries: dict[int, OutQuery] = {}  # by ltime
        self.in_queries: dict[tuple[int, int], InQuery] = {}

    def handle_query(self, msg: MessageQuery) -> bool:
        core = self.core
        core.query_clock.witness(msg.ltime)
        if msg.ltime < core.query_min_time:
            return False
        cur = core.query_clock.time()
        if self.query_buf.too_old(msg.ltime, cur):
            core.stats_counters["queries_dropped_old"] += 1
            core._log(WARN, f"received old query {msg.name} from time {msg.ltime} (current: {cur})")
            return False
        if not self.query_buf.add(msg.ltime, msg.id):
            return False
        core._emit(_QUERIES)
        core._emit(MetricSample(COUNTER, ("serf", "queries", msg.name), 1.0))
        rebroadcast = not msg.flags & QUERY_FLAG_NO_BROADCAST
        if not matches_encoded(msg.filters, core.codec.decode_filter, core.name, core.tags):
            return rebroadcast
        addr = bytes(msg.addr or b"")
        if msg.flags & QUERY_FLAG_ACK:
            ack = MessageQueryResponse(msg.ltime, msg.id, core.name, QUERY_FLAG_ACK, None)
            raw = core.codec.encode(ack)
            self.send_response(addr, msg.port, msg.source_node, raw, msg.relay_factor)
        now = core._now
        deadline = now + min(max(msg.timeout, 0) / 1e9, MAX_INBOUND_QUERY_LIFETIME)
        if core._recorder is not None:
            core._lines(core._recorder.record_query(msg.ltime))
        self._keep_in_query(
            (msg.ltime, msg.id),
            InQuery(addr, msg.port, msg.relay_factor, deadline, msg.source_node,
                    now + MAX_INBOUND_QUERY_LIFETIME),
        )  # fmt: skip
        handle = sio.QueryHandle(
            msg.ltime, msg.id, msg.name, bytes(msg.payload or b""), msg.source_node, deadline
        )
        if msg.name.startswith(INTERNAL_QUERY_PREFIX):
            core._internal.internal_query(handle)
        else:
            core._emit(sio.QueryReceived(handle))
        return rebroadcast

    def _keep_in_query(self, key: tuple[int, int], query: InQuery) -> None:
        """Remember an inbound query for ``respond``, within the count and lifetime bounds."""
        kept = self.in_queries
        now = self.core._now
        for _ in range(2):  # two per arrival: O(1), and the set drains faster than it fills
            old_key = next(iter(kept), None)
            if old_key is None:
                break
            old = kept[old_key]  # insertion order is kept_until order
            if old.kept_until > now and old.deadline > now:
                break
            del kept[old_key]
        kept.pop(key, None)
        kept[key] = query
        while len(kept) > MAX_INBOUND_QUERIES:
            del kept[next(iter(kept))]

    def send_response(
        self, addr: bytes, port: int, source: str, raw: bytes, relay_factor: int
    ) -> str | None:
        core = self.core
        try:
            dest = Address.from_ip(addr, port)
        except ValueError as exc:
            return f"bad query source address: {exc}"
        core._send(dest, raw)
        return self.relay(addr, port, source, raw, relay_factor)

    def relay(self, addr: bytes, port: int, source: str, raw: bytes, factor: int) -> str | None:
        core = self.core
        if factor <= 0 or len(core._members) < factor + 1:
            return None
        relay = core.codec.encode(MessageRelay(UDPAddr(addr, port, ""), source, raw))
        if len(relay) > core.config.query_response_size_limit:
            return (
                f"relayed response exceeds limit of {core.config.query_response_size_limit} bytes"
            )
        candidates = [
            m
            for m in core._members.values()
            if m.status is sio.MemberStatus.ALIVE
            and m.name != core.name
            and len(m.vsn) >= 2
            and m.vsn[1] >= 5
        ]
        chosen: dict[str, MemberRecord] = {}
        for _ in range(3 * factor):
            if len(chosen) >= factor or not candidates:
                break
            m = candidates[core.rng.randrange(len(candidates))]
            chosen[m.name] = m
        for m in chosen.values():
            core._send(Address.from_ip(m.addr, m.port), relay)
        return None

    def handle_query_response(self, msg: MessageQueryResponse) -> None:
        core = self.core
        q = self.out_queries.get(msg.ltime)
        if q is None:
            core._log(
                WARN,
                f"reply for non-running query (LTime: {msg.ltime}, ID: {msg.id}) From: {msg.from_}",
            )
            return
        if q.id != msg.id:
            core._log(WARN, f"query reply ID mismatch (Local: {q.id}, Response: {msg.id})")
            return
        if q.finished:
            return
        if msg.flags & QUERY_FLAG_ACK:
            if msg.from_ in q.acks:
                core._emit(_DUPLICATE_ACKS)
                return
            core._emit(_ACKS)
            q.acks.add(msg.from_)
            if q.request_ack and q.request_id >= 0:
                core._emit(sio.QueryAckReceived(q.request_id, msg.from_))
            return
        if msg.from_ in q.responses:
            core._emit(_DUPLICATE_RESPONSES)
            return
        core._emit(_RESPONSES)
        q.responses.add(msg.from_)
        payload = bytes(msg.payload or b"")
        if q.on_response is not None:
            q.on_response(q, msg.from_, payload)
        else:
            core._emit(sio.QueryResponseReceived(q.request_id, msg.from_, payload))

    def start_query(
        self,
        request_id: int,
        name: str,
        payload: bytes,
        *,
        filter_nodes: tuple[str, ...] = (),
        filter_tags: tuple[tuple[str, str], ...] = (),
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float = 0.0,
        on_response: Callable[[OutQuery, str, bytes], None] | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> tuple[OutQuery | None, str | None]:
        core = self.core
        if core.config.protocol_version < 4:
            return None, "Feature not supported"
        if core.serf_state is SerfState.SHUTDOWN:
            return None, "Serf is shut down"
        if timeout <= 0:
            timeout = core.default_query_timeout()
        filters: list[bytes] = []
        if filter_nodes:
            filters.append(core.codec.encode_filter(FilterNode(list(filter_nodes))))
        for tag, expr in filter_tags:
            filters.append(core.codec.encode_filter(FilterTag(tag, expr)))
        ltime = core.query_clock.time()
        qid = core.rng.getrandbits(31)
        msg = MessageQuery(
            ltime,
            qid,
            core._ip,
            core.advertise.port,
            core.name,
            filters or None,
            QUERY_FLAG_ACK if request_ack else 0,
            relay_factor,
            round(timeout * 1e9),
            name,
            payload,
        )
        raw = core.codec.encode(msg)
        if len(raw) > core.config.query_size_limit:
            return None, f"query exceeds limit of {core.config.query_size_limit} bytes"
        q = OutQuery(request_id, ltime, qid, core._now + timeout, request_ack)
        q.on_response = on_response
        q.on_finish = on_finish
        old = self.out_queries.get(ltime)
        if old is not None:
            self.finish_query(old)
        self.out_queries[ltime] = q
        q.token = core._after(timeout, lambda: self.finish_query(q))
        self.handle_query(msg)  # processed locally first; witnesses (advances) the clock
        core.query_queue.queue_broadcast(raw, unique=True)
        return q, None

    def finish_query(self, q: OutQuery) -> None:
        core = self.core
        if q.finished:
            return
        q.finished = True
        core._live.discard(q.token)
        if self.out_queries.get(q.ltime) is q:
            del self.out_queries[q.ltime]
        if q.on_finish is not None:
            q.on_finish()
        elif q.request_id >= 0:
            core._emit(sio.QueryFinished(q.request_id))

    def query(self, req: sio.QueryRequest) -> None:
        core = self.core
        q, err = self.start_query(
            req.request_id,
            req.name,
            req.payload,
            filter_nodes=req.filter_nodes,
            filter_tags=req.filter_tags,
            request_ack=req.request_ack,
            relay_factor=req.relay_factor,
            timeout=req.timeout,
        )
        result = None if q is None else (q.ltime, q.id)
        core._emit(mio.RequestCompleted(req.request_id, result=result, error=err))

    def respond(self, ltime: int, qid: int, payload: bytes) -> str | None:
        core = self.core
        st = self.in_queries.get((ltime, qid))
        if st is None:
            return "Response is past the deadline"
        if st.responded:
            return "Response already sent"
        if core._now > st.deadline:
            return "Response is past the deadline"
        resp = MessageQueryResponse(ltime, qid, core.name, 0, payload)
        raw = core.codec.encode(resp)
        limit = core.config.query_response_size_limit
        if len(raw) > limit:
            return f"response exceeds limit of {limit} bytes"
        err = self.send_response(st.addr, st.port, st.source, raw, st.relay_factor)
        if err is None:
            st.responded = True
        return err
