"""The wire layer: message dataclasses, codecs (lpe, go) and the shared framing.

* :mod:`serf.wire.messages` - one slotted dataclass per Go struct.
* :func:`get_codec` - ``"lpe"`` (our fast native format, the default) or ``"go"`` (byte-exact
  with Go serf's msgpack dialect); a user may register their own.
* Framing shared by every codec: compound messages, CRC, label header, LZW compression, AES-GCM
  encryption with a :class:`Keyring`, stream framing.
"""

from __future__ import annotations

from serf.wire import lzw, messages
from serf.wire.codec import Codec, available_codecs, get_codec, register_codec
from serf.wire.encryption import (
    MAX_PUSH_STATE_BYTES,
    decrypt_payload,
    encrypt_payload,
    encrypted_length,
)
from serf.wire.errors import DecodeError, EncodeError, WireError
from serf.wire.framing import (
    DecodedPacket,
    PacketFramer,
    StreamMessage,
    StreamReader,
    StreamRejected,
    add_crc,
    add_label,
    make_compound,
    make_compounds,
    split_compound,
    strip_crc,
    strip_label,
)
from serf.wire.keyring import Keyring
from serf.wire.lzw import MAX_DECOMPRESSED_BYTES

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "MAX_PUSH_STATE_BYTES",
    "Codec",
    "DecodeError",
    "DecodedPacket",
    "EncodeError",
    "Keyring",
    "PacketFramer",
    "StreamMessage",
    "StreamReader",
    "StreamRejected",
    "WireError",
    "add_crc",
    "add_label",
    "available_codecs",
    "decrypt_payload",
    "encrypt_payload",
    "encrypted_length",
    "get_codec",
    "lzw",
    "make_compound",
    "make_compounds",
    "messages",
    "register_codec",
    "split_compound",
    "strip_crc",
    "strip_label",
]
