"""Check that a module stays sans-IO: importing it pulls in no clock, socket or randomness.

Used by the tests of every sans-IO module (DESIGN principle 1). The import runs in a fresh
``python -S`` (site hooks may import ``os`` or ``random`` themselves), from a scratch working
directory so that the installed package is the one imported, never a source tree in the cwd.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FORBIDDEN", "probe_imports"]

#: Modules a sans-IO module must not import.
FORBIDDEN = ("asyncio", "os", "random", "socket", "ssl", "time")

_PROBE = """
import importlib, sys, types
target, preload, forbidden = sys.argv[1], sys.argv[2].split(), set(sys.argv[3:])
for parent in ("serf", target.rpartition(".")[0], *preload):
    importlib.import_module(parent)
before = set(sys.modules)
module = importlib.import_module(target)
print(" ".join(sorted(set(sys.modules) - before)))
bad = []
for key, value in vars(module).items():
    if isinstance(value, types.ModuleType) and value.__name__.split(".")[0] in forbidden:
        bad.append(key)
    elif getattr(value, "__module__", None) in forbidden:
        bad.append(key)
print(" ".join(bad))
"""


def probe_imports(
    target: str, forbidden: Sequence[str] = FORBIDDEN, preload: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(modules that importing ``target`` added, its globals that come from ``forbidden``).

    ``preload`` names modules imported before the measurement (their own imports, such as the
    ``os`` that ``dataclasses`` brings in, then don't count against ``target``).
    """
    import serf

    roots = sorted({str(Path(p).parent) for p in serf.__path__})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([*roots, *site.getsitepackages()])
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [sys.executable, "-S", "-c", _PROBE, target, " ".join(preload), *forbidden],
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=60,
        )
    if out.returncode != 0:
        raise RuntimeError(f"importing {target} failed:\n{out.stderr}")
    added, bad = [*out.stdout.split("\n"), "", ""][:2]
    return added.split(), bad.split()
