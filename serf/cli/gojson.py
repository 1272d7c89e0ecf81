"""JSON text as Go's ``encoding/json`` writes it, so a script cannot tell our output from Go's.

How this works: :func:`marshal_indent` walks dicts (keys sorted, as Go sorts map keys),
lists/tuples, strings, bytes, integers, floats, booleans and None, and writes them with
:func:`quote`. Go's string rules differ from Python's ``json``: ``<``, ``>`` and ``&`` are
escaped as ``\\u003c``, ``\\u003e``, ``\\u0026`` (HTML-safe), as are U+2028 and U+2029;
control characters other than ``\\b \\f \\n \\r \\t`` are ``\\u00XX``; every other character
is written as UTF-8, and every byte that is not part of valid UTF-8 becomes ``\\ufffd``. A
Python string may carry such bytes as lone surrogates (``surrogateescape``); ``bytes`` values
are strings of raw bytes, as Go's ``string``. A dict key that is ``bytes`` is a Go string too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Struct", "marshal_indent", "quote"]

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class Struct(dict[str, Any]):
    """A Go struct: its fields are written in the order given, not sorted as a map's keys."""


def _text(value: str | bytes) -> str:
    """A Go string's characters: raw bytes decoded, bad bytes kept as lone surrogates."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def quote(value: str | bytes) -> str:
    """One JSON string literal, quoted and escaped as Go's ``encoding/json``."""
    parts = ['"']
    for ch in _text(value):
        code = ord(ch)
        if ch in _SHORT:
            parts.append(_SHORT[ch])
        elif ch in _HTML:
            parts.append(_HTML[ch])
        elif code < 0x20:
            parts.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:  # an invalid byte (or a lone surrogate): Go's U+FFFD
            parts.append("\\ufffd")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _key(key: Any) -> str | bytes:
    if isinstance(key, (str, bytes)):
        return key
    return str(key)


def _sort_key(key: str | bytes) -> bytes:
    """Go sorts map keys by their bytes."""
    return _text(key).encode("utf-8", "surrogateescape")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    if isinstance(value, (str, bytes)):
        return quote(value)
    raise TypeError(f"json: unsupported type: {type(value).__name__}")


def _write(value: Any, indent: str, depth: int, out: list[str]) -> None:
    pad = "\n" + indent * (depth + 1)
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        items = [(_key(k), v) for k, v in value.items()]
        if not isinstance(value, Struct):
            items.sort(key=lambda kv: _sort_key(kv[0]))
        for i, (key, item) in enumerate(items):
            out.append(("," if i else "") + pad + quote(key) + ": ")
            _write(item, indent, depth + 1, out)
        out.append("\n" + indent * depth + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            out.append(("," if i else "") + pad)
            _write(item, indent, depth + 1, out)
        out.append("\n" + indent * depth + "]")
    else:
        out.append(_scalar(value))


def marshal_indent(value: Any, indent: str = "  ") -> str:
    """Go's ``json.MarshalIndent(value, "", indent)``: a dict is a Go map (keys sorted), a
    :class:`Struct` a Go struct (fields in order)."""
    out: list[str] = []
    _write(value, indent, 0, out)
    return "".join(out)
