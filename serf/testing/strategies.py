"""Hypothesis strategies for every wire message (needs the ``test`` extra: hypothesis).

The values stay inside what each Go field can hold (uint32 fields < 2**32, Go ``int`` fields
within int64, and so on) so that every generated message can be encoded by every codec.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from serf.wire import messages as m

__all__ = [
    "memberlist_messages",
    "serf_messages",
    "any_message",
    "filters",
    "coordinates",
    "tags",
    "node_states",
    "MEMBERLIST_STRATEGIES",
    "SERF_STRATEGIES",
]

U8 = st.integers(0, 2**8 - 1)
U16 = st.integers(0, 2**16 - 1)
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)

#: Go strings: mostly text, sometimes long, occasionally non-UTF-8 bytes (kept as surrogates).
text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=30, max_size=300),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
blob = st.binary(max_size=300)
opt_blob = st.none() | blob
ip = st.one_of(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=4, max_size=4).map(lambda b: b"\x00" * 10 + b"\xff\xff" + b),
)
opt_ip = st.none() | ip
vsn = st.none() | st.binary(min_size=6, max_size=6)
tags = st.dictionaries(st.text(max_size=20), st.text(max_size=30), max_size=6)
finite = st.floats(allow_nan=False, allow_infinity=False)


def _b(cls: type, **kw: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, **kw)


node_states = _b(
    m.PushNodeState,
    name=text,
    addr=opt_ip,
    port=U16,
    meta=opt_blob,
    incarnation=U32,
    state=st.integers(0, 3),
    vsn=vsn,
)

MEMBERLIST_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    m.Ping: _b(
        m.Ping,
        seq_no=U32,
        node=text,
        source_addr=st.just(b"") | ip,
        source_node=text,
        source_port=U16,
    ),
    m.IndirectPingReq: _b(
        m.IndirectPingReq,
        seq_no=U32,
        target=opt_ip,
        port=U16,
        node=text,
        nack=st.booleans(),
        source_addr=st.just(b"") | ip,
        source_node=text,
        source_port=U16,
    ),
    m.AckResp: _b(m.AckResp, seq_no=U32, payload=opt_blob),
    m.NackResp: _b(m.NackResp, seq_no=U32),
    m.ErrResp: _b(m.ErrResp, error=text),
    m.Suspect: _b(m.Suspect, incarnation=U32, node=text, from_=text),
    m.Alive: _b(m.Alive, incarnation=U32, node=text, addr=opt_ip, port=U16, meta=opt_blob, vsn=vsn),
    m.Dead: _b(m.Dead, incarnation=U32, node=text, from_=text),
    m.PushPull: _b(
        m.PushPull,
        join=st.booleans(),
        states=st.lists(node_states, max_size=8),
        user_state=blob,
    ),
    m.UserMsg: _b(m.UserMsg, payload=blob),
    m.Compress: _b(m.Compress, algo=U8, buf=opt_blob),
}

user_events = _b(
    m.UserEvents,
    ltime=U64,
    events=st.none() | st.lists(_b(m.UserEvent, name=text, payload=opt_blob), max_size=3),
)
members = _b(
    m.Member,
    name=text,
    addr=opt_ip,
    port=U16,
    tags=st.none() | tags,
    status=st.integers(-(2**31), 2**31 - 1),
    protocol_min=U8,
    protocol_max=U8,
    protocol_cur=U8,
    delegate_min=U8,
    delegate_max=U8,
    delegate_cur=U8,
)

SERF_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    m.MessageLeave: _b(m.MessageLeave, ltime=U64, node=text, prune=st.booleans()),
    m.MessageJoin: _b(m.MessageJoin, ltime=U64, node=text),
    m.MessagePushPull: _b(
        m.MessagePushPull,
        ltime=U64,
        status_ltimes=st.none() | st.dictionaries(st.text(max_size=20), U64, max_size=5),
        left_members=st.none() | st.lists(text, max_size=5),
        event_ltime=U64,
        events=st.none() | st.lists(st.none() | user_events, max_size=6),
        query_ltime=U64,
    ),
    m.MessageUserEvent: _b(
        m.MessageUserEvent, ltime=U64, name=text, payload=opt_blob, cc=st.booleans()
    ),
    m.MessageQuery: _b(
        m.MessageQuery,
        ltime=U64,
        id=U32,
        addr=opt_ip,
        port=U16,
        source_node=text,
        filters=st.none() | st.lists(blob, max_size=3),
        flags=U32,
        relay_factor=U8,
        timeout=I64,
        name=text,
        payload=opt_blob,
    ),
    m.MessageQueryResponse: _b(
        m.MessageQueryResponse, ltime=U64, id=U32, from_=text, flags=U32, payload=opt_blob
    ),
    m.MessageConflictResponse: _b(m.MessageConflictResponse, member=st.none() | members),
    m.MessageKeyRequest: _b(m.MessageKeyRequest, key=opt_blob),
    m.MessageKeyResponse: _b(
        m.MessageKeyResponse,
        result=st.booleans(),
        message=text,
        keys=st.none() | st.lists(text, max_size=4),
        primary_key=text,
    ),
    m.MessageRelay: _b(
        m.MessageRelay,
        dest_addr=_b(m.UDPAddr, ip=opt_ip, port=st.integers(-(2**31), 2**31 - 1), zone=text),
        dest_name=text,
        payload=st.binary(min_size=1, max_size=200),
    ),
}

memberlist_messages: st.SearchStrategy[Any] = st.one_of(*MEMBERLIST_STRATEGIES.values())
serf_messages: st.SearchStrategy[Any] = st.one_of(*SERF_STRATEGIES.values())
any_message: st.SearchStrategy[Any] = memberlist_messages | serf_messages
filters: st.SearchStrategy[Any] = st.one_of(
    _b(m.FilterNode, nodes=st.none() | st.lists(text, max_size=5)),
    _b(m.FilterTag, tag=text, expr=text),
)
coordinates: st.SearchStrategy[Any] = _b(
    m.Coordinate,
    vec=st.none() | st.lists(finite, min_size=0, max_size=8),
    error=finite,
    adjustment=finite,
    height=finite,
)
