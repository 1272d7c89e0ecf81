"""Log lines and metric samples: what the sans-IO cores say about themselves, as effects.

How this works. The memberlist and serf cores cannot touch :mod:`logging` (it imports ``os``,
``time`` and threads) nor a metrics sink, so they append :class:`LogLine` and
:class:`MetricSample` effects to the effects they return, next to ``SendPacket`` and friends.
The asyncio driver routes each ``LogLine`` to the stdlib logger it names (``serf.memberlist``,
``serf.core``; silent unless the application configures logging) and each ``MetricSample`` to
its :class:`serf.metrics.MetricsSink`; the simulator counts them.

The wording, level and ``memberlist:`` / ``serf:`` prefix of every line are Go's (memberlist
v0.7 and serf v0.11 write them with ``logger.Printf("[LEVEL] memberlist: ...")``), so an
operator reads the same lines from a pyserf agent as from a Go one. The metric names are Go's
go-metrics keys (``("memberlist", "msg", "alive")``), with Go's kinds: a counter adds, a gauge
sets, a sample (Go's ``AddSample`` and its timers, in milliseconds) feeds a summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from serf._frozen import fast_init

__all__ = [
    "TRACE",
    "DEBUG",
    "INFO",
    "WARN",
    "ERR",
    "LEVEL_NAMES",
    "MEMBERLIST_LOGGER",
    "SERF_LOGGER",
    "COUNTER",
    "GAUGE",
    "SAMPLE",
    "TIMER",
    "LogLine",
    "MetricSample",
    "Labels",
    "go_ip",
    "go_bytes",
    "go_quote",
    "memberlist_line",
    "serf_line",
]

#: Go's log levels as :mod:`logging` level numbers (TRACE sits below DEBUG).
TRACE = 5
DEBUG = 10
INFO = 20
WARN = 30
ERR = 40

#: Go's name of each level, as it appears between the brackets of a log line.
LEVEL_NAMES = {TRACE: "TRACE", DEBUG: "DEBUG", INFO: "INFO", WARN: "WARN", ERR: "ERR"}

#: The stdlib logger names the drivers route to.
MEMBERLIST_LOGGER = "serf.memberlist"
SERF_LOGGER = "serf.core"

#: Metric kinds (go-metrics' IncrCounter, SetGauge, AddSample / MeasureSince).
COUNTER = "counter"
GAUGE = "gauge"
SAMPLE = "sample"
#: A timer (go-metrics' MeasureSince): ``value`` is the start on the core's clock (its
#: ``now``); the driver records ``(its now - start)`` in milliseconds as a sample.
TIMER = "timer"

Labels = tuple[tuple[str, str], ...]


@fast_init  # one per message received under an event load (Go's debug line for each)
@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line: ``text`` is Go's, prefix included (``"memberlist: Suspect b has ..."``)."""

    logger: str
    level: int
    text: str


@fast_init
@dataclass(frozen=True, slots=True)
class MetricSample:
    """One go-metrics call: ``key`` is Go's key (``("serf", "member", "join")``)."""

    kind: str
    key: tuple[str, ...]
    value: float
    labels: Labels = ()


def go_ip(ip: bytes | None) -> str:
    """An IP as Go's ``net.IP.String()`` prints it (``<nil>`` when empty)."""
    from serf.address import bytes_to_ip

    if not ip:
        return "<nil>"
    try:
        return bytes_to_ip(ip)
    except ValueError:
        return "?" + bytes(ip).hex()


def go_bytes(data: bytes | None) -> str:
    """A byte slice as Go's ``%v`` prints it: ``[1 2 3]``."""
    return "[" + " ".join(str(b) for b in (data or b"")) + "]"


def memberlist_line(level: int, text: str) -> LogLine:
    """A ``memberlist:`` line for the ``serf.memberlist`` logger."""
    return LogLine(MEMBERLIST_LOGGER, level, "memberlist: " + text)


def serf_line(level: int, text: str) -> LogLine:
    """A ``serf:`` line for the ``serf.core`` logger."""
    return LogLine(SERF_LOGGER, level, "serf: " + text)


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _printable(ch: str) -> bool:
    """Whether Go's ``strconv.IsPrint`` keeps the non-ASCII ``ch`` as it is (a letter, mark,
    number, punctuation or symbol). ``unicodedata`` is imported here, on the first such
    character: its tables are a library of their own (memory per agent)."""
    import unicodedata

    return unicodedata.category(ch)[0] in "LMNPS"


def go_quote(text: str | bytes) -> str:
    """A string as Go's ``strconv.Quote`` (so ``%q`` and ``%#v``) prints it.

    Bytes are read as UTF-8; a byte that is not UTF-8 (in a ``str``, the ``surrogateescape``
    code point U+DC80..U+DCFF that stands for it, as the RPC decoder makes) prints as
    ``\\xHH``. A rune Go's ``strconv.IsPrint`` rejects (not a letter, mark, number,
    punctuation, symbol or ASCII space: a control, U+2028, U+00A0, an unassigned code point)
    prints as ``\\uXXXX`` / ``\\UXXXXXXXX``, one below U+0020 or U+007F as ``\\xHH``. Python's
    Unicode tables may be a version apart from the Go build's: code points assigned in
    between print differently."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        code = ord(ch)
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x7F or _printable(ch):  # ASCII from here on is space, L, N, P or S
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:  # not a rune Go can hold: Go writes U+FFFD's escape
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
