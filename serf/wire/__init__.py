"""The wire layer: message dataclasses, codecs (lpe, go) and the shared framing.

* :mod:`serf.wire.messages` - one slotted dataclass per Go struct.
* :func:`get_codec` - ``"lpe"`` (our fast native format, the default) or ``"go"`` (byte-exact
  with Go serf's msgpack dialect); a user may register their own.
* Framing shared by every codec: compound messages, CRC, label header, LZW compression, AES-GCM
  encryption with a :class:`Keyring`, stream framing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf._lazy import lazy_exports
from serf.wire import lzw, messages

if TYPE_CHECKING:
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

# name -> (module, attribute), loaded on first use (``import serf.wire.messages`` then runs
# no framing, codec or encryption module): must list exactly the TYPE_CHECKING imports above
_LAZY: dict[str, tuple[str, str]] = {
    "Codec": ("serf.wire.codec", "Codec"),
    "available_codecs": ("serf.wire.codec", "available_codecs"),
    "get_codec": ("serf.wire.codec", "get_codec"),
    "register_codec": ("serf.wire.codec", "register_codec"),
    "MAX_PUSH_STATE_BYTES": ("serf.wire.encryption", "MAX_PUSH_STATE_BYTES"),
    "decrypt_payload": ("serf.wire.encryption", "decrypt_payload"),
    "encrypt_payload": ("serf.wire.encryption", "encrypt_payload"),
    "encrypted_length": ("serf.wire.encryption", "encrypted_length"),
    "DecodeError": ("serf.wire.errors", "DecodeError"),
    "EncodeError": ("serf.wire.errors", "EncodeError"),
    "WireError": ("serf.wire.errors", "WireError"),
    "DecodedPacket": ("serf.wire.framing", "DecodedPacket"),
    "PacketFramer": ("serf.wire.framing", "PacketFramer"),
    "StreamMessage": ("serf.wire.framing", "StreamMessage"),
    "StreamReader": ("serf.wire.framing", "StreamReader"),
    "StreamRejected": ("serf.wire.framing", "StreamRejected"),
    "add_crc": ("serf.wire.framing", "add_crc"),
    "add_label": ("serf.wire.framing", "add_label"),
    "make_compound": ("serf.wire.framing", "make_compound"),
    "make_compounds": ("serf.wire.framing", "make_compounds"),
    "split_compound": ("serf.wire.framing", "split_compound"),
    "strip_crc": ("serf.wire.framing", "strip_crc"),
    "strip_label": ("serf.wire.framing", "strip_label"),
    "Keyring": ("serf.wire.keyring", "Keyring"),
    "MAX_DECOMPRESSED_BYTES": ("serf.wire.lzw", "MAX_DECOMPRESSED_BYTES"),
}

if not TYPE_CHECKING:  # hidden from type checkers, so an unknown name is an error there
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
