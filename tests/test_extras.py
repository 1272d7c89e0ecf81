"""Optional features are pip extras (quic, mdns, uvloop, http, trio, all): the library and the net
transport work without them, and a feature whose extra is missing says which one to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from serf.agent import mdns

ROOT = Path(__file__).resolve().parent.parent

# a fresh interpreter in which the optional packages cannot be imported
_WITHOUT_EXTRAS = """
import sys
for name in ("aioquic", "zeroconf", "uvloop", "aiohttp", "trio", "anyio"):
    sys.modules[name] = None  # import raises ImportError
"""


def _run_without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-c", _WITHOUT_EXTRAS + code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_the_library_runs_without_any_extra(tmp_path: Path) -> None:
    code = """
import asyncio
from serf import MemberStatus
from serf.testing import cluster, run_virtual
from serf.transport import NetTransport, install_uvloop

async def main():
    async with cluster(2, transport="net") as nodes:
        assert len(nodes[0].members(MemberStatus.ALIVE)) == 2

asyncio.run(asyncio.wait_for(main(), 60))
assert install_uvloop() is False  # the agent falls back to asyncio's loop
print("ok")
"""
    out = _run_without_extras(code, tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.integration
def test_quic_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    code = """
from serf._extras import MissingExtraError
try:
    from serf.transport import QuicTransport
except MissingExtraError as exc:
    print(exc)
"""
    out = _run_without_extras(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pip install 'pyserf[quic]'" in out.stdout
    assert "QUIC transport" in out.stdout


@pytest.mark.integration
def test_trio_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    code = """
from serf._extras import MissingExtraError
for module in ("serf.runtime.trio_serf", "serf.transport.trio_net", "serf.testing.trio_kit"):
    try:
        __import__(module)
    except MissingExtraError as exc:
        print(exc)
"""
    out = _run_without_extras(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3, out.stdout
    assert all("pip install 'pyserf[trio]'" in line and "trio runtime" in line for line in lines)


def test_mdns_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdns.importlib.util, "find_spec", lambda name: None)  # not installed
    with pytest.raises(mdns.MDNSUnavailable, match=r"pip install 'pyserf\[mdns\]'"):
        mdns.check_available()


def test_the_extras_are_declared_and_the_test_extras_bring_them_all() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(">")[0].split("=")[0].split(";")[0].strip() for r in reqs}

    assert names(extras["quic"]) == {"aioquic"}
    assert names(extras["mdns"]) == {"zeroconf"}
    assert names(extras["uvloop"]) == {"uvloop"}
    assert names(extras["http"]) == {"aiohttp"}
    assert names(extras["trio"]) == {"trio"}
    optional = {"aioquic", "zeroconf", "uvloop", "aiohttp", "trio"}
    assert names(extras["all"]) == optional
    assert not optional & names(project["dependencies"])
    assert optional <= names(extras["test"]) and optional <= names(extras["dev"])
