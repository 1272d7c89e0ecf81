"""Query filters (reference 3.5) and the anchored RPC match."""

from __future__ import annotations

import pytest

from serf.core.filters import anchored_match, filter_matches, matches, matches_encoded
from serf.wire.codec import get_codec
from serf.wire.errors import DecodeError
from serf.wire.messages import Filter, FilterNode, FilterTag

TAGS = {"role": "web-frontend", "dc": "east"}


def test_no_filters_match() -> None:
    assert matches([], "n1", {})


def test_node_filter_membership() -> None:
    assert matches([FilterNode(["a", "n1"])], "n1", TAGS)
    assert not matches([FilterNode(["a", "b"])], "n1", TAGS)
    assert not matches([FilterNode([])], "n1", TAGS)
    assert not matches([FilterNode(None)], "n1", TAGS)


def test_tag_filter_is_unanchored_search() -> None:
    assert matches([FilterTag("role", "web")], "n1", TAGS)
    assert matches([FilterTag("role", "front")], "n1", TAGS)
    assert matches([FilterTag("role", "^web-.*end$")], "n1", TAGS)
    assert not matches([FilterTag("role", "^front")], "n1", TAGS)


def test_missing_tag_matches_as_empty_string() -> None:
    assert matches([FilterTag("rack", "^$")], "n1", TAGS)
    assert matches([FilterTag("rack", "")], "n1", TAGS)
    assert not matches([FilterTag("rack", "r1")], "n1", TAGS)


def test_bad_regex_means_no_match() -> None:
    assert not matches([FilterTag("role", "web(")], "n1", TAGS)
    assert not matches([FilterTag("role", "*")], "n1", TAGS)


def test_all_filters_must_match() -> None:
    flts: list[Filter] = [FilterNode(["n1"]), FilterTag("dc", "east"), FilterTag("role", "web")]
    assert matches(flts, "n1", TAGS)
    assert not matches([*flts, FilterTag("dc", "west")], "n1", TAGS)
    assert not matches(flts, "n2", TAGS)


def test_unknown_filter_object_is_false() -> None:
    assert not filter_matches(object(), "n1", TAGS)


def test_matches_encoded_uses_decoder_and_rejects_bad_bytes() -> None:
    table: dict[bytes, Filter] = {b"n": FilterNode(["n1"]), b"t": FilterTag("dc", "ea")}

    def decode(raw: bytes) -> Filter:
        if raw not in table:
            raise DecodeError("unknown filter type")
        return table[raw]

    assert matches_encoded(None, decode, "n1", TAGS)
    assert matches_encoded([b"n", b"t"], decode, "n1", TAGS)
    assert not matches_encoded([b"n", b"?"], decode, "n1", TAGS)
    assert not matches_encoded([b"n"], decode, "n2", TAGS)


@pytest.mark.parametrize("codec_name", ["lpe", "go"])
def test_matches_encoded_with_real_codecs(codec_name: str) -> None:
    codec = get_codec(codec_name)
    node_ok = codec.encode_filter(FilterNode(["a", "n1"]))
    node_no = codec.encode_filter(FilterNode(["a", "b"]))
    tag_ok = codec.encode_filter(FilterTag("dc", "^ea"))
    tag_no = codec.encode_filter(FilterTag("dc", "^west"))
    assert matches_encoded([node_ok, tag_ok], codec.decode_filter, "n1", TAGS)
    assert not matches_encoded([node_ok, tag_no], codec.decode_filter, "n1", TAGS)
    assert not matches_encoded([node_no, tag_ok], codec.decode_filter, "n1", TAGS)
    # undecodable filters match nothing instead of raising
    assert not matches_encoded([node_ok, b"\x07junk"], codec.decode_filter, "n1", TAGS)
    assert not matches_encoded([b""], codec.decode_filter, "n1", TAGS)
    assert not matches_encoded([node_ok[:-1]], codec.decode_filter, "n1", TAGS)


def test_anchored_match() -> None:
    assert anchored_match("web.*", "web-frontend")
    assert not anchored_match("web", "web-frontend")
    assert not anchored_match("front", "web-frontend")
    assert anchored_match("", "")
    assert not anchored_match("a", "a\n")  # Go's $ does not match before a final newline
    # As in Go, "^" + "a|b" + "$" leaves the alternation half anchored.
    assert anchored_match("a|b", "a-anything")
    with pytest.raises(ValueError, match="invalid regular expression"):
        anchored_match("(", "x")


def test_patterns_follow_re2_syntax_as_go() -> None:
    # Python's re accepts these; Go's regexp (RE2) rejects them, so they match nothing
    assert not matches([FilterTag("role", "(?=web)web")], "n1", TAGS)
    assert not matches([FilterTag("role", r"(w)\1")], "n1", TAGS)
    with pytest.raises(ValueError, match="web"):
        anchored_match("(?<!x)web", "web")
    # RE2 syntax Python's re lacks
    assert matches([FilterTag("role", r"\pL+-\pL+")], "n1", TAGS)


def test_bytes_that_are_not_utf8_match_as_go_reads_them() -> None:
    odd = b"\x9aA".decode("utf-8", "surrogateescape")
    assert matches([FilterTag("role", "^.A$")], "n1", {"role": odd})
    assert anchored_match("\ufffdA", odd)
    assert not matches([FilterTag("role", odd)], "n1", {"role": odd})  # pattern: invalid UTF-8
