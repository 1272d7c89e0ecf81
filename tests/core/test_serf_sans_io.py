"""The serf core modules are sans-IO: no asyncio/socket/time/random/os imports (design 1).

An import under ``if TYPE_CHECKING:`` (the ``random.Random`` annotation) never runs.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from serf.testing.sansio import FORBIDDEN, probe_imports

MODULES = [
    "serf.core.serf",
    "serf.core.io",
    "serf.core.members",
    "serf.core.state",
    "serf.core.queries",
    "serf.core.internal",
    "serf.core.intents",
]


@pytest.mark.parametrize("target", MODULES)
def test_source_imports_no_forbidden_module(target: str) -> None:
    spec = importlib.util.find_spec(target)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    imported: list[str] = []
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            type_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue  # imports for annotations only never run
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
    assert imported
    assert not [m for m in imported if m.split(".")[0] in FORBIDDEN], imported


@pytest.mark.parametrize("target", MODULES)
def test_importing_adds_no_forbidden_module(target: str) -> None:
    """``serf._speedups`` reads environment variables (os) by design: preloaded."""
    preload = ("dataclasses", "serf.wire.messages", "serf._speedups", "serf.wire.framing")
    added, bad = probe_imports(target, preload=preload)
    assert target in added
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []
