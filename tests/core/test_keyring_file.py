"""The keyring file text (reference 3.14)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serf.core.keyring_file import KeyringFileError, format_keyring, parse_keyring

K16 = bytes(range(16))
K32 = bytes(range(100, 132))


def test_format_is_go_marshal_indent() -> None:
    text = format_keyring([K16, K32])
    b16 = base64.b64encode(K16).decode()
    b32 = base64.b64encode(K32).decode()
    assert text == f'[\n  "{b16}",\n  "{b32}"\n]'
    assert not text.endswith("\n")


def test_round_trip_keeps_primary_first() -> None:
    assert parse_keyring(format_keyring([K32, K16])) == [K32, K16]


@given(
    st.lists(
        st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        min_size=1,
        max_size=5,
    )
)
def test_round_trip_property(keys: list[bytes]) -> None:
    assert parse_keyring(format_keyring(keys)) == keys


GO_VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "go_vectors.json").read_text()
)


@pytest.mark.parametrize("vector", GO_VECTORS["keyring"], ids=lambda v: v["name"])
def test_go_written_file(vector: dict[str, Any]) -> None:
    """Keyring files written by tests/govectors the way serf's writeKeyringFile writes them."""
    keys = [bytes.fromhex(k) for k in vector["keys_hex"]]
    assert parse_keyring(vector["text"]) == keys
    assert format_keyring(keys) == vector["text"]


@pytest.mark.parametrize("text", ["[]", "null"])
def test_empty(text: str) -> None:
    with pytest.raises(KeyringFileError, match=r"^Keyring file contains no keys$"):
        parse_keyring(text)


@pytest.mark.parametrize("text", ["", "[", "{}", '"abc"', "[1]", "nope", '{"a": 1}'])
def test_bad_json(text: str) -> None:
    with pytest.raises(KeyringFileError, match=r"^Failed to decode keyring file: "):
        parse_keyring(text)


@pytest.mark.parametrize(
    "key", ["not base64!", "cg8StVXbQJ0gPvMd9pJItg", "cg8S-VXbQJ0gPvMd9pJItg==", "é"]
)
def test_bad_base64(key: str) -> None:
    with pytest.raises(KeyringFileError, match=r"^Failed to decode key from keyring: "):
        parse_keyring(f'["{key}"]')


def test_wrong_key_length() -> None:
    short = base64.b64encode(b"x" * 15).decode()
    with pytest.raises(
        KeyringFileError,
        match=r"^Failed to restore keyring: key size must be 16, 24 or 32 bytes$",
    ):
        parse_keyring(f'["{base64.b64encode(K16).decode()}", "{short}"]')


def test_empty_primary() -> None:
    with pytest.raises(KeyringFileError, match="empty primary key not allowed"):
        parse_keyring('["", "cg8StVXbQJ0gPvMd9pJItg=="]')


def test_is_a_value_error() -> None:
    assert issubclass(KeyringFileError, ValueError)


@given(st.text(max_size=80))
def test_hostile_text_raises_only_keyring_file_error(text: str) -> None:
    try:
        keys = parse_keyring(text)
    except KeyringFileError:
        return
    assert keys and all(len(k) in (16, 24, 32) for k in keys)
