"""The ``lpe`` codec, pure-Python twin: pyserf's native length-prefixed body encoding.

How this works
--------------
Every message is ``[type byte][version byte][uvarint body length][fields]``; the byte layout
is specified in docs/wire.md (section "lpe"). The layout of each message is *data*: the
:data:`MEMBERLIST_SPECS`, :data:`SERF_SPECS`, :data:`FILTER_SPECS` and :data:`COORDINATE_SPEC`
tables list, per dataclass, its fields in wire order and the kind of each (uvarint of a given
width, zigzag int64, bool, string, bytes, float, nested record, list, map). At import this
module turns each table entry into a chain of small reader and writer closures (one per field,
specialised to its kind, so nothing is dispatched per value); the compiled twin
(``serf/_fast/lpe.pyx``) imports the same tables and compiles them into C structures, so both
twins share one layout definition and the differential tests in tests/wire/test_lpe.py check
that they agree byte for byte.

Decoding is defensive: every length and count is checked against the bytes that remain before
anything is allocated, nesting is bounded by the tables (at most three records deep), and the
only exception that escapes a ``decode*`` function is :class:`serf.wire.DecodeError`.
Encoding checks every integer against the range of the Go type it mirrors and raises
:class:`serf.wire.EncodeError` for values the ``go`` codec could not carry.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serf.wire import messages as m
from serf.wire.errors import DecodeError, EncodeError

__all__ = [
    "FORMAT_VERSION",
    "TAG_MAGIC",
    "FieldSpec",
    "StructSpec",
    "MEMBERLIST_SPECS",
    "SERF_SPECS",
    "FILTER_SPECS",
    "COORDINATE_SPEC",
    "LpeCodec",
    "encode",
    "decode",
    "encode_stream",
    "decode_stream",
    "decode_serf",
    "encode_tags",
    "decode_tags",
    "encode_filter",
    "decode_filter",
    "encode_coordinate",
    "decode_coordinate",
]

#: The format version this module writes. Readers accept any version >= 1 (see docs/wire.md).
FORMAT_VERSION = 1
#: First byte of node meta carrying lpe-encoded tags (Go's codec uses 0xFF).
TAG_MAGIC = 0xFE

# ---------------------------------------------------------------------------------------------
# The layout tables
# ---------------------------------------------------------------------------------------------

# Field kinds. The numbers are shared with the compiled twin; they are not on the wire.
U8 = 1  # uvarint, 0..2**8-1
U16 = 2  # uvarint, 0..2**16-1
U32 = 3  # uvarint, 0..2**32-1
U64 = 4  # uvarint, 0..2**64-1
I64 = 5  # zigzag uvarint, -2**63..2**63-1 (Go int, int64, time.Duration)
BOOL = 6  # one byte, 0 or 1
STR = 7  # uvarint length + UTF-8 (surrogateescape)
BYTES = 8  # uvarint length + raw bytes
F64 = 9  # 8 bytes IEEE-754, little-endian
REC = 10  # uvarint length + the fields of a nested struct
LIST = 11  # uvarint count + that many elements of kind ``elem``
MAP = 12  # uvarint count + that many (STR key, ``elem`` value) pairs

_KIND_NAMES = {
    U8: "u8",
    U16: "u16",
    U32: "u32",
    U64: "u64",
    I64: "i64",
    BOOL: "bool",
    STR: "str",
    BYTES: "bytes",
    F64: "f64",
    REC: "record",
    LIST: "list",
    MAP: "map",
}

#: Largest value of each unsigned kind.
_UMAX = {U8: 0xFF, U16: 0xFFFF, U32: 0xFFFF_FFFF, U64: 0xFFFF_FFFF_FFFF_FFFF}
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a struct in wire order.

    ``optional`` makes ``None`` encodable (BYTES, REC, LIST, MAP only): such a field's
    length/count prefix is written plus one, and a prefix of 0 means ``None``.
    ``elem``/``elem_optional`` describe LIST elements and MAP values; ``sub`` is the struct of
    a REC field or of REC list elements.
    """

    name: str
    kind: int
    optional: bool = False
    elem: int = 0
    elem_optional: bool = False
    sub: StructSpec | None = None


@dataclass(frozen=True, slots=True)
class StructSpec:
    """A dataclass and its fields in wire order (the constructor takes them positionally)."""

    cls: type
    fields: tuple[FieldSpec, ...]


