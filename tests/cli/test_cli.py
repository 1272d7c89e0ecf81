"""The installed ``serf`` command, run as a real subprocess."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys

import pytest


def _serf_cmd() -> list[str]:
    exe = shutil.which("serf")
    return [exe] if exe else [sys.executable, "-P", "-m", "serf.cli.main"]


def _serf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_serf_cmd(), *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    for flag in ("version", "-v", "--version"):
        out = _serf(flag)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Serf v")
        assert "Agent Protocol: 5 (Understands back to: 2)" in out.stdout


def test_keygen_prints_a_fresh_32_byte_key() -> None:
    first, second = _serf("keygen"), _serf("keygen")
    assert first.returncode == 0
    key = base64.b64decode(first.stdout.strip(), validate=True)
    assert len(key) == 32
    assert first.stdout != second.stdout


@pytest.mark.parametrize("args", [("frobnicate",), ("keygen", "extra"), ()])
def test_bad_usage_exits_1_with_a_message(args: tuple[str, ...]) -> None:
    out = _serf(*args)
    assert out.returncode == 1
    assert out.stderr.strip()


def test_help_lists_the_client_commands() -> None:
    out = _serf("--help")
    assert out.returncode == 0
    for name in ("members", "join", "leave", "force-leave", "event", "query", "keys", "monitor",
                 "tags", "info", "rtt", "reachability", "agent"):  # fmt: skip
        assert f"    {name} " in out.stdout


def test_agent_rejects_a_bad_flag_with_one_line() -> None:
    out = _serf("agent", "-no-such-flag")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-flag" in lines[0], out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("members", "-bogus"), "members: flag provided but not defined: -bogus"),
        (("query", "-timeout=soon", "q"), 'query: invalid value "soon" for flag -timeout'),
        (("join", "-rpc-addr"), "join: flag needs an argument: -rpc-addr"),
        (("event",), "An event name must be specified."),
        (("query",), "A query name must be specified."),
        (("keys",), "Usage: serf keys"),
        (("members", "-tag=x"), "Error: Invalid tag: 'x'"),
    ],
)
def test_bad_usage_is_one_line_and_status_1(args: tuple[str, ...], message: str) -> None:
    out = _serf(*args)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr


def test_unreachable_agent() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = _serf("members", f"-rpc-addr=127.0.0.1:{port}")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"Error connecting to Serf agent: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    env_out = subprocess.run(
        [*_serf_cmd(), "info"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SERF_RPC_ADDR": f"127.0.0.1:{port}"},
    )  # fmt: skip
    assert env_out.returncode == 1 and f"127.0.0.1:{port}" in env_out.stderr
