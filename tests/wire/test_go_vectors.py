"""Bytes from the real thing: vectors written by Go (tests/govectors), checked both ways.

* The ``go`` codec decodes every message vector to the fields Go put in, and re-encodes the
  exact vectors to the same bytes.
* Our LZW, AES-GCM, compound and CRC layers reproduce Go's bytes and read them.
* Go's own decoders (``go run . verify``) decompress our LZW, decrypt our packets and decode
  our messages. That part needs the Go toolchain: skipped without it, unless SERF_REQUIRE_GO=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf import _speedups
from serf.testing import strategies as ws
from serf.testing.gopeer import go_build_or_skip
from serf.wire import Keyring, PacketFramer, encryption, framing, get_codec, lzw
from serf.wire import messages as m

HERE = Path(__file__).resolve().parent
GOVECTORS = HERE.parent / "govectors"
VECTORS = json.loads((HERE.parent / "vectors" / "go_vectors.json").read_text())
GO = get_codec("go")
#: the message vectors are checked on both twins of the go codec (compiled and pure)
TWINS = {name: module.GoCodec() for name, module in _speedups.twins("go").items()}

_SPECIAL = {
    "LTime": "ltime",
    "EventLTime": "event_ltime",
    "QueryLTime": "query_ltime",
    "StatusLTimes": "status_ltimes",
    "ID": "id",
    "CC": "cc",
    "IP": "ip",
    "From": "from_",
}


def _attr(go_name: str) -> str:
    return _SPECIAL.get(go_name) or re.sub(r"(?<!^)(?=[A-Z])", "_", go_name).lower()


def _is_zero(value: Any) -> bool:
    return value is None or value in (b"", "", 0, False, [], {})


def _check(expected: Any, actual: Any, where: str) -> None:
    """Compare a JSON ``fields`` value written by Go with what we decoded."""
    if expected is None:
        assert _is_zero(actual), f"{where}: Go nil, we have {actual!r}"
    elif isinstance(expected, dict) and set(expected) == {"hex"}:
        raw = bytes.fromhex(expected["hex"])
        if isinstance(actual, str):
            actual = actual.encode("utf-8", "surrogateescape")
        assert actual == raw, f"{where}: {actual!r} != {raw!r}"
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert set(expected) == set(actual), where
        for key, value in expected.items():
            _check(value, actual[key], f"{where}[{key}]")
    elif isinstance(expected, dict):
        for key, value in expected.items():
            _check(value, getattr(actual, _attr(key)), f"{where}.{key}")
    elif isinstance(expected, list):
        assert actual is not None and len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _check(e, a, f"{where}[{i}]")
    elif isinstance(expected, str) and isinstance(actual, int) and not isinstance(actual, bool):
        assert actual == int(expected), where  # big integers travel as JSON strings
    elif isinstance(expected, float) or isinstance(actual, float):
        assert float(expected) == actual, f"{where}: {expected!r} != {actual!r}"
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


def _decode(vector: dict[str, Any], go: Any = GO) -> tuple[Any, bytes]:
    """Decode a message vector and re-encode it with the go codec (twin ``go``)."""
    raw = bytes.fromhex(vector["hex"])
    layer = vector["layer"]
    if layer == "memberlist":
        msg: Any = go.decode(raw)
        return msg, go.encode(msg)
    if layer in ("serf", "conflict-member"):
        msg = go.decode_serf(raw)
        return msg, go.encode(msg)
    if layer == "stream":
        msg = go.decode_stream(raw)
        return msg, go.encode_stream(msg)
    if layer == "tags":
        tags = go.decode_tags(raw)
        return tags, go.encode_tags(tags)
    if layer == "filter":
        flt = go.decode_filter(raw)
        return flt, go.encode_filter(flt)
    if layer == "coordinate":
        coord = go.decode_coordinate(raw)
        return coord, go.encode_coordinate(coord)
    raise AssertionError(f"unknown layer {layer}")


def _check_fields(vector: dict[str, Any], decoded: Any) -> None:
    fields, go_type, name = vector["fields"], vector["go_type"], vector["name"]
    if go_type == "Member":
        _check(fields, decoded.member, name)
    elif go_type == "pushPull":
        header = fields["Header"]
        assert decoded.join == header["Join"]
        assert len(decoded.states) == header["Nodes"]
        assert len(decoded.user_state) == header["UserStateLen"]
        _check(fields["States"] or [], decoded.states, name)
        _check(fields["UserState"], decoded.user_state, name)
    elif go_type == "userMsg":
        assert len(decoded.payload) == fields["Header"]["UserMsgLen"]
        _check(fields["Payload"], decoded.payload, name)
    elif go_type == "relay":
        _check(fields["DestAddr"], decoded.dest_addr, name)
        _check(fields["DestName"], decoded.dest_name, name)
        assert decoded.payload[0] == fields["InnerType"]
        _check(fields["Inner"], GO.decode_serf(decoded.payload), name + ".inner")
    elif go_type == "tags":
        assert set(decoded) == {k for k in fields if isinstance(k, str)}
        for key, value in fields.items():
            _check(value, decoded[key], f"{name}[{key}]")
    else:
        _check(fields, decoded, name)


@pytest.mark.parametrize("twin", sorted(TWINS))
@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_go_message_vector(vector: dict[str, Any], twin: str) -> None:
    go = TWINS[twin]
    decoded, reencoded = _decode(vector, go)
    _check_fields(vector, decoded)
    if vector["exact"]:
        assert reencoded.hex() == vector["hex"]
    else:  # maps with several keys: Go's order is random, so compare what they decode to
        again, _ = _decode({**vector, "hex": reencoded.hex()}, go)
        assert again == decoded


@pytest.mark.parametrize("vector", VECTORS["lzw"], ids=lambda v: v["name"])
def test_go_lzw_vector(vector: dict[str, Any]) -> None:
    plain, packed = bytes.fromhex(vector["plain_hex"]), bytes.fromhex(vector["lzw_hex"])
    assert lzw.decompress(packed) == plain
    # this Go emits a leading clear code (see the vectors' generator line): same bytes
    assert lzw.compress(plain, leading_clear=True) == packed


@pytest.mark.parametrize("vector", VECTORS["encryption"], ids=lambda v: v["name"])
def test_go_encryption_vector(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["key_hex"])
    plain = bytes.fromhex(vector["plain_hex"])
    blob = bytes.fromhex(vector["blob_hex"])
    aad = bytes.fromhex(vector["aad_hex"])
    assert encryption.decrypt_payload([b"\x00" * len(key), key], blob, aad) == plain
    nonce = blob[1:13]
    assert encryption.encrypt_payload(vector["vsn"], key, plain, aad, lambda n: nonce) == blob
    if vector["stream"]:
        frame = bytes.fromhex(vector["frame_hex"])
        label = vector["label"].encode()
        opened, used = encryption.decrypt_stream_frame([key], frame, label)
        assert (opened, used) == (plain, len(frame))
        made = encryption.encrypt_stream_frame(vector["vsn"], key, plain, label, lambda n: nonce)
        assert made == frame


@pytest.mark.parametrize("vector", VECTORS["compound"], ids=lambda v: v["name"])
def test_go_compound_vector(vector: dict[str, Any]) -> None:
    parts = [bytes.fromhex(p) for p in vector["parts_hex"]]
    raw = bytes.fromhex(vector["hex"])
    assert [bytes(p) for p in framing.split_compound(raw)[0]] == parts
    if parts:
        assert framing.make_compound(parts) == raw


@pytest.mark.parametrize("vector", VECTORS["crc"], ids=lambda v: v["plain_hex"][:16])
def test_go_crc_vector(vector: dict[str, Any]) -> None:
    plain, framed = bytes.fromhex(vector["plain_hex"]), bytes.fromhex(vector["hex"])
    assert framing.add_crc(plain) == framed
    assert framing.strip_crc(framed) == plain


# -- Go reads what we write -------------------------------------------------------------------


def _go_verify(payload: dict[str, Any], work: Path) -> subprocess.CompletedProcess[str]:
    # built first: without Go or its module proxy the test skips (fails under SERF_REQUIRE_GO)
    exe = go_build_or_skip(GOVECTORS, work / "govectors")
    return subprocess.run(
        [str(exe), "verify"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
    )


_GO_TYPES = {
    m.Ping: "ping",
    m.IndirectPingReq: "indirectPingReq",
    m.AckResp: "ackResp",
    m.NackResp: "nackResp",
    m.ErrResp: "errResp",
    m.Suspect: "suspect",
    m.Alive: "alive",
    m.Dead: "dead",
    m.Compress: "compress",
    m.MessageLeave: "messageLeave",
    m.MessageJoin: "messageJoin",
    m.MessagePushPull: "messagePushPull",
    m.MessageUserEvent: "messageUserEvent",
    m.MessageQuery: "messageQuery",
    m.MessageQueryResponse: "messageQueryResponse",
    m.MessageKeyRequest: "keyRequest",
    m.MessageKeyResponse: "nodeKeyResponse",
}

_collected: dict[str, list[dict[str, Any]]] = {"lzw": [], "encryption": [], "messages": []}


@given(
    plain=st.binary(max_size=3000) | st.binary(min_size=1, max_size=8).map(lambda b: b * 700),
    key=st.sampled_from([bytes(range(16)), bytes(range(24)), bytes(range(32))]),
    vsn=st.sampled_from([0, 1]),
    aad=st.binary(max_size=20),
    message=st.one_of(
        *(ws.MEMBERLIST_STRATEGIES[c] for c in _GO_TYPES if c in ws.MEMBERLIST_STRATEGIES)
    )
    | st.one_of(*(ws.SERF_STRATEGIES[c] for c in _GO_TYPES if c in ws.SERF_STRATEGIES)),
)
@settings(max_examples=60, deadline=None, database=None)
def _collect(plain: bytes, key: bytes, vsn: int, aad: bytes, message: Any) -> None:
    n = len(_collected["lzw"])
    _collected["lzw"].append(
        {"name": f"py-lzw-{n}", "plain_hex": plain.hex(), "lzw_hex": lzw.compress(plain).hex()}
    )
    blob = encryption.encrypt_payload(vsn, key, plain, aad, os.urandom)
    _collected["encryption"].append(
        {
            "name": f"py-enc-{n}",
            "vsn": vsn,
            "key_hex": key.hex(),
            "aad_hex": aad.hex(),
            "plain_hex": plain.hex(),
            "blob_hex": blob.hex(),
        }
    )
    has_multi_key_map = any(
        isinstance(getattr(message, f, None), dict) and len(getattr(message, f)) > 1
        for f in ("status_ltimes",)
    )
    if not has_multi_key_map:
        _collected["messages"].append(
            {
                "name": f"py-msg-{n}",
                "go_type": _GO_TYPES[type(message)],
                "hex": GO.encode(message).hex(),
            }
        )


@pytest.mark.go
def test_go_reads_our_lzw_encryption_and_messages(tmp_path: Path) -> None:
    _collect()
    # the old form without a leading clear code must be read by Go too
    plain = b"TOBEORNOTTOBEORTOBEORNOT" * 40
    _collected["lzw"].append(
        {
            "name": "py-lzw-no-clear",
            "plain_hex": plain.hex(),
            "lzw_hex": lzw.compress(plain, leading_clear=False).hex(),
        }
    )
    out = _go_verify(_collected, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    total = sum(len(v) for v in _collected.values())
    assert re.search(rf"verify: {total} passed, 0 failed", out.stdout), out.stdout


@pytest.mark.parametrize("vector", VECTORS["packets"], ids=lambda v: v["name"])
def test_go_packet_vector(vector: dict[str, Any]) -> None:
    """Whole datagrams in Go's send order: we read Go's and write the same bytes."""
    key = bytes.fromhex(vector["key_hex"])
    label = vector["label"].encode()
    raw = bytes.fromhex(vector["hex"])
    parts = [bytes.fromhex(p) for p in vector["parts_hex"]]
    blob = raw[2 + len(label) :] if label else raw
    nonce = blob[1:13]
    framer = PacketFramer(
        "go",
        keyring=Keyring([key]) if key else None,
        label=label,
        encryption_version=vector["vsn"],
        compression=vector["compress"],
        token_bytes=lambda n: nonce,
    )
    decoded = framer.decode_packet(raw)
    assert (decoded.truncated, decoded.dropped) == (0, 0)
    assert decoded.messages == [GO.decode(p) for p in parts]
    payload = parts[0] if len(parts) == 1 else framing.make_compound(parts)
    assert framer.encode_packet(payload, crc=vector["crc"]) == raw
