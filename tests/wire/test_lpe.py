"""The lpe codec, on both twins: round trips, byte layout, hostile input, differential checks.

Every test takes the ``lpe`` fixture, parametrised over ``serf._speedups.twins("lpe")`` (the
compiled twin is absent under SERF_NO_EXTENSIONS=1). The differential tests compare the two
twins directly and are skipped when only the pure twin is importable.
"""

from __future__ import annotations

import dataclasses
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.testing import strategies as S
from serf.wire import DecodeError, EncodeError
from serf.wire import messages as m
from serf.wire.codec import Codec

TWINS = _speedups.twins("lpe")
PURE: ModuleType = TWINS["pure"]
COMPILED: ModuleType | None = TWINS.get("compiled")
needs_both = pytest.mark.skipif(COMPILED is None, reason="compiled lpe twin not built")

FEW = settings(max_examples=60)
MANY = settings(max_examples=200)


@pytest.fixture(scope="module", params=sorted(TWINS), ids=lambda name: f"lpe-{name}")
def lpe(request: pytest.FixtureRequest) -> ModuleType:
    return TWINS[request.param]


# ---------------------------------------------------------------------------------------------
# Helpers: an independent writer of the documented layout (docs/wire.md, section "lpe")
# ---------------------------------------------------------------------------------------------


def uv(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def s(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return uv(len(raw)) + raw


def ob(raw: bytes | None) -> bytes:
    return b"\x00" if raw is None else uv(len(raw) + 1) + raw


def msg(type_byte: int, body: bytes, version: int = 1) -> bytes:
    return bytes([type_byte, version]) + uv(len(body)) + body


def rec(body: bytes) -> bytes:
    return uv(len(body)) + body


def decoder_for(lpe: ModuleType, message: Any) -> Any:
    return lpe.decode_serf if type(message) in m.SERF_TYPES else lpe.decode


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc))


SAMPLES: dict[type, Any] = {
    m.Ping: m.Ping(1, "b", b"\x7f\x00\x00\x01", "a", 7946),
    m.IndirectPingReq: m.IndirectPingReq(2, b"\x0a\x00\x00\x02", 7946, "c", True, b"", "", 0),
    m.AckResp: m.AckResp(3, b"\x01coord"),
    m.NackResp: m.NackResp(4),
    m.ErrResp: m.ErrResp("boom"),
    m.Suspect: m.Suspect(5, "n", "f"),
    m.Alive: m.Alive(
        6, "n", b"\x7f\x00\x00\x01", 7946, b"\xfe\x01\x01\x00", b"\x01\x05\x02\x02\x05\x04"
    ),
    m.Dead: m.Dead(7, "n", "n"),
    m.PushPull: m.PushPull(
        True,
        [
            m.PushNodeState("a", b"\x01\x02\x03\x04", 1, None, 9, 0, b"\x01\x05\x02\x02\x05\x04"),
            m.PushNodeState("b", None, 65535, b"", 2**32 - 1, 3, None),
        ],
        b"\x02state",
    ),
    m.UserMsg: m.UserMsg(b"\x03hello"),
    m.Compress: m.Compress(0, b"lzw"),
    m.MessageLeave: m.MessageLeave(8, "n", True),
    m.MessageJoin: m.MessageJoin(9, "n"),
    m.MessagePushPull: m.MessagePushPull(
        10,
        {"a": 1, "b": 2**64 - 1},
        ["gone"],
        11,
        [None, m.UserEvents(12, [m.UserEvent("deploy", b"v1"), m.UserEvent("x", None)])],
        13,
    ),
    m.MessageUserEvent: m.MessageUserEvent(14, "deploy", b"v2", True),
    m.MessageQuery: m.MessageQuery(
        15, 16, b"\x7f\x00\x00\x01", 7946, "src", [b"\x00f"], 2, 3, 5_000_000_000, "q", None
    ),
    m.MessageQueryResponse: m.MessageQueryResponse(17, 16, "resp", 1, None),
    m.MessageConflictResponse: m.MessageConflictResponse(
        m.Member("n", b"\x7f\x00\x00\x01", 7946, {"role": "web"}, 1, 2, 5, 4, 2, 5, 4)
    ),
    m.MessageKeyRequest: m.MessageKeyRequest(b"k" * 16),
    m.MessageKeyResponse: m.MessageKeyResponse(True, "ok", ["a2V5"], "a2V5"),
    m.MessageRelay: m.MessageRelay(m.UDPAddr(b"\x7f\x00\x00\x01", 7946, ""), "dest", b"\x05xyz"),
}


