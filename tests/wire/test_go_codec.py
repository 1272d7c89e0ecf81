"""The go codec: golden bytes from the reference, round trips, lenient decoding, fuzzing."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serf.testing import strategies as ws
from serf.wire import DecodeError, EncodeError, get_codec
from serf.wire import messages as m

GO = get_codec("go")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_registry_returns_go_codec() -> None:
    assert GO.name == "go"
    assert get_codec(GO) is GO
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("nope")


# -- golden bytes written out in reference sections 2.3, 3.5 and 3.11 ---------------------


def test_ping_example() -> None:
    assert GO.encode(m.Ping(seq_no=1, node="b")).hex() == "0082a44e6f6465a162a55365714e6f01"


def test_alive_example() -> None:
    alive = m.Alive(1, "a", bytes([127, 0, 0, 1]), 7946, None, bytes([1, 5, 2, 2, 5, 5]))
    expected = (
        "04 86 a4 41646472 a4 7f000001 ab 496e6361726e6174696f6e 01 a4 4d657461 c0"
        " a4 4e6f6465 a1 61 a4 506f7274 cd 1f0a a3 56736e a6 010502020505"
    )
    assert GO.encode(alive) == bytes.fromhex(expected)


def test_query_timeout_is_signed_nanoseconds() -> None:
    q = m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, 5_000_000_000, "x", None)
    assert bytes.fromhex("a754696d656f7574d3000000012a05f200") in GO.encode(q)


def test_signed_int_above_127_uses_int16() -> None:
    relay = m.MessageRelay(m.UDPAddr(b"\x7f\x00\x00\x01", 7946, ""), "n", b"\x05\x80")
    assert bytes.fromhex("a4506f7274d11f0a") in GO.encode(relay)
    header = GO.encode(m.PushPull(False, [], b"x" * 200))
    assert b"\xacUserStateLen\xd1\x00\xc8" in header


def test_query_ack_and_empty_filters() -> None:
    ack = m.MessageQueryResponse(ltime=3, id=9, from_="a", flags=1, payload=None)
    body = msgpack.unpackb(GO.encode(ack)[1:], raw=True)
    assert body[b"Payload"] is None and body[b"Flags"] == 1
    q = m.MessageQuery(1, 2, None, 0, "n", None, 0, 0, 0, "x", None)
    assert b"\xa7Filters\xc0" in GO.encode(q)


def test_list_keys_request_payload() -> None:
    assert GO.encode(m.MessageKeyRequest(key=b"")) == bytes.fromhex("0781a34b6579a0")


def test_fresh_coordinate_layout() -> None:
    encoded = GO.encode_coordinate(m.Coordinate())
    assert encoded.startswith(b"\x84\xaaAdjustment\xcb")
    assert b"\xa3Vec\x98" + b"\xcb" + b"\x00" * 8 in encoded
    assert GO.decode_coordinate(encoded) == m.Coordinate()


def test_tags_meta() -> None:
    assert GO.encode_tags({}) == b"\xff\x80"
    assert GO.decode_tags(GO.encode_tags({"role": "web", "dc": "x"})) == {"role": "web", "dc": "x"}
    assert GO.decode_tags(b"db") == {"role": "db"}
    assert GO.decode_tags(b"") == {"role": ""}


def test_filters() -> None:
    node = m.FilterNode(["a", "b"])
    assert GO.encode_filter(node) == b"\x00\x92\xa1a\xa1b"
    tag = m.FilterTag(tag="role", expr="^web")
    assert GO.encode_filter(tag) == b"\x01\x82\xa4Expr\xa4^web\xa3Tag\xa4role"
    assert GO.decode_filter(GO.encode_filter(node)) == node
    assert GO.decode_filter(GO.encode_filter(tag)) == tag


def test_push_pull_stream_body() -> None:
    state = m.PushNodeState(
        "a", b"\x7f\x00\x00\x01", 7946, b"\xff\x80", 1, 0, b"\x01\x05\x02\x02\x05\x05"
    )
    msg = m.PushPull(join=True, states=[state, state], user_state=b"\x02xyz")
    encoded = GO.encode(msg)
    assert encoded[0] == 6
    assert encoded.endswith(b"\x02xyz")
    assert GO.decode(encoded) == msg
    with pytest.raises(DecodeError, match="truncated"):
        GO.decode(encoded[:-1])


def test_user_msg_packet_and_stream_forms() -> None:
    msg = m.UserMsg(b"\x03hello")
    assert GO.encode(msg) == b"\x08\x03hello"
    assert GO.decode(b"\x08\x03hello") == msg
    stream = GO.encode_stream(msg)
    assert stream == b"\x08\x81\xaaUserMsgLen\x06\x03hello"
    assert GO.decode_stream(stream) == msg
    with pytest.raises(DecodeError):
        GO.decode_stream(stream[:-1])


# -- nil versus empty, and Go's leniency when decoding ---------------------------------------


def test_nil_and_empty_bytes_differ() -> None:
    nil = GO.encode(m.AckResp(1, None))
    empty = GO.encode(m.AckResp(1, b""))
    assert nil != empty
    assert GO.decode(nil) == m.AckResp(1, None)
    assert GO.decode(empty) == m.AckResp(1, b"")


def test_decoding_is_lenient_like_go() -> None:
    body = {
        "Node": "x",  # new-spec str
        "SeqNo": 7,
        "SourceAddr": [127, 0, 0, 1],  # array of small ints for []byte
        "Unknown": {"nested": [1, 2]},  # skipped
    }
    packed = b"\x00" + msgpack.packb(body, use_bin_type=True)
    assert GO.decode(packed) == m.Ping(7, "x", b"\x7f\x00\x00\x01")
    # bin for a string field, uint64-width encoding of a small number
    packed = b"\x0b" + b"\x81\xa5SeqNo\xcf" + (5).to_bytes(8, "big")
    assert GO.decode(packed) == m.NackResp(5)
    # missing keys are zero values; nil is the zero value
    assert GO.decode(b"\x04\x81\xa4Node\xc0") == m.Alive(0, "", None, 0, None, None)


def test_ipv4_mapped_address_round_trips() -> None:
    mapped = b"\x00" * 10 + b"\xff\xff\x7f\x00\x00\x01"
    alive = m.Alive(1, "a", mapped, 7946, None, None)
    assert GO.decode(GO.encode(alive)).addr == mapped


def test_non_utf8_go_strings_round_trip() -> None:
    raw = b"\x03\x82\xa4Node\xa2\xff\xfe\xa4From\xa1a\xabIncarnation\x01"
    decoded = GO.decode(raw)
    assert isinstance(decoded, m.Suspect)
    assert decoded.node.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert GO.decode(GO.encode(decoded)) == decoded


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
def test_out_of_range_values_raise_encode_error(message: m.Message) -> None:
    with pytest.raises(EncodeError):
        GO.encode(message)


# -- round trips -----------------------------------------------------------------------------


@given(ws.memberlist_messages)
@settings(max_examples=400, deadline=None)
def test_memberlist_round_trip(message: m.MemberlistMessage) -> None:
    encoded = GO.encode(message)
    assert GO.decode(encoded) == message
    assert GO.encode(GO.decode(encoded)) == encoded
    assert GO.decode_stream(GO.encode_stream(message)) == message


@given(ws.serf_messages)
@settings(max_examples=400, deadline=None)
def test_serf_round_trip(message: m.SerfMessage) -> None:
    encoded = GO.encode(message)
    assert GO.decode_serf(encoded) == message
    assert GO.encode(GO.decode_serf(encoded)) == encoded


@given(ws.filters)
def test_filter_round_trip(flt: m.Filter) -> None:
    assert GO.decode_filter(GO.encode_filter(flt)) == flt


@given(ws.coordinates)
def test_coordinate_round_trip(coord: m.Coordinate) -> None:
    assert GO.decode_coordinate(GO.encode_coordinate(coord)) == coord


@given(ws.tags)
def test_tags_round_trip(tags: dict[str, str]) -> None:
    assert GO.decode_tags(GO.encode_tags(tags)) == tags


# -- hostile input: only DecodeError escapes -------------------------------------------------

DECODERS = [
    GO.decode,
    GO.decode_stream,
    GO.decode_serf,
    GO.decode_filter,
    GO.decode_tags,
    GO.decode_coordinate,
]


@given(st.binary(max_size=200))
@FUZZ
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except DecodeError:
            pass


@given(ws.any_message, st.data())
@FUZZ
def test_mutated_messages_only_raise_decode_error(message: m.Message, data: st.DataObject) -> None:
    encoded = bytearray(GO.encode(message))
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
    for decode in DECODERS:
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
def test_hostile_inputs_rejected(hostile: bytes) -> None:
    with pytest.raises(DecodeError):
        GO.decode(hostile)
