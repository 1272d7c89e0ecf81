"""The agent RPC dialect: str and bin, incremental reading, garbage rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf.wire import DecodeError
from serf.wire.rpc import RpcDecoder, encode_rpc


def test_header_uses_new_spec_str_and_sorted_keys() -> None:
    encoded = encode_rpc({"Seq": 1, "Command": "handshake"})
    assert encoded == b"\x82\xa7Command\xa9handshake\xa3Seq\x01"


def test_maps_are_sorted_at_every_depth() -> None:
    """Go writes struct fields in order: maps inside lists, tuples and maps are sorted too,
    and the values (a str subclass among them) come through unchanged."""
    import enum

    class Status(enum.StrEnum):
        ALIVE = "alive"

    record = {
        "Members": [{"Tags": {"b": "2", "a": "1"}, "Name": "n"}, ({"z": None, "y": 1.5},)],
        "Event": Status.ALIVE,
    }
    decoder = RpcDecoder()
    decoder.feed(encode_rpc(record))
    (got,) = list(decoder)
    assert list(got) == ["Event", "Members"]
    assert got["Event"] == "alive"
    assert [list(m) for m in got["Members"][:1]] == [["Name", "Tags"]]
    assert list(got["Members"][0]["Tags"]) == ["a", "b"]
    assert got["Members"][1] == [{"y": 1.5, "z": None}] and list(got["Members"][1][0]) == ["y", "z"]


def test_bytes_are_bin_and_long_strings_str8() -> None:
    assert encode_rpc(b"ab") == b"\xc4\x02ab"
    assert encode_rpc("x" * 40)[:2] == b"\xd9\x28"


def test_incremental_reading_in_any_split() -> None:
    stream = encode_rpc({"Command": "event", "Seq": 2}) + encode_rpc(
        {"Name": "deploy", "Payload": b"\x00\x01", "Coalesce": True}
    )
    for cut in range(len(stream) + 1):
        decoder = RpcDecoder()
        decoder.feed(stream[:cut])
        got = list(decoder)
        decoder.feed(stream[cut:])
        got += list(decoder)
        assert got == [
            {"Command": "event", "Seq": 2},
            {"Coalesce": True, "Name": "deploy", "Payload": b"\x00\x01"},
        ]


def test_garbage_raises_decode_error() -> None:
    decoder = RpcDecoder()
    decoder.feed(b"\xc1")  # never used in msgpack
    with pytest.raises(DecodeError):
        list(decoder)


def test_buffer_bound() -> None:
    decoder = RpcDecoder(max_buffer_size=1024)
    with pytest.raises(DecodeError, match="buffer limit"):
        decoder.feed(b"\xdb\xff\xff\xff\xff" + b"x" * 2000)


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_fuzz_only_decode_error(data: bytes) -> None:
    decoder = RpcDecoder(max_buffer_size=4096)
    try:
        decoder.feed(data)
        list(decoder)
    except DecodeError:
        pass