def test_samples_cover_every_message_type() -> None:
    assert set(SAMPLES) == set(m.MEMBERLIST_TYPES) | set(m.SERF_TYPES)


def test_both_twins_expose_the_same_names() -> None:
    for name in PURE.__all__:
        for twin in TWINS.values():
            assert hasattr(twin, name), (twin.__name__, name)
    for twin in TWINS.values():
        codec = twin.LpeCodec()
        assert codec.name == "lpe"
        assert isinstance(codec, Codec)


def test_keyword_arguments_match_the_codec_protocol(lpe: ModuleType) -> None:
    raw = lpe.encode(message=SAMPLES[m.Alive])
    assert lpe.decode(buffer=raw) == lpe.decode_stream(buffer=raw) == SAMPLES[m.Alive]
    assert (
        lpe.decode_stream(buffer=lpe.encode_stream(message=SAMPLES[m.UserMsg]))
        == (SAMPLES[m.UserMsg])
    )
    assert lpe.decode_serf(buffer=lpe.encode(SAMPLES[m.MessageJoin])) == SAMPLES[m.MessageJoin]
    assert lpe.decode_tags(meta=lpe.encode_tags(tags={"a": "b"})) == {"a": "b"}
    flt = m.FilterTag("t", "x")
    assert lpe.decode_filter(buffer=lpe.encode_filter(flt=flt)) == flt
    coord = m.Coordinate()
    assert lpe.decode_coordinate(buffer=lpe.encode_coordinate(coord=coord)) == coord


@needs_both
def test_compiled_twin_uses_slots_for_every_class() -> None:
    assert COMPILED is not None
    classes = {*m.MEMBERLIST_TYPES, *m.SERF_TYPES, m.FilterNode, m.FilterTag, m.Coordinate}
    classes |= {m.PushNodeState, m.UserEvents, m.UserEvent, m.Member, m.UDPAddr}
    assert COMPILED._fast_path_classes() == sorted(c.__name__ for c in classes)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(S.MEMBERLIST_STRATEGIES), ids=lambda c: c.__name__)
@FEW
@given(data=st.data())
def test_memberlist_round_trip(lpe: ModuleType, cls: type, data: st.DataObject) -> None:
    message = data.draw(S.MEMBERLIST_STRATEGIES[cls])
    assert lpe.decode(lpe.encode(message)) == message
    assert lpe.decode_stream(lpe.encode_stream(message)) == message
    codec = lpe.LpeCodec()
    assert codec.decode(codec.encode(message)) == message


@pytest.mark.parametrize("cls", list(S.SERF_STRATEGIES), ids=lambda c: c.__name__)
@FEW
@given(data=st.data())
def test_serf_round_trip(lpe: ModuleType, cls: type, data: st.DataObject) -> None:
    message = data.draw(S.SERF_STRATEGIES[cls])
    assert lpe.decode_serf(lpe.encode(message)) == message
    assert lpe.LpeCodec().decode_serf(lpe.LpeCodec().encode(message)) == message


@MANY
@given(flt=S.filters)
def test_filter_round_trip(lpe: ModuleType, flt: m.Filter) -> None:
    assert lpe.decode_filter(lpe.encode_filter(flt)) == flt


