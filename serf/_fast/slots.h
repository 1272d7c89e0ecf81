/* Slot access shared by the compiled twins (lpe.pyx, go.pyx): a slotted dataclass's fields
   are cells at fixed offsets in the instance, which the member descriptors read and write.
   The twins allocate a message with tp_alloc and fill those cells directly (what the
   descriptors do, minus the attribute lookups and the __init__ call). */
#include <Python.h>
#include <structmember.h>

static PyObject *lpe_alloc(PyObject *cls) {
    PyTypeObject *t = (PyTypeObject *)cls;
    return t->tp_alloc(t, 0);
}

/* Store v (new reference taken) in the slot cell at byte offset off, as a slot's
   member descriptor does. */
static inline void lpe_set_slot(PyObject *obj, Py_ssize_t off, PyObject *v) {
    PyObject **cell = (PyObject **)((char *)obj + off);
    PyObject *old = *cell;
    Py_INCREF(v);
    *cell = v;
    Py_XDECREF(old);
}

/* The slot's value, borrowed; NULL when the attribute was never set. */
static inline PyObject *lpe_get_slot(PyObject *obj, Py_ssize_t off) {
    return *(PyObject **)((char *)obj + off);
}

/* Byte offset of a writable __slots__ cell, or -1 if descr is anything else. */
static Py_ssize_t lpe_slot_offset(PyObject *descr) {
    PyMemberDef *d;
    if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
    d = ((PyMemberDescrObject *)descr)->d_member;
    if (d->type != T_OBJECT_EX || (d->flags & READONLY)) return -1;
    return d->offset;
}

static inline int lpe_is_compact_ascii(PyObject *s) {
    return PyUnicode_IS_COMPACT_ASCII(s);
}
static inline const char *lpe_ascii_data(PyObject *s) {
    return (const char *)PyUnicode_DATA(s);
}
static inline Py_ssize_t lpe_ascii_len(PyObject *s) {
    return PyUnicode_GET_LENGTH(s);
}
