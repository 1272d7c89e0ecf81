"""Query filters: does this node process a query?

How this works (reference section 3.5): a query carries a list of filters and a node
processes it only if every filter matches (logical AND; an empty list matches). A node
filter matches if our name is in its list. A tag filter matches if its regular expression
is found anywhere in the tag's value (Go ``regexp.MatchString``: unanchored); a missing
tag is matched as the empty string. A filter of an unknown kind, one that fails to decode,
or a regex that fails to compile means "don't process".

Patterns are matched with RE2 (``google-re2``), the engine Go's ``regexp`` implements:
linear time in the text, so a hostile pattern such as ``(.*.*)*Z`` costs microseconds, not
the event loop (Python's backtracking ``re`` froze a node for minutes). A pattern RE2
rejects, or one that is not valid UTF-8 (Go: "invalid UTF-8"), does not compile. Text that
holds bytes which are not UTF-8 (kept as ``surrogateescape`` code points) is matched as Go
matches it: each such byte reads as U+FFFD. Compiled patterns are cached (bounded).

``anchored_match`` is the RPC ``members-filtered`` flavour: Go compiles ``"^" + p + "$"``,
so a top-level alternation such as ``a|b`` stays only half anchored, exactly as in Go.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from serf.wire.errors import DecodeError
from serf.wire.messages import Filter, FilterNode, FilterTag

__all__ = [
    "GoRegexp",
    "anchored_match",
    "compile_anchored",
    "compile_go",
    "filter_matches",
    "matches",
    "matches_encoded",
]

#: compiled patterns kept (a sender may send a new pattern per query: the cache is bounded)
PATTERN_CACHE_SIZE = 256


@functools.cache
def _re2() -> tuple[Any, Any]:
    """The RE2 module and its options, imported on first use (a compiled dependency that a
    core which never meets a pattern, as in the simulator, need not load)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # a rejected pattern is a return value, not a line on stderr
    return re2, options


# surrogateescape code points (one per byte that is not UTF-8) -> U+FFFD, as Go reads them
_AS_GO_READS = {cp: "\ufffd" for cp in range(0xDC80, 0xDD00)}


class GoRegexp(Protocol):
    """A compiled pattern: ``search(text)`` is truthy when it matches somewhere in text."""

    def search(self, text: str) -> object: ...


class _Matcher:
    """An RE2 pattern that matches surrogate-escaped text the way Go's regexp does."""

    __slots__ = ("_rx",)

    def __init__(self, rx: GoRegexp) -> None:
        self._rx = rx

    def search(self, text: str) -> object:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = text.translate(_AS_GO_READS)
        return self._rx.search(text)


@functools.lru_cache(maxsize=PATTERN_CACHE_SIZE)
def _compile_cached(pattern: str) -> _Matcher | str:
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid UTF-8"
    re2, options = _re2()
    try:
        return _Matcher(re2.compile(pattern, options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def compile_go(pattern: str) -> GoRegexp:
    """Compile ``pattern`` with RE2 syntax (Go ``regexp.Compile``), linear-time matching.

    Raises ValueError naming the pattern and RE2's reason if it does not compile.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"invalid regular expression: not a string ({type(pattern).__name__})")
    compiled = _compile_cached(pattern)
    if isinstance(compiled, str):
        raise ValueError(f"invalid regular expression {pattern!r}: {compiled}")
    return compiled


def compile_anchored(pattern: str) -> GoRegexp:
    """``compile_go("^" + pattern + "$")``: the RPC ``members-filtered`` flavour.

    A top-level alternation such as ``a|b`` stays only half anchored, exactly as in Go.
    """
    if not isinstance(pattern, str):
        return compile_go(pattern)
    compiled = _compile_cached("^" + pattern + "$")
    if isinstance(compiled, str):
        raise ValueError(f"invalid regular expression {pattern!r}: {compiled}")
    return compiled


def _compile(pattern: str) -> GoRegexp | None:
    try:
        return compile_go(pattern)
    except ValueError:
        return None


def filter_matches(flt: object, node_name: str, tags: Mapping[str, str]) -> bool:
    """Whether one decoded filter matches this node; anything unrecognised is False."""
    if isinstance(flt, FilterNode):
        return node_name in (flt.nodes or ())
    if isinstance(flt, FilterTag):
        if not isinstance(flt.expr, str) or not isinstance(flt.tag, str):
            return False
        compiled = _compile(flt.expr)
        if compiled is None:
            return False
        return compiled.search(tags.get(flt.tag, "")) is not None
    return False


def matches(filters: Iterable[Filter], node_name: str, tags: Mapping[str, str]) -> bool:
    """True if every filter matches ``node_name`` with ``tags`` (True for no filters)."""
    return all(filter_matches(flt, node_name, tags) for flt in filters)


def matches_encoded(
    raw_filters: Iterable[bytes] | None,
    decode: Callable[[bytes], Filter],
    node_name: str,
    tags: Mapping[str, str],
) -> bool:
    """Like ``matches`` for the encoded ``MessageQuery.filters`` entries.

    ``decode`` is a codec's ``decode_filter``; an entry it rejects (unknown filter type,
    malformed body) makes the result False, as in Go.
    """
    for raw in raw_filters or ():
        try:
            flt = decode(raw)
        except DecodeError:  # bad bytes from the network: "don't process", never raise
            return False
        if not filter_matches(flt, node_name, tags):
            return False
    return True


def anchored_match(pattern: str, value: str) -> bool:
    """Go ``regexp.MatchString("^" + pattern + "$", value)``.

    Raises ValueError with the compile error if the pattern is not a valid regex (the RPC
    server returns that error to its client).
    """
    return compile_anchored(pattern).search(value) is not None