@MANY
@given(coord=S.coordinates)
def test_coordinate_round_trip(lpe: ModuleType, coord: m.Coordinate) -> None:
    assert lpe.decode_coordinate(lpe.encode_coordinate(coord)) == coord


def test_coordinate_keeps_nan_and_infinity_bits(lpe: ModuleType) -> None:
    coord = m.Coordinate([float("nan"), float("inf"), -0.0], float("-inf"), 0.0, 1e-300)
    out = lpe.decode_coordinate(lpe.encode_coordinate(coord))
    assert lpe.encode_coordinate(out) == lpe.encode_coordinate(coord)


@MANY
@given(tags=S.tags)
def test_tags_round_trip(lpe: ModuleType, tags: dict[str, str]) -> None:
    meta = lpe.encode_tags(tags)
    assert meta[0] == 0xFE
    assert lpe.decode_tags(meta) == tags


@given(role=st.binary(max_size=40).filter(lambda b: b[:1] != b"\xfe"))
def test_legacy_role_meta(lpe: ModuleType, role: bytes) -> None:
    assert lpe.decode_tags(role) == {"role": role.decode("utf-8", "surrogateescape")}


def test_legacy_role_meta_examples(lpe: ModuleType) -> None:
    assert lpe.decode_tags(b"") == {"role": ""}
    assert lpe.decode_tags(b"web") == {"role": "web"}
    # Go's tag form (0xFF + msgpack) is not lpe's: it reads as a legacy role.
    assert lpe.decode_tags(b"\xff\x80") == {"role": "\udcff\udc80"}


def test_none_is_distinct_from_empty(lpe: ModuleType) -> None:
    for payload in (None, b""):
        assert lpe.decode(lpe.encode(m.AckResp(1, payload))).payload == payload
    events: list[Any] | None
    for events in (None, []):
        out = lpe.decode_serf(lpe.encode(m.MessagePushPull(1, None, None, 0, events, 0)))
        assert out.events == events
    tags: dict[str, str] | None
    for tags in (None, {}):
        member = dataclasses.replace(SAMPLES[m.MessageConflictResponse].member, tags=tags)
        assert lpe.decode_serf(lpe.encode(m.MessageConflictResponse(member))).member.tags == tags
    assert lpe.decode_serf(lpe.encode(m.MessageConflictResponse(None))).member is None


def test_bytes_like_inputs(lpe: ModuleType) -> None:
    raw = lpe.encode(SAMPLES[m.Alive])
    for form in (bytearray(raw), memoryview(raw)):
        assert lpe.decode(form) == SAMPLES[m.Alive]
    message = m.UserMsg(bytearray(b"\x03x"))  # type: ignore[arg-type]
    assert lpe.decode(lpe.encode(message)) == m.UserMsg(b"\x03x")
    with pytest.raises(TypeError):
        lpe.decode("not bytes")


# ---------------------------------------------------------------------------------------------
# The documented byte layout (golden vectors, written by the independent helpers above)
# ---------------------------------------------------------------------------------------------

