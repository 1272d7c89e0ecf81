"""Issue 9 item 2: Go strings are bytes. A node name, tag value, event name or payload that
is not UTF-8 must round-trip byte for byte through RPC (both directions, both msgpack string
forms), the CLI, the snapshot file, the tags file, event handler input and the logs, where
it used to close every RPC ``members`` connection, drop snapshot batches and crash the CLI."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import msgpack
import pytest

from serf.agent.agent import LogBroker, _read_tags_file, write_tags_file
from serf.agent.handlers import MemberEventInfo, MemberInfo, build_stdin
from serf.runtime.serf import _read_snapshot
from serf.testing.agents import Raw, cluster, run, until
from serf.wire.rpc import RpcDecoder, encode_rpc

ODD = b"\x9aA"  # not UTF-8
ODD_STR = os.fsdecode(ODD)  # how Python holds it: a surrogate escape, as argv does


def test_rpc_dialect_round_trips_bytes_in_both_string_forms() -> None:
    packed = encode_rpc({"Name": ODD_STR})
    assert b"\xa2" + ODD in packed  # a new-style str holding the very bytes
    dec = RpcDecoder()
    dec.feed(packed)
    dec.feed(msgpack.packb({"Name": ODD}, use_bin_type=False))  # old-style raw string
    assert [obj["Name"] for obj in dec] == [ODD_STR, ODD_STR]


def test_tags_file_round_trips_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tags.json"
    write_tags_file(str(path), {"env": ODD_STR, "role": "web"})
    assert _read_tags_file(str(path)) == {"env": ODD_STR, "role": "web"}
    path.write_bytes(b'{"env": "' + ODD + b'"}')  # hand-written, raw bytes
    assert _read_tags_file(str(path)) == {"env": ODD_STR}


def test_handler_stdin_and_log_lines_keep_the_bytes() -> None:
    member = MemberInfo(ODD_STR, "127.0.0.1", {"role": ODD_STR})
    event = MemberEventInfo("member-join", (member,))
    assert build_stdin(event).startswith(ODD + b"\t127.0.0.1\t" + ODD + b"\trole=" + ODD)
    raw = io.BytesIO()
    broker = LogBroker(stream=io.TextIOWrapper(raw, "utf-8", errors="surrogateescape"))
    broker.emit(logging.LogRecord("serf.agent", logging.INFO, "", 0, "agent: %s", (ODD_STR,), None))
    assert b"[INFO] agent: " + ODD + b"\n" in raw.getvalue()


async def _old_style_client(addr: str, *objs: object) -> Raw:
    """A client on msgpack 0.x: every string a raw str-family object, bytes included."""
    raw = await Raw.open(addr)
    raw.writer.write(b"".join(msgpack.packb(o, use_bin_type=False) for o in objs))
    await raw.writer.drain()
    return raw


@pytest.mark.slow
@pytest.mark.integration
def test_odd_node_name_tags_events_over_rpc_and_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "snap"

    async def body() -> None:
        async with (
            cluster(1, snapshot_path=str(snap)) as (a,),
            cluster(1, node_name=ODD_STR, tags={"env": ODD_STR}) as (odd,),
        ):
            await odd.agent.join([a.gossip], False)
            await until(lambda: len(a.agent.serf.members()) == 2)
            async with await a.client() as c:
                names = sorted(m.name for m in await c.members())
                assert names == sorted(["n0", ODD_STR])
                (m,) = await c.members_filtered(name="\ufffdA")  # Go reads the byte as U+FFFD
                assert m.name == ODD_STR and m.tags == {"env": ODD_STR}
                stream = await c.stream("user")
                raw = await _old_style_client(
                    a.addr,
                    {"Command": "handshake", "Seq": 1},
                    {"Version": 1},
                    {"Command": "event", "Seq": 2},
                    {"Name": ODD, "Payload": ODD, "Coalesce": False},
                )
                assert (await raw.recv())["Error"] == ""
                assert (await raw.recv())["Error"] == ""
                raw.close()
                async for rec in stream:
                    assert rec["Name"] == ODD_STR and rec["Payload"] == ODD
                    break
                # the CLI passes argv bytes through and prints names as the bytes they are
                members = await _cli("members", "-rpc-addr", a.addr)
                assert b"\n" + ODD + b" " in b"\n" + members
                await _cli("event", "-rpc-addr", a.addr, ODD_STR, os.fsdecode(b"\xff\xfe"))
                async for rec in stream:
                    assert rec["Name"] == ODD_STR and rec["Payload"] == b"\xff\xfe"
                    break
        text = snap.read_bytes()
        assert b"alive: " + ODD + b" 127.0.0.1:" in text
        assert ODD_STR in _read_snapshot(str(snap), False).alive_nodes

    run(body())


async def _cli(*args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "serf.cli.main", *args, stdout=PIPE, stderr=PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return out
