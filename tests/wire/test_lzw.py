"""LZW compatible with Go's compress/lzw (LSB, literal width 8): vectors, round trips, fuzzing.

Every test runs on both twins (``serf._speedups.twins("lzw")``), and the differential
tests at the end check that they give identical bytes and identical exception classes.

The ``GO_VECTORS`` below were produced by Go 1.26's ``compress/lzw`` (``lzw.NewWriter(w,
lzw.LSB, 8)``) on the deterministic inputs of :func:`gen`; the ``go``-marked tests re-run Go
live, when a Go toolchain is present, to compare random inputs too.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serf._speedups import twins
from serf.testing.gopeer import go_build_or_skip
from serf.testing.twins import only_pure_reason
from serf.wire import DecodeError

TWINS = twins("lzw")


@pytest.fixture(params=sorted(TWINS), scope="module")
def lzw(request: pytest.FixtureRequest) -> ModuleType:
    """Each test runs on every twin built here (compiled and pure)."""
    module: ModuleType = TWINS[request.param]
    return module


def pack(codes: list[tuple[int, int]]) -> bytes:
    """Pack ``(code, width)`` pairs LSB-first, the way the format does."""
    acc = 0
    nbits = 0
    for code, width in codes:
        acc |= code << nbits
        nbits += width
    return acc.to_bytes((nbits + 7) // 8, "little")


def gen(kind: str, n: int) -> bytes:
    """The deterministic inputs the Go vectors were made from (a 32-bit LCG)."""
    out = bytearray(n)
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        if kind == "lcg":
            out[i] = (x >> 16) & 0xFF
        elif kind == "text":
            out[i] = b"abcdefgh"[(x >> 16) % 8]
        else:
            out[i] = i % 251
    return bytes(out)


# (kind, input size, compressed size, sha256 of the compressed bytes) from Go 1.26.
GO_VECTORS = [
    ("lcg", 5000, 6698, "46ada56ae942ec960ee138b7d866ccfdd21e9afdef51367a69373623cf45a8b6"),
    ("lcg", 70000, 95890, "875e4236c23a420a25bd6c14665912d3ade840ec71794cb23cf594d0df9cee20"),
    ("lcg", 300000, 410989, "b6347ccc8cd649ed1a711ed2d6bc4bf6254ff1a3424a0784e923b5814db2576d"),
    ("text", 5000, 2371, "c1ccbf72d48865db4355eac50c693b1a654116f341214a686721b26c79a2a02c"),
    ("text", 70000, 31697, "d1213338262a29d83ce29532e6c822a5871ae121230fc6f527df475571126aad"),
    ("text", 300000, 135902, "f476f9c07413ae8a8ff7ea8f1f5e45bf5e55ea288a580fad8c3feb910bbda656"),
    ("ramp", 5000, 1884, "7d839fa430914bed57fd442735b38db5aa3eaa774a7ce462c7fb79967caa7e82"),
    ("ramp", 70000, 13176, "a06688e74cf23ea3003b1d739275cc9afdb46b0f90f2cfba58ca0f6cc6234404"),
    ("ramp", 300000, 52686, "f387dc92032e2ffbba28f8416323165a573c7af72d389377c401a97b40cb641e"),
]


# ------------------------------------------------------------------------------------------
# vectors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "leading_clear", "expected"),
    [
        (b"", True, "000302"),
        (b"", False, "0101"),
        (b"a", True, "00c30404"),
        (b"a", False, "610202"),
        # produced by Go 1.26
        (b"TOBEORNOTTOBEORTOBEORNOT", True, "00a93c1152e48914274fa80824687061c183090302"),
    ],
)
def test_reference_vectors(
    lzw: ModuleType, data: bytes, leading_clear: bool, expected: str
) -> None:
    assert lzw.compress(data, leading_clear=leading_clear).hex() == expected
    assert lzw.decompress(bytes.fromhex(expected)) == data


def test_go_vector_small_prefix(lzw: ModuleType) -> None:
    # First bytes of Go's output for gen("lcg", 300): the 9-bit codes, LSB first.
    out = lzw.compress(gen("lcg", 300))
    assert len(out) == 345
    assert out.hex().startswith("00b91128a3ea43ab0e5ab49563b5c1c3970970f2b0e907e15f8657603a10")


@pytest.mark.parametrize(("kind", "n", "size", "digest"), GO_VECTORS)
def test_go_vectors(lzw: ModuleType, kind: str, n: int, size: int, digest: str) -> None:
    # 70,000 and 300,000 bytes fill the 12-bit table several times (clear + reset each time).
    data = gen(kind, n)
    out = lzw.compress(data)
    assert len(out) == size
    assert hashlib.sha256(out).hexdigest() == digest
    assert lzw.decompress(out) == data


def test_old_go_stream_without_leading_clear_has_same_codes(lzw: ModuleType) -> None:
    # Older Go emits no leading clear; the rest of the code sequence is identical, so the
    # two streams are the same bit string shifted by 9 bits.
    data = gen("text", 20000)
    new = int.from_bytes(lzw.compress(data), "little")
    old = int.from_bytes(lzw.compress(data, leading_clear=False), "little")
    assert new & 0x1FF == 256
    assert new >> 9 == old
    assert lzw.decompress(lzw.compress(data, leading_clear=False)) == data


def test_width_grows_after_code_511(lzw: ModuleType) -> None:
    # After the 255th code, hi reaches 512 and the next code is 10 bits wide.
    codes = [(256, 9)] + [(i % 256, 9) for i in range(255)] + [(257, 10)]
    data = bytes(i % 256 for i in range(255))
    assert lzw.decompress(pack(codes)) == data
    # Code 512 (bit 9 set, so only readable at 10 bits) is the entry being defined:
    # the previous string (254) plus its own first byte.
    codes = [*codes[:-1], (512, 10), (257, 10)]
    assert lzw.decompress(pack(codes)) == data + b"\xfe\xfe"
    # and the encoder switches at the same point
    assert lzw.decompress(lzw.compress(data + b"\xfe\xfe")) == data + b"\xfe\xfe"


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.booleans())
def test_round_trip(lzw: ModuleType, data: bytes, leading_clear: bool) -> None:
    assert lzw.decompress(lzw.compress(data, leading_clear=leading_clear)) == data


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"b", b"ab", b"ba", b"aaaa", b"\x00", b"\xff"]), max_size=800)
)
def test_round_trip_repetitive(lzw: ModuleType, chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    assert lzw.decompress(lzw.compress(data)) == data


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=65 * 1024, max_value=200 * 1024),
    st.sampled_from(["random", "words", "runs"]),
    st.booleans(),
)
@pytest.mark.slow
def test_round_trip_large_forces_resets(
    lzw: ModuleType, seed: int, n: int, kind: str, leading_clear: bool
) -> None:
    rng = random.Random(seed)
    if kind == "random":
        data = rng.randbytes(n)
    elif kind == "words":
        words = [rng.randbytes(rng.randint(1, 8)) for _ in range(64)]
        data = b"".join(rng.choice(words) for _ in range(n // 4))[:n]
    else:
        data = b"".join(bytes([rng.randrange(256)]) * rng.randint(1, 300) for _ in range(n // 100))
    assert lzw.decompress(lzw.compress(data, leading_clear=leading_clear)) == data


# ------------------------------------------------------------------------------------------
# errors and limits
# ------------------------------------------------------------------------------------------


def test_missing_eof_is_an_error(lzw: ModuleType) -> None:
    out = lzw.compress(b"hello hello hello")
    with pytest.raises(DecodeError, match="EOF"):
        lzw.decompress(out[:-2])
    with pytest.raises(DecodeError):
        lzw.decompress(b"")
    with pytest.raises(DecodeError):
        lzw.decompress(pack([(256, 9), (ord("x"), 9)]))


def test_bytes_after_eof_are_ignored(lzw: ModuleType) -> None:
    out = lzw.compress(b"payload")
    assert lzw.decompress(out + b"\xff\x00garbage") == b"payload"


def test_invalid_codes(lzw: ModuleType) -> None:
    # a dictionary code before anything was defined
    with pytest.raises(DecodeError, match="invalid code"):
        lzw.decompress(pack([(258, 9), (257, 9)]))
    with pytest.raises(DecodeError, match="invalid code"):
        lzw.decompress(pack([(256, 9), (300, 9), (257, 9)]))
    # right after a clear the table is empty again
    with pytest.raises(DecodeError, match="invalid code"):
        lzw.decompress(pack([(97, 9), (98, 9), (256, 9), (258, 9), (257, 9)]))
    # code == hi (the KwKwK case) is fine: "a" then code 258 = "aa"
    assert lzw.decompress(pack([(97, 9), (258, 9), (257, 9)])) == b"aaa"


def test_full_table_stops_adding_until_clear(lzw: ModuleType) -> None:
    # Send literals only: the table fills at 12 bits, then stays frozen (no error), and
    # codes keep being read at 12 bits until a clear code comes.
    codes: list[tuple[int, int]] = []
    width, hi = 9, 257
    for i in range(5000):
        codes.append((i % 256, width))
        hi += 1
        if hi >= 1 << width:
            if width == 12:
                hi -= 1
            else:
                width += 1
    codes.append((4095, 12))  # defined (by the decoder) just before it froze
    codes.append((256, 12))
    codes.append((97, 9))
    codes.append((257, 9))
    out = lzw.decompress(pack(codes))
    assert out[:5000] == bytes(i % 256 for i in range(5000))
    assert out.endswith(b"a")


def test_max_size_is_enforced_while_decoding(lzw: ModuleType) -> None:
    data = bytes(2_000_000)
    bomb = lzw.compress(data)
    assert len(bomb) < 10_000
    assert lzw.decompress(bomb, max_size=len(data)) == data
    with pytest.raises(DecodeError, match="larger than limit"):
        lzw.decompress(bomb, max_size=len(data) - 1)
    with pytest.raises(DecodeError, match="larger than limit"):
        lzw.decompress(bomb, max_size=1000)


def test_default_limit_is_40_mib(lzw: ModuleType) -> None:
    assert lzw.MAX_DECOMPRESSED_BYTES == 40 * 1024 * 1024


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(lzw: ModuleType, data: bytes) -> None:
    try:
        out = lzw.decompress(data, max_size=100_000)
    except DecodeError:
        return
    assert len(out) <= 100_000


@settings(max_examples=500, deadline=None)
@given(
    st.binary(min_size=1, max_size=400),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
@pytest.mark.slow
def test_fuzz_mutated_streams(lzw: ModuleType, data: bytes, edits: list[tuple[int, int]]) -> None:
    stream = bytearray(lzw.compress(data))
    for pos, value in edits:
        stream[pos % len(stream)] = value
    try:
        out = lzw.decompress(bytes(stream), max_size=50_000)
    except DecodeError:
        return
    assert len(out) <= 50_000


# ------------------------------------------------------------------------------------------
# differential tests: compiled twin against pure twin
# ------------------------------------------------------------------------------------------

needs_both = pytest.mark.skipif(len(TWINS) < 2, reason=only_pure_reason("lzw"))


def _outcome(run: Callable[[], object]) -> tuple[str, object]:
    """What a call did: its result, or its exception class (and message, for DecodeError;
    Python's own TypeError messages differ between a def and a compiled function)."""
    try:
        return "ok", run()
    except DecodeError as exc:
        return type(exc).__name__, str(exc)
    except Exception as exc:
        return type(exc).__name__, None


def _both(name: str, *args: object, **kwargs: object) -> tuple[tuple[str, object], ...]:
    return tuple(
        _outcome(lambda m=TWINS[t]: getattr(m, name)(*args, **kwargs)) for t in sorted(TWINS)
    )


@needs_both
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=5000), st.booleans(), st.booleans())
def test_differential_compress_same_bytes(data: bytes, leading_clear: bool, mutable: bool) -> None:
    arg = bytearray(data) if mutable else data
    compiled, pure = _both("compress", arg, leading_clear=leading_clear)
    assert compiled == pure
    assert compiled[0] == "ok"
    assert type(compiled[1]) is bytes


