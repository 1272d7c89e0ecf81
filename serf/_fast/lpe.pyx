# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The ``lpe`` codec, compiled twin of :mod:`serf.wire.lpe` (same names, same bytes).

How this works
--------------
The byte layout is not written down twice: at import this module reads the layout tables of
the pure twin (``serf.wire.lpe.MEMBERLIST_SPECS`` and friends) and compiles each struct into a
C array of fields (kind, optional flags, nested struct) plus, for each field, the offset of its
``__slots__`` cell in the dataclass instance. Decoding walks a ``const unsigned char *`` over
the input bytes (never slicing it), allocates each message with ``tp_alloc`` and stores the
decoded values straight into the slots (what the slot descriptors do, minus the attribute
lookups and the ``__init__`` call); encoding reads the slots the same way and writes into one
growable C buffer, reserving one byte for each length prefix and moving the body only in the
rare case that the length needs more than one byte. When a class is not a plain slotted
dataclass (say a user replaced one), that struct falls back to getattr and calling the class.

Every check of the pure twin is mirrored here (ranges, truncation, counts bounded by the bytes
that remain, version 0, trailing bytes), and tests/wire/test_lpe.py checks, with hypothesis,
that both twins produce identical bytes and identical exception classes.
"""

from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_Check,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.dict cimport PyDict_Check, PyDict_Next, PyDict_SetItem, PyDict_Size
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_AsDouble, PyFloat_Check, PyFloat_CheckExact
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE, PyList_New
from cpython.list cimport PyList_SET_ITEM
from cpython.long cimport (
    PyLong_AsLongLongAndOverflow,
    PyLong_AsUnsignedLongLong,
    PyLong_Check,
    PyLong_FromUnsignedLong,
    PyLong_FromLongLong,
    PyLong_FromUnsignedLongLong,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyObject_IsTrue
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove

import dataclasses

from serf.wire import lpe as _pure
from serf.wire import messages as _m
from serf.wire.errors import DecodeError, EncodeError
from serf.wire.lpe import (
    COORDINATE_SPEC,
    FILTER_SPECS,
    FORMAT_VERSION,
    MEMBERLIST_SPECS,
    SERF_SPECS,
    TAG_MAGIC,
    FieldSpec,
    StructSpec,
)

__all__ = list(_pure.__all__)

from serf._fast.varint cimport read_uvarint
from serf._fast.slots cimport (
    lpe_alloc,
    lpe_ascii_data,
    lpe_ascii_len,
    lpe_get_slot,
    lpe_is_compact_ascii,
    lpe_set_slot,
    lpe_slot_offset,
)

# Field kinds: the same numbers as in the pure twin (checked at import).
cdef enum:
    K_U8 = 1
    K_U16 = 2
    K_U32 = 3
    K_U64 = 4
    K_I64 = 5
    K_BOOL = 6
    K_STR = 7
    K_BYTES = 8
    K_F64 = 9
    K_REC = 10
    K_LIST = 11
    K_MAP = 12

assert (_pure.U8, _pure.U16, _pure.U32, _pure.U64, _pure.I64, _pure.BOOL, _pure.STR,
        _pure.BYTES, _pure.F64, _pure.REC, _pure.LIST, _pure.MAP) == tuple(range(1, 13))

cdef uint64_t[5] _UMAX
_UMAX[0] = 0
_UMAX[K_U8] = 0xFF
_UMAX[K_U16] = 0xFFFF
_UMAX[K_U32] = 0xFFFFFFFF
_UMAX[K_U64] = 0xFFFFFFFFFFFFFFFF

cdef tuple _KIND_NAMES = ("?", "u8", "u16", "u32", "u64")


# ---------------------------------------------------------------------------------------------
# The compiled layout tables
# ---------------------------------------------------------------------------------------------

cdef struct FieldC:
    int kind
    int elem
    bint optional
    bint elem_optional
    Py_ssize_t offset      # slot cell offset, or -1 (then getattr / call the class)
    PyObject *sub          # borrowed _Struct (kept alive by _ALL_STRUCTS) or NULL
    PyObject *name         # borrowed str (kept alive by _Struct.names)
    # The last int / short bytes value decoded for this field (owned), reused when the next
    # one is equal: a push/pull repeats the same port and Vsn in every node state. Read and
    # replaced under the GIL with no Python code in between.
    PyObject *cache
    uint64_t cache_key


cdef class _Struct:
    """A StructSpec compiled for the C walkers."""

    cdef object cls
    cdef Py_ssize_t nfields
    cdef FieldC *fields
    cdef tuple names
    cdef bint direct       # every field is a writable slot: tp_alloc + slot stores

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.fields != NULL:
            for i in range(self.nfields):
                Py_XDECREF(self.fields[i].cache)
        PyMem_Free(self.fields)


cdef list _ALL_STRUCTS = []
cdef dict _COMPILED = {}


cdef _Struct _compile(spec):
    cdef _Struct st
    cdef Py_ssize_t i, off
    cdef FieldC *fc
    cdef _Struct sub
    key = id(spec)
    if key in _COMPILED:
        return <_Struct>_COMPILED[key]
    st = _Struct.__new__(_Struct)
    st.cls = spec.cls
    st.nfields = len(spec.fields)
    st.names = tuple(f.name for f in spec.fields)
    st.fields = <FieldC *>PyMem_Malloc(max(st.nfields, 1) * sizeof(FieldC))
    if st.fields == NULL:
        raise MemoryError()
    _COMPILED[key] = st
    _ALL_STRUCTS.append(st)
    # A plain slotted dataclass whose constructor takes exactly these fields, in this order,
    # and does nothing else (no __post_init__ to skip).
    direct = (
        [f.name for f in dataclasses.fields(spec.cls)] == list(st.names)
        and not hasattr(spec.cls, "__post_init__")
    )
    for i, f in enumerate(spec.fields):
        fc = &st.fields[i]
        fc.kind = f.kind
        fc.elem = f.elem
        fc.optional = f.optional
        fc.elem_optional = f.elem_optional
        fc.name = <PyObject *>st.names[i]
        fc.sub = NULL
        fc.cache = NULL
        fc.cache_key = 0
        if f.sub is not None:
            sub = _compile(f.sub)
            fc.sub = <PyObject *>sub
        descr = None
        for klass in type.mro(spec.cls):
            if f.name in klass.__dict__:
                descr = klass.__dict__[f.name]
                break
        off = lpe_slot_offset(descr) if descr is not None else -1
        fc.offset = off
        if off < 0:
            direct = False
    st.direct = direct
    return st


cdef PyObject *_ML_TABLE[256]
cdef PyObject *_SERF_TABLE[256]
cdef PyObject *_FILTER_TABLE[256]
cdef dict _BY_CLASS = {}       # message class -> (type byte, _Struct)
cdef dict _FILTER_BY_CLASS = {}
cdef _Struct _COORD


def _build_tables():
    global _COORD
    cdef int i
    for i in range(256):
        _ML_TABLE[i] = NULL
        _SERF_TABLE[i] = NULL
        _FILTER_TABLE[i] = NULL
    for tb, spec in MEMBERLIST_SPECS.items():
        st = _compile(spec)
        _ML_TABLE[int(tb)] = <PyObject *>st
        _BY_CLASS[spec.cls] = (int(tb), st)
    for tb, spec in SERF_SPECS.items():
        st = _compile(spec)
        _SERF_TABLE[int(tb)] = <PyObject *>st
        _BY_CLASS[spec.cls] = (int(tb), st)
    for tb, spec in FILTER_SPECS.items():
        st = _compile(spec)
        _FILTER_TABLE[int(tb)] = <PyObject *>st
        _FILTER_BY_CLASS[spec.cls] = (int(tb), st)
    _COORD = _compile(COORDINATE_SPEC)


_build_tables()


def _fast_path_classes():
    """Names of the classes decoded and encoded through their slots (a test hook)."""
    return sorted((<_Struct>st).cls.__name__ for st in _ALL_STRUCTS if (<_Struct>st).direct)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

cdef Py_ssize_t _uvarint_slow(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end,
                              uint64_t *out) except -1:
    cdef Py_ssize_t after = read_uvarint(b, pos, end, out)
    if after == -1:
        raise DecodeError("truncated varint")
    if after == -2:
        raise DecodeError("varint overflows 64 bits")
    return after


cdef inline Py_ssize_t _uvarint(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end,
                                uint64_t *out) except -1:
    """A LEB128 value (at most 10 bytes, fits in 64 bits); returns the position after it."""
    if pos < end and b[pos] < 0x80:
        out[0] = b[pos]
        return pos + 1
    if pos >= end:
        raise DecodeError("truncated: varint expected")
    return _uvarint_slow(b, pos, end, out)


cdef inline Py_ssize_t _prefix(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end,
                               bint optional, uint64_t *n, bint *is_none) except -1:
    """A length/count prefix; with ``optional``, 0 is None and anything else is n + 1."""
    pos = _uvarint(b, pos, end, n)
    is_none[0] = False
    if optional:
        if n[0] == 0:
            is_none[0] = True
        else:
            n[0] -= 1
    return pos


cdef object _get_value(const unsigned char *b, Py_ssize_t *ppos, Py_ssize_t end, int kind,
                       bint optional, int elem, bint elem_optional, PyObject *sub):
    """One value of ``kind`` at ``ppos[0]``, which is moved past it (never beyond ``end``)."""
    cdef Py_ssize_t pos = ppos[0]
    cdef Py_ssize_t i, start
    cdef uint64_t n
    cdef uint64_t bits
    cdef double d
    cdef bint is_none
    cdef unsigned char c
    cdef object value, key, item
    if kind == K_STR:
        pos = _uvarint(b, pos, end, &n)
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated string")
        value = PyUnicode_DecodeUTF8(<const char *>b + pos, <Py_ssize_t>n, "surrogateescape")
        ppos[0] = pos + <Py_ssize_t>n
        return value
    if kind <= K_U64:
        pos = _uvarint(b, pos, end, &n)
        if n > _UMAX[kind]:
            raise DecodeError(f"{n} is out of range for {_KIND_NAMES[kind]}")
        ppos[0] = pos
        if kind == K_U64:
            return PyLong_FromUnsignedLongLong(n)
        return PyLong_FromUnsignedLong(<unsigned long>n)
    if kind == K_BYTES:
        pos = _prefix(b, pos, end, optional, &n, &is_none)
        if is_none:
            ppos[0] = pos
            return None
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated bytes")
        value = PyBytes_FromStringAndSize(<const char *>b + pos, <Py_ssize_t>n)
        ppos[0] = pos + <Py_ssize_t>n
        return value
    if kind == K_I64:
        pos = _uvarint(b, pos, end, &n)
        ppos[0] = pos
        return PyLong_FromLongLong(<int64_t>((n >> 1) ^ (0 - (n & 1))))
    if kind == K_BOOL:
        if pos >= end:
            raise DecodeError("truncated: bool expected")
        c = b[pos]
        if c > 1:
            raise DecodeError(f"invalid bool byte {c}")
        ppos[0] = pos + 1
        return c == 1
    if kind == K_F64:
        if end - pos < 8:
            raise DecodeError("truncated float")
        bits = 0
        for i in range(8):
            bits |= (<uint64_t>b[pos + i]) << (8 * i)
        memcpy(&d, &bits, 8)
        ppos[0] = pos + 8
        return PyFloat_FromDouble(d)
    if kind == K_REC:
        pos = _prefix(b, pos, end, optional, &n, &is_none)
        if is_none:
            ppos[0] = pos
            return None
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated record")
        value = _get_struct(<_Struct>sub, b, pos, pos + <Py_ssize_t>n)
        ppos[0] = pos + <Py_ssize_t>n
        return value
    if kind == K_LIST:
        pos = _prefix(b, pos, end, optional, &n, &is_none)
        if is_none:
            ppos[0] = pos
            return None
        # Every element takes at least one byte (a float eight): reject before allocating.
        if n > <uint64_t>((end - pos) // (8 if elem == K_F64 else 1)):
            raise DecodeError("list count exceeds the remaining bytes")
        value = PyList_New(<Py_ssize_t>n)
        for i in range(<Py_ssize_t>n):
            item = _get_value(b, &pos, end, elem, elem_optional, 0, False, sub)
            Py_INCREF(item)
            PyList_SET_ITEM(value, i, item)
        ppos[0] = pos
        return value
    # K_MAP
    pos = _prefix(b, pos, end, optional, &n, &is_none)
    if is_none:
        ppos[0] = pos
        return None
    if n > <uint64_t>((end - pos) // 2):
        raise DecodeError("map count exceeds the remaining bytes")
    value = {}
    for i in range(<Py_ssize_t>n):
        key = _get_value(b, &pos, end, K_STR, False, 0, False, NULL)
        item = _get_value(b, &pos, end, elem, False, 0, False, NULL)
        PyDict_SetItem(value, key, item)
    ppos[0] = pos
    return value


cdef inline object _get_field(FieldC *f, const unsigned char *b, Py_ssize_t *ppos,
                              Py_ssize_t end):
    """A struct field: the common scalar kinds inline (with the one-entry caches), the rest
    through :func:`_get_value`."""
    cdef Py_ssize_t pos = ppos[0]
    cdef uint64_t n
    cdef bint is_none
    cdef object value
    cdef PyObject *cached
    cdef int kind = f.kind
    if kind == K_STR:
        pos = _uvarint(b, pos, end, &n)
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated string")
        value = PyUnicode_DecodeUTF8(<const char *>b + pos, <Py_ssize_t>n, "surrogateescape")
        ppos[0] = pos + <Py_ssize_t>n
        return value
    if kind <= K_U32:
        pos = _uvarint(b, pos, end, &n)
        if n > _UMAX[kind]:
            raise DecodeError(f"{n} is out of range for {_KIND_NAMES[kind]}")
        ppos[0] = pos
        if n <= 256:
            return PyLong_FromUnsignedLong(<unsigned long>n)
        cached = f.cache
        if cached != NULL and f.cache_key == n:
            return <object>cached
        value = PyLong_FromUnsignedLong(<unsigned long>n)
        Py_XDECREF(f.cache)
        Py_INCREF(value)
        f.cache = <PyObject *>value
        f.cache_key = n
        return value
    if kind == K_BYTES:
        pos = _prefix(b, pos, end, f.optional, &n, &is_none)
        if is_none:
            ppos[0] = pos
            return None
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated bytes")
        ppos[0] = pos + <Py_ssize_t>n
        if n == 0 or n > 16:
            return PyBytes_FromStringAndSize(<const char *>b + pos, <Py_ssize_t>n)
        cached = f.cache
        if (cached != NULL and f.cache_key == n
                and memcmp(PyBytes_AS_STRING(<object>cached), b + pos, n) == 0):
            return <object>cached
        value = PyBytes_FromStringAndSize(<const char *>b + pos, <Py_ssize_t>n)
        Py_XDECREF(f.cache)
        Py_INCREF(value)
        f.cache = <PyObject *>value
        f.cache_key = n
        return value
    return _get_value(b, ppos, end, kind, f.optional, f.elem, f.elem_optional, f.sub)


cdef object _get_struct(_Struct st, const unsigned char *b, Py_ssize_t pos, Py_ssize_t end):
    """The struct whose fields start at ``pos``; bytes after the known fields are skipped."""
    cdef Py_ssize_t i
    cdef FieldC *f
    cdef object obj, value, args
    if st.direct:
        obj = lpe_alloc(st.cls)
        for i in range(st.nfields):
            f = &st.fields[i]
            value = _get_field(f, b, &pos, end)
            lpe_set_slot(obj, f.offset, value)
        return obj
    args = PyTuple_New(st.nfields)
    for i in range(st.nfields):
        value = _get_field(&st.fields[i], b, &pos, end)
        Py_INCREF(value)
        PyTuple_SET_ITEM(args, i, value)
    return st.cls(*args)


cdef inline bytes _as_input(object buffer):
    if PyBytes_Check(buffer):
        return <bytes>buffer
    if isinstance(buffer, (bytearray, memoryview)):
        return bytes(buffer)
    raise TypeError(f"expected a bytes-like object, got {type(buffer).__name__}")


cdef Py_ssize_t _body_start(const unsigned char *b, Py_ssize_t pos, Py_ssize_t end) except -1:
    """Check the version byte and body length at ``pos``; the position of the first field."""
    cdef uint64_t n
    if pos >= end:
        raise DecodeError("truncated: version byte expected")
    if b[pos] == 0:
        raise DecodeError("invalid lpe format version 0")
    pos = _uvarint(b, pos + 1, end, &n)
    if n != <uint64_t>(end - pos):
        if n > <uint64_t>(end - pos):
            raise DecodeError("truncated body")
        raise DecodeError(f"{<uint64_t>(end - pos) - n} trailing bytes after the body")
    return pos


cdef object _decode_typed(object buffer, PyObject **table, str what):
    cdef bytes buf = _as_input(buffer)
    cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos
    cdef PyObject *st
    if end == 0:
        raise DecodeError(f"empty {what}")
    st = table[b[0]]
    if st == NULL:
        raise DecodeError(f"unknown {what} type {b[0]}")
    pos = _body_start(b, 1, end)
    return _get_struct(<_Struct>st, b, pos, end)


def decode(buffer):
    """A memberlist message from ``[type byte][body]``."""
    return _decode_typed(buffer, _ML_TABLE, "memberlist message")


def decode_stream(buffer):
    """Same as :func:`decode` (packets and streams share one form in lpe)."""
    return _decode_typed(buffer, _ML_TABLE, "memberlist message")


def decode_serf(buffer):
    """A serf message from a user-message payload ``[serf type][body]``."""
    return _decode_typed(buffer, _SERF_TABLE, "serf message")


def decode_filter(buffer):
    """One entry of ``MessageQuery.filters``."""
    return _decode_typed(buffer, _FILTER_TABLE, "query filter")


def decode_coordinate(buffer):
    """A Vivaldi coordinate body."""
    cdef bytes buf = _as_input(buffer)
    cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos = _body_start(b, 0, end)
    return _get_struct(_COORD, b, pos, end)


def decode_tags(meta):
    """Tags from node meta; meta not starting with 0xFE is legacy: ``{"role": meta}``."""
    cdef bytes buf = _as_input(meta)
    cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos
    if end == 0 or b[0] != TAG_MAGIC:
        return {"role": PyUnicode_DecodeUTF8(<const char *>b, end, "surrogateescape")}
    pos = _body_start(b, 1, end)
    return _get_value(b, &pos, end, K_MAP, False, K_STR, False, NULL)


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

cdef struct Out:
    unsigned char *p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _grow(Out *o, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = o.cap * 2
    cdef unsigned char *p
    while cap < o.n + need:
        cap *= 2
    p = <unsigned char *>PyMem_Realloc(o.p, cap)
    if p == NULL:
        raise MemoryError()
    o.p = p
    o.cap = cap
    return 0


cdef inline int _reserve(Out *o, Py_ssize_t need) except -1:
    if o.n + need > o.cap:
        _grow(o, need)
    return 0


cdef inline int _varint_size(uint64_t v) noexcept:
    cdef int k = 1
    while v >= 0x80:
        v >>= 7
        k += 1
    return k


cdef inline int _put_uvarint(Out *o, uint64_t v) except -1:
    _reserve(o, 10)
    while v >= 0x80:
        o.p[o.n] = <unsigned char>((v & 0x7F) | 0x80)
        o.n += 1
        v >>= 7
    o.p[o.n] = <unsigned char>v
    o.n += 1
    return 0


cdef inline int _put_raw(Out *o, const char *p, Py_ssize_t n, uint64_t prefix) except -1:
    """Write ``prefix`` as a uvarint, then ``n`` bytes from ``p``."""
    _put_uvarint(o, prefix)
    _reserve(o, n)
    memcpy(o.p + o.n, p, n)
    o.n += n
    return 0


cdef int _close_len(Out *o, Py_ssize_t at, bint plus_one) except -1:
    """Write the length of the body ``o.p[at+1 : o.n]`` (plus one) into the byte reserved at
    ``at``, moving the body right when the length needs more than one byte."""
    cdef uint64_t value = <uint64_t>(o.n - at - 1) + (1 if plus_one else 0)
    cdef int k = _varint_size(value)
    cdef Py_ssize_t i
    if k > 1:
        _reserve(o, k - 1)
        memmove(o.p + at + k, o.p + at + 1, o.n - at - 1)
        o.n += k - 1
    i = at
    while value >= 0x80:
        o.p[i] = <unsigned char>((value & 0x7F) | 0x80)
        i += 1
        value >>= 7
    o.p[i] = <unsigned char>value
    return 0


cdef inline Py_ssize_t _open_len(Out *o) except -1:
    _reserve(o, 1)
    o.n += 1
    return o.n - 1


cdef str _tname(object value):
    return type(value).__name__


cdef int _put_str(Out *o, object value, object what) except -1:
    cdef object raw
    cdef Py_ssize_t n
    if not PyUnicode_Check(value):
        raise EncodeError(f"{what}: expected str, got {_tname(value)}")
    if lpe_is_compact_ascii(value):
        n = lpe_ascii_len(value)
        _put_raw(o, lpe_ascii_data(value), n, <uint64_t>n)
        return 0
    try:
        raw = PyUnicode_AsEncodedString(value, "utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{what}: not encodable as UTF-8: {exc}") from None
    _put_raw(o, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), <uint64_t>PyBytes_GET_SIZE(raw))
    return 0


cdef int _put_int(Out *o, object value, int kind, object what) except -1:
    cdef int overflow = 0
    cdef long long v
    cdef uint64_t u
    if not PyLong_Check(value):
        raise EncodeError(f"{what}: expected int, got {_tname(value)}")
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if kind == K_I64:
        if overflow != 0:
            raise EncodeError(f"{what}: {value} is out of range for int64")
        _put_uvarint(o, (<uint64_t>v << 1) ^ <uint64_t>(v >> 63))
        return 0
    if overflow < 0 or (overflow == 0 and v < 0):
        raise EncodeError(f"{what}: {value} is out of range for {_KIND_NAMES[kind]}")
    if overflow > 0:
        try:
            u = PyLong_AsUnsignedLongLong(value)
        except OverflowError:
            raise EncodeError(
                f"{what}: {value} is out of range for {_KIND_NAMES[kind]}"
            ) from None
    else:
        u = <uint64_t>v
    if u > _UMAX[kind]:
        raise EncodeError(f"{what}: {value} is out of range for {_KIND_NAMES[kind]}")
    _put_uvarint(o, u)
    return 0


cdef int _put_value(Out *o, object value, int kind, bint optional, int elem,
                    bint elem_optional, PyObject *sub, object what) except -1:
    """Append one value of ``kind`` (a field, a list element or a map value)."""
    cdef Py_ssize_t at, i, n, pos
    cdef double d
    cdef uint64_t bits
    cdef PyObject *k
    cdef PyObject *v
    cdef object raw, item, key
    if kind <= K_U64 or kind == K_I64:
        return _put_int(o, value, kind, what)
    if kind == K_STR:
        return _put_str(o, value, what)
    if value is None and kind != K_BOOL and kind != K_F64:
        if not optional:
            raise EncodeError(f"{what}: None is not allowed here")
        _reserve(o, 1)
        o.p[o.n] = 0
        o.n += 1
        return 0
    if kind == K_BYTES:
        if PyBytes_Check(value):
            raw = value
        elif isinstance(value, (bytearray, memoryview)):
            raw = bytes(value)
        else:
            raise EncodeError(f"{what}: expected bytes, got {_tname(value)}")
        n = PyBytes_GET_SIZE(raw)
        _put_raw(o, PyBytes_AS_STRING(raw), n, <uint64_t>n + (1 if optional else 0))
        return 0
    if kind == K_BOOL:
        _reserve(o, 1)
        o.p[o.n] = 1 if PyObject_IsTrue(value) else 0
        o.n += 1
        return 0
    if kind == K_F64:
        if PyFloat_CheckExact(value):
            d = PyFloat_AS_DOUBLE(value)
        elif PyFloat_Check(value) or PyLong_Check(value):
            try:
                d = PyFloat_AsDouble(value)
            except OverflowError:
                raise EncodeError(f"{what}: {value} is out of range for float64") from None
        else:
            raise EncodeError(f"{what}: expected float, got {_tname(value)}")
        memcpy(&bits, &d, 8)
        _reserve(o, 8)
        for i in range(8):
            o.p[o.n + i] = <unsigned char>(bits >> (8 * i))
        o.n += 8
        return 0
    if kind == K_REC:
        at = _open_len(o)
        _put_struct(o, <_Struct>sub, value)
        _close_len(o, at, optional)
        return 0
    if kind == K_LIST:
        if PyList_Check(value):
            n = PyList_GET_SIZE(value)
        elif PyTuple_Check(value):
            n = PyTuple_GET_SIZE(value)
        else:
            raise EncodeError(f"{what}: expected a list, got {_tname(value)}")
        _put_uvarint(o, <uint64_t>n + (1 if optional else 0))
        if PyList_Check(value):
            i = 0
            while i < PyList_GET_SIZE(value):
                item = <object>PyList_GET_ITEM(value, i)
                _put_value(o, item, elem, elem_optional, 0, False, sub, what)
                i += 1
        else:
            for i in range(n):
                item = <object>PyTuple_GET_ITEM(value, i)
                _put_value(o, item, elem, elem_optional, 0, False, sub, what)
        return 0
    # K_MAP
    if not PyDict_Check(value):
        raise EncodeError(f"{what}: expected a dict, got {_tname(value)}")
    _put_uvarint(o, <uint64_t>PyDict_Size(value) + (1 if optional else 0))
    pos = 0
    while PyDict_Next(value, &pos, &k, &v):
        key = <object>k
        item = <object>v
        _put_str(o, key, what)
        _put_value(o, item, elem, False, 0, False, NULL, what)
    return 0


cdef int _put_struct(Out *o, _Struct st, object obj) except -1:
    cdef Py_ssize_t i
    cdef FieldC *f
    cdef PyObject *cell
    cdef object value
    if type(obj) is not st.cls and not isinstance(obj, st.cls):
        raise EncodeError(f"expected {st.cls.__name__}, got {_tname(obj)}")
    for i in range(st.nfields):
        f = &st.fields[i]
        if f.offset >= 0:
            cell = lpe_get_slot(obj, f.offset)
            if cell == NULL:
                raise EncodeError(f"{st.cls.__name__}.{<object>f.name} is not set")
            value = <object>cell
        else:
            try:
                value = getattr(obj, <object>f.name)
            except AttributeError:
                raise EncodeError(f"{st.cls.__name__}.{<object>f.name} is not set") from None
        _put_value(o, value, f.kind, f.optional, f.elem, f.elem_optional, f.sub,
                   <object>f.name)
    return 0


cdef bytes _encode_body(int prefix, _Struct st, object obj):
    """``prefix`` (a type byte, or nothing when < 0) + version + body length + fields."""
    cdef Out o
    cdef Py_ssize_t at
    o.p = <unsigned char *>PyMem_Malloc(256)
    if o.p == NULL:
        raise MemoryError()
    o.n = 0
    o.cap = 256
    try:
        if prefix >= 0:
            o.p[0] = <unsigned char>prefix
            o.n = 1
        o.p[o.n] = FORMAT_VERSION
        o.n += 1
        at = _open_len(&o)
        _put_struct(&o, st, obj)
        _close_len(&o, at, False)
        return PyBytes_FromStringAndSize(<const char *>o.p, o.n)
    finally:
        PyMem_Free(o.p)


def encode(message):
    """``[type byte][body]`` of a memberlist or serf message (one form for packets and streams)."""
    entry = _BY_CLASS.get(type(message))
    if entry is None:
        raise EncodeError(f"not an lpe message: {_tname(message)}")
    return _encode_body(<int>entry[0], <_Struct>entry[1], message)


def encode_stream(message):
    """Same as :func:`encode`: lpe bodies always carry their length, so streams need no header."""
    entry = _BY_CLASS.get(type(message))
    if entry is None:
        raise EncodeError(f"not an lpe message: {_tname(message)}")
    return _encode_body(<int>entry[0], <_Struct>entry[1], message)


def encode_filter(flt):
    """One entry of ``MessageQuery.filters``: ``[filter type][body]``."""
    entry = _FILTER_BY_CLASS.get(type(flt))
    if entry is None:
        raise EncodeError(f"not a query filter: {_tname(flt)}")
    return _encode_body(<int>entry[0], <_Struct>entry[1], flt)


def encode_coordinate(coord):
    """A Vivaldi coordinate body: version, body length, vec, error, adjustment, height."""
    if not isinstance(coord, _m.Coordinate):
        raise EncodeError(f"expected Coordinate, got {_tname(coord)}")
    return _encode_body(-1, _COORD, coord)


def encode_tags(tags):
    """Node meta carrying serf tags: ``0xFE``, version, body length, then a string map."""
    cdef Out o
    cdef Py_ssize_t at
    if not isinstance(tags, dict):
        raise EncodeError(f"tags: expected a dict, got {_tname(tags)}")
    o.p = <unsigned char *>PyMem_Malloc(256)
    if o.p == NULL:
        raise MemoryError()
    o.n = 2
    o.cap = 256
    try:
        o.p[0] = TAG_MAGIC
        o.p[1] = FORMAT_VERSION
        at = _open_len(&o)
        _put_value(&o, tags, K_MAP, False, K_STR, False, NULL, "tags")
        _close_len(&o, at, False)
        return PyBytes_FromStringAndSize(<const char *>o.p, o.n)
    finally:
        PyMem_Free(o.p)


class LpeCodec:
    """The ``lpe`` codec (compiled twin); see docs/wire.md for the byte layout."""

    name = "lpe"
    encode = staticmethod(encode)
    decode = staticmethod(decode)
    encode_stream = staticmethod(encode_stream)
    decode_stream = staticmethod(decode_stream)
    decode_serf = staticmethod(decode_serf)
    encode_tags = staticmethod(encode_tags)
    decode_tags = staticmethod(decode_tags)
    encode_filter = staticmethod(encode_filter)
    decode_filter = staticmethod(decode_filter)
    encode_coordinate = staticmethod(encode_coordinate)
    decode_coordinate = staticmethod(decode_coordinate)
