"""serf.cli.gojson writes what Go's encoding/json MarshalIndent writes (texts taken from Go)."""

from __future__ import annotations

import json

import pytest

from serf.cli.gojson import Struct, marshal_indent, quote


@pytest.mark.parametrize(
    ("value", "go"),
    [
        ("plain", '"plain"'),
        ("<a href=x>&amp;", '"\\u003ca href=x\\u003e\\u0026amp;"'),
        ("h\u00e9\u2028\u2029", '"h\u00e9\\u2028\\u2029"'),
        ('q"\\', '"q\\"\\\\"'),
        ("\b\f\n\r\t\x00\x1f\x7f", '"\\b\\f\\n\\r\\t\\u0000\\u001f\x7f"'),
        (b"\xff\xfeok", '"\\ufffd\\ufffdok"'),  # each invalid byte is one U+FFFD
        (b"\xf0\x90\x80a", '"\\ufffd\\ufffd\\ufffda"'),  # a cut 4-byte sequence: three
        (b"\xed\xa0\x80", '"\\ufffd\\ufffd\\ufffd"'),  # an encoded surrogate is invalid
        ("x\udcffy", '"x\\ufffdy"'),  # surrogateescape'd byte
        ("\ufffd", '"\ufffd"'),  # a real U+FFFD stays as it is
        ("\U0001f600", '"\U0001f600"'),
    ],
)
def test_strings_as_go(value: str | bytes, go: str) -> None:
    assert quote(value) == go


def test_maps_sorted_by_bytes_structs_in_order_empty_and_null() -> None:
    value = Struct(
        members=[
            Struct(name="n", port=7946, tags={"b": "1", "a": "2", "\u00e9": "3", "Z": "4"}),
        ],
        none=None,
        empty_list=[],
        empty_map={},
        flag=True,
    )
    assert marshal_indent(value) == (
        "{\n"
        '  "members": [\n'
        "    {\n"
        '      "name": "n",\n'
        '      "port": 7946,\n'
        '      "tags": {\n'
        '        "Z": "4",\n'
        '        "a": "2",\n'
        '        "b": "1",\n'
        '        "\u00e9": "3"\n'
        "      }\n"
        "    }\n"
        "  ],\n"
        '  "none": null,\n'
        '  "empty_list": [],\n'
        '  "empty_map": {},\n'
        '  "flag": true\n'
        "}"
    )


def test_plain_values_round_trip_through_json() -> None:
    value = {"k": ["a", 1, 2.5, None, False, {"x": "<"}]}
    assert json.loads(marshal_indent(value)) == value


def test_unsupported_types_are_a_clear_error() -> None:
    with pytest.raises(TypeError, match="unsupported type: set"):
        marshal_indent({"s": {1}})
