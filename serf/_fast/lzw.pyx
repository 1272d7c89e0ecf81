# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""LZW compatible with Go's ``compress/lzw``, compiled twin of :mod:`serf.wire.lzw`.

Same names, same bytes out, same :class:`~serf.wire.DecodeError` (with the same messages) for
the same bad input; see the pure twin for the format.

How this works
--------------
* Encoder: the pure twin's dict ``prefix_code << 8 | byte -> code`` becomes an open-addressing
  hash table of ``uint32`` cells ``key << 12 | code`` (as Go's writer does), sized for the input
  (at most 16,384 cells) and cleared with ``memset`` on each reset. Bits go into a 64-bit
  accumulator and whole bytes out into a C buffer sized for the worst case up front.
* Decoder: every entry of the dictionary is a substring of the output already written (the
  previous string followed by the first byte of the current one, which sits right after it),
  so the table holds only ``(offset, length)`` into the output buffer and decoding a code is
  one ``memcpy``. The size bound is checked before each entry is written, as the pure twin
  does, so a hostile stream cannot make us allocate more than ``max_size`` (+ one entry).
* Inputs the fast paths do not cover (``compress`` of anything but bytes/bytearray,
  ``max_size`` that is not an ``int``) go to the pure twin, so behaviour is identical there too.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import sys

from serf.wire import lzw as _pure
from serf.wire.errors import DecodeError

__all__ = list(_pure.__all__)

#: memberlist's ``maxDecompressedBytes`` (2 x maxPushStateBytes): 40 MiB.
MAX_DECOMPRESSED_BYTES = _pure.MAX_DECOMPRESSED_BYTES

cdef enum:
    CLEAR = 256
    EOF_CODE = 257
    FIRST_CODE = 258
    MAX_WIDTH = 12
    MAX_CODE = 4095  # the encoder resets when hi reaches it
    TABLE_CODES = 4096
    MAX_HASH_BITS = 14

cdef Py_ssize_t _SSIZE_MAX = sys.maxsize


cdef bytes _encode(const uint8_t *data, Py_ssize_t n, bint leading_clear):
    cdef Py_ssize_t cap = (n + n // 256 + 8) * 2 + 16  # >= 12 bits per code, clears, EOF
    cdef uint8_t *out = <uint8_t *>PyMem_Malloc(cap)
    cdef uint32_t *table = NULL
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t i
    cdef uint64_t acc = 0
    cdef int nbits = 0
    cdef int width = 9
    cdef uint32_t hi = EOF_CODE
    cdef uint32_t overflow = 1 << 9
    cdef uint32_t code, byte, key, cell, h
    cdef uint32_t mask
    cdef Py_ssize_t hash_cells
    cdef int hash_bits = 10
    if out == NULL:
        raise MemoryError()
    try:
        if leading_clear:
            acc = CLEAR
            nbits = 9
        if n == 0:
            acc |= (<uint64_t>EOF_CODE) << nbits
            nbits += width
            while nbits > 0:
                out[pos] = acc & 0xFF
                pos += 1
                acc >>= 8
                nbits -= 8
            return PyBytes_FromStringAndSize(<char *>out, pos)

        # At most min(n, 3838) entries live at once: keep the load factor at or below 1/4.
        while hash_bits < MAX_HASH_BITS and (1 << hash_bits) < 4 * n:
            hash_bits += 1
        hash_cells = 1 << hash_bits
        mask = <uint32_t>(hash_cells - 1)
        table = <uint32_t *>PyMem_Malloc(hash_cells * sizeof(uint32_t))
        if table == NULL:
            raise MemoryError()
        memset(table, 0, hash_cells * sizeof(uint32_t))

        code = data[0]
        for i in range(1, n):
            byte = data[i]
            key = code << 8 | byte
            h = ((key >> 12) ^ key) & mask
            while True:
                cell = table[h]
                if cell == 0:
                    break
                if (cell >> 12) == key:
                    break
                h = (h + 1) & mask
            if cell != 0:
                code = cell & 0xFFF
                continue
            # Emit the longest match so far; the current byte starts the next match.
            acc |= (<uint64_t>code) << nbits
            nbits += width
            while nbits >= 8:
                out[pos] = acc & 0xFF
                pos += 1
                acc >>= 8
                nbits -= 8
            code = byte
            hi += 1
            if hi == overflow:
                width += 1
                overflow <<= 1
            if hi == MAX_CODE:
                # Table full: emit a clear code at the current width and start over.
                acc |= (<uint64_t>CLEAR) << nbits
                nbits += width
                width = 9
                hi = EOF_CODE
                overflow = 1 << 9
                memset(table, 0, hash_cells * sizeof(uint32_t))
                continue
            table[h] = key << 12 | hi

        # The pending match, then EOF (at the width in force after the pending code bumped hi).
        acc |= (<uint64_t>code) << nbits
        nbits += width
        while nbits >= 8:
            out[pos] = acc & 0xFF
            pos += 1
            acc >>= 8
            nbits -= 8
        hi += 1
        if hi == overflow:
            width += 1
            overflow <<= 1
        if hi == MAX_CODE:
            acc |= (<uint64_t>CLEAR) << nbits
            nbits += width
            width = 9
        acc |= (<uint64_t>EOF_CODE) << nbits
        nbits += width
        while nbits > 0:
            out[pos] = acc & 0xFF
            pos += 1
            acc >>= 8
            nbits -= 8
        return PyBytes_FromStringAndSize(<char *>out, pos)
    finally:
        PyMem_Free(out)
        PyMem_Free(table)


def compress(data, *, leading_clear=True):
    """Compress ``data`` exactly as Go's ``lzw.NewWriter(w, lzw.LSB, 8)`` would.

    ``leading_clear=True`` matches current Go (a clear code first, even for empty input);
    ``False`` matches older Go releases. Both forms decode with :func:`decompress`.
    """
    if type(data) is bytes:
        return _encode(<const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                       bool(leading_clear))
    if type(data) is bytearray:
        return _encode(<const uint8_t *>PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data),
                       bool(leading_clear))
    return _pure.compress(data, leading_clear=leading_clear)


cdef object _too_large(object max_size):
    return DecodeError(f"decompressed message is larger than limit ({max_size} bytes)")


cdef bytes _decode(const uint8_t *buf, Py_ssize_t end, Py_ssize_t limit, object max_size):
    cdef Py_ssize_t offs[TABLE_CODES]
    cdef uint32_t lens[TABLE_CODES]
    cdef Py_ssize_t pos = 0
    cdef uint64_t acc = 0
    cdef int nbits = 0
    cdef int width = 9
    cdef uint32_t mask = (1 << 9) - 1
    cdef uint32_t hi = EOF_CODE
    cdef uint32_t overflow = 1 << 9
    cdef uint32_t tlen = FIRST_CODE  # len(table) in the pure twin
    cdef uint32_t code
    cdef Py_ssize_t prev_off = 0
    cdef Py_ssize_t prev_len = 0  # 0: no previous string (right after a clear)
    cdef Py_ssize_t entry_len, new_cap
    cdef Py_ssize_t size = 0
    cdef Py_ssize_t cap = 4 * end + 64
    cdef uint8_t *out
    cdef uint8_t *grown
    if 0 <= limit < cap:
        cap = limit + 1
    out = <uint8_t *>PyMem_Malloc(cap)
    if out == NULL:
        raise MemoryError()
    try:
        while True:
            if nbits < width:
                if pos + 1 < end:
                    acc |= (<uint64_t>(buf[pos] | (<uint32_t>buf[pos + 1]) << 8)) << nbits
                    pos += 2
                    nbits += 16
                elif pos < end:
                    acc |= (<uint64_t>buf[pos]) << nbits
                    pos += 1
                    nbits += 8
                if nbits < width:
                    raise DecodeError("lzw: stream ends before its EOF code")
            code = <uint32_t>(acc & mask)
            acc >>= width
            nbits -= width

            if code < CLEAR:
                entry_len = 1
            elif code == CLEAR:
                tlen = FIRST_CODE
                width = 9
                mask = (1 << 9) - 1
                hi = EOF_CODE
                overflow = 1 << 9
                prev_len = 0
                continue
            elif code == EOF_CODE:
                return PyBytes_FromStringAndSize(<char *>out, size)
            elif code < tlen:
                entry_len = lens[code]
            elif code == hi and prev_len != 0:
                # The code being defined right now: previous string + its own first byte.
                entry_len = prev_len + 1
            else:
                raise DecodeError(f"lzw: invalid code {code}")

            if entry_len > limit - size:
                raise _too_large(max_size)
            if size + entry_len > cap:
                new_cap = cap * 2
                if new_cap < size + entry_len:
                    new_cap = size + entry_len
                if limit >= 0 and new_cap > limit:
                    new_cap = limit
                grown = <uint8_t *>PyMem_Realloc(out, new_cap)
                if grown == NULL:
                    raise MemoryError()
                out = grown
                cap = new_cap
            if code < CLEAR:
                out[size] = <uint8_t>code
            elif code < tlen:
                memcpy(out + size, out + offs[code], entry_len)
            else:
                # prev sits right before us: copy it, then its first byte.
                memcpy(out + size, out + prev_off, prev_len)
                out[size + prev_len] = out[prev_off]
            if prev_len != 0:
                # prev + entry[:1] is the output from prev_off on, one byte longer than prev.
                offs[tlen] = prev_off
                lens[tlen] = <uint32_t>(prev_len + 1)
                tlen += 1
            prev_off = size
            prev_len = entry_len
            size += entry_len
            hi += 1
            if hi >= overflow:
                if width == MAX_WIDTH:
                    # Table full: stop adding entries until the next clear code.
                    prev_len = 0
                    hi -= 1
                else:
                    width += 1
                    mask = (1 << width) - 1
                    overflow <<= 1
    finally:
        PyMem_Free(out)


def decompress(data, *, max_size=MAX_DECOMPRESSED_BYTES):
    """Decompress a Go ``compress/lzw`` (LSB, literal width 8) stream, with or without a
    leading clear code.

    Raises :class:`~serf.wire.DecodeError` on an invalid code, a stream that ends before its
    EOF code, or output larger than ``max_size`` bytes (checked as the output grows, so a
    hostile stream cannot make us build more than ``max_size`` bytes). Bytes after the EOF
    code are ignored, as Go does.
    """
    cdef Py_ssize_t limit
    cdef bytes buf
    if type(max_size) is not int and type(max_size) is not bool:
        return _pure.decompress(data, max_size=max_size)
    buf = bytes(data)
    if max_size < 0:
        limit = -1
    elif max_size > _SSIZE_MAX:
        limit = _SSIZE_MAX
    else:
        limit = max_size
    return _decode(<const uint8_t *>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), limit,
                   max_size)
