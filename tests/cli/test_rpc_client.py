"""The RPC client against a scripted in-process server: Seq multiplexing, streams,
orphan bodies, errors, and a dropped connection (no Go needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from serf.cli.rpc_client import Member, RPCClient, RPCConnectionError, RPCError
from serf.wire.rpc import RpcDecoder, encode_rpc

MEMBER = {
    "Name": "n1",
    "Addr": bytes([127, 0, 0, 1]),
    "Port": 7946,
    "Tags": {"role": "web"},
    "Status": "alive",
    "ProtocolMin": 1,
    "ProtocolMax": 5,
    "ProtocolCur": 2,
    "DelegateMin": 2,
    "DelegateMax": 5,
    "DelegateCur": 5,
}


async def _server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    dec = RpcDecoder()
    bodies = {"handshake", "auth", "stream", "event", "stop", "query", "join"}
    header: dict[str, Any] | None = None
    stream_seq = 0

    def send(*objs: Any) -> None:
        writer.write(b"".join(encode_rpc(o) for o in objs))

    while data := await reader.read(4096):
        dec.feed(data)
        for obj in dec:
            if header is None and obj.get("Command") in bodies:
                header = obj
                continue
            hdr, body = (header, obj) if header is not None else (obj, {})
            header = None
            cmd, seq = hdr["Command"], hdr["Seq"]
            ok = {"Seq": seq, "Error": ""}
            if cmd == "auth" and body["AuthKey"] != "good":
                send({"Seq": seq, "Error": "Invalid authentication token"})
            elif cmd == "stream":
                stream_seq = seq
                send(ok)
            elif cmd == "event":
                send(ok)
                # a record for the stream, then (interleaved) nothing else
                rec = {"Event": "user", "LTime": 3, "Name": body["Name"],
                       "Payload": body["Payload"], "Coalesce": body["Coalesce"]}  # fmt: skip
                send({"Seq": stream_seq, "Error": ""}, rec)
            elif cmd == "stop":
                send(ok)
                # a late record of the stopped stream: its body must be skipped
                send({"Seq": stream_seq, "Error": ""}, {"Event": "user", "Name": "late"})
            elif cmd == "members":
                send(ok, {"Members": [MEMBER]})
            elif cmd == "join":
                send({"Seq": seq, "Error": "partial"}, {"Num": 1})
            elif cmd == "query":
                send(ok)
                for rec in (
                    {"Type": "ack", "From": "n1", "Payload": None},
                    {"Type": "response", "From": "n1", "Payload": b"hi"},
                    {"Type": "done", "From": "", "Payload": None},
                ):
                    send({"Seq": seq, "Error": ""}, rec)
            elif cmd == "leave":
                send(ok)
                await writer.drain()
                writer.close()
                return
            else:
                send(ok)
        await writer.drain()


def test_client_against_scripted_server() -> None:
    async def main() -> None:
        server = await asyncio.start_server(_server, "127.0.0.1", 0)
        addr = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            with pytest.raises(RPCError, match="Invalid authentication token"):
                await RPCClient.connect(addr, "bad")
            client = await RPCClient.connect(addr, "good")
            [member] = await client.members()
            assert (member.name, member.hostport, member.tags) == ("n1", "127.0.0.1:7946",
                                                                   {"role": "web"})  # fmt: skip
            stream = await client.stream("user")
            await client.user_event("deploy", b"v1", coalesce=False)
            record = await asyncio.wait_for(stream.__anext__(), 5)
            assert record["Name"] == "deploy" and record["Payload"] == b"v1"
            await stream.stop()
            # the late record after stop is skipped; the connection stays in step
            assert len(await client.members()) == 1
            with pytest.raises(RPCError, match="partial") as info:
                await client.join(["x"])
            assert info.value.body == {"Num": 1}
            records = await client.query("q", b"", request_ack=True)
            got = [(r.type, r.from_, r.payload) async for r in records]
            assert got == [("ack", "n1", None), ("response", "n1", b"hi")]
            await client.leave()
            await asyncio.sleep(0.1)
            with pytest.raises(RPCConnectionError):
                await client.members()
            await client.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (bytes([10, 77, 0, 1]), "10.77.0.1"),
        # Go's agent bound to 0.0.0.0 reports IPv4 members in net.IP's 16-byte form
        (b"\0" * 10 + b"\xff\xff" + bytes([10, 77, 0, 1]), "10.77.0.1"),
        (bytes.fromhex("fd77" + "00" * 13 + "01"), "fd77::1"),
        (b"\x01\x02\x03", ""),
    ],
)
def test_member_addr_from_wire(raw: bytes, text: str) -> None:
    assert Member.from_wire({"Name": "a", "Addr": raw, "Port": 7946}).addr == text
