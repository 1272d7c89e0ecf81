"""The agent's keyring file, as text (reference section 3.14).

How this works: the file is a JSON array of standard, padded base64 strings, primary key
first, written pretty-printed with a 2-space indent and no trailing newline. This module
only turns keys into that text and back; reading and writing the file (mode 0600) is a
driver's job. ``parse_keyring`` checks in Go's order (JSON, then each key's base64, then
emptiness, then key sizes) and raises ``KeyringFileError`` with Go serf's messages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

__all__ = ["KEY_SIZES", "KeyringFileError", "format_keyring", "parse_keyring"]

#: The key sizes memberlist's keyring accepts (AES-128, -192, -256).
KEY_SIZES = (16, 24, 32)


class KeyringFileError(ValueError):
    """The keyring file text is unusable; the message is Go serf's."""


def format_keyring(keys: Iterable[bytes]) -> str:
    """The file text for ``keys`` (primary first): an indented JSON array of base64 strings."""
    encoded = [base64.b64encode(bytes(key)).decode("ascii") for key in keys]
    if not encoded:
        return "[]"  # Go's json.MarshalIndent of an empty slice
    import json  # on use: an agent without a keyring file never loads it (memory per agent)

    return json.dumps(encoded, indent=2)


def _decode_key(text: str) -> bytes:
    # Go's base64.StdEncoding ignores \r and \n, and requires padding and the standard alphabet.
    cleaned = text.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise KeyringFileError(f"Failed to decode key from keyring: {exc}") from None


def parse_keyring(text: str) -> list[bytes]:
    """The keys of a keyring file, primary first.

    Raises KeyringFileError:
    ``Failed to decode keyring file: ...`` (not a JSON array of strings),
    ``Failed to decode key from keyring: ...`` (bad base64),
    ``Keyring file contains no keys`` (empty array or ``null``),
    ``Failed to restore keyring: key size must be 16, 24 or 32 bytes`` (bad key length),
    ``Failed to restore keyring: empty primary key not allowed`` (first key empty).
    """
    import json

    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise KeyringFileError(f"Failed to decode keyring file: {exc}") from None
    if data is None:
        data = []  # Go unmarshals null into a nil slice
    if not isinstance(data, list):
        raise KeyringFileError(
            f"Failed to decode keyring file: cannot unmarshal {type(data).__name__} "
            "into a list of strings"
        )
    # Go leaves a JSON null element as the empty string.
    data = ["" if item is None else item for item in data]
    for item in data:
        if not isinstance(item, str):
            raise KeyringFileError(
                f"Failed to decode keyring file: cannot unmarshal {type(item).__name__} "
                "into a string"
            )
    keys = [_decode_key(item) for item in data]
    if not keys:
        raise KeyringFileError("Keyring file contains no keys")
    if not keys[0]:
        raise KeyringFileError("Failed to restore keyring: empty primary key not allowed")
    for key in keys:
        if len(key) not in KEY_SIZES:
            raise KeyringFileError("Failed to restore keyring: key size must be 16, 24 or 32 bytes")
    return keys