def _f(name: str, kind: int, *, optional: bool = False) -> FieldSpec:
    return FieldSpec(name, kind, optional)


def _rec(name: str, sub: StructSpec, *, optional: bool = False) -> FieldSpec:
    return FieldSpec(name, REC, optional, sub=sub)


def _list(
    name: str,
    elem: int,
    *,
    optional: bool = False,
    elem_optional: bool = False,
    sub: StructSpec | None = None,
) -> FieldSpec:
    return FieldSpec(name, LIST, optional, elem, elem_optional, sub)


def _map(name: str, value: int, *, optional: bool = False) -> FieldSpec:
    return FieldSpec(name, MAP, optional, value)


def _s(cls: type, *fields: FieldSpec) -> StructSpec:
    return StructSpec(cls, fields)


_PUSH_NODE_STATE = _s(
    m.PushNodeState,
    _f("name", STR),
    _f("addr", BYTES, optional=True),
    _f("port", U16),
    _f("meta", BYTES, optional=True),
    _f("incarnation", U32),
    _f("state", I64),
    _f("vsn", BYTES, optional=True),
)
_USER_EVENT = _s(m.UserEvent, _f("name", STR), _f("payload", BYTES, optional=True))
_USER_EVENTS = _s(
    m.UserEvents, _f("ltime", U64), _list("events", REC, optional=True, sub=_USER_EVENT)
)
_MEMBER = _s(
    m.Member,
    _f("name", STR),
    _f("addr", BYTES, optional=True),
    _f("port", U16),
    _map("tags", STR, optional=True),
    _f("status", I64),
    _f("protocol_min", U8),
    _f("protocol_max", U8),
    _f("protocol_cur", U8),
    _f("delegate_min", U8),
    _f("delegate_max", U8),
    _f("delegate_cur", U8),
)
_UDP_ADDR = _s(m.UDPAddr, _f("ip", BYTES, optional=True), _f("port", I64), _f("zone", STR))

#: memberlist type byte -> struct. Types 7 (compound), 10 (encrypt), 12 (crc) and 244 (label)
#: belong to the framing, not to a codec.
MEMBERLIST_SPECS: dict[int, StructSpec] = {
    m.MessageType.PING: _s(
        m.Ping,
        _f("seq_no", U32),
        _f("node", STR),
        _f("source_addr", BYTES),
        _f("source_node", STR),
        _f("source_port", U16),
    ),
    m.MessageType.INDIRECT_PING: _s(
        m.IndirectPingReq,
        _f("seq_no", U32),
        _f("target", BYTES, optional=True),
        _f("port", U16),
        _f("node", STR),
        _f("nack", BOOL),
        _f("source_addr", BYTES),
        _f("source_node", STR),
        _f("source_port", U16),
    ),
    m.MessageType.ACK_RESP: _s(m.AckResp, _f("seq_no", U32), _f("payload", BYTES, optional=True)),
    m.MessageType.SUSPECT: _s(m.Suspect, _f("incarnation", U32), _f("node", STR), _f("from_", STR)),
    m.MessageType.ALIVE: _s(
        m.Alive,
        _f("incarnation", U32),
        _f("node", STR),
        _f("addr", BYTES, optional=True),
        _f("port", U16),
        _f("meta", BYTES, optional=True),
        _f("vsn", BYTES, optional=True),
    ),
    m.MessageType.DEAD: _s(m.Dead, _f("incarnation", U32), _f("node", STR), _f("from_", STR)),
    m.MessageType.PUSH_PULL: _s(
        m.PushPull,
        _f("join", BOOL),
        _list("states", REC, sub=_PUSH_NODE_STATE),
        _f("user_state", BYTES),
    ),
    m.MessageType.USER: _s(m.UserMsg, _f("payload", BYTES)),
    m.MessageType.COMPRESS: _s(m.Compress, _f("algo", U8), _f("buf", BYTES, optional=True)),
    m.MessageType.NACK_RESP: _s(m.NackResp, _f("seq_no", U32)),
    m.MessageType.ERR: _s(m.ErrResp, _f("error", STR)),
}

