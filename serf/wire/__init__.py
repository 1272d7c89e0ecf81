"""The wire layer: message dataclasses, codecs (lpe, go) and the shared framing.

* :mod:`serf.wire.messages` - one slotted dataclass per Go struct.
* :func:`get_codec` - ``"lpe"`` (our fast native format, the default) or ``"go"`` (byte-exact
  with Go serf's msgpack dialect); a user may register their own.
* Framing shared by every codec: compound messages, CRC, label header, LZW compression, AES-GCM
  encryption with a :class:`Keyring`, stream framing.
"""

from __future__ import annotations

from serf.wire import messages
from serf.wire.codec import Codec, available_codecs, get_codec, register_codec
from serf.wire.errors import DecodeError, EncodeError, WireError

__all__ = [
    "Codec",
    "DecodeError",
    "EncodeError",
    "WireError",
    "available_codecs",
    "get_codec",
    "messages",
    "register_codec",
]
