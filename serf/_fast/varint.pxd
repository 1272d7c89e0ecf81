# The lpe codec's uvarint reader, shared by the compiled twins that read lpe bytes (lpe.pyx,
# skim.pyx): each turns its error codes into its own outcome (an exception, or "not this").
from libc.stdint cimport uint64_t


cdef inline Py_ssize_t read_uvarint(const unsigned char *p, Py_ssize_t pos, Py_ssize_t end,
                                    uint64_t *out) noexcept:
    """A LEB128 value of at most 10 bytes that fits in 64 bits: the position after it, -1
    when the bytes end first, -2 when it overflows 64 bits."""
    cdef uint64_t result = 0
    cdef unsigned int shift = 0
    cdef unsigned char b
    while True:
        if pos >= end:
            return -1
        b = p[pos]
        pos += 1
        if shift == 63:
            if b > 1:
                return -2
            out[0] = result | (<uint64_t>b << 63)
            return pos
        result |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = result
            return pos
        shift += 7
