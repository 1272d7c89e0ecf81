# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Recording a driver's metric samples (compiled twin of ``serf.metrics_record``).

How this works: as the pure twin (read its module comment), with the per-sample loop in C,
the aggregates' fields C doubles, and a shortcut in :func:`text` for a whole number's ``%f``
(its digits and ``.000000``, the bytes Python's ``%f`` gives); any other value goes through
``format % value`` as in the pure twin. Each aggregate's arithmetic is the same double
operations in the same order as the pure twin's, so the results are bit-identical.
"""

from cpython.object cimport PyObject
from libc.math cimport fabs, floor, signbit
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from serf._fast.slots cimport lpe_get_slot, lpe_slot_offset

from serf.metrics_record import as_dict, go_text, stddev  # the read side: the pure twin's
from serf.telemetry import SAMPLE, TIMER, MetricSample

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    void PyMem_Free(void *p)
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    object PyLong_FromVoidPtr(void *p)

__all__ = ["Aggregate", "record", "text"]

cdef object _TIMER = TIMER
cdef object _SAMPLE = SAMPLE
cdef double _WHOLE_LIMIT = 1e15  # below 2**53: every whole double here is an exact integer
cdef object _MetricSample = MetricSample
# MetricSample's slot cells (a frozen slotted dataclass): read directly, as its descriptors do
cdef Py_ssize_t _KIND = lpe_slot_offset(MetricSample.__dict__["kind"])
cdef Py_ssize_t _KEY = lpe_slot_offset(MetricSample.__dict__["key"])
cdef Py_ssize_t _VALUE = lpe_slot_offset(MetricSample.__dict__["value"])
cdef Py_ssize_t _LABELS = lpe_slot_offset(MetricSample.__dict__["labels"])
cdef bint _SLOTS = _KIND >= 0 and _KEY >= 0 and _VALUE >= 0 and _LABELS >= 0


cdef class Aggregate:
    """Running aggregate of one key: a counter's total, a gauge's last value, a summary."""

    cdef public str kind
    cdef public long long count
    cdef public double sum
    cdef public double min
    cdef public double max
    cdef public double last
    cdef public object labels
    cdef public double sumsq

    def __init__(
        self,
        kind,
        long long count=0,
        double sum=0.0,
        double min=float("inf"),
        double max=float("-inf"),
        double last=0.0,
        labels=(),
        double sumsq=0.0,
    ):
        self.kind = kind
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.last = last
        self.labels = labels
        self.sumsq = sumsq

    cdef inline void fold(self, double value):
        self.count += 1
        self.sum += value
        self.sumsq += value * value
        self.last = value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    cpdef add(self, double value, double now=0.0):
        """Fold one value in (``now`` is unused: a recorder's signature)."""
        self.fold(value)

    @property
    def stddev(self):
        """The sample standard deviation, as go-metrics' ``AggregateSample.Stddev``."""
        return stddev(self)

    def go_text(self):
        """go-metrics' text for this key: a gauge's value as ``%0.3f``; a counter or summary as
        ``AggregateSample.String()`` (``Count: 3 Sum: 3.000``, or with ``Min``, ``Mean``,
        ``Max``, ``Stddev`` when the values differ) without Go's ``LastUpdated`` time."""
        return go_text(self)

    def as_dict(self):
        """JSON-ready: kind, count, sum, min, max, mean, last, labels."""
        return as_dict(self)

    def __repr__(self):
        return (
            f"Aggregate(kind={self.kind!r}, count={self.count!r}, sum={self.sum!r}, "
            f"min={self.min!r}, max={self.max!r}, last={self.last!r}, labels={self.labels!r}, "
            f"sumsq={self.sumsq!r})"
        )




cdef inline object _field(object sample, Py_ssize_t offset, str name):
    """``getattr(sample, name)``: read from its slot cell for an exact MetricSample."""
    cdef PyObject *cell
    if _SLOTS and type(sample) is _MetricSample:
        cell = lpe_get_slot(sample, offset)
        if cell is not NULL:
            return <object>cell
    return getattr(sample, name)


def record(list samples, dict routes, route, list lines, list values, failed):
    """Record ``samples`` (``(sample, now)``, in order): fold each value into its route's
    aggregates, hand it to its recorders, append its line format and value to ``lines`` and
    ``values``. A sample whose value is not a number, or that ``route`` cannot name, is
    dropped alone (``failed(sample, exc)``); a recorder that raises is reported as
    ``failed(recorder, exc)`` and the others still run.

    Besides the pure twin's ``(kind, key, labels)`` entries, ``routes`` gets one per key
    object, under its ``id`` (an int never equals a tuple key): ``(key, kind, labels,
    route)``, holding the key so that its id stays its own; the cores' keys are constants,
    so a sample's route is then found without hashing its key."""
    cdef double v, elapsed
    cdef tuple found, aggregates, recorders, entry
    for item in samples:
        sample, now = <tuple>item
        try:
            kind = _field(sample, _KIND, "kind")
            value = _field(sample, _VALUE, "value")
            if type(value) is not float:
                if isinstance(value, (str, bytes, bytearray)):
                    raise TypeError(f"a metric value must be a number, not {value!r}")
                value = float(value)
            if kind is _TIMER or kind == _TIMER:  # the start time: ms up to when it was queued
                elapsed = <double>now - <double>value
                v = (elapsed if elapsed > 0.0 else 0.0) * 1000.0
                value = v
                kind = _SAMPLE
            else:
                v = value
            key = _field(sample, _KEY, "key")
            labels = _field(sample, _LABELS, "labels")
            ident = PyLong_FromVoidPtr(<void *>key)
            entry = routes.get(ident)
            if (
                entry is not None
                and <object>entry[0] is key
                and <object>entry[1] is kind
                and <object>entry[2] is labels
            ):
                found = entry[3]
            else:
                found = routes.get((kind, key, labels))
                if found is None:
                    found = route(kind, key, labels)
                if entry is not None or len(routes) < 4096:  # bounded, as Metrics' own
                    routes[ident] = (key, kind, labels, found)
            aggregates, recorders, line = found
        except Exception as exc:  # drop this sample alone
            failed(sample, exc)
            continue
        if line is not None:
            lines.append(line)
            values.append(value)
        for a in aggregates:
            if type(a) is Aggregate:
                (<Aggregate>a).fold(v)
            else:  # not this twin's: its own add
                try:
                    a.add(value)
                except Exception as exc:
                    failed(a, exc)
        for recorder in recorders:
            try:
                recorder(value, now)
            except Exception as exc:  # a sink must never break the driver
                failed(recorder, exc)


cdef dict _splits = {}  # line format -> its UTF-8 before and after the value, or None


cdef object _split(str fmt):
    """``fmt``'s text before and after its value's ``%f`` (``%%`` undoubled) in UTF-8, or
    None when it is not a plain ``...%f...`` format (then ``%`` formats the batch)."""
    cdef Py_ssize_t at = fmt.rfind("%f")
    if at < 0:
        return None
    head = fmt[:at]
    tail = fmt[at + 2:]
    if "%" in tail or "%" in head.replace("%%", ""):
        return None
    try:
        return (head.replace("%%", "%").encode("utf-8"), tail.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: % formats it
        return None


cdef struct _Buf:
    char *data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _put(_Buf *buf, const char *data, Py_ssize_t size) except -1:
    cdef char *grown
    cdef Py_ssize_t cap
    if buf.size + size > buf.cap:
        cap = (buf.size + size) * 2
        grown = <char *>realloc(buf.data, cap)
        if grown is NULL:
            raise MemoryError()
        buf.data = grown
        buf.cap = cap
    memcpy(buf.data + buf.size, data, size)
    buf.size += size
    return 0


cdef int _put_whole(_Buf *buf, double v) except -1:
    """``'%f' % v`` for a whole ``v`` below 1e15 (not -0.0): its digits and ``.000000``."""
    cdef char digits[32]
    cdef long long n = <long long>v
    cdef bint negative = n < 0
    cdef int i = 31
    cdef int k
    if negative:
        n = -n
    for k in range(6):  # written backwards: ".000000", the digits, the sign
        digits[i] = b'0'
        i -= 1
    digits[i] = b'.'
    i -= 1
    while True:
        digits[i] = <char>(48 + n % 10)
        i -= 1
        n //= 10
        if n == 0:
            break
    if negative:
        digits[i] = b'-'
        i -= 1
    return _put(buf, &digits[i + 1], 31 - i)


def text(list lines, list values):
    """The batch's text: each line format with its value (``%f``, as go-metrics); raises
    TypeError or ValueError when a value does not fit its format (as ``%``)."""
    cdef Py_ssize_t i, n = len(lines)
    cdef double v
    cdef char *formatted
    cdef _Buf buf
    cdef bytes head, tail
    if len(values) != n:
        return "".join(lines) % tuple(values)
    buf.size = 0
    buf.cap = 64 * n + 64
    buf.data = <char *>malloc(buf.cap)
    if buf.data is NULL:
        raise MemoryError()
    try:
        for i in range(n):
            fmt = lines[i]
            value = values[i]
            if type(fmt) is not str or type(value) is not float:
                return "".join(lines) % tuple(values)  # as the pure twin (and its errors)
            split = _splits.get(fmt)
            if split is None:
                split = _split(fmt)
                if split is None:
                    return "".join(lines) % tuple(values)
                if len(_splits) >= 4096:  # keys carry event names: bounded
                    _splits.clear()
                _splits[fmt] = split
            head = <bytes>(<tuple>split)[0]
            tail = <bytes>(<tuple>split)[1]
            _put(&buf, head, len(head))
            v = value
            if fabs(v) < _WHOLE_LIMIT and v == floor(v) and not (v == 0.0 and signbit(v)):
                _put_whole(&buf, v)
            else:  # what '%f' does: Python's own float formatting
                formatted = PyOS_double_to_string(v, b'f', 6, 0, NULL)
                try:
                    _put(&buf, formatted, len(formatted))
                finally:
                    PyMem_Free(formatted)
            _put(&buf, tail, len(tail))
        return PyUnicode_DecodeUTF8(buf.data, buf.size, NULL)
    finally:
        free(buf.data)
