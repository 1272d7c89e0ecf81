"""The new serf.core modules are sans-IO: importing them pulls in no IO, clock or randomness.

Two checks: the source has no import of a forbidden module anywhere (AST), and importing the
module in a fresh ``python -S`` adds no forbidden module to ``sys.modules``. The baseline of
the second check already holds the dependencies that are outside this check's scope:
``dataclasses`` (its ``inspect`` imports ``os`` under ``-S``) and ``serf.wire.messages``
(whose package ``serf/wire/__init__.py`` pulls in ``cryptography``, which imports ``os``).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from serf.testing.sansio import FORBIDDEN, probe_imports

MODULES = [
    "serf.core.lamport",
    "serf.core.vivaldi",
    "serf.core.snapshot",
    "serf.core.coalesce",
    "serf.core.filters",
    "serf.core.keyring_file",
    "serf.core.state",
    "serf.core.queries",
    "serf.core.internal",
    "serf.core.intents",
]


@pytest.mark.parametrize("target", MODULES)
def test_imports_nothing_with_io_clocks_or_randomness(target: str) -> None:
    """Fresh interpreter; ``dataclasses`` and the wire package's imports are preloaded."""
    added, bad = probe_imports(target, preload=("dataclasses", "serf.wire.messages"))
    assert target in added
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []


@pytest.mark.parametrize("target", MODULES)
def test_source_imports_no_forbidden_module(target: str) -> None:
    spec = importlib.util.find_spec(target)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
    assert imported, target
    assert not [m for m in imported if m.split(".")[0] in FORBIDDEN], imported
