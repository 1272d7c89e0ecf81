"""AES-GCM encryption of packets and stream frames, in memberlist's byte layout.

How this works (reference section 2.7):

* An encrypted blob is ``[vsn: 1 byte][nonce: 12 bytes][ciphertext || 16-byte GCM tag]``. The
  key (16, 24 or 32 bytes) picks AES-128/192/256.
* ``vsn 1`` (protocol >= 2, the default) seals the plaintext as is: overhead exactly 29 bytes.
  ``vsn 0`` (protocol 1) first pads the plaintext PKCS#7-style to a multiple of 16 (always 1-16
  pad bytes, each equal to the pad count): overhead up to 45 bytes.
* Packets: the blob replaces the whole packet; the GCM additional data is the label bytes.
* Streams: ``[0x0A][uint32 BE len(blob)][blob]``; the additional data is those 5 header bytes
  followed by the label bytes. A receiver refuses frames longer than 20 MiB
  (memberlist's ``maxPushStateBytes``).
* Decryption tries every key in order (primary first) and fails with "no installed keys could
  decrypt the message" when none opens the blob.

Nonces come from an injected ``token_bytes(n)`` callable (``secrets.token_bytes`` in production,
a seeded function in simulations). ``AESGCM`` objects are cached per key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from serf.wire.errors import DecodeError, EncodeError
from serf.wire.keyring import validate_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENCRYPT_MSG",
    "MAX_ENCRYPTION_VERSION",
    "MAX_PUSH_STATE_BYTES",
    "NONCE_SIZE",
    "STREAM_HEADER_SIZE",
    "TAG_SIZE",
    "TokenBytes",
    "decrypt_payload",
    "decrypt_stream_frame",
    "encrypt_payload",
    "encrypt_stream_frame",
    "encrypted_length",
    "encryption_overhead",
    "Buffer",
    "stream_frame_length",
]

#: A source of cryptographic randomness: ``token_bytes(n)`` returns ``n`` random bytes.
TokenBytes = Callable[[int], bytes]
#: What the decoders accept: any bytes-like object.
Buffer = bytes | bytearray | memoryview

VERSION_SIZE = 1
NONCE_SIZE = 12
TAG_SIZE = 16
BLOCK_SIZE = 16
MAX_ENCRYPTION_VERSION = 1
#: memberlist's ``encryptMsg`` type byte, the first byte of an encrypted stream frame.
ENCRYPT_MSG = 10
#: ``[0x0A][uint32 BE length]``
STREAM_HEADER_SIZE = 5
#: memberlist's ``maxPushStateBytes``: the largest encrypted stream frame accepted (20 MiB).
MAX_PUSH_STATE_BYTES = 20 * 1024 * 1024

_CACHE_LIMIT = 64
_aeads: dict[bytes, AESGCM] = {}
_invalid_tag: type[Exception] | None = None


def _cipher() -> tuple[type[AESGCM], type[Exception]]:
    """``cryptography``'s AESGCM and InvalidTag, imported on first use: the cores load (in
    Pyodide, say) without it, and only encryption needs it."""
    global _invalid_tag
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise RuntimeError("encryption needs the 'cryptography' package") from exc
    _invalid_tag = InvalidTag
    return AESGCM, InvalidTag


def _aead(key: bytes) -> AESGCM:
    if type(key) is not bytes:
        key = bytes(key)
    aead = _aeads.get(key)
    if aead is None:
        key = validate_key(key)
        if len(_aeads) >= _CACHE_LIMIT:
            _aeads.clear()
        aead = _aeads[key] = _cipher()[0](key)
    return aead


def _check_version(vsn: int) -> None:
    if vsn not in (0, 1):
        raise ValueError(f"encryption version must be 0 or 1, got {vsn}")


def encrypted_length(vsn: int, n: int) -> int:
    """The size of the blob that seals ``n`` plaintext bytes with encryption version ``vsn``."""
    if vsn >= 1:
        return VERSION_SIZE + NONCE_SIZE + n + TAG_SIZE
    padding = BLOCK_SIZE - n % BLOCK_SIZE
    return VERSION_SIZE + NONCE_SIZE + n + padding + TAG_SIZE


def encryption_overhead(vsn: int) -> int:
    """The most bytes encryption adds to a packet (29 for vsn 1, 45 for vsn 0), as the packet
    budget counts it (memberlist's ``encryptOverhead``)."""
    return VERSION_SIZE + NONCE_SIZE + TAG_SIZE + (BLOCK_SIZE if vsn == 0 else 0)


def encrypt_payload(
    vsn: int, key: bytes, plaintext: bytes, aad: bytes, token_bytes: TokenBytes
) -> bytes:
    """Seal ``plaintext`` into ``[vsn][nonce][ciphertext||tag]`` with additional data ``aad``.

    ``token_bytes(12)`` supplies the nonce. Raises ValueError for a bad version or key.
    """
    _check_version(vsn)
    aead = _aead(key)
    nonce = token_bytes(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"token_bytes({NONCE_SIZE}) returned {len(nonce)} bytes")
    if vsn == 0:
        pad = BLOCK_SIZE - len(plaintext) % BLOCK_SIZE
        plaintext = bytes(plaintext) + bytes((pad,)) * pad
    sealed = aead.encrypt(nonce, plaintext, aad or None)
    return bytes((vsn,)) + nonce + sealed


def decrypt_payload(keys: Iterable[bytes], blob: Buffer, aad: bytes) -> bytes:
    """Open a blob made by :func:`encrypt_payload`, trying each of ``keys`` in order.

    Raises :class:`DecodeError` for an empty blob, a version above 1, a blob shorter than
    ``encrypted_length(vsn, 0)``, bad vsn-0 padding, or "no installed keys could decrypt the
    message" when no key opens it.
    """
    if not blob:
        raise DecodeError("cannot decrypt empty payload")
    vsn = blob[0]
    if vsn > MAX_ENCRYPTION_VERSION:
        raise DecodeError(f"unsupported encryption version {vsn}")
    if len(blob) < encrypted_length(vsn, 0):
        raise DecodeError(f"payload is too small to decrypt: {len(blob)} bytes")
    view = memoryview(blob)
    nonce = bytes(view[VERSION_SIZE : VERSION_SIZE + NONCE_SIZE])
    sealed = view[VERSION_SIZE + NONCE_SIZE :]
    invalid_tag = _invalid_tag or _cipher()[1]
    for key in keys:
        try:
            plain = _aead(key).decrypt(nonce, sealed, aad or None)
        except invalid_tag:
            continue
        if vsn == 0:
            return _unpad(plain)
        return plain
    raise DecodeError("no installed keys could decrypt the message")


def _unpad(plain: bytes) -> bytes:
    pad = plain[-1] if plain else 0
    if not 1 <= pad <= BLOCK_SIZE or pad > len(plain) or plain[-pad:] != bytes((pad,)) * pad:
        raise DecodeError("invalid PKCS#7 padding in a version 0 encrypted message")
    return plain[:-pad]


def encrypt_stream_frame(
    vsn: int, key: bytes, plaintext: bytes, label: bytes, token_bytes: TokenBytes
) -> bytes:
    """``[0x0A][uint32 BE len(blob)][blob]``, the blob sealed with AAD = header + label."""
    size = encrypted_length(vsn, len(plaintext))
    if size > 0xFFFFFFFF:
        raise EncodeError(f"stream message of {len(plaintext)} bytes is too large to encrypt")
    header = bytes((ENCRYPT_MSG,)) + size.to_bytes(4, "big")
    return header + encrypt_payload(vsn, key, plaintext, header + bytes(label), token_bytes)


def stream_frame_length(header: Buffer, *, max_size: int = MAX_PUSH_STATE_BYTES) -> int:
    """The blob length declared by the 5-byte header ``[0x0A][uint32 BE]`` of a stream frame.

    Raises :class:`DecodeError` when the header is short, is not an encrypt frame, or declares
    more than ``max_size`` bytes (memberlist: "remote node state is larger than limit").
    """
    if len(header) < STREAM_HEADER_SIZE:
        raise DecodeError("truncated encrypted stream header")
    if header[0] != ENCRYPT_MSG:
        raise DecodeError(f"not an encrypted stream frame (type byte {header[0]})")
    size = int.from_bytes(header[1:STREAM_HEADER_SIZE], "big")
    if size > max_size:
        raise DecodeError(f"remote node state is larger than limit ({size} > {max_size} bytes)")
    return size


def decrypt_stream_frame(
    keys: Iterable[bytes],
    frame: Buffer,
    label: bytes,
    *,
    max_size: int = MAX_PUSH_STATE_BYTES,
) -> tuple[bytes, int]:
    """Open the encrypted stream frame at the start of ``frame``.

    Returns the plaintext and the number of bytes of ``frame`` the frame occupied. Raises
    :class:`DecodeError` when the frame is truncated, over ``max_size``, or cannot be opened.
    """
    size = stream_frame_length(frame[:STREAM_HEADER_SIZE], max_size=max_size)
    end = STREAM_HEADER_SIZE + size
    if len(frame) < end:
        raise DecodeError(f"truncated encrypted stream frame: {len(frame) - 5} of {size} bytes")
    view = memoryview(frame)
    aad = bytes(view[:STREAM_HEADER_SIZE]) + bytes(label)
    return decrypt_payload(keys, view[STREAM_HEADER_SIZE:end], aad), end