#: serf type byte -> struct.
SERF_SPECS: dict[int, StructSpec] = {
    m.SerfMessageType.LEAVE: _s(
        m.MessageLeave, _f("ltime", U64), _f("node", STR), _f("prune", BOOL)
    ),
    m.SerfMessageType.JOIN: _s(m.MessageJoin, _f("ltime", U64), _f("node", STR)),
    m.SerfMessageType.PUSH_PULL: _s(
        m.MessagePushPull,
        _f("ltime", U64),
        _map("status_ltimes", U64, optional=True),
        _list("left_members", STR, optional=True),
        _f("event_ltime", U64),
        _list("events", REC, optional=True, elem_optional=True, sub=_USER_EVENTS),
        _f("query_ltime", U64),
    ),
    m.SerfMessageType.USER_EVENT: _s(
        m.MessageUserEvent,
        _f("ltime", U64),
        _f("name", STR),
        _f("payload", BYTES, optional=True),
        _f("cc", BOOL),
    ),
    m.SerfMessageType.QUERY: _s(
        m.MessageQuery,
        _f("ltime", U64),
        _f("id", U32),
        _f("addr", BYTES, optional=True),
        _f("port", U16),
        _f("source_node", STR),
        _list("filters", BYTES, optional=True),
        _f("flags", U32),
        _f("relay_factor", U8),
        _f("timeout", I64),
        _f("name", STR),
        _f("payload", BYTES, optional=True),
    ),
    m.SerfMessageType.QUERY_RESPONSE: _s(
        m.MessageQueryResponse,
        _f("ltime", U64),
        _f("id", U32),
        _f("from_", STR),
        _f("flags", U32),
        _f("payload", BYTES, optional=True),
    ),
    m.SerfMessageType.CONFLICT_RESPONSE: _s(
        m.MessageConflictResponse, _rec("member", _MEMBER, optional=True)
    ),
    m.SerfMessageType.KEY_REQUEST: _s(m.MessageKeyRequest, _f("key", BYTES, optional=True)),
    m.SerfMessageType.KEY_RESPONSE: _s(
        m.MessageKeyResponse,
        _f("result", BOOL),
        _f("message", STR),
        _list("keys", STR, optional=True),
        _f("primary_key", STR),
    ),
    m.SerfMessageType.RELAY: _s(
        m.MessageRelay, _rec("dest_addr", _UDP_ADDR), _f("dest_name", STR), _f("payload", BYTES)
    ),
}

#: query filter type byte -> struct.
FILTER_SPECS: dict[int, StructSpec] = {
    m.FilterType.NODE: _s(m.FilterNode, _list("nodes", STR, optional=True)),
    m.FilterType.TAG: _s(m.FilterTag, _f("tag", STR), _f("expr", STR)),
}

#: A Vivaldi coordinate (no type byte).
COORDINATE_SPEC = _s(
    m.Coordinate,
    _list("vec", F64, optional=True),
    _f("error", F64),
    _f("adjustment", F64),
    _f("height", F64),
)


def _check_tables() -> None:
    """Every struct lists exactly its dataclass's fields, in the dataclass's order.

    Both twins build instances positionally (or slot by slot), so a dataclass field added,
    removed or moved without the same change here would silently shift values: fail at import.
    """
    seen: list[StructSpec] = [
        *MEMBERLIST_SPECS.values(),
        *SERF_SPECS.values(),
        *FILTER_SPECS.values(),
        COORDINATE_SPEC,
    ]
    while seen:
        spec = seen.pop()
        names = [f.name for f in spec.fields]
        declared = [f.name for f in dataclasses.fields(spec.cls)]
        if names != declared:
            raise RuntimeError(
                f"lpe layout of {spec.cls.__name__} lists {names}, the dataclass has {declared}"
            )
        seen.extend(f.sub for f in spec.fields if f.sub is not None)


_check_tables()

#: class -> (type byte, struct), for encoding.
_MESSAGE_BY_CLASS: dict[type, tuple[int, StructSpec]] = {
    spec.cls: (tb, spec) for table in (MEMBERLIST_SPECS, SERF_SPECS) for tb, spec in table.items()
}
_FILTER_BY_CLASS: dict[type, tuple[int, StructSpec]] = {
    spec.cls: (tb, spec) for tb, spec in FILTER_SPECS.items()
}

# ---------------------------------------------------------------------------------------------
# Encoding: each table entry becomes a chain of small writer functions, built once at import
# ---------------------------------------------------------------------------------------------

_Writer = Callable[[bytearray, Any], None]

_SMALL = [bytes([i]) for i in range(128)]
_F64 = struct.Struct("<d")


