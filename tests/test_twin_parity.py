"""The compiled twins (serf._fast) and their pure twins match beyond their public names: the
same public members on each class and the same call signatures (parameter names, kinds and
defaults; annotations are the pure twin's alone) on every function and method.

``tests/test_speedups.py`` checks that each public callable of a pure twin exists compiled;
this file checks what callers see when they use it (a keyword renamed or a default changed in
one twin fails here).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from types import ModuleType
from typing import Any

import pytest

from serf._speedups import TWIN_MODULES


def _twins(short: str) -> tuple[ModuleType, ModuleType]:
    if importlib.util.find_spec(f"serf._fast.{short}") is None:
        if os.environ.get("SERF_REQUIRE_EXTENSIONS", "").strip() not in ("", "0"):
            pytest.fail(f"SERF_REQUIRE_EXTENSIONS=1 but serf._fast.{short} is not built")
        pytest.skip(f"serf._fast.{short} is not built (a pure-only install)")
    # imported directly: the twins are compared even in a SERF_NO_EXTENSIONS=1 run
    pure = importlib.import_module(TWIN_MODULES[short])
    return pure, importlib.import_module(f"serf._fast.{short}")


def _public(obj: Any) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _own_callables(pure: ModuleType) -> dict[str, Any]:
    return {
        n: value
        for n in _public(pure)
        if callable(value := getattr(pure, n)) and getattr(value, "__module__", "") == pure.__name__
    }


def _shape(func: Any) -> list[tuple[str, Any, Any]] | None:
    """(name, kind, default) per parameter; None when the object has no signature."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def _compare(where: str, pure: Any, compiled: Any, compared: list[str]) -> list[str]:
    """The differences between the signatures of ``pure`` and ``compiled``."""
    ours, theirs = _shape(pure), _shape(compiled)
    if ours is None or theirs is None:
        return []  # a cdef class's __init__: Cython gives it no signature
    compared.append(where)
    return [] if ours == theirs else [f"{where}: pure {ours} != compiled {theirs}"]


@pytest.mark.parametrize("short", sorted(TWIN_MODULES))
def test_twins_have_the_same_members_and_signatures(short: str) -> None:
    pure, compiled = _twins(short)
    problems: list[str] = []
    compared: list[str] = []
    for name, ours in sorted(_own_callables(pure).items()):
        theirs = getattr(compiled, name, None)
        if theirs is None:
            problems.append(f"{name}: missing compiled")
            continue
        if not inspect.isclass(ours):
            problems += _compare(name, ours, theirs, compared)
            continue
        only_pure, only_compiled = _public(ours) - _public(theirs), _public(theirs) - _public(ours)
        if only_pure or only_compiled:
            problems.append(f"{name}: only pure {sorted(only_pure)}, only compiled "
                            f"{sorted(only_compiled)}")  # fmt: skip
        problems += _compare(name, ours, theirs, compared)
        for member in sorted(_public(ours) & _public(theirs)):
            mine, other = getattr(ours, member), getattr(theirs, member)
            if callable(mine) and callable(other):
                problems += _compare(f"{name}.{member}", mine, other, compared)
            elif callable(mine) != callable(other):
                problems.append(f"{name}.{member}: callable in one twin only")
    assert not problems, f"{short}: " + "; ".join(problems)
    assert compared, f"{short}: no signature could be compared"


def test_the_comparison_sees_a_renamed_keyword_and_a_changed_default() -> None:
    def base(data: bytes, *, limit: int = 3) -> None: ...
    def renamed(data, *, cap=3): ...  # type: ignore[no-untyped-def]
    def other_default(data, *, limit=4): ...  # type: ignore[no-untyped-def]
    def same(data, *, limit=3): ...  # type: ignore[no-untyped-def]

    seen: list[str] = []
    assert _compare("f", base, renamed, seen) and _compare("f", base, other_default, seen)
    assert _compare("f", base, same, seen) == []
    assert len(seen) == 3
