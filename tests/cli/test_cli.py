"""The installed ``serf`` command, run as a real subprocess."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys

import pytest


def _serf(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("serf")
    cmd = [exe] if exe else [sys.executable, "-m", "serf.cli.main"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


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