GOLDEN: list[tuple[Any, bytes]] = [
    (m.NackResp(300), msg(11, uv(300))),
    (m.Ping(1, "b"), msg(0, uv(1) + s("b") + uv(0) + s("") + uv(0))),
    (
        SAMPLES[m.Alive],
        bytes.fromhex("0401 16")
        + uv(6)
        + s("n")
        + ob(b"\x7f\x00\x00\x01")
        + uv(7946)
        + ob(b"\xfe\x01\x01\x00")
        + ob(b"\x01\x05\x02\x02\x05\x04"),
    ),
    (
        SAMPLES[m.PushPull],
        msg(
            6,
            b"\x01"
            + uv(2)
            + rec(
                s("a")
                + ob(b"\x01\x02\x03\x04")
                + uv(1)
                + b"\x00"
                + uv(9)
                + uv(0)
                + ob(b"\x01\x05\x02\x02\x05\x04")
            )
            + rec(s("b") + b"\x00" + uv(65535) + ob(b"") + uv(2**32 - 1) + uv(6) + b"\x00")
            + uv(6)
            + b"\x02state",
        ),
    ),
    (
        m.MessageQuery(1, 2, None, 3, "", None, 4, 5, -1, "q", b""),
        msg(
            4,
            uv(1)
            + uv(2)
            + b"\x00"
            + uv(3)
            + s("")
            + b"\x00"
            + uv(4)
            + uv(5)
            + uv(1)
            + s("q")
            + ob(b""),
        ),
    ),
    (m.MessageConflictResponse(None), msg(6, b"\x00")),
    (
        m.MessagePushPull(1, {"n": 2}, [], 3, [None], 4),
        msg(2, uv(1) + uv(2) + s("n") + uv(2) + uv(1) + uv(3) + uv(2) + b"\x00" + uv(4)),
    ),
    (
        m.MessageRelay(m.UDPAddr(None, -2, "z"), "d", b"\x05"),
        msg(9, rec(b"\x00" + uv(3) + s("z")) + s("d") + uv(1) + b"\x05"),
    ),
]


@pytest.mark.parametrize("message,wire", GOLDEN, ids=lambda v: type(v).__name__)
def test_golden_layout(lpe: ModuleType, message: Any, wire: bytes) -> None:
    assert lpe.encode(message) == wire
    assert decoder_for(lpe, message)(wire) == message


def test_golden_tags_filter_coordinate(lpe: ModuleType) -> None:
    assert lpe.encode_tags({"role": "web"}) == b"\xfe\x01" + rec(uv(1) + s("role") + s("web"))
    assert lpe.encode_filter(m.FilterNode(["a"])) == msg(0, uv(2) + s("a"))
    assert lpe.encode_filter(m.FilterNode(None)) == msg(0, b"\x00")
    assert lpe.encode_filter(m.FilterTag("t", "e.*")) == msg(1, s("t") + s("e.*"))
    coord = m.Coordinate([1.0], 1.5, 0.0, 1e-5)
    body = uv(2) + struct.pack("<dddd", 1.0, 1.5, 0.0, 1e-5)
    assert lpe.encode_coordinate(coord) == b"\x01" + rec(body)
    no_vec = m.Coordinate(None, 1.5, 0.0, 1e-5)
    assert lpe.encode_coordinate(no_vec) == b"\x01" + rec(b"\x00" + body[9:])
    assert lpe.decode_coordinate(lpe.encode_coordinate(no_vec)) == no_vec


# ---------------------------------------------------------------------------------------------
# Forward compatibility: a newer writer appends fields; this reader skips them
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("version", [1, 2, 255])
def test_unknown_trailing_fields_are_skipped(lpe: ModuleType, cls: type, version: int) -> None:
    message = SAMPLES[cls]
    wire = lpe.encode(message)
    body_at = 2 + len(uv(len(wire) - 3))  # type, version, length (bodies < 2**14 here)
    body = wire[body_at:]
    assert wire == msg(wire[0], body)
    extended = msg(wire[0], body + uv(7) + s("a newer field") + b"\x00" * 5, version)
    assert decoder_for(lpe, message)(extended) == message


def test_unknown_trailing_fields_in_nested_records(lpe: ModuleType) -> None:
    state = s("a") + b"\x00" + uv(1) + b"\x00" + uv(9) + uv(0) + b"\x00"
    wire = msg(6, b"\x00" + uv(2) + rec(state + b"\xff\xff\x01") + rec(state) + uv(0), 2)
    out = lpe.decode(wire)
    assert out == m.PushPull(False, [m.PushNodeState("a", None, 1, None, 9, 0, None)] * 2, b"")
    relay = msg(9, rec(b"\x00" + uv(3) + s("z") + s("new")) + s("d") + uv(1) + b"\x05", 2)
    assert lpe.decode_serf(relay) == m.MessageRelay(m.UDPAddr(None, -2, "z"), "d", b"\x05")
    meta = b"\xfe\x02" + rec(uv(1) + s("role") + s("web") + b"extra")
    assert lpe.decode_tags(meta) == {"role": "web"}


