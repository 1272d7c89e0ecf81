"""``serf reachability``, ``query`` and ``monitor`` against a scripted RPC agent (no Go, no
cluster): the answers a real cluster rarely gives (duplicate acks, acks from members that
are not alive, missing acks, RPC errors, an agent that goes away) and Go's output for each.

The commands run in-process (``serf.cli.events``); the agent is a small RPC server on its own
thread and event loop that answers each command as the test scripts it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from serf.cli import events
from serf.testing.agents import SERF
from serf.testing.lines import LineReader
from serf.wire.rpc import RpcDecoder, encode_rpc

#: requests that carry a body after their header
_WITH_BODY = {"handshake", "auth", "stream", "monitor", "event", "stop", "query", "join"}

Send = Callable[..., None]
Handler = Callable[[int, dict[str, Any], Send], bool]  # True: close the connection


def _member(name: str, status: str) -> dict[str, Any]:
    return {"Name": name, "Addr": bytes([127, 0, 0, 1]), "Port": 7946, "Tags": {},
            "Status": status, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}  # fmt: skip


class ScriptedAgent:
    """An RPC server answering ``handshake`` and then whatever ``script`` says."""

    def __init__(self, script: dict[str, Handler]) -> None:
        self.script = script
        self.commands: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.port = 0

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = RpcDecoder()
        header: dict[str, Any] | None = None

        def send(*objs: Any) -> None:
            writer.write(b"".join(encode_rpc(o) for o in objs))

        try:
            while data := await reader.read(4096):
                dec.feed(data)
                for obj in dec:
                    if header is None and obj.get("Command") in _WITH_BODY:
                        header = obj
                        continue
                    hdr, body = (header, obj) if header is not None else (obj, {})
                    header = None
                    cmd, seq = hdr["Command"], hdr["Seq"]
                    self.commands.append(cmd)
                    handler = self.script.get(cmd)
                    if handler is None:
                        send({"Seq": seq, "Error": ""})
                    elif handler(seq, body, send):
                        await writer.drain()
                        return
                await writer.drain()
        finally:
            writer.close()

    def __enter__(self) -> ScriptedAgent:
        self.thread.start()
        assert self.ready.wait(10), "scripted agent did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def addr(self) -> str:
        return f"-rpc-addr=127.0.0.1:{self.port}"


@pytest.fixture
def agent(request: pytest.FixtureRequest) -> Iterator[ScriptedAgent]:
    with ScriptedAgent(request.param) as running:
        yield running


def members(*pairs: tuple[str, str]) -> Handler:
    def handle(seq: int, body: dict[str, Any], send: Send) -> bool:
        send({"Seq": seq, "Error": ""}, {"Members": [_member(n, s) for n, s in pairs]})
        return False

    return handle


def acks(*names: str) -> Handler:
    def handle(seq: int, body: dict[str, Any], send: Send) -> bool:
        assert (body["Name"], body["RequestAck"]) == ("_serf_ping", True)
        send({"Seq": seq, "Error": ""})
        for name in names:
            send({"Seq": seq, "Error": ""}, {"Type": "ack", "From": name, "Payload": None})
        send({"Seq": seq, "Error": ""}, {"Type": "done", "From": "", "Payload": None})
        return False

    return handle


def error(text: str, reply: dict[str, Any] | None = None) -> Handler:
    """An error header (followed by ``reply``: Go's agent sends a body with some errors)."""

    def handle(seq: int, body: dict[str, Any], send: Send) -> bool:
        send({"Seq": seq, "Error": text}, *([reply] if reply is not None else []))
        return False

    return handle


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


TROUBLESHOOTING = events._TROUBLESHOOTING.splitlines()


@pytest.mark.parametrize(
    "agent",
    [
        {
            "members": members(("a", "alive"), ("b", "alive"), ("gone", "failed")),
            "query": acks("a", "b", "a", "gone"),
        }
    ],
    indirect=True,
)
def test_reachability_reports_duplicates_and_acks_from_members_not_alive(
    agent: ScriptedAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.reachability([agent.addr, "-verbose"]) == 1
    lines = _lines(capsys)
    timing = [i for i, line in enumerate(lines) if line.startswith("Query time: ")]
    assert len(timing) == 1
    assert lines[: timing[0]] == [
        "Total members: 3, live members: 2",
        "Starting reachability test...",
        "\tAck from 'a'",
        "\tAck from 'b'",
        "\tAck from 'a'",
        "Duplicate response from 'a'",
        "\tAck from 'gone'",
    ]
    assert lines[timing[0] + 1 :] == [
        events._DUPLICATES,
        "Received more acks than live nodes! Acks from non-live nodes:",
        "\tgone",
        events._TOO_MANY_ACKS,
        *TROUBLESHOOTING,
    ]


@pytest.mark.parametrize(
    "agent",
    [{"members": members(("a", "alive"), ("b", "alive"), ("c", "alive")), "query": acks("b")}],
    indirect=True,
)
def test_reachability_names_the_members_that_did_not_ack(
    agent: ScriptedAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.reachability([agent.addr]) == 1
    assert _lines(capsys) == [
        "Total members: 3, live members: 3",
        "Starting reachability test...",
        "Received less acks than live nodes! Missing acks from:",
        "\ta",
        "\tc",
        events._TOO_FEW_ACKS,
        *TROUBLESHOOTING,
    ]


@pytest.mark.parametrize(
    "agent",
    [{"members": members(("a", "alive"), ("b", "left")), "query": acks("a", "a")}],
    indirect=True,
)
def test_reachability_with_a_duplicate_but_the_right_count_still_fails(
    agent: ScriptedAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    # two acks for one live member: the count is off by the duplicate, as in Go
    assert events.reachability([agent.addr]) == 1
    lines = _lines(capsys)
    assert lines[:3] == [
        "Total members: 2, live members: 1",
        "Starting reachability test...",
        "Duplicate response from 'a'",
    ]
    more = "Received more acks than live nodes! Acks from non-live nodes:"
    assert lines[3:5] == [events._DUPLICATES, more]
    assert lines[5] == events._TOO_MANY_ACKS  # no member is listed: 'a' is alive


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            {"members": error("members are secret", {"Members": []})},
            "Error getting members: members are secret",
        ),
        (
            {"members": members(("a", "alive")), "query": error("no queries today")},
            "Error sending query: no queries today",
        ),
    ],
    indirect=["agent"],
)
def test_reachability_rpc_errors(
    agent: ScriptedAgent, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.reachability([agent.addr]) == 1
    lines = _lines(capsys)
    assert lines[-1] == expected
    assert "Starting reachability test..." not in lines


@pytest.mark.parametrize("agent", [{}], indirect=True)
def test_query_with_an_unknown_format_sends_nothing(
    agent: ScriptedAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.query([agent.addr, "-format=xml", "q"]) == 1
    assert _lines(capsys) == ["Invalid format: xml"]
    assert "query" not in agent.commands


def test_query_with_a_malformed_tag_filter_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # refused before connecting: no agent listens on this address
    assert events.query(["-rpc-addr=127.0.0.1:1", "-tag=role", "q"]) == 1
    assert _lines(capsys) == ["Error: Invalid tag: 'role'"]


def _stream_then_hang_up(seq: int, body: dict[str, Any], send: Send) -> bool:
    send({"Seq": seq, "Error": ""})
    record = {"Event": "user", "LTime": 7, "Name": "deploy", "Payload": b"v1",
              "Coalesce": True}  # fmt: skip
    send({"Seq": seq, "Error": ""}, record)
    return False


def _monitor_then_hang_up(seq: int, body: dict[str, Any], send: Send) -> bool:
    assert body == {"LogLevel": "DEBUG"}
    send({"Seq": seq, "Error": ""})
    send({"Seq": seq, "Error": ""}, {"Log": "a log line"})
    return True  # the agent goes away


@pytest.mark.parametrize(
    "agent", [{"stream": _stream_then_hang_up, "monitor": _monitor_then_hang_up}], indirect=True
)
def test_monitor_prints_events_and_logs_until_the_agent_goes_away(
    agent: ScriptedAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.monitor([agent.addr, "-log-level=DEBUG"]) == 1
    lines = _lines(capsys)
    assert lines[-3:] == [
        "",
        "Remote side ended the monitor! This usually means that the",
        "remote side has exited or crashed.",
    ]
    # the event (Go's %#v of each field) and the log line, in either order
    event = ["Event Info:", '\tEvent: "user"', "\tLTime: 7", '\tName: "deploy"',
             "\tPayload: []byte{0x76, 0x31}", "\tCoalesce: true"]  # fmt: skip
    body = lines[:-3]
    assert sorted(body) == sorted([*event, "a log line"])
    # the fields follow "Event Info:" (in no set order: Go ranges over a map)
    start = body.index("Event Info:")
    assert sorted(body[start + 1 : start + len(event)]) == sorted(event[1:])


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"stream": error("streams are off")}, "Error starting stream: streams are off"),
        ({"monitor": error("Unknown log level")}, "Error starting monitor: Unknown log level"),
    ],
    indirect=["agent"],
)
def test_monitor_rpc_errors(
    agent: ScriptedAgent, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert events.monitor([agent.addr]) == 1
    assert _lines(capsys) == [expected]


def _answer_and_stay(seq: int, body: dict[str, Any], send: Send) -> bool:
    """OK, one record saying so (a log line, a query ack), and nothing more: the command
    waits until it is interrupted."""
    send({"Seq": seq, "Error": ""})
    if "LogLevel" in body:
        send({"Seq": seq, "Error": ""}, {"Log": "waiting"})
    elif "Name" in body:
        send({"Seq": seq, "Error": ""}, {"Type": "ack", "From": "a", "Payload": None})
    return False


_WAITING = {"stream": _answer_and_stay, "monitor": _answer_and_stay, "query": _answer_and_stay,
            "members": members(("a", "alive"), ("b", "alive"))}  # fmt: skip


@pytest.mark.parametrize("agent", [_WAITING], indirect=True)
@pytest.mark.parametrize(
    ("command", "waiting", "status", "last"),
    [
        (["monitor"], "waiting", 0, "waiting"),
        (["query", "-timeout=60s", "q"], "Ack from 'a'", 1, "Ack from 'a'"),
        (["reachability"], "Starting reachability test...", 1, "Test interrupted"),
    ],
)
def test_sigint_ends_monitor_query_reachability_even_when_started_ignored(
    agent: ScriptedAgent, command: list[str], waiting: str, status: int, last: str
) -> None:
    """As Go's (``signal.Notify`` takes back an ignored SIGINT): ``serf monitor &`` from a
    script starts with SIGINT ignored, and Ctrl-C or ``kill -INT`` must still end it, with
    Go's status (and, for reachability, Go's last line)."""
    proc = subprocess.Popen(
        [*SERF, command[0], agent.addr, *command[1:]],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.stdout is not None
    try:
        out = LineReader(proc.stdout)
        out.wait_for(waiting, timeout=30)
        proc.send_signal(signal.SIGINT)
        out.rest(timeout=30)
        assert proc.wait(timeout=10) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert out.lines[-1].rstrip("\n").strip() == last
