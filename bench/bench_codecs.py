"""Codec benchmarks: lpe twins and the go codec against a msgpack-python baseline.

Run: ``pytest bench/bench_codecs.py`` (add ``--benchmark-disable`` for a quick smoke run).

Workloads, the same messages for every codec:

* ``packet``: a gossip packet of about 1,350 bytes in lpe (2,000 in msgpack) in memberlist's
  compound layout (``07``, count, big-endian u16 lengths, parts) holding 20 Alive/Suspect/Dead
  messages. Decode splits the compound and decodes every part; encode encodes every part and
  builds the compound. The split is the same Python code for every codec.
* ``pushpull``: a 1,000-node push/pull (node states + 4 KiB of user state), stream form.
* ``sealed packet``: the packet above LZW-compressed and AES-256-GCM encrypted (version 1);
  decode is decrypt, decompress, then the packet decode. The outer layers are the shared
  framing code (serf.wire.lzw, serf.wire.encryption), the same for every codec.

The baseline is msgpack-python as a codec would naturally use it: each message is a msgpack map
keyed by the Go field names (``use_bin_type=True``, so text decodes to ``str`` in C), decoded
with one ``msgpack.unpackb`` per message (the push/pull as one map holding the list of node
states) and turned into the same dataclasses; encoding builds those dicts from the dataclasses
and calls ``msgpack.packb``. At module teardown a table of medians and ratios to the baseline
is printed.

Adding a codec is one entry in :data:`CODECS`: a name and a zero-argument factory returning a
:class:`Case` (``CodecCase(codec)`` wraps anything that implements serf.wire.codec.Codec).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from serf import _speedups
from serf.wire import encryption, framing
from serf.wire import messages as m

# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------

VSN = b"\x01\x05\x02\x02\x05\x04"


def _meta(rng: random.Random) -> bytes:
    # about what serf's encoded tags look like: a role and a datacenter
    return b"\xfe\x01\x17\x02\x04role\x03web\x02dc\x08dc1-east"[: 20 + rng.randrange(8)]


def gossip_messages(seed: int = 1) -> list[Any]:
    """20 gossip messages: 10 Alive, 5 Suspect, 5 Dead."""
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(20):
        name = f"web-{rng.randrange(10_000):04d}.dc1-east.internal"
        inc = rng.randrange(1, 2**20)
        if i % 4 in (0, 1):
            addr = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
            out.append(m.Alive(inc, name, addr, 7946, _meta(rng), VSN))
        elif i % 4 == 2:
            out.append(m.Suspect(inc, name, f"web-{rng.randrange(10_000):04d}.dc1-east.internal"))
        else:
            out.append(m.Dead(inc, name, f"web-{rng.randrange(10_000):04d}.dc1-east.internal"))
    return out


def push_pull(nodes: int = 1000, seed: int = 2) -> m.PushPull:
    """A push/pull of ``nodes`` node states and 4 KiB of (opaque) user state."""
    rng = random.Random(seed)
    states = [
        m.PushNodeState(
            name=f"node-{i:05d}.dc1-east.internal",
            addr=bytes([10, i >> 8 & 255, i & 255, rng.randrange(1, 255)]),
            port=7946,
            meta=_meta(rng),
            incarnation=rng.randrange(1, 2**16),
            state=rng.choice((0, 0, 0, 1, 2, 3)),
            vsn=VSN,
        )
        for i in range(nodes)
    ]
    return m.PushPull(False, states, rng.randbytes(4096))


def compound(parts: list[bytes]) -> bytes:
    """memberlist's compound message (shared framing code)."""
    return framing.make_compound(parts)


def split_compound(packet: bytes) -> list[bytes]:
    """The parts of a compound message (shared framing code)."""
    parts, _ = framing.split_compound(packet)
    return parts


SEAL_KEY = bytes(range(32))


def seal(packet: bytes) -> bytes:
    """LZW-compress then encrypt, as a node with compression and a key sends a packet."""
    return encryption.encrypt_payload(1, SEAL_KEY, _speedups.lzw.compress(packet), b"", os.urandom)


