"""LZW compression compatible with Go's ``compress/lzw`` (LSB order, literal width 8).

How this works (reference section 2.8; the format is GIF-style LZW):

* Codes 0-255 are literal bytes, 256 is *clear* (reset the dictionary), 257 is *EOF*, and the
  first dictionary code is 258. Codes start 9 bits wide and grow to at most 12 bits.
* Codes are packed least-significant-bit first: each code is OR-ed into a bit accumulator above
  the bits already there, and whole bytes are taken from the bottom of the accumulator.
* ``hi`` counts the codes handed out so far (it starts at 257). Encoder and decoder both bump
  ``hi`` after each non-clear code and widen the codes when ``hi`` reaches ``1 << width``.
* The encoder resets (emits *clear* at the current width and starts over at 9 bits and code 258)
  when ``hi`` reaches 4095, so it never assigns code 4095. The decoder mirrors Go's reader: at 12
  bits with a full table it stops adding entries until it sees a *clear* code.
* Newer Go versions emit a *clear* code first; older ones do not. :func:`compress` does either
  (``leading_clear``) and :func:`decompress` accepts both.

The encoder keeps a dict from ``prefix_code << 8 | next_byte`` to the code of that string; the
decoder keeps a list of the byte strings each code expands to. Both are plain Python and handle
a 1,400-byte packet in a fraction of a millisecond.
"""

from __future__ import annotations

from serf.wire.errors import DecodeError

__all__ = ["MAX_DECOMPRESSED_BYTES", "compress", "decompress"]

#: memberlist's ``maxDecompressedBytes`` (2 x maxPushStateBytes): 40 MiB.
MAX_DECOMPRESSED_BYTES = 40 * 1024 * 1024

_CLEAR = 256
_EOF = 257
_FIRST_CODE = 258
_MAX_WIDTH = 12
_MAX_CODE = (1 << _MAX_WIDTH) - 1  # 4095: the encoder resets when hi reaches it

# Literal expansions, shared by every decode; index 256 and 257 are never looked up.
_LITERALS: list[bytes] = [bytes((i,)) for i in range(256)] + [b"", b""]


def compress(data: bytes, *, leading_clear: bool = True) -> bytes:
    """Compress ``data`` exactly as Go's ``lzw.NewWriter(w, lzw.LSB, 8)`` would.

    ``leading_clear=True`` matches current Go (a clear code first, even for empty input);
    ``False`` matches older Go releases. Both forms decode with :func:`decompress`.
    """
    out = bytearray()
    acc = 0  # pending bits, least significant first
    nbits = 0
    width = 9
    hi = _EOF
    overflow = 1 << width
    if leading_clear:
        acc = _CLEAR
        nbits = 9
    if not data:
        acc |= _EOF << nbits
        nbits += width
        while nbits > 0:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
        return bytes(out)

    table: dict[int, int] = {}
    get = table.get
    append = out.append
    code = data[0]
    for byte in memoryview(data)[1:]:
        key = code << 8 | byte
        found = get(key)
        if found is not None:
            code = found
            continue
        # Emit the longest match so far; the current byte starts the next match.
        acc |= code << nbits
        nbits += width
        if nbits >= 16:
            append(acc & 0xFF)
            append((acc >> 8) & 0xFF)
            acc >>= 16
            nbits -= 16
        code = byte
        hi += 1
        if hi == overflow:
            width += 1
            overflow <<= 1
        if hi == _MAX_CODE:
            # Table full: emit a clear code at the current width and start over.
            acc |= _CLEAR << nbits
            nbits += width
            width = 9
            hi = _EOF
            overflow = 1 << width
            table.clear()
            continue
        table[key] = hi

    # The pending match, then EOF (at the width in force after the pending code bumped hi).
    acc |= code << nbits
    nbits += width
    hi += 1
    if hi == overflow:
        width += 1
        overflow <<= 1
    if hi == _MAX_CODE:
        acc |= _CLEAR << nbits
        nbits += width
        width = 9
    acc |= _EOF << nbits
    nbits += width
    while nbits > 0:
        append(acc & 0xFF)
        acc >>= 8
        nbits -= 8
    return bytes(out)


def decompress(data: bytes, *, max_size: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress a Go ``compress/lzw`` (LSB, literal width 8) stream, with or without a
    leading clear code.

    Raises :class:`~serf.wire.DecodeError` on an invalid code, a stream that ends before its
    EOF code, or output larger than ``max_size`` bytes (checked as the output grows, so a
    hostile stream cannot make us build more than ``max_size`` bytes). Bytes after the EOF
    code are ignored, as Go does.
    """
    buf = bytes(data)
    end = len(buf)
    pos = 0
    acc = 0
    nbits = 0
    width = 9
    mask = (1 << width) - 1
    hi = _EOF
    overflow = 1 << width
    table = _LITERALS.copy()
    append = table.append
    prev: bytes | None = None  # expansion of the previous code; None right after a clear
    out = bytearray()
    size = 0
    while True:
        if nbits < width:
            if pos + 1 < end:
                acc |= (buf[pos] | buf[pos + 1] << 8) << nbits
                pos += 2
                nbits += 16
            elif pos < end:
                acc |= buf[pos] << nbits
                pos += 1
                nbits += 8
            if nbits < width:
                raise DecodeError("lzw: stream ends before its EOF code")
        code = acc & mask
        acc >>= width
        nbits -= width

        if code < _CLEAR:
            entry = table[code]
        elif code == _CLEAR:
            del table[_FIRST_CODE:]
            width = 9
            mask = (1 << width) - 1
            hi = _EOF
            overflow = 1 << width
            prev = None
            continue
        elif code == _EOF:
            return bytes(out)
        elif code < len(table):
            entry = table[code]
        elif code == hi and prev is not None:
            # The code being defined right now: previous string + its own first byte.
            entry = prev + prev[:1]
        else:
            raise DecodeError(f"lzw: invalid code {code}")

        size += len(entry)
        if size > max_size:
            raise DecodeError(f"decompressed message is larger than limit ({max_size} bytes)")
        out += entry
        if prev is not None:
            append(prev + entry[:1])
        prev = entry
        hi += 1
        if hi >= overflow:
            if width == _MAX_WIDTH:
                # Table full: stop adding entries until the next clear code.
                prev = None
                hi -= 1
            else:
                width += 1
                mask = (1 << width) - 1
                overflow <<= 1
