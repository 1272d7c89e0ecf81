"""The ``go`` codec: message bodies byte-identical to Go serf's msgpack dialect.

How this works. Go memberlist and serf encode their structs with go-msgpack's zero-value
``MsgpackHandle`` (reference section 2.2): structs are maps keyed by the Go field name, keys
sorted bytewise; strings *and* ``[]byte`` are old-spec "raw" (fixraw, raw16, raw32; never str8 or
bin); a nil slice, map or pointer is ``c0``; unsigned Go types take the smallest of fixint, cc..cf;
signed Go types take fixint, then only the signed widths (a positive 200 is ``d1 00 c8``).
msgpack-python cannot write that last rule, so the encoder here is a small hand-written writer
driven by one schema table per struct (:data:`_SCHEMAS`). Decoding leans on ``msgpack.unpackb``
(C speed, with its own bounds on lengths and nesting) and then converts each field leniently, as
Go does: raw, str or bin for bytes and strings, an array of small ints for bytes, any int width,
unknown keys skipped, missing keys and nil giving Go's zero value. Strings travel as UTF-8 with
``surrogateescape``, so a Go string that is not valid UTF-8 still round-trips byte for byte.

Everything malformed raises :class:`serf.wire.DecodeError`; a value that does not fit its Go type
raises :class:`serf.wire.EncodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

import msgpack

from serf.wire import messages as m
from serf.wire.errors import DecodeError, EncodeError

__all__ = [
    "GoCodec",
    "MAX_PUSH_PULL_NODES",
    "MAX_USER_STATE_BYTES",
    "TAG_MAGIC_BYTE",
    "PING_VERSION",
    "pack_value",
]

#: Cap on ``pushPullHeader.Nodes`` (memberlist, post-v0.5.4; enforced on purpose).
MAX_PUSH_PULL_NODES = 1_048_576
#: Cap on ``UserStateLen`` and ``UserMsgLen`` (memberlist ``maxPushStateBytes``).
MAX_USER_STATE_BYTES = 20 * 1024 * 1024
#: First byte of serf node meta holding msgpack-encoded tags.
TAG_MAGIC_BYTE = 0xFF
#: Version byte serf puts before the coordinate in ack payloads.
PING_VERSION = 1

_pack_float = struct.Struct(">Bd").pack
_pack_b_h = struct.Struct(">BH").pack
_pack_b_i = struct.Struct(">BI").pack
_pack_b_q = struct.Struct(">BQ").pack
_pack_b_sb = struct.Struct(">Bb").pack
_pack_b_sh = struct.Struct(">Bh").pack
_pack_b_si = struct.Struct(">Bi").pack
_pack_b_sq = struct.Struct(">Bq").pack

_FIXRAW = [bytes([0xA0 | n]) for n in range(32)]
_NIL = b"\xc0"
_TRUE = b"\xc3"
_FALSE = b"\xc2"

# ------------------------------------------------------------------------------------------
# writer primitives (gossip dialect)
# ------------------------------------------------------------------------------------------


def _raw(data: bytes) -> bytes:
    n = len(data)
    if n < 32:
        return _FIXRAW[n] + data
    if n < 0x10000:
        return _pack_b_h(0xDA, n) + data
    if n < 0x100000000:
        return _pack_b_i(0xDB, n) + data
    raise EncodeError(f"byte string of {n} bytes is too long for msgpack")


def _str(value: str) -> bytes:
    if type(value) is not str:
        raise EncodeError(f"expected str, got {type(value).__name__}")
    return _raw(value.encode("utf-8", "surrogateescape"))


def _bytes(value: bytes | None) -> bytes:
    if value is None:
        return _NIL
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EncodeError(f"expected bytes or None, got {type(value).__name__}")
    return _raw(bytes(value))


def _uint(value: int, bits: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(f"expected int, got {type(value).__name__}")
    if value < 0 or value >> bits:
        raise EncodeError(f"{value} does not fit in uint{bits}")
    if value < 0x80:
        return bytes((value,))
    if value < 0x100:
        return bytes((0xCC, value))
    if value < 0x10000:
        return _pack_b_h(0xCD, value)
    if value < 0x100000000:
        return _pack_b_i(0xCE, value)
    return _pack_b_q(0xCF, value)


def _int(value: int, bits: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(f"expected int, got {type(value).__name__}")
    limit = 1 << (bits - 1)
    if not -limit <= value < limit:
        raise EncodeError(f"{value} does not fit in int{bits}")
    if -32 <= value < 0x80:
        return bytes((value & 0xFF,))
    if value > 0:
        # go-msgpack EncodeInt: a positive value above 127 skips int8 and every unsigned form.
        if value <= 0x7FFF:
            return _pack_b_sh(0xD1, value)
        if value <= 0x7FFFFFFF:
            return _pack_b_si(0xD2, value)
        return _pack_b_sq(0xD3, value)
    if value >= -0x80:
        return _pack_b_sb(0xD0, value)
    if value >= -0x8000:
        return _pack_b_sh(0xD1, value)
    if value >= -0x80000000:
        return _pack_b_si(0xD2, value)
    return _pack_b_sq(0xD3, value)


def _bool(value: bool) -> bytes:
    if type(value) is not bool:
        raise EncodeError(f"expected bool, got {type(value).__name__}")
    return _TRUE if value else _FALSE


def _float(value: float) -> bytes:
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise EncodeError(f"expected float, got {type(value).__name__}")
    return _pack_float(0xCB, float(value))


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return _pack_b_h(0xDE, n)
    return _pack_b_i(0xDF, n)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return _pack_b_h(0xDC, n)
    return _pack_b_i(0xDD, n)


def _str_list(value: list[str] | None) -> bytes:
    if value is None:
        return _NIL
    return _array_header(len(value)) + b"".join(_str(v) for v in value)


def _bytes_list(value: list[bytes] | None) -> bytes:
    if value is None:
        return _NIL
    return _array_header(len(value)) + b"".join(_bytes(v) for v in value)


def _float_list(value: list[float] | None) -> bytes:
    if value is None:
        return _NIL
    return _array_header(len(value)) + b"".join(_float(v) for v in value)


def _str_map(value: dict[str, str] | None) -> bytes:
    # Go writes maps in random order; we write them sorted so our output is deterministic.
    if value is None:
        return _NIL
    items = sorted(value.items())
    return _map_header(len(items)) + b"".join(_str(k) + _str(v) for k, v in items)


def _ltime_map(value: dict[str, int] | None) -> bytes:
    if value is None:
        return _NIL
    items = sorted(value.items())
    return _map_header(len(items)) + b"".join(_str(k) + _uint(v, 64) for k, v in items)


# ------------------------------------------------------------------------------------------
# reader primitives (lenient, like go-msgpack decoding into a typed field)
# ------------------------------------------------------------------------------------------


def _as_bytes(value: Any) -> bytes | None:
    if type(value) is bytes or value is None:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        try:
            return bytes(value)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"byte array holds a non-byte value: {exc}") from None
    raise DecodeError(f"expected bytes, got msgpack {type(value).__name__}")


def _as_str(value: Any) -> str:
    if type(value) is bytes:
        return value.decode("utf-8", "surrogateescape")
    if value is None:
        return ""
    raw = _as_bytes(value)
    return "" if raw is None else raw.decode("utf-8", "surrogateescape")


def _as_uint(value: Any, bits: int) -> int:
    if type(value) is int:
        if value < 0 or value >> bits:
            raise DecodeError(f"{value} overflows uint{bits}")
        return value
    if value is None:
        return 0
    raise DecodeError(f"expected an unsigned integer, got msgpack {type(value).__name__}")


def _as_int(value: Any, bits: int) -> int:
    if type(value) is int:
        limit = 1 << (bits - 1)
        if not -limit <= value < limit:
            raise DecodeError(f"{value} overflows int{bits}")
        return value
    if value is None:
        return 0
    raise DecodeError(f"expected an integer, got msgpack {type(value).__name__}")


def _as_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    if value is None:
        return False
    raise DecodeError(f"expected a bool, got msgpack {type(value).__name__}")


def _as_float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if value is None:
        return 0.0
    raise DecodeError(f"expected a float, got msgpack {type(value).__name__}")


def _as_list(value: Any) -> list[Any] | None:
    if value is None or type(value) is list:
        return value
    raise DecodeError(f"expected an array, got msgpack {type(value).__name__}")


def _as_map(value: Any) -> dict[Any, Any] | None:
    if value is None or type(value) is dict:
        return value
    raise DecodeError(f"expected a map, got msgpack {type(value).__name__}")


def _as_str_list(value: Any) -> list[str] | None:
    items = _as_list(value)
    return None if items is None else [_as_str(v) for v in items]


def _as_bytes_list(value: Any) -> list[bytes] | None:
    items = _as_list(value)
    if items is None:
        return None
    # a nil element of a [][]byte decodes to a nil slice, which Go re-encodes as c0
    return [_as_bytes(v) for v in items]  # type: ignore[misc]


def _as_float_list(value: Any) -> list[float] | None:
    items = _as_list(value)
    return None if items is None else [_as_float(v) for v in items]


def _as_str_map(value: Any) -> dict[str, str] | None:
    items = _as_map(value)
    return None if items is None else {_as_str(k): _as_str(v) for k, v in items.items()}


def _as_ltime_map(value: Any) -> dict[str, int] | None:
    items = _as_map(value)
    return None if items is None else {_as_str(k): _as_uint(v, 64) for k, v in items.items()}


# ------------------------------------------------------------------------------------------
# schemas: one row per Go field, in Go's emitted (sorted) order
# ------------------------------------------------------------------------------------------

Encoder = Callable[[Any], bytes]
Decoder = Callable[[Any], Any]


def _kind(
    name: str,
) -> tuple[Encoder, Decoder]:
    table: dict[str, tuple[Encoder, Decoder]] = {
        "str": (_str, _as_str),
        "bytes": (_bytes, _as_bytes),
        # an omitempty []byte: nil and empty are both absent, so both read back as b""
        "obytes": (_bytes, lambda v: _as_bytes(v) or b""),
        "bool": (_bool, _as_bool),
        "float": (_float, _as_float),
        "u8": (lambda v: _uint(v, 8), lambda v: _as_uint(v, 8)),
        "u16": (lambda v: _uint(v, 16), lambda v: _as_uint(v, 16)),
        "u32": (lambda v: _uint(v, 32), lambda v: _as_uint(v, 32)),
        "u64": (lambda v: _uint(v, 64), lambda v: _as_uint(v, 64)),
        # Go's int is 64 bits on every platform Go serf ships for
        "int": (lambda v: _int(v, 64), lambda v: _as_int(v, 64)),
        "i32": (lambda v: _int(v, 32), lambda v: _as_int(v, 32)),
        "strlist": (_str_list, _as_str_list),
        "byteslist": (_bytes_list, _as_bytes_list),
        "floatlist": (_float_list, _as_float_list),
        "strmap": (_str_map, _as_str_map),
        "ltimemap": (_ltime_map, _as_ltime_map),
    }
    return table[name]


class _ListOf:
    """A Go slice of structs (``[]T``) or of struct pointers (``[]*T``, nil elements allowed)."""

    def __init__(self, schema: _Schema, nullable_items: bool) -> None:
        self.schema = schema
        self.nullable_items = nullable_items

    def encode_value(self, value: list[Any] | None) -> bytes:
        if value is None:
            return _NIL
        enc = self.schema.encode
        if not self.nullable_items:
            return _array_header(len(value)) + b"".join([enc(v) for v in value])
        # serf's push/pull carries its 512 user event slots, all nil until user events are
        # sent: that case without a Python-level loop, the rest with the nil test inline
        header = _array_header(len(value))
        if value.count(None) == len(value):
            return header + _NIL * len(value)
        return header + b"".join([_NIL if v is None else enc(v) for v in value])

    def decode_value(self, value: Any) -> list[Any] | None:
        items = _as_list(value)
        if items is None:
            return None
        dec = self.schema.decode
        if not self.nullable_items:
            return [dec(v) for v in items]
        if items.count(None) == len(items):
            return list(items)
        return [None if v is None else dec(v) for v in items]


# Inline fast paths for the common case of each scalar kind; anything else (nil, other widths
# or types, out of range) falls back to the lenient reader, which returns or raises.
_FAST_PATHS: dict[str, str] = {
    "str": "v.decode('utf-8', 'surrogateescape') if type(v) is bytes else _as_str(v)",
    "bytes": "v if type(v) is bytes or v is None else _as_bytes(v)",
    "obytes": "v if type(v) is bytes else (_as_bytes(v) or b'')",
    "bool": "v if type(v) is bool else _as_bool(v)",
    "float": "v if type(v) is float else _as_float(v)",
    "u8": "v if type(v) is int and 0 <= v < 0x100 else _as_uint(v, 8)",
    "u16": "v if type(v) is int and 0 <= v < 0x10000 else _as_uint(v, 16)",
    "u32": "v if type(v) is int and 0 <= v < 0x100000000 else _as_uint(v, 32)",
    "u64": "v if type(v) is int and 0 <= v < 0x10000000000000000 else _as_uint(v, 64)",
    "int": "v if type(v) is int and -0x8000000000000000 <= v < 0x8000000000000000 "
    "else _as_int(v, 64)",
    "i32": "v if type(v) is int and -0x80000000 <= v < 0x80000000 else _as_int(v, 32)",
}


class _Schema:
    """How one Go struct maps onto one dataclass: (Go key, attribute, kind, omitempty) rows.

    ``decode`` is generated once per schema (one ``dict.get`` per Go key, inline fast paths,
    a positional constructor call): the generic loop it replaces cost twice as much.
    """

    __slots__ = ("cls", "decode", "fields", "rows")

    def __init__(
        self, cls: type, rows: list[tuple[str, str, str | _Schema | _ListOf, bool]]
    ) -> None:
        self.cls = cls
        #: the rows as given, sorted bytewise by Go name (the compiled twin builds on them)
        self.fields = sorted(rows, key=lambda r: r[0].encode())
        # (packed key, attribute, encoder, omitempty), in the same order
        self.rows: list[tuple[bytes, str, Encoder, bool]] = []
        readers: dict[str, tuple[bytes, str | Decoder]] = {}
        for key, attr, kind, omitempty in self.fields:
            if not isinstance(kind, str):
                enc: Encoder = kind.encode_value
                reader: str | Decoder = kind.decode_value
            else:
                enc, dec = _kind(kind)
                reader = _FAST_PATHS.get(kind, dec)
            self.rows.append((_raw(key.encode()), attr, enc, omitempty))
            readers[attr] = (key.encode(), reader)
        self.decode: Decoder = self._compile(readers)

    def _compile(self, readers: dict[str, tuple[bytes, str | Decoder]]) -> Decoder:
        namespace: dict[str, Any] = {
            "cls": self.cls,
            "DecodeError": DecodeError,
            "_as_str": _as_str,
            "_as_bytes": _as_bytes,
            "_as_bool": _as_bool,
            "_as_float": _as_float,
            "_as_uint": _as_uint,
            "_as_int": _as_int,
        }
        lines = [
            "def decode(value):",
            "    if type(value) is not dict:",
            "        if value is not None:",
            f"            raise DecodeError('{self.cls.__name__}: expected a map, got '"
            " + type(value).__name__)",
            "        value = {}",
            "    g = value.get",
        ]
        if is_dataclass(self.cls):
            order = [f.name for f in fields(self.cls)]
            positional = sorted(order) == sorted(readers)
        else:
            order, positional = list(readers), False
        for i, attr in enumerate(order):
            key, reader = readers[attr]
            lines.append(f"    v = g({key!r})")
            if isinstance(reader, str):
                lines.append(f"    a{i} = {reader}")
            else:
                namespace[f"read{i}"] = reader
                lines.append(f"    a{i} = read{i}(v)")
        if positional:
            args = ", ".join(f"a{i}" for i in range(len(order)))
        else:
            args = ", ".join(f"{attr}=a{i}" for i, attr in enumerate(order))
        lines.append(f"    return cls({args})")
        exec("\n".join(lines), namespace)  # generated from the schema rows above only
        decoder: Decoder = namespace["decode"]
        return decoder

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, self.cls):
            raise EncodeError(f"expected {self.cls.__name__}, got {type(obj).__name__}")
        parts = []
        for key, attr, enc, omitempty in self.rows:
            value = getattr(obj, attr)
            if omitempty and not value:
                continue
            parts.append(key)
            parts.append(enc(value))
        return _map_header(len(parts) // 2) + b"".join(parts)

    def encode_value(self, obj: Any) -> bytes:
        return _NIL if obj is None else self.encode(obj)

    def decode_value(self, value: Any) -> Any:
        return None if value is None else self.decode(value)


S, B, U8, U16, U32, U64 = "str", "bytes", "u8", "u16", "u32", "u64"

PING = _Schema(
    m.Ping,
    [
        ("SeqNo", "seq_no", U32, False),
        ("Node", "node", S, False),
        ("SourceAddr", "source_addr", "obytes", True),
        ("SourceNode", "source_node", S, True),
        ("SourcePort", "source_port", U16, True),
    ],
)
INDIRECT_PING = _Schema(
    m.IndirectPingReq,
    [
        ("SeqNo", "seq_no", U32, False),
        ("Target", "target", B, False),
        ("Port", "port", U16, False),
        ("Node", "node", S, False),
        ("Nack", "nack", "bool", False),
        ("SourceAddr", "source_addr", "obytes", True),
        ("SourceNode", "source_node", S, True),
        ("SourcePort", "source_port", U16, True),
    ],
)
ACK = _Schema(m.AckResp, [("SeqNo", "seq_no", U32, False), ("Payload", "payload", B, False)])
NACK = _Schema(m.NackResp, [("SeqNo", "seq_no", U32, False)])
ERR = _Schema(m.ErrResp, [("Error", "error", S, False)])
SUSPECT = _Schema(
    m.Suspect,
    [
        ("Incarnation", "incarnation", U32, False),
        ("Node", "node", S, False),
        ("From", "from_", S, False),
    ],
)
DEAD = _Schema(
    m.Dead,
    [
        ("Incarnation", "incarnation", U32, False),
        ("Node", "node", S, False),
        ("From", "from_", S, False),
    ],
)
ALIVE = _Schema(
    m.Alive,
    [
        ("Incarnation", "incarnation", U32, False),
        ("Node", "node", S, False),
        ("Addr", "addr", B, False),
        ("Port", "port", U16, False),
        ("Meta", "meta", B, False),
        ("Vsn", "vsn", B, False),
    ],
)
PUSH_PULL_HEADER = _Schema(
    m.PushPullHeader,
    [
        ("Nodes", "nodes", "int", False),
        ("UserStateLen", "user_state_len", "int", False),
        ("Join", "join", "bool", False),
    ],
)
PUSH_NODE_STATE = _Schema(
    m.PushNodeState,
    [
        ("Name", "name", S, False),
        ("Addr", "addr", B, False),
        ("Port", "port", U16, False),
        ("Meta", "meta", B, False),
        ("Incarnation", "incarnation", U32, False),
        ("State", "state", "int", False),
        ("Vsn", "vsn", B, False),
    ],
)
USER_MSG_HEADER = _Schema(m.UserMsgHeader, [("UserMsgLen", "user_msg_len", "int", False)])
COMPRESS = _Schema(m.Compress, [("Algo", "algo", U8, False), ("Buf", "buf", B, False)])

LEAVE = _Schema(
    m.MessageLeave,
    [("LTime", "ltime", U64, False), ("Node", "node", S, False), ("Prune", "prune", "bool", False)],
)
JOIN = _Schema(m.MessageJoin, [("LTime", "ltime", U64, False), ("Node", "node", S, False)])
USER_EVENT_ITEM = _Schema(
    m.UserEvent, [("Name", "name", S, False), ("Payload", "payload", B, False)]
)


class _UserEventsSchema(_Schema):
    """``userEvents`` with its encode written out for the exact classes (the generic rows
    otherwise): serf's push/pull carries 512 of these once the event ring is full (after
    17 s at 30 events/s), ~4 ms per push/pull through the rows, each way."""

    __slots__ = ()

    def encode(self, obj: Any) -> bytes:
        events = obj.events if type(obj) is m.UserEvents else None
        if type(events) is not list:
            return super().encode(obj)
        parts = [_USER_EVENTS_HEAD, _array_header(len(events))]
        for ev in events:
            if type(ev) is not m.UserEvent:
                return super().encode(obj)
            parts += (_USER_EVENT_NAME, _str(ev.name), _USER_EVENT_PAYLOAD, _bytes(ev.payload))
        parts += (_USER_EVENTS_LTIME, _uint(obj.ltime, 64))
        return b"".join(parts)


# the rows' keys as _Schema packs them, in its (sorted) order; no field is omitempty
_USER_EVENTS_HEAD = _map_header(2) + _raw(b"Events")
_USER_EVENTS_LTIME = _raw(b"LTime")
_USER_EVENT_NAME = _map_header(2) + _raw(b"Name")
_USER_EVENT_PAYLOAD = _raw(b"Payload")

USER_EVENTS = _UserEventsSchema(
    m.UserEvents,
    [("LTime", "ltime", U64, False), ("Events", "events", _ListOf(USER_EVENT_ITEM, False), False)],
)
SERF_PUSH_PULL = _Schema(
    m.MessagePushPull,
    [
        ("LTime", "ltime", U64, False),
        ("StatusLTimes", "status_ltimes", "ltimemap", False),
        ("LeftMembers", "left_members", "strlist", False),
        ("EventLTime", "event_ltime", U64, False),
        ("Events", "events", _ListOf(USER_EVENTS, True), False),
        ("QueryLTime", "query_ltime", U64, False),
    ],
)
USER_EVENT = _Schema(
    m.MessageUserEvent,
    [
        ("LTime", "ltime", U64, False),
        ("Name", "name", S, False),
        ("Payload", "payload", B, False),
        ("CC", "cc", "bool", False),
    ],
)
QUERY = _Schema(
    m.MessageQuery,
    [
        ("LTime", "ltime", U64, False),
        ("ID", "id", U32, False),
        ("Addr", "addr", B, False),
        ("Port", "port", U16, False),
        ("SourceNode", "source_node", S, False),
        ("Filters", "filters", "byteslist", False),
        ("Flags", "flags", U32, False),
        ("RelayFactor", "relay_factor", U8, False),
        ("Timeout", "timeout", "int", False),
        ("Name", "name", S, False),
        ("Payload", "payload", B, False),
    ],
)
QUERY_RESPONSE = _Schema(
    m.MessageQueryResponse,
    [
        ("LTime", "ltime", U64, False),
        ("ID", "id", U32, False),
        ("From", "from_", S, False),
        ("Flags", "flags", U32, False),
        ("Payload", "payload", B, False),
    ],
)
MEMBER = _Schema(
    m.Member,
    [
        ("Name", "name", S, False),
        ("Addr", "addr", B, False),
        ("Port", "port", U16, False),
        ("Tags", "tags", "strmap", False),
        ("Status", "status", "int", False),
        ("ProtocolMin", "protocol_min", U8, False),
        ("ProtocolMax", "protocol_max", U8, False),
        ("ProtocolCur", "protocol_cur", U8, False),
        ("DelegateMin", "delegate_min", U8, False),
        ("DelegateMax", "delegate_max", U8, False),
        ("DelegateCur", "delegate_cur", U8, False),
    ],
)
KEY_REQUEST = _Schema(m.MessageKeyRequest, [("Key", "key", B, False)])
KEY_RESPONSE = _Schema(
    m.MessageKeyResponse,
    [
        ("Result", "result", "bool", False),
        ("Message", "message", S, False),
        ("Keys", "keys", "strlist", False),
        ("PrimaryKey", "primary_key", S, False),
    ],
)
UDP_ADDR = _Schema(
    m.UDPAddr,
    [("IP", "ip", B, False), ("Port", "port", "int", False), ("Zone", "zone", S, False)],
)


class _RelayHeader:
    __slots__ = ("dest_addr", "dest_name")

    def __init__(self, dest_addr: m.UDPAddr | None = None, dest_name: str = "") -> None:
        self.dest_addr = dest_addr
        self.dest_name = dest_name


RELAY_HEADER = _Schema(
    _RelayHeader,
    [("DestAddr", "dest_addr", UDP_ADDR, False), ("DestName", "dest_name", S, False)],
)
FILTER_TAG = _Schema(m.FilterTag, [("Tag", "tag", S, False), ("Expr", "expr", S, False)])
COORDINATE = _Schema(
    m.Coordinate,
    [
        ("Vec", "vec", "floatlist", False),
        ("Error", "error", "float", False),
        ("Adjustment", "adjustment", "float", False),
        ("Height", "height", "float", False),
    ],
)

_MEMBERLIST_SCHEMAS: dict[type, _Schema] = {
    m.Ping: PING,
    m.IndirectPingReq: INDIRECT_PING,
    m.AckResp: ACK,
    m.NackResp: NACK,
    m.ErrResp: ERR,
    m.Suspect: SUSPECT,
    m.Alive: ALIVE,
    m.Dead: DEAD,
    m.Compress: COMPRESS,
}
_SERF_SCHEMAS: dict[type, _Schema] = {
    m.MessageLeave: LEAVE,
    m.MessageJoin: JOIN,
    m.MessagePushPull: SERF_PUSH_PULL,
    m.MessageUserEvent: USER_EVENT,
    m.MessageQuery: QUERY,
    m.MessageQueryResponse: QUERY_RESPONSE,
    m.MessageKeyRequest: KEY_REQUEST,
    m.MessageKeyResponse: KEY_RESPONSE,
}
_DECODE_MEMBERLIST: dict[int, _Schema] = {
    cls.TYPE: schema  # type: ignore[attr-defined]
    for cls, schema in _MEMBERLIST_SCHEMAS.items()
}
_DECODE_SERF: dict[int, _Schema] = {
    cls.TYPE: schema  # type: ignore[attr-defined]
    for cls, schema in _SERF_SCHEMAS.items()
}

# ------------------------------------------------------------------------------------------
# msgpack reading with errors mapped to DecodeError
# ------------------------------------------------------------------------------------------


_unpackb = msgpack.unpackb
# msgpack's own errors (FormatError, StackError, OutOfData) derive from ValueError
_MSGPACK_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, MemoryError)


def _unpack_one(data: bytes | memoryview) -> tuple[Any, bytes]:
    """The first msgpack object in ``data`` and the bytes after it (Go ignores trailing bytes)."""
    if not data:
        raise DecodeError("missing message body")
    try:
        return msgpack.unpackb(data, raw=True, strict_map_key=False), b""
    except msgpack.ExtraData as extra:
        return extra.unpacked, bytes(extra.extra)
    except _MSGPACK_ERRORS as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from None


# ------------------------------------------------------------------------------------------
# the codec
# ------------------------------------------------------------------------------------------


class GoCodec:
    """Go serf's gossip msgpack dialect; see the module docstring and docs/wire.md."""

    name = "go"

    # -- memberlist ---------------------------------------------------------------------

    def encode(self, message: m.Message) -> bytes:
        """``[type byte][msgpack body]`` exactly as Go memberlist/serf would write it."""
        cls = type(message)
        schema = _MEMBERLIST_SCHEMAS.get(cls) or _SERF_SCHEMAS.get(cls)
        if schema is not None:
            return bytes((message.TYPE,)) + schema.encode(message)
        if isinstance(message, m.UserMsg):
            return b"\x08" + bytes(message.payload)
        if isinstance(message, m.PushPull):
            return self._encode_push_pull(message)
        if isinstance(message, m.MessageConflictResponse):
            return b"\x06" + MEMBER.encode_value(message.member)
        if isinstance(message, m.MessageRelay):
            header = _RelayHeader(message.dest_addr, message.dest_name)
            return b"\x09" + RELAY_HEADER.encode(header) + bytes(message.payload)
        raise EncodeError(f"the go codec cannot encode {cls.__name__}")

    def encode_stream(self, message: m.MemberlistMessage) -> bytes:
        """Like :meth:`encode`, but a UserMsg is ``[8][userMsgHeader][payload]``."""
        if type(message) is m.UserMsg:
            payload = bytes(message.payload)
            return b"\x08" + USER_MSG_HEADER.encode(m.UserMsgHeader(len(payload))) + payload
        return self.encode(message)

    def _encode_push_pull(self, msg: m.PushPull) -> bytes:
        header = m.PushPullHeader(len(msg.states), len(msg.user_state), msg.join)
        parts = [b"\x06", PUSH_PULL_HEADER.encode(header)]
        parts.extend(PUSH_NODE_STATE.encode(s) for s in msg.states)
        parts.append(bytes(msg.user_state))
        return b"".join(parts)

    def decode(self, buffer: bytes) -> m.MemberlistMessage:
        """A memberlist message; type 8 is the packet form (payload follows the type byte)."""
        # the hot path (one gossip message) inlined: one lookup, one unpackb, one decode
        schema = _DECODE_MEMBERLIST.get(buffer[0]) if buffer else None
        if schema is None:
            return self._decode(buffer, stream=False)
        try:
            obj = _unpackb(buffer[1:], raw=True, strict_map_key=False)
        except msgpack.ExtraData as extra:
            obj = extra.unpacked
        except _MSGPACK_ERRORS as exc:
            raise DecodeError(f"malformed msgpack: {exc}") from None
        return schema.decode(obj)  # type: ignore[no-any-return]

    def decode_stream(self, buffer: bytes) -> m.MemberlistMessage:
        """A memberlist message as read from a stream (type 8 carries a userMsgHeader)."""
        return self._decode(buffer, stream=True)

    def _decode(self, buffer: bytes, stream: bool) -> m.MemberlistMessage:
        if not buffer:
            raise DecodeError("missing message type byte")
        kind = buffer[0]
        schema = _DECODE_MEMBERLIST.get(kind)
        if schema is not None:
            obj, _ = _unpack_one(memoryview(buffer)[1:])
            return schema.decode(obj)  # type: ignore[no-any-return]
        if kind == m.MessageType.USER:
            if not stream:
                return m.UserMsg(bytes(buffer[1:]))
            return self._decode_stream_user(buffer)
        if kind == m.MessageType.PUSH_PULL:
            return self._decode_push_pull(buffer)
        raise DecodeError(f"unknown memberlist message type {kind}")

    def _decode_stream_user(self, buffer: bytes) -> m.UserMsg:
        obj, rest = _unpack_one(memoryview(buffer)[1:])
        header = USER_MSG_HEADER.decode(obj)
        size = header.user_msg_len
        if size < 0 or size > MAX_USER_STATE_BYTES:
            raise DecodeError(f"user message length {size} is out of range")
        if len(rest) < size:
            raise DecodeError(f"truncated user message: {len(rest)} of {size} bytes")
        return m.UserMsg(rest[:size])

    def _decode_push_pull(self, buffer: bytes) -> m.PushPull:
        obj, rest = _unpack_one(memoryview(buffer)[1:])
        header = PUSH_PULL_HEADER.decode(obj)
        if header.nodes < 0 or header.nodes > MAX_PUSH_PULL_NODES:
            raise DecodeError(f"push/pull node count {header.nodes} is out of range")
        if header.user_state_len < 0 or header.user_state_len > MAX_USER_STATE_BYTES:
            raise DecodeError(
                f"push/pull user state length {header.user_state_len} is out of range"
            )
        # The node states are `nodes` consecutive msgpack maps: read them in one C call by
        # putting an array header in front (msgpack bounds the count by the buffer size).
        try:
            raw_states = _unpackb(
                _pack_b_i(0xDD, header.nodes) + rest, raw=True, strict_map_key=False
            )
            rest = b""
        except msgpack.ExtraData as extra:
            raw_states, rest = extra.unpacked, bytes(extra.extra)
        except _MSGPACK_ERRORS as exc:
            raise DecodeError(f"truncated or malformed push/pull node states: {exc}") from None
        decode_state = PUSH_NODE_STATE.decode
        states = [decode_state(state) for state in raw_states]
        user_state = rest[: header.user_state_len]
        if len(user_state) < header.user_state_len:
            raise DecodeError(
                f"truncated push/pull user state: {len(user_state)} of {header.user_state_len}"
            )
        return m.PushPull(header.join, states, user_state)

    # -- serf ---------------------------------------------------------------------------

    def decode_serf(self, buffer: bytes) -> m.SerfMessage:
        """A serf message from a user-message payload ``[serf type][msgpack body]``."""
        if not buffer:
            raise DecodeError("missing serf message type byte")
        kind = buffer[0]
        schema = _DECODE_SERF.get(kind)
        body = memoryview(buffer)[1:]
        if schema is not None:
            obj, _ = _unpack_one(body)
            return schema.decode(obj)  # type: ignore[no-any-return]
        if kind == m.SerfMessageType.CONFLICT_RESPONSE:
            obj, _ = _unpack_one(body)
            return m.MessageConflictResponse(MEMBER.decode_value(obj))
        if kind == m.SerfMessageType.RELAY:
            obj, rest = _unpack_one(body)
            header = RELAY_HEADER.decode(obj)
            if not rest:
                raise DecodeError("relay message carries no inner message")
            dest = header.dest_addr if header.dest_addr is not None else m.UDPAddr(None, 0, "")
            return m.MessageRelay(dest, header.dest_name, rest)
        raise DecodeError(f"unknown serf message type {kind}")

    # -- values ---------------------------------------------------------------------------

    def encode_tags(self, tags: dict[str, str]) -> bytes:
        """``0xFF`` + msgpack map (keys sorted; Go's own order is random)."""
        return bytes((TAG_MAGIC_BYTE,)) + _str_map(tags)

    def decode_tags(self, meta: bytes) -> dict[str, str]:
        """Tags from node meta; meta without the magic byte is the legacy ``role`` tag."""
        if not meta or meta[0] != TAG_MAGIC_BYTE:
            return {"role": bytes(meta).decode("utf-8", "surrogateescape")}
        obj, _ = _unpack_one(memoryview(meta)[1:])
        tags = _as_str_map(obj)
        return {} if tags is None else tags

    def encode_filter(self, flt: m.Filter) -> bytes:
        """``[filter type][msgpack]``: a node filter is an array of names."""
        if type(flt) is m.FilterNode:
            return b"\x00" + _str_list(flt.nodes)
        if type(flt) is m.FilterTag:
            return b"\x01" + FILTER_TAG.encode(flt)
        raise EncodeError(f"not a query filter: {type(flt).__name__}")

    def decode_filter(self, buffer: bytes) -> m.Filter:
        """One query filter entry."""
        if not buffer:
            raise DecodeError("empty query filter")
        obj, _ = _unpack_one(memoryview(buffer)[1:])
        if buffer[0] == m.FilterType.NODE:
            return m.FilterNode(_as_str_list(obj))
        if buffer[0] == m.FilterType.TAG:
            return FILTER_TAG.decode(obj)  # type: ignore[no-any-return]
        raise DecodeError(f"unknown query filter type {buffer[0]}")

    def encode_coordinate(self, coord: m.Coordinate) -> bytes:
        """msgpack ``Coordinate{Adjustment, Error, Height, Vec}``."""
        return COORDINATE.encode(coord)

    def decode_coordinate(self, buffer: bytes) -> m.Coordinate:
        """A coordinate body."""
        obj, _ = _unpack_one(buffer)
        return COORDINATE.decode(obj)  # type: ignore[no-any-return]


def pack_value(value: Any) -> bytes:
    """Encode a plain Python value in the gossip dialect (str and bytes as raw, dicts sorted).

    Ints are written as Go's signed ``int`` would be. Useful for payloads that are not structs.
    """
    if value is None:
        return _NIL
    if isinstance(value, bool):
        return _bool(value)
    if isinstance(value, int):
        return _int(value, 64) if value < 2**63 else _uint(value, 64)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _raw(bytes(value))
    if isinstance(value, list | tuple):
        return _array_header(len(value)) + b"".join(pack_value(v) for v in value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: pack_value(kv[0]))
        return _map_header(len(items)) + b"".join(pack_value(k) + pack_value(v) for k, v in items)
    raise EncodeError(f"cannot encode {type(value).__name__}")
