"""Event handler specs (Go's TestParseEventScript/TestParseEventFilter/TestEventScriptValid
cases) and the script runner, with real ``/bin/sh`` scripts."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from serf.agent.handlers import (
    OUTPUT_LIMIT,
    EventFilter,
    EventHandlerRunner,
    EventScript,
    HandlerSpecError,
    MemberEventInfo,
    MemberInfo,
    QueryInfo,
    UserEventInfo,
    parse_event_filter,
    parse_event_script,
    parse_handlers,
    run_script,
)


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body in a fresh event loop (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 60))

    return wrapper


@pytest.mark.parametrize(
    ("event", "valid"),
    [
        ("member-join", True),
        ("member-leave", True),
        ("member-failed", True),
        ("member-update", True),
        ("member-reap", True),
        ("user", True),
        ("User", False),
        ("member", False),
        ("query", True),
        ("Query", False),
        ("*", True),
    ],
)
def test_event_filter_validity(event: str, valid: bool) -> None:
    assert EventFilter(event).valid() is valid


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("script.sh", [("*", "", "script.sh")]),
        ("member-join=script.sh", [("member-join", "", "script.sh")]),
        ("foo,bar=script.sh", [("foo", "", "script.sh"), ("bar", "", "script.sh")]),
        ("user:deploy=script.sh", [("user", "deploy", "script.sh")]),
        (
            "foo,user:blah,bar,query:tubez=script.sh",
            [
                ("foo", "", "script.sh"),
                ("user", "blah", "script.sh"),
                ("bar", "", "script.sh"),
                ("query", "tubez", "script.sh"),
            ],
        ),
        ("query:load=script.sh", [("query", "load", "script.sh")]),
        ("query=script.sh", [("query", "", "script.sh")]),
        # split at the first '=' only
        ("*=FOO=1 handler.sh", [("*", "", "FOO=1 handler.sh")]),
        ("FOO=1 handler.sh", [("FOO", "", "1 handler.sh")]),
        # no trimming around commas
        ("user, query=x", [("user", "", "x"), (" query", "", "x")]),
    ],
)
def test_parse_event_script(spec: str, expected: list[tuple[str, str, str]]) -> None:
    got = [(s.filter.event, s.filter.name, s.script) for s in parse_event_script(spec)]
    assert got == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [("*", "")]),
        ("member-join", [("member-join", "")]),
        ("member-reap", [("member-reap", "")]),
        ("foo,bar", [("foo", ""), ("bar", "")]),
        ("user:deploy", [("user", "deploy")]),
        ("foo,user:blah,bar", [("foo", ""), ("user", "blah"), ("bar", "")]),
        ("query:load", [("query", "load")]),
        ("user:", [("user", "")]),
    ],
)
def test_parse_event_filter(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(f.event, f.name) for f in parse_event_filter(text)] == expected


def test_parse_handlers_rejects_unknown_types() -> None:
    assert len(parse_handlers(["a.sh", "member-join,user:x=b.sh"])) == 3
    with pytest.raises(HandlerSpecError, match='Invalid event script: Event "User" invoking'):
        parse_handlers(["User=b.sh"])


def test_filter_matching() -> None:
    join = MemberEventInfo("member-join", ())
    deploy = UserEventInfo(1, "deploy")
    load = QueryInfo(2, "load")
    assert EventFilter("*").matches(join) and EventFilter("*").matches(load)
    assert EventFilter("member-join").matches(join)
    assert not EventFilter("member-leave").matches(join)
    assert EventFilter("user").matches(deploy) and EventFilter("user", "deploy").matches(deploy)
    assert not EventFilter("user", "other").matches(deploy)
    assert not EventFilter("user").matches(load)
    assert EventFilter("query", "load").matches(load)
    assert not EventFilter("query", "x").matches(load)


DUMP = """#!/bin/sh
env | grep '^SERF_' | sort > "{out}.env"
cat > "{out}.stdin"
echo "handled $SERF_EVENT"
"""


def _script(tmp_path: Path, body: str = DUMP) -> tuple[str, Path]:
    out = tmp_path / "dump"
    path = tmp_path / "handler.sh"
    path.write_text(body.format(out=out))
    path.chmod(0o755)
    return str(path), out


def _env(out: Path) -> dict[str, str]:
    lines = (out.parent / (out.name + ".env")).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


@run_async
async def test_member_event_env_and_stdin(tmp_path: Path) -> None:
    script, out = _script(tmp_path)
    runner = EventHandlerRunner(
        parse_handlers([f"member-join={script}"]),
        self_name="me",
        self_tags={"role": "web", "dc-1.zone": "east"},
    )
    event = MemberEventInfo(
        "member-join",
        (
            MemberInfo("n1", "10.0.0.1", {"role": "db"}),
            MemberInfo("we\tird\nname", "::1", {"role": "a\tb", "k": "v"}),
        ),
    )
    [result] = await runner.handle(event)
    assert result.exit_code == 0 and result.output == b"handled member-join\n"
    env = _env(out)
    assert env["SERF_EVENT"] == "member-join" and env["SERF_SELF_NAME"] == "me"
    assert env["SERF_SELF_ROLE"] == "web"
    assert env["SERF_TAG_ROLE"] == "web" and env["SERF_TAG_DC_1_ZONE"] == "east"
    stdin = (tmp_path / "dump.stdin").read_text()
    assert stdin == "n1\t10.0.0.1\tdb\trole=db\nwe\\tird\\nname\t::1\ta\\tb\trole=a\\tb,k=v\n"
    # no match, no run
    assert await runner.handle(MemberEventInfo("member-leave", ())) == []


@run_async
async def test_user_event_env_and_payload(tmp_path: Path) -> None:
    script, out = _script(tmp_path)
    runner = EventHandlerRunner(parse_handlers([f"user:deploy={script}"]), self_name="me")
    [result] = await runner.handle(UserEventInfo(42, "deploy", b"payload"))
    assert result.exit_code == 0
    env = _env(out)
    assert env["SERF_EVENT"] == "user" and env["SERF_USER_EVENT"] == "deploy"
    assert env["SERF_USER_LTIME"] == "42" and env["SERF_SELF_ROLE"] == ""
    assert (tmp_path / "dump.stdin").read_bytes() == b"payload\n"
    await runner.handle(UserEventInfo(43, "deploy", b""))
    assert (tmp_path / "dump.stdin").read_bytes() == b""
    assert await runner.handle(UserEventInfo(44, "other", b"x")) == []


@run_async
async def test_query_response_from_output(tmp_path: Path) -> None:
    script, out = _script(tmp_path)
    answered: list[tuple[QueryInfo, bytes]] = []
    runner = EventHandlerRunner(
        parse_handlers([f"query:load={script}", "query:load=exit 3", "query=true"]),
        self_name="me",
        respond=lambda q, data: answered.append((q, data)),
    )
    query = QueryInfo(7, "load", b"x\n")
    results = await runner.handle(query)
    assert [r.exit_code for r in results] == [0, 3, 0]
    assert [r.response for r in results] == [b"handled query\n", None, None]
    assert answered == [(query, b"handled query\n")]
    env = _env(out)
    assert env["SERF_QUERY_NAME"] == "load" and env["SERF_QUERY_LTIME"] == "7"
    assert (tmp_path / "dump.stdin").read_bytes() == b"x\n"


@run_async
async def test_output_merged_and_capped_to_last_8k() -> None:
    script = "echo first; echo err >&2; head -c 20000 /dev/zero | tr '\\0' a; echo END"
    result = await run_script(script, {"PATH": "/usr/bin:/bin"}, b"")
    assert len(result.output) == OUTPUT_LIMIT and result.output.endswith(b"aEND\n")
    both = await run_script("echo out; echo err >&2", {"PATH": "/usr/bin:/bin"}, b"")
    assert sorted(both.output.split()) == [b"err", b"out"]


@run_async
async def test_script_that_ignores_stdin_is_fine() -> None:
    result = await run_script("exit 0", {}, b"x" * 1_000_000)
    assert result.exit_code == 0


@run_async
async def test_slow_script_warned_then_killed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="serf.agent.handlers")
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await run_script(
        "sleep 30 & sleep 30", {"PATH": "/usr/bin:/bin"}, b"", timeout=0.6, warn_after=0.2
    )
    assert loop.time() - start < 5
    assert result.timed_out and result.exit_code is None and result.response is None
    assert any("slow" in r.getMessage() for r in caplog.records)
    assert any("killed" in r.getMessage() for r in caplog.records)


@run_async
async def test_submit_does_not_block_and_runs_in_order(tmp_path: Path) -> None:
    log = tmp_path / "order"
    runner = EventHandlerRunner(
        [EventScript(EventFilter("user"), f'sleep 0.2; echo "$SERF_USER_EVENT" >> {log}')],
        self_name="me",
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    for name in ("a", "b", "c"):
        assert runner.submit(UserEventInfo(1, name))
    assert loop.time() - start < 0.1
    await asyncio.wait_for(runner.drain(), 10)
    assert log.read_text().split() == ["a", "b", "c"]
    await runner.aclose()


@run_async
async def test_handler_log_lines_are_gos(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="serf.agent")
    runner = EventHandlerRunner(
        parse_handlers(["user:deploy=echo oops >&2; exit 3"]), self_name="me"
    )
    [result] = await runner.handle(UserEventInfo(1, "deploy", b""))
    assert result.exit_code == 3
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    # Go: the output (stdout and stderr) at DEBUG, then the failure at ERR
    assert (logging.DEBUG, "agent: Event 'user' script output: oops\n") in lines
    assert (
        logging.ERROR,
        "agent: Error invoking script 'echo oops >&2; exit 3': exit status 3",
    ) in lines


def test_event_info_is_what_handlers_and_stream_filters_see() -> None:
    """One conversion for the agent's handlers and the RPC server's stream filters: members
    with their IP (no port) and a copy of their tags, or (for a filter) none at all."""
    from serf.agent.handler_spec import event_info
    from serf.core import io as sio
    from serf.core.delivery import member_event_type
    from serf.runtime.serf import Query

    tags = {"role": "web"}
    member = sio.SerfMember("n1", bytes([10, 0, 0, 7]), 7946, tags, sio.MemberStatus.ALIVE)
    joined = sio.MemberJoined((member,))
    kind = member_event_type(joined)
    assert kind == "member-join"
    info = event_info(joined, kind)
    assert info == MemberEventInfo("member-join", (MemberInfo("n1", "10.0.0.7", tags),))
    assert isinstance(info, MemberEventInfo) and info.members[0].tags is not tags
    assert event_info(joined, kind, members=False) == MemberEventInfo("member-join", ())

    user = sio.UserEventReceived(5, "deploy", b"\x00\xff", True)
    assert event_info(user, None) == UserEventInfo(5, "deploy", b"\x00\xff", True)

    handle = sio.QueryHandle(9, 1, "uptime", b"p", "n2", 0.0)
    query = Query(None, handle)  # type: ignore[arg-type]  # (no serf needed to read it)
    assert event_info(query, None) == QueryInfo(9, "uptime", b"p")

    assert event_info(sio.QueryFinished(1), None) is None
