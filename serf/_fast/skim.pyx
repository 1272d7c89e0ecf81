# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Skimming a compound packet for gossip that changes nothing (compiled twin of
``serf.memberlist.skim``).

How this works: exactly as the pure twin (read its module comment), in one pass over the
packet's bytes: the compound header and each part's length as ``split_compound`` reads them,
an alive part's fields by the ``lpe`` codec's rules, and only the kept parts copied out.
Nothing is built for a part that is left out: its node name is looked up in a process-wide
cache of names by their bytes (:func:`_name_of`), which hands out the one interned ``str`` the
tables key their entries by (``sys.intern``), so the table's dict finds it by identity with
its hash already known.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.object cimport PyObject
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint64_t
from libc.string cimport memcmp

from serf._fast.varint cimport read_uvarint
from serf._fast.slots cimport lpe_get_slot, lpe_slot_offset

import sys

from serf.wire.errors import DecodeError
from serf.wire.framing import COMPOUND_MSG as _COMPOUND_MSG, COMPRESS_MSG as _COMPRESS_MSG
from serf.wire.messages import MessageType

__all__ = ["alive_fields", "split_unknown"]

cdef int ALIVE = int(MessageType.ALIVE)
cdef int COMPOUND = _COMPOUND_MSG
cdef int COMPRESS = _COMPRESS_MSG


cdef struct AliveFields:
    uint64_t incarnation
    Py_ssize_t name
    Py_ssize_t name_len
    Py_ssize_t addr      # -1: no address (None)
    Py_ssize_t addr_len
    uint64_t port


cdef inline bint _alive(const unsigned char *p, Py_ssize_t start, Py_ssize_t end,
                        AliveFields *f) noexcept:
    """Read the alive part p[start:end]; False when it is none or the codec refuses it."""
    cdef Py_ssize_t pos
    cdef uint64_t n
    cdef int i
    if end - start < 2 or p[start] != ALIVE or p[start + 1] == 0:
        return False
    pos = read_uvarint(p, start + 2, end, &n)
    if pos < 0 or n != <uint64_t>(end - pos):
        return False
    pos = read_uvarint(p, pos, end, &f.incarnation)
    if pos < 0 or f.incarnation > 0xFFFFFFFF:
        return False
    pos = read_uvarint(p, pos, end, &n)
    if pos < 0 or n > <uint64_t>(end - pos):
        return False
    f.name = pos
    f.name_len = <Py_ssize_t>n
    pos += <Py_ssize_t>n
    pos = read_uvarint(p, pos, end, &n)
    if pos < 0:
        return False
    if n == 0:
        f.addr = -1
        f.addr_len = 0
    else:
        if n - 1 > <uint64_t>(end - pos):
            return False
        f.addr = pos
        f.addr_len = <Py_ssize_t>(n - 1)
        pos += <Py_ssize_t>(n - 1)
    pos = read_uvarint(p, pos, end, &f.port)
    if pos < 0 or f.port > 0xFFFF:
        return False
    for i in range(2):  # meta, vsn: optional bytes, read only to check them
        pos = read_uvarint(p, pos, end, &n)
        if pos < 0:
            return False
        if n != 0:
            if n - 1 > <uint64_t>(end - pos):
                return False
            pos += <Py_ssize_t>(n - 1)
    return True


def alive_fields(part):
    """``(incarnation, node, addr, port)`` of an ``lpe`` alive message that the codec decodes
    without error, else None (not an alive, or one the codec refuses)."""
    cdef bytes data = part if type(part) is bytes else bytes(part)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef AliveFields f
    if not _alive(p, 0, PyBytes_GET_SIZE(data), &f):
        return None
    name = PyUnicode_DecodeUTF8(<const char *>p + f.name, f.name_len, "surrogateescape")
    addr = None
    if f.addr >= 0:
        addr = PyBytes_FromStringAndSize(<const char *>p + f.addr, f.addr_len)
    return f.incarnation, name, addr, f.port


