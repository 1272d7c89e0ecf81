"""Issue 9 item 6: the smaller holes. A config file that is not UTF-8 gives a one-line error,
not a traceback; the keyring's temp file is never readable by others, not even while it is
written; ``serf agent -h`` prints help and exits 0; ``serf agent`` has no ``-rpc-auth`` flag
(a secret there shows in ``ps``), as Go; a start failure names its prefix once. (Trailing
bytes after an lpe stream message: tests/adversarial/test_stream_trickle.py.)"""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from serf.agent import run
from serf.runtime.serf import _Files

_watch: list[tuple[Path, list[str]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # at every file event, the keyring temp file (if it exists with keys in it) must be 0600
    for tmp, seen in _watch:
        if event in ("open", "os.chmod", "os.rename", "os.replace") and tmp.exists():
            mode = stat.S_IMODE(tmp.stat().st_mode)
            if tmp.stat().st_size and mode & 0o077:
                seen.append(f"{event}: {oct(mode)}")


sys.addaudithook(_audit)  # hooks cannot be removed: it only acts while _watch is set


def test_keyring_temp_file_is_private_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    seen: list[str] = []
    old = os.umask(0o022)
    _watch.append((tmp_path / "keyring.tmp", seen))
    try:
        files = _Files(keyring_path=str(path))
        files.write_keyring([b"k" * 32])
        files.write_keyring([b"j" * 32, b"k" * 32])  # a second write finds no leftover
    finally:
        _watch.clear()
        os.umask(old)
    assert seen == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().count('"') == 4  # two keys


def test_non_utf8_config_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "bad.json"
    conf.write_bytes(b'{"node_name": "caf\xe9"}')
    assert run.main([f"-config-file={conf}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8" in err and str(conf) in err


def test_agent_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["-h"]) == 0
    assert capsys.readouterr().err.startswith("Usage: serf agent [options]")


def test_agent_has_no_rpc_auth_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["-rpc-auth=s3cret"]) == 1
    assert "flag provided but not defined: -rpc-auth" in capsys.readouterr().err


@pytest.mark.integration
def test_start_failure_names_its_prefix_once(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        code = run.main([f"-bind=127.0.0.1:{port}", "-rpc-addr=127.0.0.1:0", "-node=x"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("Failed to start the Serf agent") == 1, err
