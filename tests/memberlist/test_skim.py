"""Skimming compound packets (serf.memberlist.skim and its compiled twin): the twins agree
with the lpe codec and with each other, and a core that skims gives exactly the effects and
the table of a core that decodes every part."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.address import Address
from serf.config import lan
from serf.memberlist import io
from serf.memberlist.core import MemberlistCore
from serf.memberlist.state import Node
from serf.wire import lpe
from serf.wire.errors import DecodeError
from serf.wire.framing import PacketFramer, make_compound, split_compound
from serf.wire.messages import Alive, Dead, Ping, Suspect

TWINS = _speedups.twins("skim")
TWIN_IDS = sorted(TWINS)

IP_A = b"\x0a\x00\x00\x02"
IP_B = b"\x0a\x00\x00\x03"
VSN = bytes([1, 5, 2, 0, 0, 0])
ME = Address("10.0.0.1", 7946)
FRAMER = PacketFramer("lpe", compression=False, token_bytes=random.Random(9).randbytes)


@pytest.fixture(params=TWIN_IDS)
def skim(request: pytest.FixtureRequest) -> ModuleType:
    return TWINS[request.param]


def expected_fields(part: bytes) -> tuple[int, str, bytes | None, int] | None:
    """What the codec makes of ``part``, in alive_fields' terms."""
    try:
        msg = lpe.decode(part)
    except DecodeError:
        return None
    if type(msg) is not Alive:
        return None
    return msg.incarnation, msg.node, msg.addr, msg.port


_alives = st.builds(
    Alive,
    st.integers(0, 2**32 - 1),
    st.text(max_size=6),
    st.one_of(st.none(), st.binary(max_size=17)),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.binary(max_size=4)),
    st.one_of(st.none(), st.binary(max_size=7)),
)


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in edits:
        i = where % (len(out) + 1)
        if op == 0 and i < len(out):
            out[i] = value
        elif op == 1:
            out.insert(i, value)
        elif op == 2 and i < len(out):
            del out[i]
        elif op == 3:
            del out[i:]
    return bytes(out)


_edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 64), st.integers(0, 255)), max_size=3)


@pytest.mark.parametrize("twin", TWIN_IDS)
@given(msg=_alives, edits=_edits)
@settings(max_examples=300, deadline=None)
def test_alive_fields_are_what_the_codec_decodes(
    twin: str, msg: Alive, edits: list[tuple[int, int, int]]
) -> None:
    part = _mutate(lpe.encode(msg), edits)
    assert TWINS[twin].alive_fields(part) == expected_fields(part)


@pytest.mark.parametrize(
    "part",
    [
        # a newer writer: version 2, one more field after the known ones (body length 14)
        bytes([4, 2, 14, 5, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x8A, 0x3E, 0, 0, 7]),
        # an incarnation written in more bytes than it needs
        bytes([4, 1, 14, 0x85, 0x80, 0, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x8A, 0x3E, 0, 0]),
        # version 0, trailing bytes after the body, a body longer than the part
        bytes([4, 0, 13, 5, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x8A, 0x3E, 0, 0]),
        bytes([4, 1, 13, 5, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x8A, 0x3E, 0, 0, 0]),
        bytes([4, 1, 14, 5, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x8A, 0x3E, 0, 0]),
        # an incarnation over 32 bits, a port over 16
        bytes([4, 1, 17, 0x80, 0x80, 0x80, 0x80, 0x10, 2]) + b"n1" + bytes([5]) + IP_A
        + bytes([1, 0, 0]),
        bytes([4, 1, 14, 5, 2]) + b"n1" + bytes([5]) + IP_A + bytes([0x80, 0x80, 0x04, 0, 0]),
    ],
)  # fmt: skip
def test_alive_fields_at_the_edges_of_the_format(skim: ModuleType, part: bytes) -> None:
    assert skim.alive_fields(part) == expected_fields(part)


@pytest.mark.parametrize("buf", [b"", b"\x07", b"\x04\x01", b"\x07\x02\x00\x01"])
def test_a_broken_compound_header_raises_as_split_compound(skim: ModuleType, buf: bytes) -> None:
    with pytest.raises(DecodeError) as theirs:
        split_compound(buf)
    with pytest.raises(DecodeError) as ours:
        skim.split_unknown({}, "me", buf)
    assert str(ours.value) == str(theirs.value)


def _enc(name: str, inc: int, addr: bytes | None = IP_A, port: int = 7946) -> bytes:
    return lpe.encode(Alive(inc, name, addr, port, b"", VSN))


def test_known_alives_are_left_out_and_the_rest_kept_in_order(skim: ModuleType) -> None:
    nodes = {"a": Node("a", IP_A, 7946, incarnation=5), "me": Node("me", IP_A, 7946)}
    parts = [
        _enc("a", 5),  # known: left out
        _enc("a", 4),  # older: left out
        _enc("a", 6),  # newer: kept
        _enc("b", 1),  # unknown: kept
        _enc("a", 5, IP_B),  # another address: kept
        _enc("me", 0),  # about us: kept
        _enc("a", 5, None),  # no address: kept (refused by the core)
        lpe.encode(Suspect(5, "a", "x")),
    ]
    kept, truncated, skipped = skim.split_unknown(nodes, "me", make_compound(parts))
    assert (kept, truncated, skipped) == (parts[2:], 0, 2)


