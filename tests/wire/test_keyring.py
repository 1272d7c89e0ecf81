"""The keyring: key order, validation and rotation (reference section 1.6)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf.wire.keyring import Keyring, validate_key

K16 = bytes(range(16))
K24 = bytes(range(24))
K32 = bytes(range(32))
K16B = bytes(range(100, 116))


def test_empty_keyring_means_encryption_off() -> None:
    ring = Keyring()
    assert ring.primary_key is None
    assert ring.keys == []
    assert not ring.enabled
    assert len(ring) == 0


def test_primary_first_then_others_without_duplicates() -> None:
    ring = Keyring([K24, K32, K16, K24], primary=K16)
    assert ring.keys == [K16, K24, K32]
    assert ring.primary_key == K16
    assert ring.enabled


def test_first_key_is_primary_by_default() -> None:
    assert Keyring([K32, K16]).primary_key == K32


def test_primary_only() -> None:
    assert Keyring(primary=K24).keys == [K24]


@pytest.mark.parametrize("size", [0, 1, 15, 17, 23, 31, 33, 64])
def test_bad_key_sizes_are_named(size: int) -> None:
    key = bytes(size)
    with pytest.raises(ValueError, match=f"got {size} bytes"):
        validate_key(key)
    if size:
        with pytest.raises(ValueError, match="16, 24 or 32"):
            Keyring([key])
        with pytest.raises(ValueError, match=f"got {size} bytes"):
            Keyring(primary=key)
    with pytest.raises(ValueError, match=f"got {size} bytes"):
        Keyring([K16]).add_key(key)


def test_empty_primary_is_refused() -> None:
    with pytest.raises(ValueError, match="empty primary key"):
        Keyring([K16], primary=b"")


def test_add_key_appends_and_is_idempotent() -> None:
    ring = Keyring([K16])
    ring.add_key(K32)
    ring.add_key(K32)
    ring.add_key(K16)
    assert ring.keys == [K16, K32]


def test_add_key_to_empty_ring_makes_it_primary() -> None:
    ring = Keyring()
    ring.add_key(K24)
    assert ring.primary_key == K24


def test_use_key_moves_to_front_keeping_order() -> None:
    ring = Keyring([K16, K24, K32, K16B])
    ring.use_key(K32)
    assert ring.keys == [K32, K16, K24, K16B]
    with pytest.raises(ValueError, match="not in the keyring"):
        ring.use_key(bytes(16))


def test_remove_key() -> None:
    ring = Keyring([K16, K24, K32])
    with pytest.raises(ValueError, match="primary key"):
        ring.remove_key(K16)
    ring.remove_key(K24)
    ring.remove_key(bytes(16))  # not installed: no-op
    assert ring.keys == [K16, K32]


def test_keys_is_a_copy() -> None:
    ring = Keyring([K16])
    ring.keys.append(K32)
    assert ring.keys == [K16]


def test_rotation() -> None:
    ring = Keyring([K16])
    ring.add_key(K32)
    ring.use_key(K32)
    ring.remove_key(K16)
    assert ring.keys == [K32]


def test_base64() -> None:
    b64 = [base64.b64encode(k).decode() for k in (K16, K32)]
    ring = Keyring.from_base64(b64, primary=b64[1])
    assert ring.keys == [K32, K16]
    assert ring.to_base64() == [b64[1], b64[0]]
    with pytest.raises(ValueError, match="base64"):
        Keyring.from_base64(["not base64!!"])
    with pytest.raises(ValueError, match="got 3 bytes"):
        Keyring.from_base64(["AAAA"])


def test_repr_hides_keys() -> None:
    assert K16.hex() not in repr(Keyring([K16]))
    assert "1 keys" in repr(Keyring([K16]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "use", "remove"]),
            st.sampled_from([K16, K24, K32, K16B]),
        ),
        max_size=20,
    )
)
def test_operations_keep_invariants(ops: list[tuple[str, bytes]]) -> None:
    ring = Keyring([K16])
    model = [K16]
    for op, key in ops:
        if op == "add":
            ring.add_key(key)
            if key not in model:
                model.append(key)
        elif op == "use":
            if key in model:
                ring.use_key(key)
                model.remove(key)
                model.insert(0, key)
            else:
                with pytest.raises(ValueError):
                    ring.use_key(key)
        elif key == model[0]:
            with pytest.raises(ValueError):
                ring.remove_key(key)
        else:
            ring.remove_key(key)
            if key in model:
                model.remove(key)
        assert ring.keys == model
        assert len(set(ring.keys)) == len(ring.keys)
        assert ring.primary_key == model[0]
