"""Queries (reference 3.7): the queries we start, the ones we receive, responses and relays.

:class:`QueryManager` owns the query bookkeeping of one serf core: the queries we started
(by ltime), the ones we may still answer, the duplicate-suppression ring and the oldest query
time we accept. It reaches the rest of the core through the :class:`~serf.core.services.
Services` (clocks, timers, effects) and reads the members from
:class:`~serf.core.intents.Membership`. Internal (``_serf_``) queries go to ``internal``
(:class:`serf.core.internal.InternalQueries`) once they pass the filters.

What an inbound query leaves behind is bounded whatever its sender asks for (Go keeps
nothing per query in its core): at most ``MAX_INBOUND_QUERIES`` entries, oldest forgotten
first, each answerable for at most ``MAX_INBOUND_QUERY_LIFETIME`` seconds (a sender-chosen
``Timeout`` of 2**62 ns no longer pins an entry and a timer for a century). Entries need no
timers: they leave from the front as they age, or when newer ones push them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from serf.address import Address
from serf.core import io as sio
from serf.core.delivery import Delivery
from serf.core.filters import matches_encoded
from serf.core.intents import Membership
from serf.core.lamport import LamportRing
from serf.core.services import Broadcasts, Services
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
    """Query state and handling for one serf core (see the module comment).
    ``num_nodes`` counts memberlist's members (the default timeout scales with it)."""

    def __init__(
        self,
        services: Services,
        membership: Membership,
        delivery: Delivery,
        broadcasts: Broadcasts,
        num_nodes: Callable[[], int],
        gossip_interval: float,
        tags: Callable[[], dict[str, str]],
    ) -> None:
        self._s = services
        self._membership = membership
        self._delivery = delivery
        self._broadcasts = broadcasts
        self._num_nodes = num_nodes
        self._gossip_interval = gossip_interval
        self._tags = tags
        self._ip = services.advertise.ip_bytes()
        #: internal (``_serf_``) queries that passed the filters go here
        self.internal: Callable[[sio.QueryHandle], None] = lambda q: None
        self.min_time = 0
        self.query_buf: LamportRing[int] = LamportRing(services.config.query_buffer)
        self.out_queries: dict[int, OutQuery] = {}  # by ltime
        self.in_queries: dict[tuple[int, int], InQuery] = {}

    def default_timeout(self) -> float:
        """Go's ``DefaultQueryTimeout``: gossip interval x mult x ceil(log10(N + 1))."""
        scale = max(1, math.ceil(math.log10(self._num_nodes() + 1)))
        return self._gossip_interval * self._s.config.query_timeout_mult * scale

    def handle_query(self, msg: MessageQuery) -> bool:
        self._s.query_clock.witness(msg.ltime)
        if msg.ltime < self.min_time:
            return False
        cur = self._s.query_clock.time()
        if self.query_buf.too_old(msg.ltime, cur):
            self._s.stats_counters["queries_dropped_old"] += 1
            self._s.log(
                WARN, f"received old query {msg.name} from time {msg.ltime} (current: {cur})"
            )
            return False
        if not self.query_buf.add(msg.ltime, msg.id):
            return False
        self._s.emit(_QUERIES)
        self._s.emit(MetricSample(COUNTER, ("serf", "queries", msg.name), 1.0))
        rebroadcast = not msg.flags & QUERY_FLAG_NO_BROADCAST
        if not matches_encoded(
            msg.filters, self._s.codec.decode_filter, self._s.name, self._tags()
        ):
            return rebroadcast
        addr = bytes(msg.addr or b"")
        if msg.flags & QUERY_FLAG_ACK:
            ack = MessageQueryResponse(msg.ltime, msg.id, self._s.name, QUERY_FLAG_ACK, None)
            raw = self._s.codec.encode(ack)
            self.send_response(addr, msg.port, msg.source_node, raw, msg.relay_factor)
        now = self._s.now
        deadline = now + min(max(msg.timeout, 0) / 1e9, MAX_INBOUND_QUERY_LIFETIME)
        self._delivery.query(msg.ltime)
        self._keep_in_query(
            (msg.ltime, msg.id),
            InQuery(addr, msg.port, msg.relay_factor, deadline, msg.source_node,
                    now + MAX_INBOUND_QUERY_LIFETIME),
        )  # fmt: skip
        handle = sio.QueryHandle(
            msg.ltime, msg.id, msg.name, bytes(msg.payload or b""), msg.source_node, deadline
        )
        if msg.name.startswith(INTERNAL_QUERY_PREFIX):
            self.internal(handle)
        else:
            self._s.emit(sio.QueryReceived(handle))
        return rebroadcast

    def _keep_in_query(self, key: tuple[int, int], query: InQuery) -> None:
        """Remember an inbound query for ``respond``, within the count and lifetime bounds."""
        kept = self.in_queries
        now = self._s.now
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
        try:
            dest = Address.from_ip(addr, port)
        except ValueError as exc:
            return f"bad query source address: {exc}"
        self._s.send(dest, raw)
        return self.relay(addr, port, source, raw, relay_factor)

    def relay(self, addr: bytes, port: int, source: str, raw: bytes, factor: int) -> str | None:
        if factor <= 0 or len(self._membership) < factor + 1:
            return None
        relay = self._s.codec.encode(MessageRelay(UDPAddr(addr, port, ""), source, raw))
        limit = self._s.config.query_response_size_limit
        if len(relay) > limit:
            return f"relayed response exceeds limit of {limit} bytes"
        candidates = [
            m
            for m in self._membership.members.values()
            if m.status is sio.MemberStatus.ALIVE
            and m.name != self._s.name
            and len(m.vsn) >= 2
            and m.vsn[1] >= 5
        ]
        chosen: dict[str, MemberRecord] = {}
        for _ in range(3 * factor):
            if len(chosen) >= factor or not candidates:
                break
            m = candidates[self._s.rng.randrange(len(candidates))]
            chosen[m.name] = m
        for m in chosen.values():
            self._s.send(Address.from_ip(m.addr, m.port), relay)
        return None

    def handle_query_response(self, msg: MessageQueryResponse) -> None:
        q = self.out_queries.get(msg.ltime)
        if q is None:
            self._s.log(
                WARN,
                f"reply for non-running query (LTime: {msg.ltime}, ID: {msg.id}) From: {msg.from_}",
            )
            return
        if q.id != msg.id:
            self._s.log(WARN, f"query reply ID mismatch (Local: {q.id}, Response: {msg.id})")
            return
        if q.finished:
            return
        if msg.flags & QUERY_FLAG_ACK:
            if msg.from_ in q.acks:
                self._s.emit(_DUPLICATE_ACKS)
                return
            self._s.emit(_ACKS)
            q.acks.add(msg.from_)
            if q.request_ack and q.request_id >= 0:
                self._s.emit(sio.QueryAckReceived(q.request_id, msg.from_))
            return
        if msg.from_ in q.responses:
            self._s.emit(_DUPLICATE_RESPONSES)
            return
        self._s.emit(_RESPONSES)
        q.responses.add(msg.from_)
        payload = bytes(msg.payload or b"")
        if q.on_response is not None:
            q.on_response(q, msg.from_, payload)
        else:
            self._s.emit(sio.QueryResponseReceived(q.request_id, msg.from_, payload))

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
        if self._s.config.protocol_version < 4:
            return None, "Feature not supported"
        if self._s.serf_state is SerfState.SHUTDOWN:
            return None, "Serf is shut down"
        if timeout <= 0:
            timeout = self.default_timeout()
        filters: list[bytes] = []
        if filter_nodes:
            filters.append(self._s.codec.encode_filter(FilterNode(list(filter_nodes))))
        for tag, expr in filter_tags:
            filters.append(self._s.codec.encode_filter(FilterTag(tag, expr)))
        ltime = self._s.query_clock.time()
        qid = self._s.rng.getrandbits(31)
        msg = MessageQuery(
            ltime,
            qid,
            self._ip,
            self._s.advertise.port,
            self._s.name,
            filters or None,
            QUERY_FLAG_ACK if request_ack else 0,
            relay_factor,
            round(timeout * 1e9),
            name,
            payload,
        )
        raw = self._s.codec.encode(msg)
        if len(raw) > self._s.config.query_size_limit:
            return None, f"query exceeds limit of {self._s.config.query_size_limit} bytes"
        q = OutQuery(request_id, ltime, qid, self._s.now + timeout, request_ack)
        q.on_response = on_response
        q.on_finish = on_finish
        old = self.out_queries.get(ltime)
        if old is not None:
            self.finish_query(old)
        self.out_queries[ltime] = q
        q.token = self._s.after(timeout, lambda: self.finish_query(q))
        self.handle_query(msg)  # processed locally first; witnesses (advances) the clock
        self._broadcasts.queries.queue_broadcast(raw, unique=True)
        return q, None

    def finish_query(self, q: OutQuery) -> None:
        if q.finished:
            return
        q.finished = True
        self._s.cancel(q.token)
        if self.out_queries.get(q.ltime) is q:
            del self.out_queries[q.ltime]
        if q.on_finish is not None:
            q.on_finish()
        elif q.request_id >= 0:
            self._s.emit(sio.QueryFinished(q.request_id))

    def query(self, req: sio.QueryRequest) -> None:
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
        self._s.emit(mio.RequestCompleted(req.request_id, result=result, error=err))

    def respond(self, ltime: int, qid: int, payload: bytes) -> str | None:
        st = self.in_queries.get((ltime, qid))
        if st is None:
            return "Response is past the deadline"
        if st.responded:
            return "Response already sent"
        if self._s.now > st.deadline:
            return "Response is past the deadline"
        resp = MessageQueryResponse(ltime, qid, self._s.name, 0, payload)
        raw = self._s.codec.encode(resp)
        limit = self._s.config.query_response_size_limit
        if len(raw) > limit:
            return f"response exceeds limit of {limit} bytes"
        err = self.send_response(st.addr, st.port, st.source, raw, st.relay_factor)
        if err is None:
            st.responded = True
        return err
