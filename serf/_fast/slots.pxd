# Declarations of serf/_fast/slots.h (slot access shared by the compiled twins).
from cpython.object cimport PyObject

cdef extern from "slots.h":
    object lpe_alloc(object cls)
    void lpe_set_slot(object obj, Py_ssize_t off, object v)
    PyObject *lpe_get_slot(object obj, Py_ssize_t off)
    Py_ssize_t lpe_slot_offset(object descr)
    bint lpe_is_compact_ascii(object s)
    const char *lpe_ascii_data(object s)
    Py_ssize_t lpe_ascii_len(object s)
