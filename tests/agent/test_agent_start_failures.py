"""``serf agent`` that cannot start, and a reload that fails: one line on stderr and exit 1
when the RPC or HTTP port is taken or the join fails with the HTTP API up; warnings for
settings it corrects or ignores; a SIGHUP with a broken config file keeps the agent running on
its old config and says why. Real subprocesses on loopback, every wait bounded."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serf.testing.gopeer import free_port
from serf.testing.lines import LineReader

pytestmark = [pytest.mark.integration]

SERF = [sys.executable, "-P", "-m", "serf.cli.main"]


def _agent(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    cmd = [*SERF, "agent", "-node=a", f"-bind=127.0.0.1:{free_port()}", "-profile=local", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback TCP port with a listener on it for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_rpc_port_taken(taken_port: int) -> None:
    out = _agent(f"-rpc-addr=127.0.0.1:{taken_port}")
    assert out.returncode == 1, out
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error starting RPC listener: "), out.stderr
    assert "==> Starting Serf agent RPC..." in out.stdout
    assert "Serf agent running!" not in out.stdout


def test_http_port_taken_and_settings_warned_about(taken_port: int) -> None:
    pytest.importorskip("aiohttp")
    out = _agent(
        f"-rpc-addr=127.0.0.1:{free_port()}",
        f"-http-addr=127.0.0.1:{taken_port}",
        "-syslog",
        "-retry-interval=10ms",
    )
    assert out.returncode == 1, out
    assert out.stderr.strip().splitlines() == [
        "==> Warning: 'RetryInterval' is too low. Setting to 1s",
        "==> Warning: syslog is not supported by pyserf; ignoring -syslog",
        out.stderr.strip().splitlines()[-1],
    ]
    assert out.stderr.strip().splitlines()[-1].startswith("Error starting HTTP listener: ")
    assert "Serf agent running!" not in out.stdout


def test_failed_join_with_the_http_api_up_exits_1() -> None:
    pytest.importorskip("aiohttp")
    out = _agent(
        f"-rpc-addr=127.0.0.1:{free_port()}",
        f"-http-addr=127.0.0.1:{free_port()}",
        f"-join=127.0.0.1:{free_port()}",
    )
    assert out.returncode == 1, out
    assert "Failed to join" in out.stderr
    assert "Serf agent running!" not in out.stdout


@pytest.mark.slow
def test_a_reload_with_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"tags": {"v": "1"}}))
    rpc = f"-rpc-addr=127.0.0.1:{free_port()}"
    cmd = [*SERF, "agent", "-node=a", f"-bind=127.0.0.1:{free_port()}", rpc, "-profile=local",
           f"-config-file={conf}"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = LineReader(proc.stdout)
        lines.wait_for("==> Log data will now stream in as it occurs:", timeout=60)
        conf.write_text("{ this is not json")
        proc.send_signal(signal.SIGHUP)
        lines.wait_for("==> Caught signal: hangup", timeout=30)
        failed = lines.wait_for("failed to reload configuration", timeout=30)
        assert "[ERR]" in failed and "conf.json" in failed, failed
        # still running, on the old tags
        members = subprocess.run([*SERF, "members", rpc, "-format=json"], capture_output=True,
                                 text=True, timeout=30, check=False)  # fmt: skip
        assert members.returncode == 0, members
        assert json.loads(members.stdout)["members"][0]["tags"] == {"v": "1"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
