"""The installed ``serf`` command, run as a real subprocess."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration]


def _serf_cmd() -> list[str]:
    exe = shutil.which("serf")
    return [exe] if exe else [sys.executable, "-P", "-m", "serf.cli.main"]


def _serf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_serf_cmd(), *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    for flag in ("version", "-v", "--version"):
        out = _serf(flag)
        assert out.returncode == 0, out.stderr
        first = out.stdout.splitlines()[0]
        assert first.split()[0] == "0.11.0" and "(pyserf " in first  # Go's form, ours beside
        assert "Agent Protocol: 5 (Understands back to: 2)" in out.stdout


def test_keygen_prints_a_fresh_32_byte_key() -> None:
    first, second = _serf("keygen"), _serf("keygen")
    assert first.returncode == 0
    key = base64.b64decode(first.stdout.strip(), validate=True)
    assert len(key) == 32
    assert first.stdout != second.stdout


@pytest.mark.parametrize("args", [("frobnicate",), ("help",), ()])
def test_unknown_or_missing_command_exits_127_with_the_list(args: tuple[str, ...]) -> None:
    out = _serf(*args)
    assert out.returncode == 127
    assert out.stderr.startswith("Usage: serf [--version] [--help] <command> [<args>]")
    assert out.stdout == ""


def test_help_lists_the_client_commands() -> None:
    out = _serf("--help")
    assert out.returncode == 0
    for name in ("members", "join", "leave", "force-leave", "event", "query", "keys", "monitor",
                 "tags", "info", "rtt", "reachability", "agent"):  # fmt: skip
        assert f"    {name} " in out.stderr


@pytest.mark.parametrize(
    "args", [("members", "-h"), ("event", "name", "-help"), ("agent", "--help"), ("keygen", "-h")]
)
def test_command_help_exits_0_on_stderr(args: tuple[str, ...]) -> None:
    out = _serf(*args)
    assert out.returncode == 0 and out.stdout == ""
    assert out.stderr.startswith(f"Usage: serf {args[0]}"), out.stderr


def test_agent_rejects_a_bad_flag_with_one_line() -> None:
    out = _serf("agent", "-no-such-flag")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-flag" in lines[0], out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("members", "-bogus"), "flag provided but not defined: -bogus"),
        (("query", "-timeout=soon", "q"), 'invalid value "soon" for flag -timeout'),
        (("join", "-rpc-addr"), "flag needs an argument: -rpc-addr"),
    ],
)
def test_bad_flag_is_one_line_on_stderr_and_the_usage_on_stdout(
    args: tuple[str, ...], message: str
) -> None:
    out = _serf(*args)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert out.stdout.startswith(f"Usage: serf {args[0]}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("event",), "An event name must be specified."),
        (("query",), "A query name must be specified."),
        (("keys",), "Usage: serf keys"),
        (("members", "-tag=x"), "Error: Invalid tag: 'x'"),
    ],
)
def test_usage_errors_go_to_stdout_with_status_1(args: tuple[str, ...], message: str) -> None:
    out = _serf(*args)
    assert out.returncode == 1
    assert out.stdout.startswith(message) and out.stderr == "", out


def test_unreachable_agent() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = _serf("members", f"-rpc-addr=127.0.0.1:{port}")
    assert out.returncode == 1
    assert out.stdout.strip() == (
        f"Error connecting to Serf agent: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    env_out = subprocess.run(
        [*_serf_cmd(), "info"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SERF_RPC_ADDR": f"127.0.0.1:{port}"},
    )  # fmt: skip
    assert env_out.returncode == 1 and f"127.0.0.1:{port}" in env_out.stdout
