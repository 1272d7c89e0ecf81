"""serf._speedups picks the twins the environment asks for, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "from serf import _speedups as s; print(s.IMPLEMENTATION, s.lpe.__name__)"


def _probe(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SERF_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-P", "-c", PROBE], env=full, capture_output=True, text=True, timeout=60
    )


def test_no_extensions_gives_pure_twins() -> None:
    out = _probe(SERF_NO_EXTENSIONS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pure", "serf.wire.lpe"]


def _compiled_available() -> bool:
    return _probe().stdout.startswith("compiled")


def test_default_prefers_compiled_when_built() -> None:
    out = _probe()
    assert out.returncode == 0, out.stderr
    if os.environ.get("SERF_REQUIRE_EXTENSIONS") == "1":
        assert out.stdout.split() == ["compiled", "serf._fast.lpe"]
    else:
        assert out.stdout.split()[0] in ("compiled", "pure")


def test_require_extensions_is_honoured() -> None:
    out = _probe(SERF_REQUIRE_EXTENSIONS="1")
    if _compiled_available():
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == "compiled"
    else:
        assert out.returncode != 0
        assert "SERF_REQUIRE_EXTENSIONS" in out.stderr


def test_twins_lists_both_when_built() -> None:
    from serf import _speedups

    found = _speedups.twins("lpe")
    assert "pure" in found
    if _speedups.IMPLEMENTATION == "compiled":
        assert set(found) == {"pure", "compiled"}
        assert found["compiled"].__name__ == "serf._fast.lpe"


@pytest.mark.parametrize("short", ["lpe", "broadcast", "suspicion", "lzw", "go"])
def test_twins_expose_the_same_public_names(short: str) -> None:
    from serf import _speedups

    found = _speedups.twins(short)
    if len(found) < 2:
        pytest.skip("compiled twin not built in this run")
    pure, compiled = found["pure"], found["compiled"]
    public = {n for n in dir(pure) if not n.startswith("_") and callable(getattr(pure, n))}
    ours = {n for n in public if getattr(getattr(pure, n), "__module__", "") == pure.__name__}
    missing = {n for n in ours if not hasattr(compiled, n)}
    assert not missing, f"compiled {short} lacks {sorted(missing)}"