def test_coordinate_forward_compat(lpe: ModuleType) -> None:
    body = uv(3) + struct.pack("<dd", 1.0, 2.0) + struct.pack("<ddd", 1.5, 0.0, 1e-5)
    wire = b"\x02" + rec(body + b"\x09more")
    assert lpe.decode_coordinate(wire) == m.Coordinate([1.0, 2.0], 1.5, 0.0, 1e-5)


# ---------------------------------------------------------------------------------------------
# Hostile input: only DecodeError escapes, and it escapes early
# ---------------------------------------------------------------------------------------------


def _all_decoders(lpe: ModuleType) -> list[Any]:
    return [
        lpe.decode,
        lpe.decode_stream,
        lpe.decode_serf,
        lpe.decode_tags,
        lpe.decode_filter,
        lpe.decode_coordinate,
    ]


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_every_truncation_is_rejected(lpe: ModuleType, cls: type) -> None:
    wire = lpe.encode(SAMPLES[cls])
    decode = decoder_for(lpe, SAMPLES[cls])
    for cut in range(len(wire)):
        with pytest.raises(DecodeError):
            decode(wire[:cut])


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_trailing_bytes_after_the_body_are_rejected(lpe: ModuleType, cls: type) -> None:
    wire = lpe.encode(SAMPLES[cls])
    with pytest.raises(DecodeError, match="trailing"):
        decoder_for(lpe, SAMPLES[cls])(wire + b"\x00")


def test_unknown_types_and_version_zero(lpe: ModuleType) -> None:
    for type_byte in (7, 10, 12, 14, 100, 244, 255):
        with pytest.raises(DecodeError, match="unknown"):
            lpe.decode(msg(type_byte, b""))
    for type_byte in (10, 11, 255):
        with pytest.raises(DecodeError, match="unknown"):
            lpe.decode_serf(msg(type_byte, b""))
    with pytest.raises(DecodeError, match="unknown"):
        lpe.decode_filter(msg(2, b""))
    with pytest.raises(DecodeError):
        lpe.decode(b"")
    with pytest.raises(DecodeError, match="version"):
        lpe.decode(msg(11, uv(1), version=0))
    with pytest.raises(DecodeError, match="version"):
        lpe.decode_tags(b"\xfe\x00\x01\x00")


HUGE = [2**31, 2**32, 2**63, 2**64 - 1]


@pytest.mark.parametrize("count", HUGE)
def test_huge_counts_fail_before_allocating(lpe: ModuleType, count: int) -> None:
    # A PushPull claiming 2**31+ node states in a ~15-byte buffer.
    with pytest.raises(DecodeError, match="count"):
        lpe.decode(msg(6, b"\x01" + uv(count) + b"\x00" * 3))
    with pytest.raises(DecodeError, match="count"):
        lpe.decode_serf(msg(2, uv(1) + uv(count) + b"\x00" * 8))
    with pytest.raises(DecodeError, match="count"):
        lpe.decode_tags(b"\xfe\x01" + rec(uv(count) + b"\x00\x00"))
    with pytest.raises(DecodeError, match="count"):
        lpe.decode_filter(msg(0, uv(count) + b"\x00"))
    # Eight float bytes are one element, not eight.
    with pytest.raises(DecodeError, match="count"):
        lpe.decode_coordinate(b"\x01" + rec(uv(3) + b"\x00" * 15))


@pytest.mark.parametrize("length", HUGE)
def test_huge_lengths_are_rejected(lpe: ModuleType, length: int) -> None:
    with pytest.raises(DecodeError):
        lpe.decode(msg(8, uv(length) + b"abc"))
    with pytest.raises(DecodeError):
        lpe.decode(msg(13, uv(length) + b"abc"))
    with pytest.raises(DecodeError):
        lpe.decode(bytes([8, 1]) + uv(length) + b"abc")
    with pytest.raises(DecodeError):
        lpe.decode(msg(6, b"\x01\x01" + uv(length) + b"abc"))


