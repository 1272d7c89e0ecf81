"""``serf monitor``'s ``Event Info`` values as Go's CLI prints them (``%#v`` of what Go's
msgpack decoder makes of the agent's stream records).

The expected lines were printed by Go serf v0.11.0's ``serf monitor`` against a pyserf agent:
a member joining with a tag, and a user event with Lamport time 201. Go's decoder turns a
msgpack positive fixint (0..127) into an int64 (printed in decimal) and any wider unsigned
integer into a uint64 (printed in hex), nested maps into ``map[interface {}]interface {}``
with sorted keys, and nested bytes into ``[]uint8``."""

from __future__ import annotations

from serf.cli.events import _go_value
from serf.telemetry import go_quote

GO_MEMBERS = (
    '[]interface {}{map[interface {}]interface {}{"Addr":[]uint8{0x7f, 0x0, 0x0, 0x1}, '
    '"DelegateCur":5, "DelegateMax":5, "DelegateMin":2, "Name":"a2", "Port":0x461b, '
    '"ProtocolCur":2, "ProtocolMax":5, "ProtocolMin":1, "Status":"alive", '
    '"Tags":map[interface {}]interface {}{"role":"web"}}}'
)


def test_member_records_print_as_gos_monitor() -> None:
    member = {
        "Name": "a2",
        "Addr": b"\x7f\x00\x00\x01",
        "Port": 17947,
        "Tags": {"role": "web"},
        "Status": "alive",
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 5,
    }
    assert _go_value([member]) == GO_MEMBERS


def test_scalars_print_as_gos_monitor() -> None:
    assert _go_value(201) == "0xc9"  # LTime 201: a msgpack uint8, a Go uint64
    assert _go_value(127) == "127" and _go_value(1) == "1" and _go_value(-3) == "-3"
    assert _go_value(True) == "true" and _go_value(False) == "false"
    assert _go_value("user") == '"user"' and _go_value('a"\n') == '"a\\"\\n"'
    assert _go_value(b"hi") == "[]byte{0x68, 0x69}" and _go_value(b"") == "[]byte{}"
    assert _go_value({}) == "map[interface {}]interface {}{}"
    assert _go_value([]) == "[]interface {}{}"


#: (value, what Go's fmt.Sprintf("%#v", string(value)) printed: go1.26 strconv.Quote)
GO_QUOTED = [
    (b"\xff\xfeok", '"\\xff\\xfeok"'),  # bytes that are not UTF-8
    ("h\u00e9\u2028\t\x01".encode(), '"h\u00e9\\u2028\\t\\x01"'),
    (b"\x07\x08\x0c\x0b\x7f", '"\\a\\b\\f\\v\\x7f"'),
    ("\u00a0\u00ad \U000e0001".encode(), '"\\u00a0\\u00ad \\U000e0001"'),  # not IsPrint
    ("\ufffd\U0001f600".encode(), '"\ufffd\U0001f600"'),
    (b"\xed\xa0\x80", '"\\xed\\xa0\\x80"'),  # a UTF-16 surrogate in UTF-8: not UTF-8
    (b'a"\\', '"a\\"\\\\"'),
]


def test_strings_print_as_gos_strconv_quote() -> None:
    for raw, go in GO_QUOTED:
        assert _go_value(raw.decode("utf-8", "surrogateescape")) == go, raw  # as RPC decodes
        assert go_quote(raw) == go, raw
    assert _go_value({"t": "\udcff\u2028"}) == 'map[interface {}]interface {}{"t":"\\xff\\u2028"}'
