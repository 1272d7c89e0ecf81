"""serf._speedups picks the twins the environment asks for, in a fresh interpreter.

Whether a compiled twin is built is found by looking for its extension module file, not by
asking ``serf._speedups`` (which is what is under test).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest

from serf._speedups import LAZY_TWINS, TWIN_MODULES

PROBE = "from serf import _speedups as s; print(s.IMPLEMENTATION, s.lpe.__name__)"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _built(short: str) -> bool:
    """True when the installed package holds the compiled module ``serf._fast.<short>``."""
    return importlib.util.find_spec(f"serf._fast.{short}") is not None


#: the twins chosen together at import (the lazy ones follow them on first load, if built)
EAGER = sorted(set(TWIN_MODULES) - LAZY_TWINS)
ALL_BUILT = all(_built(short) for short in EAGER)


def _probe(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SERF_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-P", "-c", PROBE], env=full, capture_output=True, text=True, timeout=60
    )


def test_a_compiled_run_has_every_compiled_twin_built() -> None:
    if not _flag("SERF_REQUIRE_EXTENSIONS"):
        pytest.skip("SERF_REQUIRE_EXTENSIONS is not set: a pure-only install is allowed")
    missing = [short for short in TWIN_MODULES if not _built(short)]
    assert not missing, f"compiled twins missing: {missing}"


def test_this_run_uses_the_twins_the_environment_asks_for() -> None:
    from serf import _speedups

    if _flag("SERF_NO_EXTENSIONS"):
        expected = "pure"
    elif _flag("SERF_REQUIRE_EXTENSIONS"):
        expected = "compiled"
    else:
        expected = "compiled" if ALL_BUILT else "pure"
    implementation = _speedups.IMPLEMENTATION
    assert implementation == expected
    for short in TWIN_MODULES:
        compiled = expected == "compiled" and (short not in LAZY_TWINS or _built(short))
        want = f"serf._fast.{short}" if compiled else TWIN_MODULES[short]
        assert _speedups.load(short).__name__ == want


def test_no_extensions_gives_pure_twins() -> None:
    out = _probe(SERF_NO_EXTENSIONS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pure", "serf.wire.lpe"]


def test_default_prefers_compiled_when_built() -> None:
    out = _probe()
    assert out.returncode == 0, out.stderr
    if ALL_BUILT:
        assert out.stdout.split() == ["compiled", "serf._fast.lpe"]
    else:
        assert out.stdout.split() == ["pure", "serf.wire.lpe"]


def test_require_extensions_is_honoured() -> None:
    out = _probe(SERF_REQUIRE_EXTENSIONS="1")
    if ALL_BUILT:
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["compiled", "serf._fast.lpe"]
    else:
        assert out.returncode != 0
        assert "SERF_REQUIRE_EXTENSIONS" in out.stderr


def test_twins_lists_both_when_built() -> None:
    from serf import _speedups

    found = _speedups.twins("lpe")
    assert found["pure"].__name__ == "serf.wire.lpe"
    if _built("lpe") and not _flag("SERF_NO_EXTENSIONS"):
        assert set(found) == {"pure", "compiled"}
        assert found["compiled"].__name__ == "serf._fast.lpe"
    else:
        assert set(found) == {"pure"}


@pytest.mark.parametrize("short", sorted(TWIN_MODULES))
def test_twins_expose_the_same_public_names(short: str) -> None:
    if not _built(short):
        if _flag("SERF_REQUIRE_EXTENSIONS"):
            pytest.fail(f"SERF_REQUIRE_EXTENSIONS=1 but serf._fast.{short} is not built")
        pytest.skip(f"serf._fast.{short} is not built (a pure-only install)")
    # imported directly: the twins are compared even in a SERF_NO_EXTENSIONS=1 run
    pure = importlib.import_module(TWIN_MODULES[short])
    compiled = importlib.import_module(f"serf._fast.{short}")
    public = {n for n in dir(pure) if not n.startswith("_") and callable(getattr(pure, n))}
    ours = {n for n in public if getattr(getattr(pure, n), "__module__", "") == pure.__name__}
    assert ours, f"no public callables found in {pure.__name__}"
    missing = {n for n in ours if not hasattr(compiled, n)}
    assert not missing, f"compiled {short} lacks {sorted(missing)}"


@pytest.mark.parametrize("no_extensions", ["", "1"])
def test_importing_the_framing_loads_no_memberlist_module(no_extensions: str) -> None:
    # the twins load on first use: the wire layer alone pulls in no memberlist twin
    probe = (
        "import sys, serf.wire.framing; "
        "print(' '.join(m for m in sys.modules if m.startswith(('serf.memberlist', "
        "'serf._fast.broadcast', 'serf._fast.suspicion'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERF_")}
    env["SERF_NO_EXTENSIONS"] = no_extensions
    out = subprocess.run(
        [sys.executable, "-P", "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def test_twins_load_on_first_use() -> None:
    probe = (
        "import sys; from serf import _speedups as s; "
        "before = 'serf.memberlist.broadcast' in sys.modules or "
        "'serf._fast.broadcast' in sys.modules; "
        "q = s.broadcast.TransmitLimitedQueue; print(before, s.broadcast.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    before, name = out.stdout.split()
    assert before == "False"
    assert name in ("serf.memberlist.broadcast", "serf._fast.broadcast")