def test_varint_limits(lpe: ModuleType) -> None:
    max_u64 = b"\xff" * 9 + b"\x01"
    assert lpe.decode_serf(msg(1, max_u64 + s("n"))) == m.MessageJoin(2**64 - 1, "n")
    # Non-minimal encodings are accepted (documented); more than ten bytes are not.
    assert lpe.decode(msg(11, b"\x81\x80\x00")) == m.NackResp(1)
    for bad in (b"\xff" * 9 + b"\x02", b"\x80" * 10 + b"\x00", b"\x80" * 20):
        with pytest.raises(DecodeError):
            lpe.decode_serf(msg(1, bad + s("n")))


@pytest.mark.parametrize(
    "type_byte,field_bytes",
    [
        (11, uv(2**32)),  # u32 seq_no
        (9, uv(256) + b"\x00"),  # u8 algo
        (0, uv(1) + s("") + uv(0) + s("") + uv(65536)),  # u16 port
        (1, uv(1) + b"\x00" + uv(1) + s("") + b"\x02" + uv(0) + s("") + uv(0)),  # bool 2
    ],
)
def test_out_of_range_values_are_rejected(
    lpe: ModuleType, type_byte: int, field_bytes: bytes
) -> None:
    with pytest.raises(DecodeError):
        lpe.decode(msg(type_byte, field_bytes))


def test_non_utf8_strings_round_trip(lpe: ModuleType) -> None:
    wire = msg(13, s("\udcff\udcfe ok \udced\udca0\udc80"))
    assert lpe.decode(wire) == m.ErrResp("\udcff\udcfe ok \udced\udca0\udc80")
    assert lpe.encode(lpe.decode(wire)) == wire


# ---------------------------------------------------------------------------------------------
# Encoding: out-of-range values and wrong types raise EncodeError
# ---------------------------------------------------------------------------------------------

_BOUNDS = {
    PURE.U8: (-1, 2**8),
    PURE.U16: (-1, 2**16),
    PURE.U32: (-1, 2**32),
    PURE.U64: (-1, 2**64),
    PURE.I64: (-(2**63) - 1, 2**63),
}


def _int_field_cases() -> list[tuple[str, Any, Any]]:
    """(id, message, bad-value setter) for every integer field, nested ones included."""
    cases: list[tuple[str, Any, Any]] = []

    def walk(spec: Any, path: tuple[str, ...], root: Any) -> None:
        for f in spec.fields:
            if f.kind in _BOUNDS:
                for bad in _BOUNDS[f.kind]:
                    cases.append((f"{'.'.join((*path, f.name))}={bad}", root, (*path, f.name, bad)))
            elif f.sub is not None:
                walk(f.sub, (*path, f.name), root)

    for cls, sample in SAMPLES.items():
        spec = PURE._MESSAGE_BY_CLASS[cls][1]
        walk(spec, (), sample)
    return cases


def _with_bad_value(message: Any, path: tuple[Any, ...]) -> Any:
    *names, bad = path
    message = _deep_copy(message)
    target = message
    for name in names[:-1]:
        target = getattr(target, name)
        if isinstance(target, list):
            target = next(x for x in target if x is not None)
    setattr(target, names[-1], bad)
    return message