def _put_uvarint(out: bytearray, value: int) -> None:
    if value < 0x80:
        out += _SMALL[value]
        return
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _uvarint_bytes(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    _put_uvarint(out, value)
    return bytes(out)


def _check_int(obj: Any, kind: int, what: str) -> int:
    if type(obj) is int:
        value: int = obj
    elif isinstance(obj, int):
        value = int(obj)
    else:
        raise EncodeError(f"{what}: expected int, got {type(obj).__name__}")
    if kind == I64:
        if not _I64_MIN <= value <= _I64_MAX:
            raise EncodeError(f"{what}: {value} is out of range for int64")
    elif not 0 <= value <= _UMAX[kind]:
        raise EncodeError(f"{what}: {value} is out of range for {_KIND_NAMES[kind]}")
    return value


def _str_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"{what}: expected str, got {type(value).__name__}")
    try:
        return str.encode(value, "utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{what}: not encodable as UTF-8: {exc}") from None


def _put_none(out: bytearray, optional: bool, what: str) -> None:
    if not optional:
        raise EncodeError(f"{what}: None is not allowed here")
    out += b"\x00"


def _writer(
    kind: int,
    optional: bool,
    elem: int,
    elem_optional: bool,
    sub: StructSpec | None,
    what: str,
) -> _Writer:
    """A function appending one value of ``kind`` (a field, a list element or a map value)."""
    extra = 1 if optional else 0  # the "+ 1" of optional length and count prefixes

    if kind <= U64:

        def write_uint(out: bytearray, value: Any) -> None:
            if type(value) is int and 0 <= value < 0x80:
                out += _SMALL[value]
            else:
                _put_uvarint(out, _check_int(value, kind, what))

        return write_uint
    if kind == I64:

        def write_i64(out: bytearray, value: Any) -> None:
            v = _check_int(value, I64, what)
            _put_uvarint(out, (v << 1) ^ (v >> 63))

        return write_i64
    if kind == BOOL:

        def write_bool(out: bytearray, value: Any) -> None:
            out += b"\x01" if value else b"\x00"

        return write_bool
    if kind == STR:

        def write_str(out: bytearray, value: Any) -> None:
            raw = _str_bytes(value, what)
            _put_uvarint(out, len(raw))
            out += raw

        return write_str
    if kind == BYTES:

        def write_bytes(out: bytearray, value: Any) -> None:
            if value is None:
                _put_none(out, optional, what)
                return
            if type(value) is not bytes:
                if not isinstance(value, bytes | bytearray | memoryview):
                    raise EncodeError(f"{what}: expected bytes, got {type(value).__name__}")
                value = bytes(value)
            _put_uvarint(out, len(value) + extra)
            out += value

        return write_bytes
    if kind == F64:

        def write_f64(out: bytearray, value: Any) -> None:
            if not isinstance(value, float | int):
                raise EncodeError(f"{what}: expected float, got {type(value).__name__}")
            try:
                out += _F64.pack(float(value))
            except OverflowError:
                raise EncodeError(f"{what}: {value} is out of range for float64") from None

        return write_f64
    if kind == REC:
        assert sub is not None
        write_sub = _struct_writer(sub)

        def write_record(out: bytearray, value: Any) -> None:
            if value is None:
                _put_none(out, optional, what)
                return
            body = bytearray()
            write_sub(body, value)
            _put_uvarint(out, len(body) + extra)
            out += body

        return write_record
    if kind == LIST:
        write_item = _writer(elem, elem_optional, 0, False, sub, what)

        def write_list(out: bytearray, value: Any) -> None:
            if value is None:
                _put_none(out, optional, what)
                return
            if not isinstance(value, list | tuple):
                raise EncodeError(f"{what}: expected a list, got {type(value).__name__}")
            _put_uvarint(out, len(value) + extra)
            for item in value:
                write_item(out, item)

        return write_list
    # MAP: str keys
    write_value = _writer(elem, False, 0, False, None, what)

    def write_map(out: bytearray, value: Any) -> None:
        if value is None:
            _put_none(out, optional, what)
            return
        if not isinstance(value, dict):
            raise EncodeError(f"{what}: expected a dict, got {type(value).__name__}")
        _put_uvarint(out, len(value) + extra)
        for key, item in dict.items(value):
            raw = _str_bytes(key, what)
            _put_uvarint(out, len(raw))
            out += raw
            write_value(out, item)

    return write_map