class _Entry:
    """Not a Node: the compiled twin reads Node's fields from their slots, anything else by
    attribute."""

    def __init__(self, addr: bytes, port: int, incarnation: int) -> None:
        self.addr, self.port, self.incarnation = addr, port, incarnation


class _SlottedEntry:
    __slots__ = ("addr", "incarnation", "port")

    def __init__(self, addr: bytes, port: int, incarnation: int) -> None:
        self.addr, self.port, self.incarnation = addr, port, incarnation


@pytest.mark.parametrize("incarnation", [0, 4, 5, 2**40, 2**63, 2**70, -1, -(2**70)])
def test_entries_of_any_type_and_incarnation_are_judged_as_ignores_alive(
    skim: ModuleType, incarnation: int
) -> None:
    parts = [_enc("a", 5), _enc("a", 0), _enc("a", 5, port=7947), _enc("a", 0xFFFFFFFF)]
    incs, ports = (5, 0, 5, 0xFFFFFFFF), (7946, 7946, 7947, 7946)
    for entry in (
        Node("a", IP_A, 7946, incarnation=incarnation),
        _Entry(IP_A, 7946, incarnation),
        _SlottedEntry(IP_A, 7946, incarnation),
        Node("a", IP_A, 7946, incarnation=incarnation),
    ):
        for part, inc, port in zip(parts, incs, ports, strict=True):
            # one part per packet: a kept alive keeps the later ones about the same node
            kept, _, skipped = skim.split_unknown({"a": entry}, "me", make_compound([part]))
            ignored = inc <= incarnation and port == 7946
            assert (kept, skipped) == (([], 1) if ignored else ([part], 0)), (entry, inc, port)


def test_after_a_kept_alive_or_a_nested_part_the_same_name_is_kept(skim: ModuleType) -> None:
    nodes = {"a": Node("a", IP_A, 7946, incarnation=5), "b": Node("b", IP_B, 7946, incarnation=2)}
    # the first alive for a moves it (it may: a left node takes a new address); the second
    # must then reach the table as before, not be judged by the table of before the packet
    moved = [_enc("a", 6, IP_B), _enc("a", 5), _enc("b", 2, IP_B)]
    kept, _, skipped = skim.split_unknown(nodes, "x", make_compound(moved))
    assert (kept, skipped) == (moved[:2], 1)
    nested = [make_compound([_enc("b", 1)]), _enc("a", 5)]
    kept, _, skipped = skim.split_unknown(nodes, "x", make_compound(nested))
    assert (kept, skipped) == (nested, 0)


def test_truncated_parts_are_counted_as_split_compound_counts_them(skim: ModuleType) -> None:
    nodes = {"a": Node("a", IP_A, 7946, incarnation=5)}
    buf = make_compound([_enc("a", 5), _enc("b", 1), _enc("c", 1)])[:-3]
    assert skim.split_unknown(nodes, "me", buf) == ([_enc("b", 1)], 1, 1)


_names = st.sampled_from(["a", "b", "me"])
_addrs = st.sampled_from([IP_A, IP_B, None, b"\x0a\x00\x00"])
_parts = st.one_of(
    st.builds(_enc, _names, st.integers(0, 4), _addrs, st.sampled_from([7946, 7947])),
    st.builds(lambda n, i: lpe.encode(Suspect(i, n, "x")), _names, st.integers(0, 4)),
    st.builds(lambda n, i, f: lpe.encode(Dead(i, n, f)), _names, st.integers(0, 4), _names),
    st.just(lpe.encode(Ping(1, "me"))),
    st.just(b""),
    st.binary(max_size=12),
)
_compound_parts = st.recursive(
    _parts, lambda inner: st.lists(inner, min_size=1, max_size=4).map(make_compound), max_leaves=8
)


@given(
    parts=st.lists(_compound_parts, min_size=1, max_size=10),
    entries=st.lists(
        st.tuples(_names, _addrs.filter(bool), st.sampled_from([7946, 7947]), st.integers(0, 4))
    ),
    cut=st.integers(0, 4),
)
@settings(max_examples=200, deadline=None)
def test_the_twins_split_alike(
    parts: list[bytes], entries: list[tuple[str, bytes, int, int]], cut: int
) -> None:
    nodes = {n: Node(n, a, p, incarnation=i) for n, a, p, i in entries}
    buf = make_compound(parts)
    buf = buf[: len(buf) - cut]
    answers = {name: _split_or_error(twin, nodes, buf) for name, twin in TWINS.items()}
    assert len(set(map(repr, answers.values()))) == 1, answers
    try:
        whole, whole_truncated = split_compound(buf)
    except DecodeError as exc:
        assert answers["pure"] == str(exc)
        return
    kept, truncated, skipped = answers["pure"]
    assert truncated == whole_truncated and len(kept) + skipped == len(whole)


