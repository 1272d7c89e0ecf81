"""Every module of the two cores is sans-IO (DESIGN principle 1), found by walking the
packages: a module added to ``serf.core`` or ``serf.memberlist`` is checked without being
listed anywhere.

Two checks per module: its source imports no forbidden module outside ``if TYPE_CHECKING:``
(AST), and importing it in a fresh ``python -S`` adds no forbidden module to
``sys.modules`` nor binds one in its globals. The baseline of the second check holds what is
outside its scope: ``dataclasses`` (whose ``inspect`` imports ``os`` under ``-S``), the wire
messages (``serf/wire/__init__.py`` pulls in ``cryptography``, which imports ``os``) and,
for a module that loads it, ``serf._speedups``, which reads its environment by design.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

from serf.testing.sansio import FORBIDDEN, probe_imports

CORE_PACKAGES = ("serf.core", "serf.memberlist")
PRELOAD = ("dataclasses", "serf.wire.messages")


def _core_modules() -> list[str]:
    found: list[str] = []
    for package in CORE_PACKAGES:
        found.append(package)
        path = importlib.import_module(package).__path__
        found += [info.name for info in pkgutil.walk_packages(path, package + ".")]
    return sorted(found)


MODULES = _core_modules()


def test_the_walk_finds_the_modules_of_both_cores() -> None:
    # a floor, not the list: the walk must not silently come back (nearly) empty
    assert {"serf.core.serf", "serf.memberlist.core", "serf.memberlist.state"} <= set(MODULES)
    assert len(MODULES) >= 15


def _runtime_imports(tree: ast.AST) -> list[str]:
    """The modules imported outside ``if TYPE_CHECKING:`` blocks (absolute imports only)."""
    imported: list[str] = []
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            imported += _runtime_imports(ast.Module(body=child.orelse, type_ignores=[]))
            continue
        if isinstance(child, ast.Import):
            imported += [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
            imported.append(child.module)
        imported += _runtime_imports(child)
    return imported


@pytest.mark.parametrize("target", MODULES)
def test_source_imports_no_forbidden_module(target: str) -> None:
    spec = importlib.util.find_spec(target)
    assert spec is not None and spec.origin is not None
    imported = _runtime_imports(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
    assert not [m for m in imported if m.split(".")[0] in FORBIDDEN], (target, imported)


@pytest.mark.parametrize("target", MODULES)
def test_importing_adds_no_forbidden_module(target: str) -> None:
    added, bad = probe_imports(target, preload=PRELOAD)
    if "serf._speedups" in added:  # it reads its environment (os) by design: in the baseline
        added, bad = probe_imports(target, preload=(*PRELOAD, "serf._speedups"))
    if target not in added:  # the baseline loaded it (the wire package loads the pure twins)
        added, bad = probe_imports(target)
    assert target in added or target in CORE_PACKAGES
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []


def test_the_ast_check_sees_an_import_and_skips_type_checking_blocks() -> None:
    source = (
        "import json\n"
        "if TYPE_CHECKING:\n    import random\nelse:\n    import socket\n"
        "def f():\n    import time\n"
    )
    assert sorted(_runtime_imports(ast.parse(source))) == ["json", "socket", "time"]
