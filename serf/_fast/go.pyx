# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The ``go`` codec, compiled twin of :mod:`serf.wire.go` (same names, same bytes).

How this works
--------------
The hot paths are compiled: the gossip messages (ping, ack, alive, suspect, dead, ...), the
serf messages made of plain fields (join, leave, user event, ...) and push/pull. The schemas
are not written down twice: at import this module reads the pure twin's schema rows
(``_Schema.fields``: Go key, attribute, kind, omitempty) and compiles each struct into a C
array of rows.

Encoding writes Go's msgpack dialect into one growable C buffer, with every check of the pure
writer (types, ranges; the same exception classes and messages). Fields of other kinds (lists
of structs, maps, nested structs) are written by the pure twin's encoder for that field.

Decoding is a strict fast path with a lenient fallback: a C reader walks the bytes as Go (and
this codec) write them: a map with raw keys in any order, each value in a form its Go type
accepts (raw, str or bin for strings and bytes, any integer width in range, nil as the zero
value). Anything else (an unknown key, an array of small ints for bytes, a float written as
an int, a nil struct, bad or truncated bytes) makes the compiled decoder hand the whole
message to the pure twin, which decodes it leniently or raises its DecodeError. So both twins
return equal messages and raise the same errors for every input, which
tests/wire/test_go_codec.py checks with hypothesis on both twins.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport (
    PyLong_AsLongLongAndOverflow,
    PyLong_AsUnsignedLongLong,
    PyLong_FromLongLong,
    PyLong_FromUnsignedLongLong,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy

import dataclasses

from serf.wire import go as _pure
from serf.wire import messages as _m
from serf.wire.errors import DecodeError, EncodeError
from serf.wire.go import (
    MAX_PUSH_PULL_NODES,
    MAX_USER_STATE_BYTES,
    PING_VERSION,
    TAG_MAGIC_BYTE,
    pack_value,
)

__all__ = list(_pure.__all__)

from serf._fast.slots cimport (
    lpe_alloc,
    lpe_ascii_data,
    lpe_ascii_len,
    lpe_get_slot,
    lpe_is_compact_ascii,
    lpe_set_slot,
    lpe_slot_offset,
)

cdef enum:
    K_STR = 1
    K_BYTES = 2
    K_OBYTES = 3
    K_BOOL = 4
    K_FLOAT = 5
    K_U8 = 6
    K_U16 = 7
    K_U32 = 8
    K_U64 = 9
    K_INT = 10
    K_I32 = 11
    K_OTHER = 12   # a nested struct, list or map: the pure twin's encoder, no fast decode

cdef dict _KINDS = {
    "str": K_STR, "bytes": K_BYTES, "obytes": K_OBYTES, "bool": K_BOOL, "float": K_FLOAT,
    "u8": K_U8, "u16": K_U16, "u32": K_U32, "u64": K_U64, "int": K_INT, "i32": K_I32,
}

# sentinel: "the fast path does not take this input; let the pure twin decide"
cdef object _FALLBACK = object()

# ---------------------------------------------------------------------------------------------
# Compiled schemas
# ---------------------------------------------------------------------------------------------

cdef struct RowC:
    int kind
    bint omitempty
    Py_ssize_t offset        # slot cell offset, or -1 (then getattr / call the class)
    Py_ssize_t arg           # position in the dataclass constructor
    const char *key          # the Go name (pointer into a bytes object kept by the schema)
    Py_ssize_t keylen
    PyObject *name           # attribute name, borrowed (kept by the schema)
    PyObject *enc            # the pure encoder for K_OTHER, borrowed (kept by the schema)
    PyObject *zero           # the value a missing key or nil decodes to, borrowed


cdef class _CSchema:
    """One pure ``_Schema`` compiled for the C walkers."""

    cdef object cls
    cdef object pure
    cdef Py_ssize_t n
    cdef RowC *rows
    cdef list keep
    cdef bint decodable     # every row scalar and the class a positional dataclass
    cdef bint direct        # and every field a writable slot: tp_alloc + slot stores

    def __dealloc__(self):
        PyMem_Free(self.rows)


cdef dict _ZEROS = {
    K_STR: "", K_BYTES: None, K_OBYTES: b"", K_BOOL: False, K_FLOAT: 0.0,
    K_U8: 0, K_U16: 0, K_U32: 0, K_U64: 0, K_INT: 0, K_I32: 0,
}


cdef _CSchema _compile(pure_schema):
    cdef _CSchema s = _CSchema.__new__(_CSchema)
    cdef RowC *r
    cdef Py_ssize_t i
    s.cls = pure_schema.cls
    s.pure = pure_schema
    s.keep = []
    rows = pure_schema.fields
    s.n = len(rows)
    if s.n >= 16:
        raise ValueError("compiled go schemas hold fewer than 16 fields (fixmap header)")
    s.rows = <RowC *>PyMem_Malloc(max(s.n, 1) * sizeof(RowC))
    if s.rows == NULL:
        raise MemoryError()
    is_dc = dataclasses.is_dataclass(s.cls)
    order = [f.name for f in dataclasses.fields(s.cls)] if is_dc else []
    s.decodable = is_dc and sorted(order) == sorted(row[1] for row in rows)
    s.direct = s.decodable and not hasattr(s.cls, "__post_init__")
    for i, (key, attr, kind, omitempty) in enumerate(rows):
        r = &s.rows[i]
        raw_key = key.encode()
        name = str(attr)
        s.keep.append(raw_key)
        s.keep.append(name)
        r.key = PyBytes_AS_STRING(raw_key)
        r.keylen = PyBytes_GET_SIZE(raw_key)
        r.name = <PyObject *>name
        r.omitempty = omitempty
        r.arg = order.index(attr) if s.decodable else -1
        if isinstance(kind, str) and kind in _KINDS:
            r.kind = _KINDS[kind]
            r.enc = NULL
            r.zero = <PyObject *>_ZEROS[r.kind]
        else:
            r.kind = K_OTHER
            enc = _pure._kind(kind)[0] if isinstance(kind, str) else kind.encode_value
            s.keep.append(enc)
            r.enc = <PyObject *>enc
            r.zero = NULL
            s.decodable = False
            s.direct = False
        descr = None
        for klass in type.mro(s.cls):
            if attr in klass.__dict__:
                descr = klass.__dict__[attr]
                break
        r.offset = lpe_slot_offset(descr) if descr is not None else -1
        if r.offset < 0:
            s.direct = False
    return s


cdef dict _BY_CLASS = {}          # message class -> _CSchema (memberlist and serf messages)
cdef PyObject *_ML_TABLE[256]     # memberlist type byte -> decodable _CSchema or NULL
cdef PyObject *_SERF_TABLE[256]   # serf type byte -> decodable _CSchema or NULL
cdef list _ALL = []
cdef _CSchema _PP_HEADER = _compile(_pure.PUSH_PULL_HEADER)
cdef _CSchema _PP_STATE = _compile(_pure.PUSH_NODE_STATE)


def _build_tables():
    cdef int i
    cdef _CSchema s
    for i in range(256):
        _ML_TABLE[i] = NULL
        _SERF_TABLE[i] = NULL
    for table, by_type in ((0, _pure._MEMBERLIST_SCHEMAS), (1, _pure._SERF_SCHEMAS)):
        for cls, pure_schema in by_type.items():
            s = _compile(pure_schema)
            _ALL.append(s)
            _BY_CLASS[cls] = s
            if s.decodable:
                if table == 0:
                    _ML_TABLE[<int>cls.TYPE] = <PyObject *>s
                else:
                    _SERF_TABLE[<int>cls.TYPE] = <PyObject *>s
    _ALL.extend((_PP_HEADER, _PP_STATE))


_build_tables()


def _fast_path_classes():
    """Names of the classes the compiled decoder reads itself (a test hook)."""
    return sorted({(<_CSchema>s).cls.__name__ for s in _ALL if (<_CSchema>s).decodable})


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

cdef struct Writer:
    unsigned char *buf
    Py_ssize_t len
    Py_ssize_t cap


cdef int _w_init(Writer *w, Py_ssize_t cap) except -1:
    w.buf = <unsigned char *>PyMem_Malloc(cap)
    if w.buf == NULL:
        raise MemoryError()
    w.len = 0
    w.cap = cap
    return 0


cdef int _w_grow(Writer *w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    cdef unsigned char *p
    while cap < w.len + extra:
        cap *= 2
    p = <unsigned char *>PyMem_Realloc(w.buf, cap)
    if p == NULL:
        raise MemoryError()
    w.buf = p
    w.cap = cap
    return 0


cdef inline int _w_need(Writer *w, Py_ssize_t extra) except -1:
    if w.len + extra > w.cap:
        _w_grow(w, extra)
    return 0


cdef inline int _w_byte(Writer *w, unsigned char b) except -1:
    _w_need(w, 1)
    w.buf[w.len] = b
    w.len += 1
    return 0


cdef inline void _put_be(unsigned char *p, uint64_t v, int n):
    cdef int i
    for i in range(n - 1, -1, -1):
        p[i] = v & 0xFF
        v >>= 8


cdef inline int _w_tagged(Writer *w, unsigned char tag, uint64_t v, int n) except -1:
    _w_need(w, 1 + n)
    w.buf[w.len] = tag
    _put_be(w.buf + w.len + 1, v, n)
    w.len += 1 + n
    return 0


cdef inline int _w_raw(Writer *w, const char *data, Py_ssize_t n) except -1:
    """fixraw / raw16 / raw32 header and the bytes (the old spec, as go-msgpack writes)."""
    if n < 32:
        _w_need(w, 1 + n)
        w.buf[w.len] = 0xA0 | n
        w.len += 1
    elif n < 0x10000:
        _w_tagged(w, 0xDA, n, 2)
        _w_need(w, n)
    elif n < 0x100000000:
        _w_tagged(w, 0xDB, n, 4)
        _w_need(w, n)
    else:
        raise EncodeError(f"byte string of {n} bytes is too long for msgpack")
    memcpy(w.buf + w.len, data, n)
    w.len += n
    return 0


cdef int _w_bytes_obj(Writer *w, object b) except -1:
    return _w_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef int _w_uint(Writer *w, uint64_t v) except -1:
    if v < 0x80:
        return _w_byte(w, <unsigned char>v)
    if v < 0x100:
        return _w_tagged(w, 0xCC, v, 1)
    if v < 0x10000:
        return _w_tagged(w, 0xCD, v, 2)
    if v < 0x100000000:
        return _w_tagged(w, 0xCE, v, 4)
    return _w_tagged(w, 0xCF, v, 8)


cdef int _w_int(Writer *w, int64_t v) except -1:
    if -32 <= v < 0x80:
        return _w_byte(w, <unsigned char>(v & 0xFF))
    if v > 0:
        # go-msgpack EncodeInt: a positive value above 127 skips int8 and every unsigned form
        if v <= 0x7FFF:
            return _w_tagged(w, 0xD1, <uint64_t>v, 2)
        if v <= 0x7FFFFFFF:
            return _w_tagged(w, 0xD2, <uint64_t>v, 4)
        return _w_tagged(w, 0xD3, <uint64_t>v, 8)
    if v >= -0x80:
        return _w_tagged(w, 0xD0, <uint64_t>v, 1)
    if v >= -0x8000:
        return _w_tagged(w, 0xD1, <uint64_t>v, 2)
    if v >= -0x80000000:
        return _w_tagged(w, 0xD2, <uint64_t>v, 4)
    return _w_tagged(w, 0xD3, <uint64_t>v, 8)


cdef int _enc_uint(Writer *w, object v, int bits) except -1:
    cdef int overflow = 0
    cdef long long x
    cdef uint64_t u
    if not isinstance(v, int) or isinstance(v, bool):
        raise EncodeError(f"expected int, got {type(v).__name__}")
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow == 0:
        if x < 0 or (bits < 64 and (x >> bits) != 0):
            raise EncodeError(f"{v} does not fit in uint{bits}")
        u = <uint64_t>x
    elif overflow > 0 and bits == 64 and not (v >> 64):
        u = PyLong_AsUnsignedLongLong(v)
    else:
        raise EncodeError(f"{v} does not fit in uint{bits}")
    return _w_uint(w, u)


cdef int _enc_int(Writer *w, object v, int bits) except -1:
    cdef int overflow = 0
    cdef long long x
    if not isinstance(v, int) or isinstance(v, bool):
        raise EncodeError(f"expected int, got {type(v).__name__}")
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow != 0 or (bits == 32 and not (-0x80000000 <= x < 0x80000000)):
        raise EncodeError(f"{v} does not fit in int{bits}")
    return _w_int(w, x)


cdef int _enc_value(Writer *w, const RowC *r, object v) except -1:
    cdef double d
    cdef uint64_t bits
    cdef int kind = r.kind
    if kind == K_STR:
        if type(v) is not str:
            raise EncodeError(f"expected str, got {type(v).__name__}")
        if lpe_is_compact_ascii(v):
            return _w_raw(w, lpe_ascii_data(v), lpe_ascii_len(v))
        return _w_bytes_obj(w, PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape"))
    if kind == K_BYTES or kind == K_OBYTES:
        if v is None:
            return _w_byte(w, 0xC0)
        if type(v) is bytes:
            return _w_bytes_obj(w, v)
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise EncodeError(f"expected bytes or None, got {type(v).__name__}")
        return _w_bytes_obj(w, bytes(v))
    if kind == K_U8:
        return _enc_uint(w, v, 8)
    if kind == K_U16:
        return _enc_uint(w, v, 16)
    if kind == K_U32:
        return _enc_uint(w, v, 32)
    if kind == K_U64:
        return _enc_uint(w, v, 64)
    if kind == K_INT:
        return _enc_int(w, v, 64)
    if kind == K_I32:
        return _enc_int(w, v, 32)
    if kind == K_BOOL:
        if type(v) is not bool:
            raise EncodeError(f"expected bool, got {type(v).__name__}")
        return _w_byte(w, 0xC3 if v else 0xC2)
    if kind == K_FLOAT:
        if type(v) is float:
            d = PyFloat_AS_DOUBLE(v)
        elif not isinstance(v, (float, int)) or isinstance(v, bool):
            raise EncodeError(f"expected float, got {type(v).__name__}")
        else:
            d = float(v)
        memcpy(&bits, &d, 8)
        return _w_tagged(w, 0xCB, bits, 8)
    # K_OTHER: the pure encoder of that field
    return _w_append(w, (<object>r.enc)(v))


cdef int _w_append(Writer *w, object b) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    _w_need(w, n)
    memcpy(w.buf + w.len, PyBytes_AS_STRING(b), n)
    w.len += n
    return 0


cdef int _enc_struct(Writer *w, _CSchema s, object obj) except -1:
    """The struct as a msgpack map of its fields, sorted by Go name (fixmap: < 16 fields)."""
    cdef Py_ssize_t i, header
    cdef int count = 0
    cdef const RowC *r
    cdef PyObject *cell
    if not isinstance(obj, s.cls):
        raise EncodeError(f"expected {s.cls.__name__}, got {type(obj).__name__}")
    header = w.len
    _w_byte(w, 0x80)
    for i in range(s.n):
        r = &s.rows[i]
        if r.offset >= 0:
            cell = lpe_get_slot(obj, r.offset)
            value = <object>cell if cell != NULL else getattr(obj, <object>r.name)
        else:
            value = getattr(obj, <object>r.name)
        if r.omitempty and not value:
            continue
        _w_raw(w, r.key, r.keylen)
        _enc_value(w, r, value)
        count += 1
    w.buf[header] = 0x80 | count
    return 0


cdef bytes _w_finish(Writer *w):
    return PyBytes_FromStringAndSize(<char *>w.buf, w.len)


cdef bytes _encode_message(unsigned char type_byte, _CSchema s, object message):
    cdef Writer w
    _w_init(&w, 256)
    try:
        _w_byte(&w, type_byte)
        _enc_struct(&w, s, message)
        return _w_finish(&w)
    finally:
        PyMem_Free(w.buf)


cdef bytes _encode_push_pull(object msg):
    cdef Writer w
    states = msg.states
    header = _m.PushPullHeader(len(states), len(msg.user_state), msg.join)
    _w_init(&w, 256 + 96 * len(states))
    try:
        _w_byte(&w, 6)
        _enc_struct(&w, _PP_HEADER, header)
        for state in states:
            _enc_struct(&w, _PP_STATE, state)
        _w_append(&w, bytes(msg.user_state))
        return _w_finish(&w)
    finally:
        PyMem_Free(w.buf)


# ---------------------------------------------------------------------------------------------
# Reader (strict fast path; -1 / _FALLBACK hands the message to the pure twin)
# ---------------------------------------------------------------------------------------------

cdef struct Reader:
    const unsigned char *p
    Py_ssize_t pos
    Py_ssize_t end


cdef inline int _r_be(Reader *r, int n, uint64_t *out) noexcept:
    cdef uint64_t v = 0
    cdef int i
    if r.end - r.pos < n:
        return -1
    for i in range(n):
        v = (v << 8) | r.p[r.pos + i]
    r.pos += n
    out[0] = v
    return 0


cdef inline Py_ssize_t _r_container(Reader *r, unsigned char fix, unsigned char tag16) noexcept:
    """A map (fix=0x80, tag16=0xDE) or array header's count, or -1."""
    cdef unsigned char c
    cdef uint64_t n = 0
    if r.pos >= r.end:
        return -1
    c = r.p[r.pos]
    if (c & 0xF0) == fix:
        r.pos += 1
        return c & 0x0F
    if c == tag16 or c == tag16 + 1:
        r.pos += 1
        if _r_be(r, 2 if c == tag16 else 4, &n) < 0:
            return -1
        return <Py_ssize_t>n
    return -1


cdef inline Py_ssize_t _r_raw(Reader *r, const unsigned char **data) noexcept:
    """Any raw / str / bin value's length (data set to its first byte), or -2 if nil, or -1."""
    cdef unsigned char c
    cdef uint64_t n = 0
    if r.pos >= r.end:
        return -1
    c = r.p[r.pos]
    if 0xA0 <= c <= 0xBF:
        n = c & 0x1F
        r.pos += 1
    elif c == 0xC0:
        r.pos += 1
        return -2
    elif c == 0xD9 or c == 0xC4:
        r.pos += 1
        if _r_be(r, 1, &n) < 0:
            return -1
    elif c == 0xDA or c == 0xC5:
        r.pos += 1
        if _r_be(r, 2, &n) < 0:
            return -1
    elif c == 0xDB or c == 0xC6:
        r.pos += 1
        if _r_be(r, 4, &n) < 0:
            return -1
    else:
        return -1
    if <uint64_t>(r.end - r.pos) < n:
        return -1
    data[0] = r.p + r.pos
    r.pos += <Py_ssize_t>n
    return <Py_ssize_t>n


cdef inline int _r_int(Reader *r, bint *negative, uint64_t *out) noexcept:
    """Any msgpack integer: 0 (out is the value, two's complement when negative), 1 if nil,
    -1 otherwise."""
    cdef unsigned char c
    cdef uint64_t v
    cdef int n
    if r.pos >= r.end:
        return -1
    c = r.p[r.pos]
    if c < 0x80:
        r.pos += 1
        negative[0] = False
        out[0] = c
        return 0
    if c >= 0xE0:
        r.pos += 1
        negative[0] = True
        out[0] = <uint64_t>(<int64_t>(<signed char>c))
        return 0
    if c == 0xC0:
        r.pos += 1
        return 1
    if 0xCC <= c <= 0xCF:
        n = 1 << (c - 0xCC)
        r.pos += 1
        if _r_be(r, n, &v) < 0:
            return -1
        negative[0] = False
        out[0] = v
        return 0
    if 0xD0 <= c <= 0xD3:
        n = 1 << (c - 0xD0)
        r.pos += 1
        if _r_be(r, n, &v) < 0:
            return -1
        # sign-extend from n bytes
        if n < 8 and (v >> (8 * n - 1)) & 1:
            v |= ~((<uint64_t>1 << (8 * n)) - 1)
        negative[0] = <int64_t>v < 0
        out[0] = v
        return 0
    return -1


cdef object _dec_value(Reader *r, int kind):
    cdef const unsigned char *data = NULL
    cdef Py_ssize_t n
    cdef bint negative = False
    cdef uint64_t v = 0
    cdef int status
    cdef unsigned char c
    cdef double d
    cdef uint64_t bits
    if kind == K_STR:
        n = _r_raw(r, &data)
        if n >= 0:
            return PyUnicode_DecodeUTF8(<const char *>data, n, "surrogateescape")
        return "" if n == -2 else _FALLBACK
    if kind == K_BYTES or kind == K_OBYTES:
        n = _r_raw(r, &data)
        if n >= 0:
            return PyBytes_FromStringAndSize(<const char *>data, n)
        if n == -2:
            return None if kind == K_BYTES else b""
        return _FALLBACK
    if kind == K_BOOL:
        if r.pos >= r.end:
            return _FALLBACK
        c = r.p[r.pos]
        r.pos += 1
        if c == 0xC3:
            return True
        if c == 0xC2 or c == 0xC0:
            return False
        return _FALLBACK
    if kind == K_FLOAT:
        if r.pos >= r.end:
            return _FALLBACK
        c = r.p[r.pos]
        r.pos += 1
        if c == 0xC0:
            return 0.0
        if c == 0xCB:
            if _r_be(r, 8, &bits) < 0:
                return _FALLBACK
            memcpy(&d, &bits, 8)
            return d
        if c == 0xCA:
            if _r_be(r, 4, &bits) < 0:
                return _FALLBACK
            return _float32(<unsigned int>bits)
        return _FALLBACK
    status = _r_int(r, &negative, &v)
    if status < 0:
        return _FALLBACK
    if status == 1:
        return 0
    if kind == K_INT:
        if not negative and v >> 63:
            return _FALLBACK
        return PyLong_FromLongLong(<int64_t>v)
    if kind == K_I32:
        if <int64_t>v < -0x80000000 or <int64_t>v >= 0x80000000:
            return _FALLBACK
        return PyLong_FromLongLong(<int64_t>v)
    if negative:
        return _FALLBACK
    if (kind == K_U8 and v >> 8) or (kind == K_U16 and v >> 16) or (kind == K_U32 and v >> 32):
        return _FALLBACK
    return PyLong_FromUnsignedLongLong(v)


cdef inline double _float32(unsigned int bits) noexcept:
    cdef float f
    memcpy(&f, &bits, 4)
    return <double>f


cdef object _dec_struct(Reader *r, _CSchema s):
    """One struct, or _FALLBACK (the pure twin then decodes the message or raises)."""
    cdef Py_ssize_t count, i, j, keylen, hint = 0
    cdef const unsigned char *key = NULL
    cdef const RowC *row
    count = _r_container(r, 0x80, 0xDE)
    if count < 0 or count > r.end - r.pos:
        return _FALLBACK
    if s.direct:
        obj = lpe_alloc(s.cls)
        for i in range(s.n):
            lpe_set_slot(obj, s.rows[i].offset, <object>s.rows[i].zero)
    else:
        args = [<object>s.rows[i].zero for i in range(s.n)]
        # args is in row order; the constructor's order is row.arg
    for i in range(count):
        keylen = _r_raw(r, &key)
        if keylen < 0:
            return _FALLBACK
        row = NULL
        for j in range(s.n):
            # Go writes the keys sorted, as the rows are: start at the row after the last one
            row = &s.rows[(hint + j) % s.n]
            if row.keylen == keylen and memcmp(row.key, key, keylen) == 0:
                hint = (hint + j + 1) % s.n
                break
            row = NULL
        if row == NULL:
            return _FALLBACK   # an unknown key: the pure twin skips it
        value = _dec_value(r, row.kind)
        if value is _FALLBACK:
            return _FALLBACK
        if s.direct:
            lpe_set_slot(obj, row.offset, value)
        else:
            args[row - s.rows] = value
    if s.direct:
        return obj
    ordered = [None] * s.n
    for i in range(s.n):
        ordered[s.rows[i].arg] = args[i]
    return s.cls(*ordered)


cdef object _decode_message(const unsigned char *p, Py_ssize_t n, _CSchema s):
    cdef Reader r
    r.p = p
    r.pos = 1
    r.end = n
    return _dec_struct(&r, s)


cdef object _decode_push_pull(const unsigned char *p, Py_ssize_t n):
    cdef Reader r
    cdef Py_ssize_t i, nodes, user_len
    r.p = p
    r.pos = 1
    r.end = n
    header = _dec_struct(&r, _PP_HEADER)
    if header is _FALLBACK:
        return _FALLBACK
    nodes_obj = header.nodes
    user_len_obj = header.user_state_len
    if not (0 <= nodes_obj <= MAX_PUSH_PULL_NODES and 0 <= user_len_obj <= MAX_USER_STATE_BYTES):
        return _FALLBACK
    nodes = nodes_obj
    user_len = user_len_obj
    if nodes > r.end - r.pos:
        return _FALLBACK   # each node state takes at least one byte
    states = [None] * nodes
    for i in range(nodes):
        state = _dec_struct(&r, _PP_STATE)
        if state is _FALLBACK:
            return _FALLBACK
        states[i] = state
    if r.end - r.pos < user_len:
        return _FALLBACK
    user_state = PyBytes_FromStringAndSize(<const char *>(r.p + r.pos), user_len)
    return _m.PushPull(header.join, states, user_state)


# ---------------------------------------------------------------------------------------------
# The codec
# ---------------------------------------------------------------------------------------------

_PureGoCodec = _pure.GoCodec
_UserMsg = _m.UserMsg


cdef object _fast_decode(object buffer, bint serf):
    """The compiled decode of a memberlist (or serf) message, or _FALLBACK."""
    cdef const unsigned char *p
    cdef Py_ssize_t n
    cdef PyObject *s
    if type(buffer) is not bytes:
        return _FALLBACK
    n = PyBytes_GET_SIZE(buffer)
    if n == 0:
        return _FALLBACK
    p = <const unsigned char *>PyBytes_AS_STRING(buffer)
    s = _SERF_TABLE[p[0]] if serf else _ML_TABLE[p[0]]
    if s != NULL:
        return _decode_message(p, n, <_CSchema>s)
    if p[0] == 6 and not serf:
        return _decode_push_pull(p, n)
    return _FALLBACK


class GoCodec(_pure.GoCodec):
    """Go serf's gossip msgpack dialect, hot paths compiled; see :mod:`serf.wire.go`."""

    name = "go"

    def encode(self, message):
        """``[type byte][msgpack body]`` exactly as Go memberlist/serf would write it."""
        cls = type(message)
        s = _BY_CLASS.get(cls)
        if s is not None:
            return _encode_message(<unsigned char>message.TYPE, <_CSchema>s, message)
        if cls is _UserMsg:  # as the pure twin: each serf message gossiped is one of these
            return b"\x08" + bytes(message.payload)
        if cls is _m.PushPull:
            return _encode_push_pull(message)
        return _PureGoCodec.encode(self, message)

    def decode(self, buffer):
        """A memberlist message; type 8 is the packet form (payload follows the type byte)."""
        result = _fast_decode(buffer, False)
        if result is not _FALLBACK:
            return result
        if type(buffer) is bytes and PyBytes_GET_SIZE(buffer) and buffer[0] == 8:
            return _UserMsg(buffer[1:])  # as the pure twin; each serf message is one of these
        return _PureGoCodec.decode(self, buffer)

    def decode_stream(self, buffer):
        """A memberlist message as read from a stream (type 8 carries a userMsgHeader)."""
        result = _fast_decode(buffer, False)
        return _PureGoCodec.decode_stream(self, buffer) if result is _FALLBACK else result

    def decode_serf(self, buffer):
        """A serf message from a user-message payload ``[serf type][msgpack body]``."""
        result = _fast_decode(buffer, True)
        return _PureGoCodec.decode_serf(self, buffer) if result is _FALLBACK else result