_STRUCT_WRITERS: dict[int, _Writer] = {}


def _struct_writer(spec: StructSpec) -> _Writer:
    """A function appending the fields of a ``spec.cls`` instance (no length prefix)."""
    found = _STRUCT_WRITERS.get(id(spec))
    if found is not None:
        return found
    cls = spec.cls
    fields = tuple(
        (f.name, _writer(f.kind, f.optional, f.elem, f.elem_optional, f.sub, f.name))
        for f in spec.fields
    )

    def write_struct(out: bytearray, obj: Any) -> None:
        if not isinstance(obj, cls):
            raise EncodeError(f"expected {cls.__name__}, got {type(obj).__name__}")
        for name, write in fields:
            try:
                value = getattr(obj, name)
            except AttributeError:
                raise EncodeError(f"{cls.__name__}.{name} is not set") from None
            write(out, value)

    _STRUCT_WRITERS[id(spec)] = write_struct
    return write_struct


def _head(type_byte: int | None) -> bytes:
    return bytes(([] if type_byte is None else [type_byte]) + [FORMAT_VERSION])


#: class -> (type byte + version byte, writer of the fields)
_MESSAGE_WRITERS: dict[type, tuple[bytes, _Writer]] = {
    cls: (_head(tb), _struct_writer(spec)) for cls, (tb, spec) in _MESSAGE_BY_CLASS.items()
}
_FILTER_WRITERS: dict[type, tuple[bytes, _Writer]] = {
    cls: (_head(tb), _struct_writer(spec)) for cls, (tb, spec) in _FILTER_BY_CLASS.items()
}
_COORDINATE_WRITER = _struct_writer(COORDINATE_SPEC)
_TAGS_WRITER = _writer(MAP, False, STR, False, None, "tags")


def _encode_body(head: bytes, write: _Writer, obj: Any) -> bytes:
    """``head`` (type byte and version) + uvarint body length + the fields."""
    body = bytearray()
    write(body, obj)
    return head + _uvarint_bytes(len(body)) + body


def encode(message: m.Message) -> bytes:
    """``[type byte][body]`` of a memberlist or serf message (one form for packets and streams)."""
    entry = _MESSAGE_WRITERS.get(type(message))
    if entry is None:
        raise EncodeError(f"not an lpe message: {type(message).__name__}")
    return _encode_body(entry[0], entry[1], message)


def encode_stream(message: m.MemberlistMessage) -> bytes:
    """Same as :func:`encode`: lpe bodies always carry their length, so streams need no header."""
    return encode(message)


def encode_tags(tags: dict[str, str]) -> bytes:
    """Node meta carrying serf tags: ``0xFE``, version, body length, then a string map."""
    if not isinstance(tags, dict):
        raise EncodeError(f"tags: expected a dict, got {type(tags).__name__}")
    return _encode_body(bytes([TAG_MAGIC, FORMAT_VERSION]), _TAGS_WRITER, tags)


def encode_filter(flt: m.Filter) -> bytes:
    """One entry of ``MessageQuery.filters``: ``[filter type][body]``."""
    entry = _FILTER_WRITERS.get(type(flt))
    if entry is None:
        raise EncodeError(f"not a query filter: {type(flt).__name__}")
    return _encode_body(entry[0], entry[1], flt)


def encode_coordinate(coord: m.Coordinate) -> bytes:
    """A Vivaldi coordinate body: version, body length, vec, error, adjustment, height."""
    if not isinstance(coord, m.Coordinate):
        raise EncodeError(f"expected Coordinate, got {type(coord).__name__}")
    return _encode_body(_head(None), _COORDINATE_WRITER, coord)


# ---------------------------------------------------------------------------------------------
# Decoding: readers built the same way; each returns (value, position after it)
# ---------------------------------------------------------------------------------------------

_Reader = Callable[[bytes, int, int], tuple[Any, int]]
_StructReader = Callable[[bytes, int, int], Any]