def unseal(blob: bytes) -> bytes:
    """Decrypt then decompress."""
    return _speedups.lzw.decompress(encryption.decrypt_payload([SEAL_KEY], blob, b""))


# ---------------------------------------------------------------------------------------------
# Codec cases
# ---------------------------------------------------------------------------------------------


class Case:
    """How one codec encodes and decodes the two workloads."""

    def encode_packet(self, messages: list[Any]) -> bytes:
        raise NotImplementedError

    def decode_packet(self, packet: bytes) -> list[Any]:
        raise NotImplementedError

    def encode_push_pull(self, message: m.PushPull) -> bytes:
        raise NotImplementedError

    def decode_push_pull(self, raw: bytes) -> m.PushPull:
        raise NotImplementedError


class CodecCase(Case):
    """Any serf.wire.codec.Codec."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec

    def encode_packet(self, messages: list[Any]) -> bytes:
        encode = self.codec.encode
        return compound([encode(x) for x in messages])

    def decode_packet(self, packet: bytes) -> list[Any]:
        decode = self.codec.decode
        return [decode(part) for part in split_compound(packet)]

    def encode_push_pull(self, message: m.PushPull) -> bytes:
        result: bytes = self.codec.encode_stream(message)
        return result

    def decode_push_pull(self, raw: bytes) -> m.PushPull:
        result: m.PushPull = self.codec.decode_stream(raw)
        return result


class MsgpackBaseline(Case):
    """msgpack-python: Go-named maps, one unpackb per message, then the same dataclasses."""

    def __init__(self) -> None:
        self.unpackb = msgpack.unpackb
        self.packb = msgpack.packb
        # type byte -> dict -> dataclass
        self.builders: dict[int, Callable[[dict[str, Any]], Any]] = {
            m.MessageType.ALIVE: lambda d: m.Alive(
                d["Incarnation"], d["Node"], d["Addr"], d["Port"], d["Meta"], d["Vsn"]
            ),
            m.MessageType.SUSPECT: lambda d: m.Suspect(d["Incarnation"], d["Node"], d["From"]),
            m.MessageType.DEAD: lambda d: m.Dead(d["Incarnation"], d["Node"], d["From"]),
        }

    @staticmethod
    def to_dict(x: Any) -> dict[str, Any]:
        if type(x) is m.Alive:
            return {
                "Addr": x.addr,
                "Incarnation": x.incarnation,
                "Meta": x.meta,
                "Node": x.node,
                "Port": x.port,
                "Vsn": x.vsn,
            }
        return {"From": x.from_, "Incarnation": x.incarnation, "Node": x.node}

    def encode_packet(self, messages: list[Any]) -> bytes:
        packb, to_dict = self.packb, self.to_dict
        return compound([bytes([x.TYPE]) + packb(to_dict(x)) for x in messages])

    def decode_packet(self, packet: bytes) -> list[Any]:
        unpackb, builders = self.unpackb, self.builders
        return [builders[part[0]](unpackb(part[1:])) for part in split_compound(packet)]

    def encode_push_pull(self, message: m.PushPull) -> bytes:
        states = [
            {
                "Addr": s.addr,
                "Incarnation": s.incarnation,
                "Meta": s.meta,
                "Name": s.name,
                "Port": s.port,
                "State": s.state,
                "Vsn": s.vsn,
            }
            for s in message.states
        ]
        body = {"Join": message.join, "States": states, "UserState": message.user_state}
        packed: bytes = self.packb(body)
        return b"\x06" + packed

    def decode_push_pull(self, raw: bytes) -> m.PushPull:
        d = self.unpackb(raw[1:])
        node = m.PushNodeState
        states = [
            node(s["Name"], s["Addr"], s["Port"], s["Meta"], s["Incarnation"], s["State"], s["Vsn"])
            for s in d["States"]
        ]
        return m.PushPull(d["Join"], states, d["UserState"])


BASELINE = "msgpack"


def _lpe(which: str) -> Case:
    twins = _speedups.twins("lpe")
    if which not in twins:
        pytest.skip(f"lpe {which} twin not available")
    return CodecCase(twins[which].LpeCodec())


def _go(which: str) -> Case:
    twins = _speedups.twins("go")
    if which not in twins:
        pytest.skip(f"go {which} twin not available")
    return CodecCase(twins[which].GoCodec())


#: name -> factory returning a Case; adding a codec is one entry.
CODECS: dict[str, Callable[[], Case]] = {
    "lpe-compiled": lambda: _lpe("compiled"),
    "lpe-pure": lambda: _lpe("pure"),
    "go-compiled": lambda: _go("compiled"),
    "go-pure": lambda: _go("pure"),
    BASELINE: MsgpackBaseline,
}

# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------


@dataclass
class _Row:
    median: float
    size: int


_RESULTS: dict[tuple[str, str], _Row] = {}

MESSAGES = gossip_messages()
PUSH_PULL = push_pull()


def ratio_table() -> list[str]:
    """The recorded medians as text lines, with each codec's speed-up over the baseline."""
    lines = ["codec medians (lower is better); ratio = baseline time / codec time"]
    for workload in sorted({w for w, _ in _RESULTS}):
        base = _RESULTS.get((workload, BASELINE))
        for name in CODECS:
            row = _RESULTS.get((workload, name))
            if row is None:
                continue
            ratio = f"{base.median / row.median:6.2f}x" if base else "     -"
            lines.append(
                f"  {workload:18s} {name:14s} {row.median * 1e6:10.1f} us  {ratio}"
                f"  ({row.size} bytes)"
            )
    return lines


