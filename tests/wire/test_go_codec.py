"""The go codec on both twins: golden bytes, round trips, lenient decoding, fuzzing, and
differential checks (identical bytes, results and exception classes) between the twins.

Every test takes the ``go`` fixture, parametrised over ``serf._speedups.twins("go")`` (the
compiled twin is absent under SERF_NO_EXTENSIONS=1; the differential tests are then skipped).
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.testing import strategies as ws
from serf.wire import DecodeError, EncodeError, get_codec
from serf.wire import messages as m

TWINS = _speedups.twins("go")
PURE: Any = TWINS["pure"].GoCodec()
COMPILED: Any = TWINS["compiled"].GoCodec() if "compiled" in TWINS else None
needs_both = pytest.mark.skipif(COMPILED is None, reason="compiled go twin not built")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=sorted(TWINS), ids=lambda name: f"go-{name}")
def go(request: pytest.FixtureRequest) -> Any:
    return TWINS[request.param].GoCodec()


def test_registry_returns_the_active_go_twin() -> None:
    codec = get_codec("go")
    assert codec.name == "go"
    assert get_codec(codec) is codec
    assert type(codec).__module__ == _speedups.load("go").__name__
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("nope")


# -- golden bytes written out in reference sections 2.3, 3.5 and 3.11 ---------------------


def test_ping_example(go: Any) -> None:
    assert go.encode(m.Ping(seq_no=1, node="b")).hex() == "0082a44e6f6465a162a55365714e6f01"


def test_alive_example(go: Any) -> None:
    alive = m.Alive(1, "a", bytes([127, 0, 0, 1]), 7946, None, bytes([1, 5, 2, 2, 5, 5]))
    expected = (
        "04 86 a4 41646472 a4 7f000001 ab 496e6361726e6174696f6e 01 a4 4d657461 c0"
        " a4 4e6f6465 a1 61 a4 506f7274 cd 1f0a a3 56736e a6 010502020505"
    )
    assert go.encode(alive) == bytes.fromhex(expected)


def test_query_timeout_is_signed_nanoseconds(go: Any) -> None:
    q = m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, 5_000_000_000, "x", None)
    assert bytes.fromhex("a754696d656f7574d3000000012a05f200") in go.encode(q)


def test_signed_int_above_127_uses_int16(go: Any) -> None:
    relay = m.MessageRelay(m.UDPAddr(b"\x7f\x00\x00\x01", 7946, ""), "n", b"\x05\x80")
    assert bytes.fromhex("a4506f7274d11f0a") in go.encode(relay)
    header = go.encode(m.PushPull(False, [], b"x" * 200))
    assert b"\xacUserStateLen\xd1\x00\xc8" in header


def test_query_ack_and_empty_filters(go: Any) -> None:
    ack = m.MessageQueryResponse(ltime=3, id=9, from_="a", flags=1, payload=None)
    body = msgpack.unpackb(go.encode(ack)[1:], raw=True)
    assert body[b"Payload"] is None and body[b"Flags"] == 1
    q = m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, 0, "x", None)
    assert b"\xa7Filters\xc0" in go.encode(q)


def test_list_keys_request_payload(go: Any) -> None:
    assert go.encode(m.MessageKeyRequest(key=b"")) == bytes.fromhex("0781a34b6579a0")


def test_fresh_coordinate_layout(go: Any) -> None:
    encoded = go.encode_coordinate(m.Coordinate())
    assert encoded.startswith(b"\x84\xaaAdjustment\xcb")
    assert b"\xa3Vec\x98" + b"\xcb" + b"\x00" * 8 in encoded
    assert go.decode_coordinate(encoded) == m.Coordinate()


def test_tags_meta(go: Any) -> None:
    assert go.encode_tags({}) == b"\xff\x80"
    assert go.decode_tags(go.encode_tags({"role": "web", "dc": "x"})) == {"role": "web", "dc": "x"}
    assert go.decode_tags(b"db") == {"role": "db"}
    assert go.decode_tags(b"") == {"role": ""}


def test_filters(go: Any) -> None:
    node = m.FilterNode(["a", "b"])
    assert go.encode_filter(node) == b"\x00\x92\xa1a\xa1b"
    tag = m.FilterTag(tag="role", expr="^web")
    assert go.encode_filter(tag) == b"\x01\x82\xa4Expr\xa4^web\xa3Tag\xa4role"
    assert go.decode_filter(go.encode_filter(node)) == node
    assert go.decode_filter(go.encode_filter(tag)) == tag


def test_push_pull_stream_body(go: Any) -> None:
    state = m.PushNodeState(
        "a", b"\x7f\x00\x00\x01", 7946, b"\xff\x80", 1, 0, b"\x01\x05\x02\x02\x05\x05"
    )
    msg = m.PushPull(join=True, states=[state, state], user_state=b"\x02xyz")
    encoded = go.encode(msg)
    assert encoded[0] == 6
    assert encoded.endswith(b"\x02xyz")
    assert go.decode(encoded) == msg
    with pytest.raises(DecodeError, match="truncated"):
        go.decode(encoded[:-1])


@pytest.mark.parametrize("filled", [(), (0,), (3, 511), tuple(range(512))])
def test_serf_push_pull_event_slots(go: Any, filled: tuple[int, ...]) -> None:
    # serf's 512 user event slots, nil but for ``filled`` (all nil until a user event): the
    # same bytes as msgpack writes for the same values, and back
    slots: list[m.UserEvents | None] = [None] * 512
    for i in filled:
        slots[i] = m.UserEvents(i, [m.UserEvent("e", b"p")])
    msg = m.MessagePushPull(3, {"a": 1}, [], 2, slots, 1)
    raw = go.encode(msg)
    body = msgpack.unpackb(raw[1:], raw=True)
    want = [
        None if s is None else {b"LTime": s.ltime, b"Events": [{b"Name": b"e", b"Payload": b"p"}]}
        for s in slots
    ]
    assert body[b"Events"] == want
    assert raw.count(msgpack.packb(None)) >= 512 - len(filled)
    assert go.decode_serf(raw) == msg


@FUZZ
@given(slot=ws.user_events)
def test_user_event_slot_encoder_matches_the_generic_rows(slot: m.UserEvents) -> None:
    # USER_EVENTS writes the exact classes out by hand (a full ring is 512 of them per
    # push/pull): the same bytes as the generic _Schema rows, for both twins' push/pull
    pure = TWINS["pure"]
    generic = pure._Schema.encode(pure.USER_EVENTS, slot)
    assert pure.USER_EVENTS.encode(slot) == generic
    msg = m.MessagePushPull(1, {}, [], 2, [slot, None], 3)
    for codec in filter(None, (PURE, COMPILED)):
        assert generic in codec.encode(msg)


def test_user_event_slot_encoder_refuses_as_the_generic_rows() -> None:
    pure = TWINS["pure"]
    for bad in (
        m.UserEvents(-1, []),
        m.UserEvents(1, [m.UserEvent(b"not str", b"")]),  # type: ignore[arg-type]
        m.UserEvents(1, [m.UserEvent("a", 5)]),  # type: ignore[arg-type]
        m.UserEvents(1, [None]),  # type: ignore[list-item]
    ):
        with pytest.raises(EncodeError) as generic:
            pure._Schema.encode(pure.USER_EVENTS, bad)
        with pytest.raises(EncodeError) as written:
            pure.USER_EVENTS.encode(bad)
        assert str(written.value) == str(generic.value)


def test_user_msg_packet_and_stream_forms(go: Any) -> None:
    msg = m.UserMsg(b"\x03hello")
    assert go.encode(msg) == b"\x08\x03hello"
    assert go.decode(b"\x08\x03hello") == msg
    assert go.decode(b"\x08") == m.UserMsg(b"")
    assert type(go.decode(b"\x08\x81\x01").payload) is bytes
    stream = go.encode_stream(msg)
    assert stream == b"\x08\x81\xaaUserMsgLen\x06\x03hello"
    assert go.decode_stream(stream) == msg
    with pytest.raises(DecodeError):
        go.decode_stream(stream[:-1])


# -- nil versus empty, and Go's leniency when decoding ---------------------------------------


def test_nil_and_empty_bytes_differ(go: Any) -> None:
    nil = go.encode(m.AckResp(1, None))
    empty = go.encode(m.AckResp(1, b""))
    assert nil != empty
    assert go.decode(nil) == m.AckResp(1, None)
    assert go.decode(empty) == m.AckResp(1, b"")


def test_decoding_is_lenient_like_go(go: Any) -> None:
    body = {
        "Node": "x",  # new-spec str
        "SeqNo": 7,
        "SourceAddr": [127, 0, 0, 1],  # array of small ints for []byte
        "Unknown": {"nested": [1, 2]},  # skipped
    }
    packed = b"\x00" + msgpack.packb(body, use_bin_type=True)
    assert go.decode(packed) == m.Ping(7, "x", b"\x7f\x00\x00\x01")
    # bin for a string field, uint64-width encoding of a small number
    packed = b"\x0b" + b"\x81\xa5SeqNo\xcf" + (5).to_bytes(8, "big")
    assert go.decode(packed) == m.NackResp(5)
    # missing keys are zero values; nil is the zero value
    assert go.decode(b"\x04\x81\xa4Node\xc0") == m.Alive(0, "", None, 0, None, None)


def test_ipv4_mapped_address_round_trips(go: Any) -> None:
    mapped = b"\x00" * 10 + b"\xff\xff\x7f\x00\x00\x01"
    alive = m.Alive(1, "a", mapped, 7946, None, None)
    assert go.decode(go.encode(alive)).addr == mapped


def test_non_utf8_go_strings_round_trip(go: Any) -> None:
    raw = b"\x03\x82\xa4Node\xa2\xff\xfe\xa4From\xa1a\xabIncarnation\x01"
    decoded = go.decode(raw)
    assert isinstance(decoded, m.Suspect)
    assert decoded.node.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert go.decode(go.encode(decoded)) == decoded


@pytest.mark.parametrize(
    "message",
    [
        m.Ping(2**32, "a"),
        m.Alive(1, "a", None, 70000),
        m.MessageQuery(1, 2, None, 0, "n", None, 0, 256, 0, "x", None),
        m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, 2**63, "x", None),
        m.MessageLeave(-1, "a"),
        m.Ping(1, 5),  # type: ignore[arg-type]
    ],
)
def test_out_of_range_values_raise_encode_error(go: Any, message: m.Message) -> None:
    with pytest.raises(EncodeError):
        go.encode(message)


# -- round trips -----------------------------------------------------------------------------


@given(ws.memberlist_messages)
@settings(max_examples=400, deadline=None)
def test_memberlist_round_trip(go: Any, message: m.MemberlistMessage) -> None:
    encoded = go.encode(message)
    assert go.decode(encoded) == message
    assert go.encode(go.decode(encoded)) == encoded
    assert go.decode_stream(go.encode_stream(message)) == message


@given(ws.serf_messages)
@settings(max_examples=400, deadline=None)
def test_serf_round_trip(go: Any, message: m.SerfMessage) -> None:
    encoded = go.encode(message)
    assert go.decode_serf(encoded) == message
    assert go.encode(go.decode_serf(encoded)) == encoded


@given(ws.filters)
def test_filter_round_trip(go: Any, flt: m.Filter) -> None:
    assert go.decode_filter(go.encode_filter(flt)) == flt


@given(ws.coordinates)
def test_coordinate_round_trip(go: Any, coord: m.Coordinate) -> None:
    assert go.decode_coordinate(go.encode_coordinate(coord)) == coord


@given(ws.tags)
def test_tags_round_trip(go: Any, tags: dict[str, str]) -> None:
    assert go.decode_tags(go.encode_tags(tags)) == tags


# -- hostile input: only DecodeError escapes -------------------------------------------------


def _decoders(codec: Any) -> list[Any]:
    return [
        codec.decode,
        codec.decode_stream,
        codec.decode_serf,
        codec.decode_filter,
        codec.decode_tags,
        codec.decode_coordinate,
    ]


@given(st.binary(max_size=200))
@FUZZ
def test_random_bytes_only_raise_decode_error(go: Any, data: bytes) -> None:
    for decode in _decoders(go):
        try:
            decode(data)
        except DecodeError:
            pass


@given(ws.any_message, st.data())
@FUZZ
def test_mutated_messages_only_raise_decode_error(
    go: Any, message: m.Message, data: st.DataObject
) -> None:
    encoded = bytearray(go.encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(encoded) - 1, 0)))
        if op == "flip" and encoded:
            encoded[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            encoded.insert(pos, data.draw(st.integers(0, 255)))
        elif op == "delete" and encoded:
            del encoded[pos]
        else:
            del encoded[pos:]
    for decode in _decoders(go):
        try:
            decode(bytes(encoded))
        except DecodeError:
            pass


@pytest.mark.parametrize(
    "hostile",
    [
        b"\x04\xdf\xff\xff\xff\xff",  # map of 4 billion entries in 6 bytes
        b"\x04\x81\xa4Node\xdb\xff\xff\xff\xff",  # raw32 far past the buffer
        b"\x06\x83\xa4Join\xc2\xa5Nodes\xd3\x7f\xff\xff\xff\xff\xff\xff\xff\xacUserStateLen\x00",
        b"\x06\x83\xa4Join\xc2\xa5Nodes\x05\xacUserStateLen\xd2\x7f\xff\xff\xff",
        b"\x04" + b"\x91" * 5000,  # nesting far deeper than any message
        b"\x09\x81\xa3Buf\xc7\x01\x05x",  # ext type in a bytes field
        b"\x05\x81\xabIncarnation\xff",  # negative into uint32
        b"\x00\x81\xa5SeqNo\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # overflows uint32
    ],
)
def test_hostile_inputs_rejected(go: Any, hostile: bytes) -> None:
    with pytest.raises(DecodeError):
        go.decode(hostile)


# -- the twins agree: same bytes, same messages, same exception classes ---------------------


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # the class and message are what we compare
        return "raised", (type(exc), str(exc))


@needs_both
@given(ws.any_message)
@settings(max_examples=300, deadline=None)
def test_twins_write_identical_bytes(message: m.Message) -> None:
    assert _outcome(COMPILED.encode, message) == _outcome(PURE.encode, message)
    assert _outcome(COMPILED.encode_stream, message) == _outcome(PURE.encode_stream, message)


@needs_both
@pytest.mark.parametrize(
    "message",
    [
        m.Ping(2**32, "a"),
        m.Ping(-1, "a"),
        m.Ping(True, "a"),  # type: ignore[arg-type]
        m.Ping(1, b"a"),  # type: ignore[arg-type]
        m.Alive(1, "a", "addr", 7946),  # type: ignore[arg-type]
        m.Alive(1, "a", bytearray(b"ab"), 7946, memoryview(b"m")),  # type: ignore[arg-type]
        m.Alive(2**64, "a", None, 1),
        m.Alive(1, "\udcff\u00e9", None, 1),
        m.MessageLeave(2**64, "a"),
        m.MessageLeave(2**64 - 1, "a", 1),  # type: ignore[arg-type]
        m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, -(2**63) - 1, "x", None),
        m.PushPull(True, [m.Alive(1, "a", None, 1)], b""),  # type: ignore[list-item]
        m.PushPull(True, [], None),  # type: ignore[arg-type]
        m.PushPull(1, [], b""),  # type: ignore[arg-type]
    ],
)
def test_twins_raise_alike_on_bad_values(message: m.Message) -> None:
    assert _outcome(COMPILED.encode, message) == _outcome(PURE.encode, message)


# Go's keys, a few unknown ones, and values of every msgpack kind: the lenient forms a peer
# might send (and a lot of nonsense) in any order.
_GO_KEYS = [
    "Incarnation", "Node", "Addr", "Port", "Meta", "Vsn", "From", "SeqNo", "SourceAddr",
    "SourceNode", "SourcePort", "Payload", "Target", "Nack", "Error", "Algo", "Buf", "LTime",
    "Prune", "Name", "CC", "ID", "Flags", "Key", "Unknown", "",
]  # fmt: skip
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-40, 300),
    st.floats(allow_nan=False, width=32),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.binary(max_size=40),
    st.lists(st.integers(0, 300), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
)
_BODIES = st.dictionaries(st.sampled_from(_GO_KEYS), _VALUES, max_size=8)
_STATE_KEYS = ["Name", "Addr", "Port", "Meta", "Incarnation", "State", "Vsn", "Extra"]
_STATES = st.dictionaries(st.sampled_from(_STATE_KEYS), _VALUES, max_size=8)


@st.composite
def lenient_wire(draw: st.DrawFn) -> bytes:
    """A message body in any form msgpack can write, under any type byte."""
    bin_type = draw(st.booleans())
    kind = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]))
    if kind == 6 and draw(st.booleans()):
        states = draw(st.lists(st.one_of(st.none(), _STATES), max_size=4))
        user = draw(st.binary(max_size=8))
        header = {"Join": draw(st.booleans()), "Nodes": len(states), "UserStateLen": len(user)}
        if draw(st.booleans()):
            header["Nodes"] = draw(st.integers(-2, 6))
        body = msgpack.packb(header, use_bin_type=bin_type)
        body += b"".join(msgpack.packb(s, use_bin_type=bin_type) for s in states) + user
    else:
        body = msgpack.packb(draw(_BODIES), use_bin_type=bin_type)
    raw = bytes([kind]) + body
    cut = draw(st.integers(0, len(raw)))
    return raw if draw(st.booleans()) else raw[:cut]


@needs_both
@given(lenient_wire())
@settings(max_examples=1500, deadline=None)
@pytest.mark.slow
def test_twins_decode_lenient_and_broken_input_alike(raw: bytes) -> None:
    for name in ("decode", "decode_stream", "decode_serf"):
        pure = _outcome(getattr(PURE, name), raw)
        compiled = _outcome(getattr(COMPILED, name), raw)
        assert compiled == pure, name


@needs_both
@given(ws.any_message, st.data())
@settings(max_examples=400, deadline=None)
@pytest.mark.slow
def test_twins_decode_mutated_messages_alike(message: m.Message, data: st.DataObject) -> None:
    encoded = bytearray(PURE.encode(message))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, max(len(encoded) - 1, 0)))
        if encoded and data.draw(st.booleans()):
            encoded[pos] = data.draw(st.integers(0, 255))
        else:
            del encoded[pos:]
    raw = bytes(encoded)
    for name in ("decode", "decode_stream", "decode_serf"):
        assert _outcome(getattr(COMPILED, name), raw) == _outcome(getattr(PURE, name), raw), name
