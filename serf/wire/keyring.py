"""The keyring: the AES keys used to encrypt gossip, primary key first.

How this works (as memberlist's ``Keyring``, reference section 1.6): ``keys[0]`` is the primary
key and is the only one that encrypts; decryption tries every installed key in order, so a key
can be rotated in by installing it everywhere (:meth:`Keyring.add_key`), promoting it
(:meth:`Keyring.use_key`) and finally removing the old one (:meth:`Keyring.remove_key`).
An empty keyring means encryption is off. Keys are 16, 24 or 32 bytes (AES-128/192/256).
Not thread-safe: the core that owns it runs on one task.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["KEY_SIZES", "Keyring", "validate_key"]

#: The accepted key sizes in bytes: AES-128, AES-192, AES-256.
KEY_SIZES = (16, 24, 32)


def validate_key(key: bytes) -> bytes:
    """Return ``key`` as ``bytes`` if it is 16, 24 or 32 bytes long, else raise ValueError."""
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"a key must be bytes, not {type(key).__name__}")
    key = bytes(key)
    if len(key) not in KEY_SIZES:
        raise ValueError(f"key size must be 16, 24 or 32 bytes, got {len(key)} bytes")
    return key


def _decode_base64(text: str | bytes) -> bytes:
    import base64  # on use: a node without keys never loads base64 (memory per agent)

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"key is not valid base64: {exc}") from None


class Keyring:
    """The installed encryption keys, primary first.

    ``Keyring()`` is empty (encryption off). ``Keyring(keys, primary)`` installs ``primary``
    (default: the first of ``keys``) as the primary key, then the other keys in order,
    skipping duplicates. Every key is validated (16, 24 or 32 bytes).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes] = (), primary: bytes | None = None) -> None:
        self._keys: list[bytes] = []
        if primary is None:
            if not keys:
                return
            primary = keys[0]
        elif not primary:
            raise ValueError("empty primary key not allowed")
        self._keys.append(validate_key(primary))
        for key in keys:
            self.add_key(key)

    @classmethod
    def from_base64(
        cls, keys: Iterable[str | bytes] = (), primary: str | bytes | None = None
    ) -> Keyring:
        """A keyring from base64 keys, as in serf's keyring file and ``-encrypt`` flag."""
        raw = [_decode_base64(k) for k in keys]
        return cls(raw, None if primary is None else _decode_base64(primary))

    def to_base64(self) -> list[str]:
        """The installed keys in base64, primary first (serf's keyring file format)."""
        import base64

        return [base64.b64encode(k).decode("ascii") for k in self._keys]

    @property
    def primary_key(self) -> bytes | None:
        """The key that encrypts, or None when the keyring is empty."""
        return self._keys[0] if self._keys else None

    @property
    def keys(self) -> list[bytes]:
        """A copy of the installed keys, primary first."""
        return list(self._keys)

    @property
    def enabled(self) -> bool:
        """True when at least one key is installed (encryption is on)."""
        return bool(self._keys)

    def add_key(self, key: bytes) -> None:
        """Install ``key`` at the end (it becomes primary only if the keyring was empty).

        Installing a key that is already present does nothing.
        """
        key = validate_key(key)
        if key not in self._keys:
            self._keys.append(key)

    def use_key(self, key: bytes) -> None:
        """Make the installed ``key`` the primary key; the others keep their order."""
        key = bytes(key)
        try:
            self._keys.remove(key)
        except ValueError:
            raise ValueError("requested key is not in the keyring") from None
        self._keys.insert(0, key)

    def remove_key(self, key: bytes) -> None:
        """Uninstall ``key``. Removing a key that is not installed does nothing; removing the
        primary key raises ValueError."""
        key = bytes(key)
        if self._keys and self._keys[0] == key:
            raise ValueError("removing the primary key is not allowed")
        if key in self._keys:
            self._keys.remove(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        # Never print key material.
        return f"Keyring(<{len(self._keys)} keys>)"
