"""Where a plaintext stream message ends, found as its bytes arrive, in linear time.

How this works: a plaintext stream message (``[type][body]``) carries no outer length, so
the stream reader must learn from the codec when it has the whole message. Decoding the
buffer after every read, as it once did, costs O(n) per read and O(n^2) for a message
trickled a byte at a time (1.3 MB cost 8 s of CPU). A *sizer* instead reads only the
lengths the bytes announce and remembers how far it got, so each byte is looked at once;
the reader decodes once, when the sizer says the message is complete.

* ``lpe``: ``[type][version][uvarint body length][body]``: the length is in the header.
* ``go``: one msgpack object after the type byte, except a push/pull (a header announcing
  ``Nodes`` node states and ``UserStateLen`` raw bytes) and a stream user message (a header
  announcing ``UserMsgLen`` raw bytes), as Go memberlist reads them. :class:`MsgpackSkipper`
  walks msgpack headers without building objects, jumping over string and binary payloads.

Bytes after the announced end are ignored whatever way TCP split them (Go reads exactly one
message from a stream too). A codec of a user's own may provide ``stream_sizer()``; without
one the reader falls back to decoding what it has.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from serf.wire.errors import DecodeError

__all__ = ["GoStreamSizer", "LpeStreamSizer", "MsgpackSkipper", "StreamSizer", "sizer_for"]

# fixed sizes by first byte for the msgpack scalars (0 = variable or container)
_FIXED: dict[int, int] = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9}
_FIXED.update({0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9})
_FIXED.update({0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18})
# byte-counted payloads: first byte -> width of the length field (ext adds a type byte)
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
_EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}
# containers with a counted header: first byte -> (width of the count, objects per entry)
_COUNTED = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


class StreamSizer(Protocol):
    """Finds the end of one plaintext stream message as its bytes arrive."""

    def extent(self, buf: bytes | bytearray) -> int | None:
        """The message's total length once known, else None (more bytes needed).

        ``buf`` is everything received so far (it only grows between calls). Raises
        DecodeError when the bytes cannot be the start of a message within the bound.
        """
        ...


class MsgpackSkipper:
    """Skips ``count`` consecutive msgpack objects, resumable: feed a growing buffer.

    ``pos`` is where scanning resumes; ``end()`` is the offset after the last object once
    all are complete. Declared counts are checked against ``limit`` (each object takes at
    least one byte), so a header announcing billions of entries fails at once.
    """

    __slots__ = ("limit", "pos", "remaining")

    def __init__(self, pos: int, count: int, limit: int) -> None:
        self.pos = pos
        self.remaining = count
        self.limit = limit
        self._check()

    def _check(self) -> None:
        if self.pos + self.remaining > self.limit:
            raise DecodeError(f"stream message would exceed {self.limit} bytes")

    def end(self, buf: bytes | bytearray) -> int | None:
        """The end offset of the objects, or None while more bytes are needed."""
        pos, remaining, size = self.pos, self.remaining, len(buf)
        try:
            while remaining:
                if pos >= size:
                    return None
                b = buf[pos]
                if b <= 0x7F or b >= 0xE0:
                    pos += 1
                elif b <= 0x8F:
                    pos += 1
                    remaining += 2 * (b & 0x0F)
                elif b <= 0x9F:
                    pos += 1
                    remaining += b & 0x0F
                elif b <= 0xBF:
                    pos += 1 + (b & 0x1F)
                elif b in _FIXED:
                    pos += _FIXED[b]
                elif b in _SIZED or b in _EXT:
                    width = _SIZED.get(b) or _EXT[b]
                    if pos + 1 + width > size:
                        return None
                    n = int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
                    pos += 1 + width + n + (1 if b in _EXT else 0)
                elif b in _COUNTED:
                    width, per = _COUNTED[b]
                    if pos + 1 + width > size:
                        return None
                    remaining += per * int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
                    pos += 1 + width
                else:
                    raise DecodeError(f"invalid msgpack byte 0x{b:02x} at offset {pos}")
                remaining -= 1
                if pos + remaining > self.limit:
                    raise DecodeError(f"stream message would exceed {self.limit} bytes")
            return pos if pos <= size else None
        finally:
            self.pos, self.remaining = pos, remaining


class LpeStreamSizer:
    """``[type][version][uvarint n][n body bytes]``: the header says it all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def extent(self, buf: bytes | bytearray) -> int | None:
        """The total length once the header is in, else None."""
        if len(buf) < 2:
            return None
        if buf[1] == 0:
            raise DecodeError("invalid lpe format version 0")
        n, shift, pos = 0, 0, 2
        while True:
            if pos >= len(buf):
                return None
            b = buf[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise DecodeError("varint overflows 64 bits")
        total = pos + n
        if total > self.limit:
            raise DecodeError(f"stream message of {total} bytes exceeds {self.limit}")
        return total


_PUSH_PULL = 6
_USER = 8


class GoStreamSizer:
    """Go memberlist's stream forms; see the module docstring."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._skip: MsgpackSkipper | None = None
        self._phase = 0  # 0 type byte, 1 header or single object, 2 node states, 3 done
        self._kind = 0
        self._tail = 0  # raw bytes after the last object
        self._total: int | None = None

    def extent(self, buf: bytes | bytearray) -> int | None:
        """The total length once known, else None."""
        if self._total is None:
            self._total = self._advance(buf)
        return self._total

    def _advance(self, buf: bytes | bytearray) -> int | None:
        if self._phase == 0:
            if not buf:
                return None
            self._kind = buf[0]
            self._skip = MsgpackSkipper(1, 1, self.limit)
            self._phase = 1
        skip = self._skip
        assert skip is not None
        end = skip.end(buf)
        if end is None:
            return None
        if self._phase == 1 and self._kind in (_PUSH_PULL, _USER):
            header = _header(bytes(buf[1:end]))
            if self._kind == _USER:
                self._tail = _length(header, b"UserMsgLen")
                return self._finish(end)
            nodes = _length(header, b"Nodes")
            self._tail = _length(header, b"UserStateLen")
            self._skip = MsgpackSkipper(end, nodes, self.limit - self._tail)
            self._phase = 2
            end = self._skip.end(buf)
            if end is None:
                return None
        return self._finish(end)

    def _finish(self, end: int) -> int:
        self._phase = 3
        total = end + self._tail
        if total > self.limit:
            raise DecodeError(f"stream message of {total} bytes exceeds {self.limit}")
        return total


def _header(raw: bytes) -> dict[Any, Any]:
    import msgpack  # the go codec's headers only: the cores load without msgpack

    try:
        obj = msgpack.unpackb(raw, raw=True, strict_map_key=False)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"malformed stream header: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError("stream header is not a map")
    return obj


def _length(header: dict[Any, Any], key: bytes) -> int:
    value = header.get(key, header.get(key.decode(), 0))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DecodeError(f"stream header {key.decode()} is not a valid count: {value!r}")
    return value


def sizer_for(codec: object, limit: int) -> StreamSizer | None:
    """The sizer for ``codec`` (its own ``stream_sizer(limit)`` first), or None."""
    own = getattr(codec, "stream_sizer", None)
    if callable(own):
        sizer: StreamSizer = own(limit)
        return sizer
    # a codec's class is defined by a module that is already imported, so the twins are
    # looked up in sys.modules, never imported here: an agent speaking the go codec once
    # imported the pure lpe twin at its first stream (~90 ms of compiling on a host without
    # bytecode caches, paid inside every fresh agent's join)
    go = sys.modules.get("serf.wire.go")  # the compiled GoCodec subclasses this one
    if go is not None and isinstance(codec, go.GoCodec):
        return GoStreamSizer(limit)
    for name in ("serf._fast.lpe", "serf.wire.lpe"):
        lpe = sys.modules.get(name)
        if lpe is not None and isinstance(codec, lpe.LpeCodec):
            return LpeStreamSizer(limit)
    return None