@needs_both
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(60_000, 150_000))
def test_differential_compress_large(seed: int, n: int) -> None:
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(1, 6)) for _ in range(rng.randint(2, 300))]
    data = b"".join(rng.choice(words) for _ in range(n // 3))[:n]
    compiled, pure = _both("compress", data)
    assert compiled == pure


_limits = st.one_of(st.integers(-3, 3000), st.just(2**70), st.just(-(2**70)))


@needs_both
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), _limits)
def test_differential_decompress_random(data: bytes, max_size: int) -> None:
    compiled, pure = _both("decompress", data, max_size=max_size)
    assert compiled == pure


@needs_both
@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=2000),
    st.booleans(),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    _limits,
)
@pytest.mark.slow
def test_differential_decompress_mutated(
    data: bytes, leading_clear: bool, edits: list[tuple[int, int]], max_size: int
) -> None:
    stream = bytearray(TWINS["pure"].compress(data, leading_clear=leading_clear))
    for pos, value in edits:
        stream[pos % len(stream)] = value
    compiled, pure = _both("decompress", bytes(stream), max_size=max_size)
    assert compiled == pure
    compiled, pure = _both("decompress", stream, max_size=max_size)
    assert compiled == pure


@needs_both
@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("compress", ("text",), {}),
        ("compress", ("",), {}),
        ("compress", (5,), {}),
        ("compress", (None,), {}),
        ("compress", ([1, 2, 3],), {}),
        ("compress", (memoryview(b"abcabcabc"),), {}),
        ("compress", (b"abc",), {"leading_clear": 0}),
        ("compress", (b"abc", True), {}),
        ("decompress", ("text",), {}),
        ("decompress", (None,), {}),
        ("decompress", (memoryview(bytes.fromhex("00c30404")),), {}),
        ("decompress", (bytes.fromhex("00c30404"),), {"max_size": None}),
        ("decompress", (bytes.fromhex("00c30404"),), {"max_size": 1.5}),
        ("decompress", (bytes.fromhex("00c30404"),), {"max_size": 0.5}),
        ("decompress", (bytes.fromhex("00c30404"),), {"max_size": True}),
        ("decompress", (bytes.fromhex("00c30404"),), {"max_size": False}),
        ("decompress", (b"",), {"max_size": None}),
    ],
)
def test_differential_odd_arguments(
    name: str, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    compiled, pure = _both(name, *args, **kwargs)
    assert compiled == pure


@needs_both
def test_differential_bomb_limit() -> None:
    bomb = TWINS["pure"].compress(bytes(3_000_000))
    for limit in (0, 1, 4095, 2_999_999, 3_000_000):
        compiled, pure = _both("decompress", bomb, max_size=limit)
        assert compiled == pure


def test_twin_names_match() -> None:
    names = set(TWINS["pure"].__all__)
    for module in TWINS.values():
        assert set(module.__all__) == names
        assert module.MAX_DECOMPRESSED_BYTES == 40 * 1024 * 1024
        for name in names:
            assert hasattr(module, name)


# ------------------------------------------------------------------------------------------
# live differential tests against Go (only where a Go toolchain is installed)
# ------------------------------------------------------------------------------------------

GO_HELPER = textwrap.dedent(
    """
    package main

    import (
        "bufio"
        "bytes"
        "compress/lzw"
        "encoding/hex"
        "fmt"
        "io"
        "os"
    )

    func main() {
        in := bufio.NewScanner(os.Stdin)
        in.Buffer(make([]byte, 1<<20), 1<<26)
        for in.Scan() {
            line := in.Text()
            data, _ := hex.DecodeString(line[2:])
            if line[0] == 'c' {
                var buf bytes.Buffer
                w := lzw.NewWriter(&buf, lzw.LSB, 8)
                w.Write(data)
                w.Close()
                fmt.Println(hex.EncodeToString(buf.Bytes()))
            } else {
                r := lzw.NewReader(bytes.NewReader(data), lzw.LSB, 8)
                out, err := io.ReadAll(io.LimitReader(r, 1<<20))
                if err != nil {
                    fmt.Println("error")
                } else {
                    fmt.Println("ok " + hex.EncodeToString(out))
                }
            }
        }
    }
    """
)


@pytest.fixture(scope="module")
def go_lzw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("golzw")
    (work / "main.go").write_text(GO_HELPER)
    (work / "go.mod").write_text("module golzw\n\ngo 1.21\n")  # stdlib only: no proxy needed
    return go_build_or_skip(work, work / "golzw", offline=True)


def _ask_go(exe: Path, lines: list[str]) -> list[str]:
    proc = subprocess.run(
        [str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    return proc.stdout.splitlines()


@pytest.mark.go
def test_go_differential_compress(lzw: ModuleType, go_lzw: Path) -> None:
    rng = random.Random(7)
    inputs = [rng.randbytes(rng.randint(0, 3000)) for _ in range(100)]
    inputs += [bytes(rng.choice(b"ab") for _ in range(rng.randint(0, 20000))) for _ in range(20)]
    inputs += [rng.randbytes(70000)]
    answers = _ask_go(go_lzw, ["c " + d.hex() for d in inputs])
    for data, answer in zip(inputs, answers, strict=True):
        assert lzw.compress(data).hex() == answer


@pytest.mark.go
def test_go_differential_decompress(lzw: ModuleType, go_lzw: Path) -> None:
    rng = random.Random(11)
    streams: list[bytes] = []
    for _ in range(400):
        kind = rng.randrange(3)
        if kind == 0:
            streams.append(rng.randbytes(rng.randint(0, 300)))
        else:
            stream = bytearray(
                lzw.compress(rng.randbytes(rng.randint(0, 500)), leading_clear=kind == 1)
            )
            for _ in range(rng.randint(1, 4)):
                stream[rng.randrange(len(stream))] = rng.randrange(256)
            streams.append(bytes(stream))
    answers = _ask_go(go_lzw, ["d " + s.hex() for s in streams])
    for sample, answer in zip(streams, answers, strict=True):
        try:
            ours = "ok " + lzw.decompress(sample, max_size=1 << 20).hex()
        except DecodeError:
            ours = "error"
        assert ours == answer, sample.hex()