def _deep_copy(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value)(*(_deep_copy(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


INT_CASES = _int_field_cases()


@pytest.mark.parametrize("case", INT_CASES, ids=[c[0] for c in INT_CASES])
def test_out_of_range_ints_raise_encode_error(lpe: ModuleType, case: tuple[str, Any, Any]) -> None:
    _, message, path = case
    with pytest.raises(EncodeError):
        lpe.encode(_with_bad_value(message, path))


def test_range_edges_encode(lpe: ModuleType) -> None:
    for value in (0, 2**32 - 1):
        assert lpe.decode(lpe.encode(m.NackResp(value))) == m.NackResp(value)
    for value in (-(2**63), 2**63 - 1):
        relay = m.MessageRelay(m.UDPAddr(None, value, ""), "", b"")
        assert lpe.decode_serf(lpe.encode(relay)) == relay


@pytest.mark.parametrize(
    "message",
    [
        m.Ping("1", "n"),  # type: ignore[arg-type]
        m.Ping(1, b"n"),  # type: ignore[arg-type]
        m.Ping(1, "n", None),  # type: ignore[arg-type]
        m.Ping(1, "n", "addr"),  # type: ignore[arg-type]
        m.Ping(1.0, "n"),  # type: ignore[arg-type]
        m.ErrResp("\ud800 lone surrogate"),
        m.PushPull(True, None),  # type: ignore[arg-type]
        m.PushPull(True, [m.Alive(1, "n", None, 1)]),  # type: ignore[list-item]
        m.PushPull(True, "abc"),  # type: ignore[arg-type]
        m.MessageRelay(None, "d", b""),  # type: ignore[arg-type]
        m.MessagePushPull(1, {1: 2}, None, 0, None, 0),  # type: ignore[dict-item]
        m.MessagePushPull(1, [], None, 0, None, 0),  # type: ignore[arg-type]
        m.MessageConflictResponse(
            m.Member("n", None, 1, {"k": 5}, 0, 0, 0, 0, 0, 0, 0)  # type: ignore[dict-item]
        ),
        m.PushPullHeader(1, 2, True),  # not a message
        "not a message",
        None,
    ],
    ids=lambda v: repr(v)[:40],
)
def test_wrong_types_raise_encode_error(lpe: ModuleType, message: Any) -> None:
    with pytest.raises(EncodeError):
        lpe.encode(message)


def test_bad_coordinate_filter_tags(lpe: ModuleType) -> None:
    with pytest.raises(EncodeError):
        lpe.encode_coordinate(m.Coordinate(["x"]))  # type: ignore[list-item]
    with pytest.raises(EncodeError):
        lpe.encode_coordinate(m.Coordinate([], 10**400))
    with pytest.raises(EncodeError):
        lpe.encode_coordinate("no")
    with pytest.raises(EncodeError):
        lpe.encode_filter(m.Ping(1, "n"))
    with pytest.raises(EncodeError):
        lpe.encode_tags({"k": 1})
    with pytest.raises(EncodeError):
        lpe.encode_tags(None)


# ---------------------------------------------------------------------------------------------
# Differential: compiled vs pure
# ---------------------------------------------------------------------------------------------


@needs_both
@MANY
@given(message=S.any_message)
def test_twins_write_identical_bytes(message: Any) -> None:
    assert COMPILED is not None
    assert COMPILED.encode(message) == PURE.encode(message)


@needs_both
@FEW
@given(flt=S.filters, coord=S.coordinates, tags=S.tags)
def test_twins_write_identical_values(flt: Any, coord: Any, tags: Any) -> None:
    assert COMPILED is not None
    assert COMPILED.encode_filter(flt) == PURE.encode_filter(flt)
    assert COMPILED.encode_coordinate(coord) == PURE.encode_coordinate(coord)
    assert COMPILED.encode_tags(tags) == PURE.encode_tags(tags)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding with a few bytes flipped, inserted, deleted or cut off."""
    message = draw(S.any_message)
    wire = bytearray(PURE.encode(message))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(wire) - 1, 0)))
        if op == "flip" and wire:
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and wire:
            wire[at] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            wire[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete" and wire:
            del wire[at]
        elif op == "truncate":
            del wire[at:]
    return bytes(wire)


def _check_same(raw: bytes) -> None:
    assert COMPILED is not None
    for name in (
        "decode",
        "decode_stream",
        "decode_serf",
        "decode_tags",
        "decode_filter",
        "decode_coordinate",
    ):
        a = outcome(getattr(PURE, name), raw)
        b = outcome(getattr(COMPILED, name), raw)
        # repr, not ==: a float decoded as NaN is never == itself, and repr tells every other
        # float apart exactly (it round-trips, -0.0 included)
        assert repr(a) == repr(b), name
        if a[0] == "error":
            assert a[1] is DecodeError, (name, a)


@needs_both
@settings(max_examples=1500)
@given(raw=mutated())
@pytest.mark.slow
def test_twins_agree_on_mutated_input(raw: bytes) -> None:
    _check_same(raw)


@needs_both
@settings(max_examples=800)
@given(raw=st.binary(max_size=64))
def test_twins_agree_on_random_bytes(raw: bytes) -> None:
    _check_same(raw)


@needs_both
@settings(max_examples=600)
@given(
    head=st.sampled_from(
        [b"\x06\x01", b"\x02\x01", b"\x04\x01", b"\xfe\x01", b"\x01", b"\x00\x01"]
    ),
    tail=st.binary(max_size=48),
)
def test_twins_agree_on_plausible_headers(head: bytes, tail: bytes) -> None:
    _check_same(head + uv(len(tail)) + tail)


# Without the compiled twin, these still check that only DecodeError escapes the pure one.
@settings(max_examples=400)
@given(raw=mutated() | st.binary(max_size=64))
def test_only_decode_error_escapes(lpe: ModuleType, raw: bytes) -> None:
    for decode in _all_decoders(lpe):
        kind, value = outcome(decode, raw)
        assert kind == "ok" or value is DecodeError


# ---------------------------------------------------------------------------------------------
# docs/wire.md lists the same layout as the tables the twins run on
# ---------------------------------------------------------------------------------------------

_KIND_TEXT = {
    PURE.U8: "u8",
    PURE.U16: "u16",
    PURE.U32: "u32",
    PURE.U64: "u64",
    PURE.I64: "i64",
    PURE.BOOL: "bool",
    PURE.STR: "str",
    PURE.BYTES: "bytes",
    PURE.F64: "f64",
}


def _field_text(f: Any) -> str:
    if f.kind == PURE.REC:
        text = f"record {f.sub.cls.__name__}"
    elif f.kind == PURE.LIST:
        elem = f"record {f.sub.cls.__name__}" if f.elem == PURE.REC else _KIND_TEXT[f.elem]
        text = f"list<{'opt ' if f.elem_optional else ''}{elem}>"
    elif f.kind == PURE.MAP:
        text = f"map<str, {_KIND_TEXT[f.elem]}>"
    else:
        text = _KIND_TEXT[f.kind]
    return f"`{f.name}` {'opt ' if f.optional else ''}{text}"


def _records(spec: Any, seen: dict[type, Any]) -> None:
    for f in spec.fields:
        if f.sub is not None and f.sub.cls not in seen:
            seen[f.sub.cls] = f.sub
            _records(f.sub, seen)


def test_docs_match_the_layout_tables() -> None:
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "wire.md"
    if not doc.exists():
        pytest.skip("docs/wire.md is not next to the tests")
    text = doc.read_text(encoding="utf-8")
    rows = []
    nested: dict[type, Any] = {}
    for table in (PURE.MEMBERLIST_SPECS, PURE.SERF_SPECS, PURE.FILTER_SPECS):
        for type_byte, spec in table.items():
            fields = ", ".join(_field_text(f) for f in spec.fields)
            rows.append(f"| {int(type_byte)} | `{spec.cls.__name__}` | {fields} |")
            _records(spec, nested)
    for spec in [*nested.values(), PURE.COORDINATE_SPEC]:
        rows.append(f"| `{spec.cls.__name__}` | {', '.join(map(_field_text, spec.fields))} |")
    missing = [row for row in rows if row not in text]
    assert not missing, "docs/wire.md is out of date:\n" + "\n".join(missing)