# The names met, by their bytes: an open-addressed table (linear probing, at most half full)
# of the interned str for each, shared by every table of the process (a simulation's N views
# name the same N members). Growing by doubling up to _NAMES_MAX slots, then cleared, so it is
# bounded (an agent meets far fewer names). Each part left out costs a hash of its name bytes
# and one probe here instead of a new str (decode, hash, free) and a key compared by content.
cdef struct NameSlot:
    uint64_t hash
    PyObject *raw   # the name's bytes (a reference held), NULL when the slot is free
    PyObject *name  # sys.intern(raw.decode("utf-8", "surrogateescape")) (a reference held)

cdef NameSlot *_names = NULL
cdef Py_ssize_t _names_cap = 0
cdef Py_ssize_t _names_used = 0
cdef Py_ssize_t _NAMES_MIN = 1 << 10
cdef Py_ssize_t _NAMES_MAX = 1 << 17


cdef inline uint64_t _fnv1a(const unsigned char *p, Py_ssize_t n) noexcept:
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 1099511628211ULL
    return h


cdef int _names_resize(Py_ssize_t cap) except -1:
    """Move the slots into a table of ``cap`` slots (0 frees them all)."""
    global _names, _names_cap, _names_used
    cdef NameSlot *old = _names
    cdef Py_ssize_t old_cap = _names_cap, i, j
    cdef NameSlot *table = NULL
    if cap:
        table = <NameSlot *>PyMem_Calloc(cap, sizeof(NameSlot))
        if table is NULL:
            raise MemoryError()
    for i in range(old_cap):
        if old[i].raw is NULL:
            continue
        if table is NULL:
            Py_DECREF(<object>old[i].raw)
            Py_DECREF(<object>old[i].name)
            continue
        j = <Py_ssize_t>(old[i].hash & <uint64_t>(cap - 1))
        while table[j].raw is not NULL:
            j = (j + 1) & (cap - 1)
        table[j] = old[i]
    PyMem_Free(old)
    _names = table
    _names_cap = cap
    if table is NULL:
        _names_used = 0
    return 0


cdef object _name_of(const unsigned char *p, Py_ssize_t n):
    """``sys.intern(p[:n].decode("utf-8", "surrogateescape"))``, from the cache when met."""
    global _names_used
    cdef uint64_t h = _fnv1a(p, n)
    cdef Py_ssize_t i
    cdef object raw
    if _names_cap:
        i = <Py_ssize_t>(h & <uint64_t>(_names_cap - 1))
        while _names[i].raw is not NULL:
            if (_names[i].hash == h and PyBytes_GET_SIZE(<object>_names[i].raw) == n
                    and memcmp(PyBytes_AS_STRING(<object>_names[i].raw), p, n) == 0):
                return <object>_names[i].name
            i = (i + 1) & (_names_cap - 1)
    name = sys.intern(PyUnicode_DecodeUTF8(<const char *>p, n, "surrogateescape"))
    if 2 * (_names_used + 1) > _names_cap:
        if _names_cap >= _NAMES_MAX:
            _names_resize(0)
            _names_resize(_NAMES_MIN)
        else:
            _names_resize(_names_cap * 2 if _names_cap else _NAMES_MIN)
    i = <Py_ssize_t>(h & <uint64_t>(_names_cap - 1))
    while _names[i].raw is not NULL:
        i = (i + 1) & (_names_cap - 1)
    raw = PyBytes_FromStringAndSize(<const char *>p, n)
    Py_INCREF(raw)
    Py_INCREF(name)
    _names[i].hash = h
    _names[i].raw = <PyObject *>raw
    _names[i].name = <PyObject *>name
    _names_used += 1
    return name


def cached_names():
    """How many names the cache holds (for tests: it stays bounded)."""
    return _names_used


# The table's entry type, learnt from the first entry met (importing serf.memberlist.state
# here would be circular), and the offsets of the slots _ignored reads: a Node's fields are read
# from their cells, not through three attribute lookups per skimmed part.
cdef object _node_type = None
cdef Py_ssize_t _off_incarnation = -1, _off_port = -1, _off_addr = -1


cdef bint _learn(object cls) except -1:
    """Take ``cls`` as the entry type when its three fields are plain slots."""
    global _node_type, _off_incarnation, _off_port, _off_addr
    inc = lpe_slot_offset(cls.__dict__.get("incarnation"))
    port = lpe_slot_offset(cls.__dict__.get("port"))
    addr = lpe_slot_offset(cls.__dict__.get("addr"))
    if inc < 0 or port < 0 or addr < 0:
        return False
    _off_incarnation, _off_port, _off_addr = inc, port, addr
    _node_type = cls
    return True