def _split_or_error(twin: ModuleType, nodes: dict[str, Node], buf: bytes) -> object:
    try:
        return twin.split_unknown(nodes, "me", buf)
    except DecodeError as exc:
        return str(exc)


@given(names=st.lists(st.text(max_size=5), min_size=1, max_size=8, unique=True))
@settings(max_examples=200, deadline=None)
def test_names_are_found_whatever_their_bytes(names: list[str]) -> None:
    # the compiled twin finds a name by its bytes in a cache of the names met: prefixes of
    # each other, the empty name, non-ASCII and surrogate-escaped names must not be mixed up
    for skim in TWINS.values():
        for known in (names, names[: len(names) // 2]):
            # keys built afresh (not the interned strs the cache hands out)
            nodes = {"".join(list(n)): Node(n, IP_A, 7946, incarnation=3) for n in known}
            for name in names:
                _, _, skipped = skim.split_unknown(nodes, "\x00me", make_compound([_enc(name, 3)]))
                assert skipped == (name in known), (skim, name)


def test_the_compiled_name_cache_stays_bounded() -> None:
    skim = TWINS.get("compiled")
    if skim is None:
        pytest.skip("no compiled twin")
    nodes = {"a": Node("a", IP_A, 7946, incarnation=5)}
    seen = []
    for first in range(0, 70_000, 255):
        parts = [_enc(f"x{i}", 1) for i in range(first, first + 255)]
        skim.split_unknown(nodes, "me", make_compound(parts))
        seen.append(skim.cached_names())
    assert max(seen) <= 1 << 16  # cleared once full:
    assert any(after < before for before, after in itertools.pairwise(seen))
    kept, _, skipped = skim.split_unknown(nodes, "me", make_compound([_enc("a", 5)]))
    assert (kept, skipped) == ([], 1)


# -- the core: skimming changes no outcome ------------------------------------------------------


def _core(reclaim: float, skimming: bool) -> MemberlistCore:
    cfg = replace(lan("me"), dead_node_reclaim_time=reclaim)
    rng = random.Random(1)
    core = MemberlistCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=ME)
    if not skimming:
        core._split = None  # every part decoded and handled, as before skimming existed
    core.handle(io.Start(), 0.0)
    return core


def _table(core: MemberlistCore) -> list[Node]:
    return core.state.members()


@given(
    packets=st.lists(st.lists(_compound_parts, min_size=1, max_size=6), min_size=1, max_size=8),
    reclaim=st.sampled_from([0.0, 0.5]),
)
@settings(max_examples=200, deadline=None)
def test_a_skimming_core_does_what_a_decoding_core_does(
    packets: list[list[bytes]], reclaim: float
) -> None:
    ours, plain = _core(reclaim, True), _core(reclaim, False)
    source = Address("10.0.0.9", 7946)
    for i, parts in enumerate(packets):
        pkt = io.PacketReceived(make_compound(parts), source)
        now = 1.0 + i
        assert ours.handle(pkt, now) == plain.handle(pkt, now)
        assert _table(ours) == _table(plain)


def test_an_alive_after_one_that_moved_the_node_is_still_handled() -> None:
    # a leaves (LEFT), then one packet: a at a new address (taken: a left), then a stale
    # alive at the old address, which is now a conflict (Go logs it) and must not be skipped
    cores = [_core(0.0, True), _core(0.0, False)]
    source = Address("10.0.0.9", 7946)
    first = make_compound([_enc("a", 5), lpe.encode(Dead(5, "a", "a"))])
    second = make_compound([_enc("a", 6, IP_B), _enc("a", 5)])
    outcomes = []
    for core in cores:
        core.handle(io.PacketReceived(first, source), 1.0)
        outcomes.append(core.handle(io.PacketReceived(second, source), 2.0))
    assert outcomes[0] == outcomes[1]
    assert any("Conflicting address for a" in str(e) for e in outcomes[0])


def test_the_core_skims_known_alives_with_lpe_only() -> None:
    core = _core(0.0, True)
    known = make_compound([_enc("a", 5), _enc("b", 1)])
    core.handle(io.PacketReceived(known, Address("10.0.0.9", 7946)), 1.0)
    assert core._split is not None
    datagram = FRAMER.encode_packet(known, crc=False)
    assert core.framer.decode_packet(datagram, core._split).skipped == 2
    go = MemberlistCore(
        replace(lan("me"), codec="go"), rng=random.Random(1), token_bytes=bytes, advertise=ME
    )
    cidrs = MemberlistCore(
        replace(lan("me"), cidrs_allowed=["10.0.0.0/8"]),
        rng=random.Random(1),
        token_bytes=bytes,
        advertise=ME,
    )
    assert go._split is None and cidrs._split is None