@pytest.fixture(scope="module", autouse=True)
def _print_ratios(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print :func:`ratio_table` once this module's benchmarks have run (even without -s)."""
    yield
    if not _RESULTS:
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print("\n" + "\n".join(ratio_table()))
        return
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(ratio_table()))


def _record(benchmark: Any, workload: str, name: str, size: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.rounds:
        _RESULTS[(workload, name)] = _Row(stats.stats.median, size)


@pytest.fixture(params=list(CODECS))
def case(request: pytest.FixtureRequest) -> tuple[str, Case]:
    return request.param, CODECS[request.param]()


@pytest.mark.benchmark(group="decode packet (20 gossip msgs)")
def test_decode_packet(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    packet = c.encode_packet(MESSAGES)
    assert c.decode_packet(packet) == MESSAGES
    benchmark(c.decode_packet, packet)
    _record(benchmark, "decode packet", name, len(packet))


@pytest.mark.benchmark(group="encode packet (20 gossip msgs)")
def test_encode_packet(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    packet = benchmark(c.encode_packet, MESSAGES)
    _record(benchmark, "encode packet", name, len(packet))


@pytest.mark.benchmark(group="decode push/pull (1000 nodes)")
def test_decode_push_pull(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    raw = c.encode_push_pull(PUSH_PULL)
    assert c.decode_push_pull(raw) == PUSH_PULL
    benchmark(c.decode_push_pull, raw)
    _record(benchmark, "decode push/pull", name, len(raw))


@pytest.mark.benchmark(group="encode push/pull (1000 nodes)")
def test_encode_push_pull(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    raw = benchmark(c.encode_push_pull, PUSH_PULL)
    _record(benchmark, "encode push/pull", name, len(raw))


@pytest.mark.benchmark(group="decode sealed packet (LZW + AES-GCM)")
def test_decode_sealed_packet(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    blob = seal(c.encode_packet(MESSAGES))
    assert c.decode_packet(unseal(blob)) == MESSAGES
    benchmark(lambda: c.decode_packet(unseal(blob)))
    _record(benchmark, "decode sealed", name, len(blob))


@pytest.mark.benchmark(group="encode sealed packet (LZW + AES-GCM)")
def test_encode_sealed_packet(benchmark: Any, case: tuple[str, Case]) -> None:
    name, c = case
    blob = benchmark(lambda: seal(c.encode_packet(MESSAGES)))
    _record(benchmark, "encode sealed", name, len(blob))