cdef inline int _cmp_int(PyObject *cell, uint64_t value) except -2:
    """-1, 0 or 1 as ``value`` is below, equal to or above the exact int in ``cell``; 2 when the
    cell holds anything else (the caller compares the Python way)."""
    cdef int overflow = 0
    cdef long long have
    if cell is NULL or not PyLong_CheckExact(<object>cell):
        return 2
    have = PyLong_AsLongLongAndOverflow(<object>cell, &overflow)
    if overflow > 0:
        return -1
    if overflow < 0 or have < 0:
        return 1
    if value < <uint64_t>have:
        return -1
    return 1 if value > <uint64_t>have else 0


cdef inline bint _ignored(object node, const unsigned char *p, AliveFields *f) except -1:
    """``StateTable.ignores_alive`` for a known entry (the name checks are the caller's)."""
    cdef int inc = 2, port = 2
    cdef PyObject *cell
    if type(node) is _node_type or (_node_type is None and _learn(type(node))):
        inc = _cmp_int(lpe_get_slot(node, _off_incarnation), f.incarnation)
        port = _cmp_int(lpe_get_slot(node, _off_port), f.port)
    if inc == 2 or port == 2:  # not our entry type, or not plain ints: as the pure twin
        if f.incarnation > node.incarnation or f.port != node.port:
            return False
    elif inc > 0 or port != 0:
        return False
    if type(node) is _node_type:
        cell = lpe_get_slot(node, _off_addr)
        addr = <object>cell if cell is not NULL else node.addr
    else:
        addr = node.addr
    if type(addr) is bytes:
        return (PyBytes_GET_SIZE(addr) == f.addr_len
                and memcmp(PyBytes_AS_STRING(addr), p + f.addr, f.addr_len) == 0)
    return addr == PyBytes_FromStringAndSize(<const char *>p + f.addr, f.addr_len)


def split_unknown(nodes, local_name, buf):
    """``split_compound(buf)`` without the alive parts that change nothing (module comment):
    ``(parts, truncated, skipped)``. ``nodes`` is the receiver's member table by name and
    ``local_name`` the receiver's own name (first, for ``functools.partial``). Raises
    :class:`DecodeError` as :func:`~serf.wire.framing.split_compound` does."""
    cdef bytes data = buf if type(buf) is bytes else bytes(buf)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t total = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t n, i, offset, end, size
    cdef Py_ssize_t skipped = 0
    cdef bint trusted = True
    cdef bint is_dict = type(nodes) is dict
    cdef AliveFields f
    cdef PyObject *found
    cdef list kept = []
    cdef set touched = None
    if total == 0 or p[0] != COMPOUND:
        raise DecodeError("not a compound message")
    if total < 2:
        raise DecodeError("missing compound length byte")
    n = p[1]
    offset = 2 + 2 * n
    if total < offset:
        raise DecodeError("truncated compound length table")
    for i in range(n):
        size = (<Py_ssize_t>p[2 + 2 * i] << 8) | p[3 + 2 * i]
        end = offset + size
        if end > total:
            return kept, n - i, skipped
        if size:
            if p[offset] == COMPOUND or p[offset] == COMPRESS:
                trusted = False
            elif p[offset] == ALIVE and _alive(p, offset, end, &f):
                name = _name_of(p + f.name, f.name_len)
                if trusted and (touched is None or name not in touched):
                    if (f.addr >= 0 and (f.addr_len == 4 or f.addr_len == 16)
                            and name != local_name):
                        if is_dict:
                            found = PyDict_GetItem(nodes, name)
                            node = <object>found if found is not NULL else None
                        else:
                            node = nodes.get(name)
                        if node is not None and _ignored(node, p, &f):
                            skipped += 1
                            offset = end
                            continue
                if touched is None:
                    touched = set()
                touched.add(name)
        kept.append(PyBytes_FromStringAndSize(<const char *>p + offset, size))
        offset = end
    return kept, 0, skipped
