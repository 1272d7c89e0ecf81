"""Query filters: does this node process a query?

How this works (reference section 3.5): a query carries a list of filters and a node
processes it only if every filter matches (logical AND; an empty list matches). A node
filter matches if our name is in its list. A tag filter matches if its regular expression
is found anywhere in the tag's value (Go ``regexp.MatchString``: unanchored); a missing
tag is matched as the empty string. A filter of an unknown kind, one that fails to decode,
or a regex that fails to compile means "don't process".

Python's ``re`` is not Go's RE2: most everyday patterns behave the same, but syntax only
one of them accepts, and ``$`` before a final newline (Python matches there, Go does not),
can differ. Python's engine also backtracks, so a hostile pattern can be slow.

``anchored_match`` is the RPC ``members-filtered`` flavour: Go compiles ``"^" + p + "$"``,
so a top-level alternation such as ``a|b`` stays only half anchored, exactly as in Go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from serf.wire.messages import Filter, FilterNode, FilterTag

__all__ = ["anchored_match", "filter_matches", "matches", "matches_encoded"]


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, TypeError, ValueError, RecursionError, OverflowError):
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
        except Exception:  # bad bytes from the network: "don't process", never raise
            return False
        if not filter_matches(flt, node_name, tags):
            return False
    return True


def anchored_match(pattern: str, value: str) -> bool:
    """Go ``regexp.MatchString("^" + pattern + "$", value)``.

    Raises ValueError with the compile error if the pattern is not a valid regex (the RPC
    server returns that error to its client).
    """
    try:
        compiled = re.compile("^" + pattern + r"\Z")
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return compiled.search(value) is not None
