"""serf._speedups when a compiled twin cannot be imported (a broken or partial C build), in a
fresh interpreter where an import hook makes the named ``serf._fast`` modules fail to import:
the whole set falls back to the pure twins (never a mix), ``SERF_REQUIRE_EXTENSIONS=1`` turns
that into an ImportError naming the module, a lazy twin follows the others or falls back on
its own, and :func:`twins` lists what can be imported. Unknown names are a KeyError.

The expectations hold whether or not the compiled twins are built here (blocking a module
that is not built changes nothing), so the test runs on every install.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from serf._speedups import TWIN_MODULES

BLOCKER = textwrap.dedent(
    """
    import sys

    class Blocker:
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name in self.names:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    def block(*names):
        for name in names:
            sys.modules.pop(name, None)
        sys.meta_path.insert(0, Blocker(names))
    """
)


def _built(short: str) -> bool:
    return importlib.util.find_spec(f"serf._fast.{short}") is not None


ALL_BUILT = all(_built(short) for short in TWIN_MODULES)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SERF_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-P", "-c", BLOCKER + textwrap.dedent(code)],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_one_missing_compiled_twin_makes_the_whole_set_pure() -> None:
    out = _run(
        """
        block("serf._fast.suspicion")
        from serf import _speedups as s
        print(s.IMPLEMENTATION, s.lpe.__name__, s.broadcast.__name__, s.suspicion.__name__)
        """
    )
    assert out.returncode == 0, out.stderr
    pure = ["pure", "serf.wire.lpe", "serf.memberlist.broadcast", "serf.memberlist.suspicion"]
    assert out.stdout.split() == pure


def test_require_extensions_names_the_missing_compiled_twin() -> None:
    out = _run(
        """
        block("serf._fast.suspicion")
        import serf._speedups
        """,
        SERF_REQUIRE_EXTENSIONS="1",
    )
    assert out.returncode != 0
    # the first module that fails to import is named: suspicion when the others are built
    missing = "serf._fast.suspicion" if ALL_BUILT else "serf._fast."
    assert f"SERF_REQUIRE_EXTENSIONS is set but the compiled module {missing}" in out.stderr
    assert "reinstall with a C compiler available" in out.stderr


def test_a_lazy_twin_that_is_not_built_falls_back_alone() -> None:
    out = _run(
        """
        block("serf._fast.go")
        from serf import _speedups as s
        go = s.load("go")
        assert s.load("go") is go
        print(s.IMPLEMENTATION, go.__name__, s.lpe.__name__)
        """
    )
    assert out.returncode == 0, out.stderr
    if ALL_BUILT:
        assert out.stdout.split() == ["compiled", "serf.wire.go", "serf._fast.lpe"]
    else:
        assert out.stdout.split() == ["pure", "serf.wire.go", "serf.wire.lpe"]


def test_a_lazy_twin_follows_the_compiled_set() -> None:
    out = _run("from serf import _speedups as s; print(s.IMPLEMENTATION, s.load('go').__name__)")
    assert out.returncode == 0, out.stderr
    expected = ["compiled", "serf._fast.go"] if ALL_BUILT else ["pure", "serf.wire.go"]
    assert out.stdout.split() == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "pure-only"),
        ({"SERF_NO_EXTENSIONS": "1"}, "pure-only"),
        ({"SERF_REQUIRE_EXTENSIONS": "1"}, "ImportError"),
    ],
)
def test_twins_without_the_compiled_module(env: dict[str, str], expected: str) -> None:
    # blocked after the import of serf._speedups: only twins() meets the missing module
    out = _run(
        """
        from serf import _speedups as s
        block("serf._fast.go")
        try:
            found = s.twins("go")
        except ImportError:
            print("ImportError")
        else:
            print("pure-only" if set(found) == {"pure"} else sorted(found))
        """,
        **env,
    )
    if "SERF_REQUIRE_EXTENSIONS" in env and not ALL_BUILT:
        assert out.returncode != 0  # the import of serf._speedups itself refuses
        return
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected]


def test_no_extensions_lists_only_the_pure_twin_even_when_built() -> None:
    out = _run(
        "from serf import _speedups as s; print(sorted(s.twins('lpe')))",
        SERF_NO_EXTENSIONS="1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['pure']"]


def test_an_unknown_twin_is_a_key_error() -> None:
    from serf import _speedups

    with pytest.raises(KeyError):
        _speedups.load("nonsense")
