"""Build script: compiles the Cython twins in serf/_fast.

SERF_NO_EXTENSIONS=1 skips them (pure Python only); SERF_REQUIRE_EXTENSIONS=1 makes a failed
build fatal instead of falling back to the pure twins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class OptionalBuildExt(build_ext):
    """build_ext that may fail softly unless SERF_REQUIRE_EXTENSIONS is set."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine
            if _flag("SERF_REQUIRE_EXTENSIONS"):
                raise
            print(f"warning: compiled twins not built ({exc}); using pure Python", file=sys.stderr)

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover - depends on the machine
            if _flag("SERF_REQUIRE_EXTENSIONS"):
                raise
            print(f"warning: {ext.name} not built ({exc})", file=sys.stderr)


def _extensions() -> list:  # type: ignore[type-arg]
    if _flag("SERF_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if _flag("SERF_REQUIRE_EXTENSIONS"):
            raise
        print("warning: Cython missing; using pure Python", file=sys.stderr)
        return []
    sources = sorted(str(p) for p in Path("serf/_fast").glob("*.pyx"))
    return cythonize(
        sources,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
