"""Fuzzing the framing: random and mutated input, only DecodeError escapes, memory stays bounded.

Runs with the ``go`` and ``lpe`` codecs (the framing hands inner messages to them, so this
also checks that they raise nothing but DecodeError on what the framing passes on).
"""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serf.wire import DecodeError, get_codec, lzw
from serf.wire.codec import Codec
from serf.wire.encryption import decrypt_payload, encrypt_payload
from serf.wire.framing import (
    PacketFramer,
    StreamReader,
    make_compound,
    split_compound,
    strip_crc,
    strip_label,
)
from serf.wire.keyring import Keyring
from serf.wire.messages import AckResp, Alive, Compress, Message, Ping, Suspect, UserMsg

K16 = bytes(range(16))
K32 = bytes(range(1, 33))

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def counter_nonces() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


@pytest.fixture(params=["go", "lpe"], scope="module")
def codec(request: pytest.FixtureRequest) -> Codec:
    try:
        return get_codec(request.param)
    except ImportError as exc:  # pragma: no cover - a codec still being written
        pytest.skip(f"codec {request.param} not available: {exc}")


CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {"compression": False},
    "compress": {"compression": True},
    "label": {"label": "dc1", "compression": True},
    "encrypted": {"keyring": [K16, K32], "compression": True, "label": "dc1"},
    "encrypted-v0": {"keyring": [K32], "encryption_version": 0, "compression": False},
    "lenient": {"keyring": [K16], "gossip_verify_incoming": False, "compression": True},
}


def make_framer(codec: Codec, name: str) -> PacketFramer:
    config = dict(CONFIGS[name])
    if "keyring" in config:
        config["keyring"] = Keyring(config["keyring"])
    return PacketFramer(codec, token_bytes=counter_nonces(), **config)


def sample_messages() -> list[Message]:
    return [
        Ping(seq_no=1, node="node-a", source_addr=b"\x7f\x00\x00\x01", source_port=7946),
        AckResp(seq_no=1, payload=b"\x01payload"),
        Suspect(incarnation=3, node="node-b", from_="node-a"),
        Alive(incarnation=4, node="node-c", addr=b"\x0a\x00\x00\x03", port=7946, meta=b"\xff\x80"),
        UserMsg(payload=b"\x03user event " * 20),
    ]


def valid_datagrams(codec: Codec, framer: PacketFramer) -> list[bytes]:
    encoded = [codec.encode(m) for m in sample_messages()]
    out = [framer.encode_packet(e, crc=crc) for e in encoded for crc in (False, True)]
    out.append(framer.encode_packet(make_compound(encoded), crc=True))
    out.append(framer.encode_packet(make_compound(encoded), crc=False))
    return out


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, value in edits:
        if not buf:
            buf.append(value)
            continue
        pos %= len(buf)
        if op == 0:
            buf[pos] = value
        elif op == 1:
            buf.insert(pos, value)
        elif op == 2:
            del buf[pos]
        else:
            del buf[pos:]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(min_value=0), st.integers(0, 255)),
    min_size=1,
    max_size=6,
)


# ------------------------------------------------------------------------------------------
# the single layers
# ------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_strip_label(data: bytes) -> None:
    try:
        label, rest = strip_label(data)
    except DecodeError:
        return
    assert len(label) + len(rest) + (2 if label else 0) == len(data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_strip_crc(data: bytes) -> None:
    try:
        strip_crc(data)
    except DecodeError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_split_compound(data: bytes) -> None:
    buf = b"\x07" + data
    try:
        parts, truncated = split_compound(buf)
    except DecodeError:
        return
    assert sum(map(len, parts)) <= len(buf)
    assert len(parts) + truncated == buf[1]


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([0, 1]))
def test_fuzz_decrypt(data: bytes, vsn: int) -> None:
    with pytest.raises(DecodeError):
        decrypt_payload([K16, K32], bytes([vsn]) + data, b"dc1")


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_decompress(data: bytes) -> None:
    try:
        lzw.decompress(data, max_size=200_000)
    except DecodeError:
        pass


def test_split_compound_allocates_nothing_for_declared_lengths() -> None:
    # 255 parts of 65535 bytes declared, 10 bytes present: nothing is copied
    buf = b"\x07\xff" + b"\xff\xff" * 255 + b"x" * 10
    assert split_compound(buf) == ([], 255)