def _uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A LEB128 value of at most 10 bytes that fits in 64 bits, and the position after it."""
    if pos >= end:
        raise DecodeError("truncated: varint expected")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        if shift == 63:
            if b > 1:
                raise DecodeError("varint overflows 64 bits")
            return result | (b << 63), pos
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _read_str(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if pos < end and buf[pos] < 0x80:
        n = buf[pos]
        pos += 1
    else:
        n, pos = _uvarint(buf, pos, end)
    stop = pos + n
    if stop > end:
        raise DecodeError("truncated string")
    return buf[pos:stop].decode("utf-8", "surrogateescape"), stop


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if pos < end and buf[pos] < 0x80:
        n = buf[pos]
        pos += 1
    else:
        n, pos = _uvarint(buf, pos, end)
    stop = pos + n
    if stop > end:
        raise DecodeError("truncated bytes")
    return buf[pos:stop], stop


def _read_opt_bytes(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if pos < end and buf[pos] < 0x80:
        n = buf[pos]
        pos += 1
    else:
        n, pos = _uvarint(buf, pos, end)
    if n == 0:
        return None, pos
    stop = pos + n - 1
    if stop > end:
        raise DecodeError("truncated bytes")
    return buf[pos:stop], stop


def _read_i64(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    v, pos = _uvarint(buf, pos, end)
    return (v >> 1) ^ -(v & 1), pos


def _read_bool(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if pos >= end:
        raise DecodeError("truncated: bool expected")
    b = buf[pos]
    if b > 1:
        raise DecodeError(f"invalid bool byte {b}")
    return b == 1, pos + 1


def _read_f64(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if end - pos < 8:
        raise DecodeError("truncated float")
    return _F64.unpack_from(buf, pos)[0], pos + 8


def _read_prefix(buf: bytes, pos: int, end: int, optional: bool) -> tuple[int | None, int]:
    """A length or count prefix: ``None`` for an optional 0, else the length or count."""
    n, pos = _uvarint(buf, pos, end)
    if optional:
        if n == 0:
            return None, pos
        n -= 1
    return n, pos


def _reader(
    kind: int, optional: bool, elem: int, elem_optional: bool, sub: StructSpec | None
) -> _Reader:
    """A function reading one value of ``kind`` at ``pos``, which must end by ``end``."""
    if kind == STR:
        return _read_str
    if kind <= U64:
        limit = _UMAX[kind]
        name = _KIND_NAMES[kind]

        def read_uint(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            if pos < end and buf[pos] < 0x80:
                return buf[pos], pos + 1
            v, pos = _uvarint(buf, pos, end)
            if v > limit:
                raise DecodeError(f"{v} is out of range for {name}")
            return v, pos

        return read_uint
    if kind == BYTES:
        return _read_opt_bytes if optional else _read_bytes
    if kind == I64:
        return _read_i64
    if kind == BOOL:
        return _read_bool
    if kind == F64:
        return _read_f64
    if kind == REC:
        assert sub is not None
        read_sub = _struct_reader(sub)

        def read_record(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            n, pos = _read_prefix(buf, pos, end, optional)
            if n is None:
                return None, pos
            stop = pos + n
            if stop > end:
                raise DecodeError("truncated record")
            return read_sub(buf, pos, stop), stop

        return read_record
    if kind == LIST:
        read_item = _reader(elem, elem_optional, 0, False, sub)
        # Every element takes at least one byte (a float eight): checked before allocating.
        size = 8 if elem == F64 else 1

        def read_list(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            n, pos = _read_prefix(buf, pos, end, optional)
            if n is None:
                return None, pos
            if n > (end - pos) // size:
                raise DecodeError("list count exceeds the remaining bytes")
            items = []
            for _ in range(n):
                item, pos = read_item(buf, pos, end)
                items.append(item)
            return items, pos

        return read_list
    # MAP: str keys; every pair takes at least two bytes
    read_value = _reader(elem, False, 0, False, None)

    def read_map(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        n, pos = _read_prefix(buf, pos, end, optional)
        if n is None:
            return None, pos
        if n > (end - pos) // 2:
            raise DecodeError("map count exceeds the remaining bytes")
        result = {}
        for _ in range(n):
            key, pos = _read_str(buf, pos, end)
            result[key], pos = read_value(buf, pos, end)
        return result, pos

    return read_map


_STRUCT_READERS: dict[int, _StructReader] = {}


def _struct_reader(spec: StructSpec) -> _StructReader:
    """A function building ``spec.cls`` from the fields in ``buf[pos:end]``; bytes after the
    known fields (a newer writer's additions) are skipped."""
    found = _STRUCT_READERS.get(id(spec))
    if found is not None:
        return found
    cls = spec.cls
    readers = tuple(
        _reader(f.kind, f.optional, f.elem, f.elem_optional, f.sub) for f in spec.fields
    )

    def read_struct(buf: bytes, pos: int, end: int) -> Any:
        values = []
        for read in readers:
            value, pos = read(buf, pos, end)
            values.append(value)
        return cls(*values)

    _STRUCT_READERS[id(spec)] = read_struct
    return read_struct


_MEMBERLIST_READERS = {int(tb): _struct_reader(spec) for tb, spec in MEMBERLIST_SPECS.items()}
_SERF_READERS = {int(tb): _struct_reader(spec) for tb, spec in SERF_SPECS.items()}
_FILTER_READERS = {int(tb): _struct_reader(spec) for tb, spec in FILTER_SPECS.items()}
_COORDINATE_READER = _struct_reader(COORDINATE_SPEC)
_TAGS_READER = _reader(MAP, False, STR, False, None)


def _as_input(buffer: Any) -> bytes:
    if type(buffer) is bytes:
        return buffer
    if isinstance(buffer, bytes | bytearray | memoryview):
        return bytes(buffer)
    raise TypeError(f"expected a bytes-like object, got {type(buffer).__name__}")


def _body_start(buf: bytes, pos: int) -> int:
    """Check the version byte and body length at ``pos``; the position of the first field.

    The body must end exactly at the end of the buffer.
    """
    end = len(buf)
    if pos >= end:
        raise DecodeError("truncated: version byte expected")
    if buf[pos] == 0:
        raise DecodeError("invalid lpe format version 0")
    n, pos = _uvarint(buf, pos + 1, end)
    if n != end - pos:
        if n > end - pos:
            raise DecodeError("truncated body")
        raise DecodeError(f"{end - pos - n} trailing bytes after the body")
    return pos


def _decode_typed(buffer: Any, readers: dict[int, _StructReader], what: str) -> Any:
    buf = _as_input(buffer)
    if not buf:
        raise DecodeError(f"empty {what}")
    read = readers.get(buf[0])
    if read is None:
        raise DecodeError(f"unknown {what} type {buf[0]}")
    return read(buf, _body_start(buf, 1), len(buf))


def decode(buffer: bytes) -> m.MemberlistMessage:
    """A memberlist message from ``[type byte][body]``."""
    result: m.MemberlistMessage = _decode_typed(buffer, _MEMBERLIST_READERS, "memberlist message")
    return result


def decode_stream(buffer: bytes) -> m.MemberlistMessage:
    """Same as :func:`decode` (packets and streams share one form in lpe)."""
    return decode(buffer)


def decode_serf(buffer: bytes) -> m.SerfMessage:
    """A serf message from a user-message payload ``[serf type][body]``."""
    result: m.SerfMessage = _decode_typed(buffer, _SERF_READERS, "serf message")
    return result


def decode_tags(meta: bytes) -> dict[str, str]:
    """Tags from node meta; meta not starting with 0xFE is legacy: ``{"role": meta}``."""
    buf = _as_input(meta)
    if not buf or buf[0] != TAG_MAGIC:
        return {"role": buf.decode("utf-8", "surrogateescape")}
    tags: dict[str, str]
    tags, _ = _TAGS_READER(buf, _body_start(buf, 1), len(buf))
    return tags


def decode_filter(buffer: bytes) -> m.Filter:
    """One entry of ``MessageQuery.filters``."""
    result: m.Filter = _decode_typed(buffer, _FILTER_READERS, "query filter")
    return result


def decode_coordinate(buffer: bytes) -> m.Coordinate:
    """A Vivaldi coordinate body."""
    buf = _as_input(buffer)
    result: m.Coordinate = _COORDINATE_READER(buf, _body_start(buf, 0), len(buf))
    return result


class LpeCodec:
    """The ``lpe`` codec (pure-Python twin); see docs/wire.md for the byte layout."""

    name = "lpe"
    encode = staticmethod(encode)
    decode = staticmethod(decode)
    encode_stream = staticmethod(encode_stream)
    decode_stream = staticmethod(decode_stream)
    decode_serf = staticmethod(decode_serf)
    encode_tags = staticmethod(encode_tags)
    decode_tags = staticmethod(decode_tags)
    encode_filter = staticmethod(encode_filter)
    decode_filter = staticmethod(decode_filter)
    encode_coordinate = staticmethod(encode_coordinate)
    decode_coordinate = staticmethod(decode_coordinate)
