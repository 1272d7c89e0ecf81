"""Fuzz targets, one per decoder (issue 9 item 7): seeded mutations of valid encodings and
random bytes; every decoder returns or raises its documented error, the twins agree, and a
stream reads the same whole or split. A few hundred cases per target in CI (both twins, as
CI runs the suite twice); ``SERF_FUZZ_SECONDS=n`` runs each target for n seconds instead."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from serf import _speedups
from serf.core.filters import compile_go
from serf.core.keyring_file import format_keyring, parse_keyring
from serf.core.snapshot import replay
from serf.testing.fuzz import fuzz
from serf.wire import DecodeError, get_codec
from serf.wire.codec import Codec
from serf.wire.framing import PacketFramer
from serf.wire.messages import (
    Alive,
    Coordinate,
    Dead,
    FilterNode,
    FilterTag,
    IndirectPingReq,
    Member,
    MessageConflictResponse,
    MessageJoin,
    MessageKeyResponse,
    MessageLeave,
    MessagePushPull,
    MessageQuery,
    MessageQueryResponse,
    MessageUserEvent,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    UserEvent,
    UserEvents,
    UserMsg,
)
from serf.wire.rpc import RpcDecoder, encode_rpc

CASES = 400
IP = b"\x0a\x00\x00\x01"
ODD = b"\x9aA".decode("utf-8", "surrogateescape")

MEMBERLIST = [
    Ping(1, "a", IP, "b", 7946),
    IndirectPingReq(2, IP, 7946, "c", True, IP, "b", 7946),
    Suspect(3, ODD, "b"),
    Alive(4, "n1", IP, 7946, b"\xff\x81\xa4role\xa3web", bytes([1, 5, 2, 2, 5, 4])),
    Dead(5, "n1", "n2"),
    PushPull(True, [PushNodeState("n1", IP, 7946, b"", 1, 0, bytes(6))] * 3, b"state"),
    UserMsg(b"\x01payload"),
]


def _serf_messages(codec: Codec) -> list[object]:
    return [
        MessageLeave(1, "n1", True),
        MessageJoin(2, ODD),
        MessageUserEvent(3, "deploy", b"v1", True),
        MessageQuery(
            4,
            99,
            IP,
            7946,
            "n1",
            [
                codec.encode_filter(FilterNode(["a", "b"])),
                codec.encode_filter(FilterTag("r", "w.*")),
            ],
            1,
            2,
            5_000_000_000,
            "q",
            b"body",
        ),
        MessageQueryResponse(4, 99, "n2", 0, b"answer"),
        MessagePushPull(5, {"n1": 3}, ["n2"], 6, [UserEvents(6, [UserEvent("e", b"p")])], 7),
        MessageConflictResponse(Member("n1", IP, 7946, {"a": "b"}, 1, 1, 5, 4, 2, 5, 4)),
        MessageKeyResponse(True, "", ["a2V5"], "a2V5"),
    ]


@pytest.fixture(params=["go", "lpe"])
def codec(request: pytest.FixtureRequest) -> Codec:
    return get_codec(request.param)


def _seeds(codec: Codec) -> dict[str, list[bytes]]:
    serf = [codec.encode(m) for m in _serf_messages(codec)]  # type: ignore[arg-type]
    return {
        "decode": [codec.encode(m) for m in MEMBERLIST],
        "decode_stream": [codec.encode_stream(m) for m in MEMBERLIST],
        "decode_serf": serf,
        "decode_tags": [codec.encode_tags({"role": "web", "dc": ODD}), b"legacy-role"],
        "decode_filter": [
            codec.encode_filter(FilterTag("r", "a|b")),
            codec.encode_filter(FilterNode(["x"])),
        ],
        "decode_coordinate": [codec.encode_coordinate(Coordinate())],
    }


@pytest.mark.parametrize(
    "method",
    ["decode", "decode_stream", "decode_serf", "decode_tags", "decode_filter", "decode_coordinate"],
)
def test_codec_decoders_raise_only_decode_error(codec: Codec, method: str) -> None:
    target = getattr(codec, method)
    assert fuzz(target, _seeds(codec)[method], allowed=(DecodeError,), cases=CASES) >= CASES


def test_lpe_twins_agree() -> None:
    twins = _speedups.twins("lpe")
    if len(twins) < 2:
        pytest.skip("only one lpe twin is built here")
    pure, compiled = twins["pure"].LpeCodec(), twins["compiled"].LpeCodec()
    seeds = [s for group in _seeds(pure).values() for s in group]

    def outcome(fn: Callable[[bytes], object], data: bytes) -> object:
        try:
            return fn(data)
        except DecodeError:
            return DecodeError

    def target(data: bytes) -> None:
        for method in ("decode", "decode_serf", "decode_tags", "decode_filter"):
            a = outcome(getattr(pure, method), data)
            b = outcome(getattr(compiled, method), data)
            assert a == b, f"{method}: pure {a!r} != compiled {b!r}"

    fuzz(target, seeds, allowed=(), cases=CASES)


def test_stream_reader_reads_alike_whole_or_split(codec: Codec) -> None:
    node = PacketFramer(codec, compression=False)
    seeds = [node.encode_stream_message(m, dialer=True) for m in MEMBERLIST]
    rng = random.Random(1)

    def outcome(chunks: list[bytes]) -> object:
        reader = node.stream_reader(listener=True)
        try:
            for chunk in chunks:
                reader.feed(chunk)
            return reader.feed_eof().message
        except DecodeError as exc:
            return type(exc)

    def target(data: bytes) -> None:
        cut = rng.randrange(len(data) + 1)
        whole, split = outcome([data]), outcome([data[:cut], data[cut:]])
        assert whole == split, f"whole {whole!r} != split at {cut} {split!r}"

    fuzz(target, seeds, allowed=(), cases=CASES)


def test_lzw_decompress_twins_agree() -> None:
    twins = _speedups.twins("lzw")
    seeds = [twins["pure"].compress(b"hello hello hello " * n) for n in (1, 5, 40)]

    def target(data: bytes) -> None:
        results = set()
        for twin in twins.values():
            try:
                results.add(twin.decompress(data, max_size=1 << 16))
            except DecodeError:
                results.add(DecodeError)  # type: ignore[arg-type]
        assert len(results) == 1, results

    fuzz(target, seeds, allowed=(), cases=CASES)


def test_rpc_decoder_raises_only_decode_error() -> None:
    seeds = [
        encode_rpc({"Command": "members-filtered", "Seq": 1}) + encode_rpc({"Name": ODD}),
        encode_rpc({"Command": "event", "Seq": 2})
        + encode_rpc({"Name": "e", "Payload": b"\x00\xff", "Coalesce": True}),
    ]

    def target(data: bytes) -> None:
        dec = RpcDecoder(max_buffer_size=1 << 16)
        dec.feed(data)
        for _ in dec:
            pass

    fuzz(target, seeds, allowed=(DecodeError,), cases=CASES)


def test_snapshot_replay_never_raises() -> None:
    seeds = [b"alive: a 10.0.0.1:7946\nnot-alive: a\nclock: 5\nevent-clock: 1\nleave\n"]

    def target(data: bytes) -> None:
        replay(data.decode("utf-8", "surrogateescape"), rejoin_after_leave=False)

    fuzz(target, seeds, allowed=(), cases=CASES)


def test_keyring_file_and_regex_parsers() -> None:
    def keyring(data: bytes) -> None:
        parse_keyring(data.decode("utf-8", "surrogateescape"))

    fuzz(keyring, [format_keyring([bytes(32), bytes(16)]).encode()], allowed=(ValueError,))

    def pattern(data: bytes) -> None:
        compile_go(data.decode("utf-8", "surrogateescape")).search("web-" + ODD)

    fuzz(
        pattern,
        [rb"^web-(\pL|\d)+$", b"(a|b)*c{2,5}", rb"[\x00-\x{10FFFF}]"],
        allowed=(ValueError,),
    )
