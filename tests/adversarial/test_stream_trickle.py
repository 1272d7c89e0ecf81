"""Issue 9 item 4: the plaintext stream reader re-decoded its whole buffer after every TCP
read, so a push/pull trickled a byte at a time cost O(n^2) CPU. The reader now follows the
lengths the message announces and decodes exactly once. Item 6: with the lpe codec, trailing
bytes after a plaintext stream message were accepted or refused depending on how TCP split
them; they are now ignored either way (the message ends where its header says)."""

from __future__ import annotations

import pytest

from serf import _speedups
from serf.wire import get_codec
from serf.wire.codec import Codec
from serf.wire.framing import PacketFramer
from serf.wire.go import GoCodec
from serf.wire.messages import MemberlistMessage, Ping, PushNodeState, PushPull, UserMsg


class _CountingGo(GoCodec):
    def __init__(self) -> None:
        self.decodes = 0

    def decode_stream(self, buffer: bytes) -> MemberlistMessage:
        self.decodes += 1
        return super().decode_stream(buffer)


class _CountingLpe(_speedups.lpe.LpeCodec):  # type: ignore[misc, name-defined]
    def __init__(self) -> None:
        self.decodes = 0

    def decode_stream(self, buffer: bytes) -> MemberlistMessage:
        self.decodes += 1
        result: MemberlistMessage = super().decode_stream(buffer)
        return result


def _push_pull(n: int) -> PushPull:
    states = [
        PushNodeState(
            f"node-{i}",
            bytes([10, 0, i // 256, i % 256]),
            7946,
            b"\xff\x80",
            i,
            0,
            bytes([1, 5, 2, 2, 5, 4]),
        )
        for i in range(n)
    ]
    return PushPull(False, states, b"u" * 300)


@pytest.mark.parametrize("make", [_CountingGo, _CountingLpe], ids=["go", "lpe"])
@pytest.mark.parametrize(
    "message", [_push_pull(40), UserMsg(b"x" * 500), Ping(7, "a")], ids=["pushpull", "user", "ping"]
)
def test_trickled_stream_is_decoded_once(make: type, message: MemberlistMessage) -> None:
    codec = make()
    node = PacketFramer(codec, compression=False)
    data = node.encode_stream_message(message, dialer=True)
    reader = node.stream_reader(listener=True)
    results = [reader.feed(data[i : i + 1]) for i in range(len(data))]
    assert results[:-1] == [None] * (len(data) - 1)
    assert results[-1] is not None and results[-1].message == message
    assert codec.decodes == 1


@pytest.mark.parametrize("name", ["lpe", "go"])
def test_trailing_bytes_are_treated_alike_however_tcp_splits_them(name: str) -> None:
    codec: Codec = get_codec(name)
    node = PacketFramer(codec, compression=False)
    data = node.encode_stream_message(Ping(7, "a"), dialer=True) + b"\x00trailing"
    whole = node.stream_reader(listener=True).feed(data)
    split = node.stream_reader(listener=True)
    for i in range(len(data)):
        got = split.feed(data[i : i + 1]) or split.result
    assert whole is not None and got is not None
    assert whole.message == got.message == Ping(7, "a")
