"""``serf monitor``'s ``Event Info`` values as Go's CLI prints them (``%#v`` of what Go's
msgpack decoder makes of the agent's stream records).

The expected lines were printed by Go serf v0.11.0's ``serf monitor`` against a pyserf agent:
a member joining with a tag, and a user event with Lamport time 201. Go's decoder turns a
msgpack positive fixint (0..127) into an int64 (printed in decimal) and any wider unsigned
integer into a uint64 (printed in hex), nested maps into ``map[interface {}]interface {}``
with sorted keys, and nested bytes into ``[]uint8``."""

from __future__ import annotations

from serf.cli.events import _go_value

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