@pytest.mark.slow
def test_lzw_bomb_memory_is_bounded() -> None:
    bomb = lzw.compress(bytes(5_000_000))
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="larger than limit"):
            lzw.decompress(bomb, max_size=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


# ------------------------------------------------------------------------------------------
# packets
# ------------------------------------------------------------------------------------------


@FUZZ
@given(st.sampled_from(sorted(CONFIGS)), st.binary(max_size=600))
def test_fuzz_decode_packet_random(codec: Codec, config: str, data: bytes) -> None:
    framer = make_framer(codec, config)
    for datagram in (data, b"\x07" + data, b"\x09" + data, b"\xf4\x03dc1" + data):
        try:
            framer.decode_packet(datagram)
        except DecodeError:
            pass


@FUZZ
@given(st.sampled_from(sorted(CONFIGS)), st.integers(0, 11), EDITS)
def test_fuzz_decode_packet_mutated(
    codec: Codec, config: str, which: int, edits: list[tuple[int, int, int]]
) -> None:
    framer = make_framer(codec, config)
    datagram = mutate(valid_datagrams(codec, framer)[which], edits)
    try:
        result = framer.decode_packet(datagram)
    except DecodeError:
        return
    assert result.dropped == len(result.errors)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.integers(0, 4),  # index of a good message
        ),
        min_size=1,
        max_size=20,
    ),
    st.booleans(),
    EDITS,
)
def test_fuzz_compound_of_mutated_parts(
    codec: Codec, parts: list[bytes | int], compress: bool, edits: list[tuple[int, int, int]]
) -> None:
    good = [codec.encode(m) for m in sample_messages()]
    raw = [good[p] if isinstance(p, int) else p for p in parts]
    raw = [mutate(p, edits) if i % 2 else p for i, p in enumerate(raw)]
    payload = make_compound(raw)
    if compress:
        payload = codec.encode(Compress(0, lzw.compress(payload)))
    framer = make_framer(codec, "plain")
    try:
        result = framer.decode_packet(payload)
    except DecodeError:
        return
    assert len(result.messages) + result.dropped + result.truncated >= 1


@FUZZ
@given(st.binary(max_size=300), st.integers(1, 6))
def test_fuzz_nested_compress_of_junk(codec: Codec, junk: bytes, depth: int) -> None:
    payload = junk
    for _ in range(depth):
        payload = codec.encode(Compress(0, lzw.compress(payload)))
    try:
        make_framer(codec, "plain").decode_packet(payload)
    except DecodeError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_encrypted_junk_is_decrypted_then_rejected(codec: Codec, junk: bytes) -> None:
    # Junk sealed with a valid key passes decryption; everything after must still hold up.
    framer = make_framer(codec, "encrypted")
    datagram = b"\xf4\x03dc1" + encrypt_payload(1, K32, junk, b"dc1", counter_nonces())
    try:
        framer.decode_packet(datagram)
    except DecodeError:
        pass


# ------------------------------------------------------------------------------------------
# streams
# ------------------------------------------------------------------------------------------


def valid_streams(codec: Codec, framer: PacketFramer) -> list[bytes]:
    out = []
    for message in sample_messages()[:2] + sample_messages()[4:]:
        out.append(framer.encode_stream_message(message, dialer=True))  # type: ignore[arg-type]
    return out


def drive(reader: StreamReader, data: bytes, chunk: int) -> None:
    try:
        for i in range(0, len(data), chunk):
            reader.feed(data[i : i + chunk])
        reader.feed_eof()
    except DecodeError:
        pass


@FUZZ
@given(
    st.sampled_from(sorted(CONFIGS)),
    st.binary(max_size=500),
    st.integers(1, 64),
    st.booleans(),
)
def test_fuzz_stream_reader_random(
    codec: Codec, config: str, data: bytes, chunk: int, listener: bool
) -> None:
    framer = make_framer(codec, config)
    for prefix in (b"", b"\x0a", b"\x09", b"\xf4\x03dc1", b"\xf4\x03dc1\x0a\x00\x00\x00"):
        drive(framer.stream_reader(listener=listener), prefix + data, chunk)


@FUZZ
@given(st.sampled_from(sorted(CONFIGS)), st.integers(0, 2), EDITS, st.integers(1, 100))
def test_fuzz_stream_reader_mutated(
    codec: Codec, config: str, which: int, edits: list[tuple[int, int, int]], chunk: int
) -> None:
    framer = make_framer(codec, config)
    data = mutate(valid_streams(codec, framer)[which], edits)
    drive(framer.stream_reader(listener=True), data, chunk)
