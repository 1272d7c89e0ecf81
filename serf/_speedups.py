"""The one place that picks the compiled twins (``serf._fast``) or their pure-Python twins.

* ``SERF_NO_EXTENSIONS=1``: always the pure twins.
* the ``go`` codec's twins (``serf._fast.go`` / ``serf.wire.go``) are imported on first
  :func:`load`, not at import, so a node that does not speak Go's dialect never imports msgpack.
* otherwise the compiled twins; when one is missing we fall back to the pure twins, unless
  ``SERF_REQUIRE_EXTENSIONS=1`` is set, which turns a missing compiled module into ImportError.

:data:`IMPLEMENTATION` says which set is active ("compiled" or "pure"). The twins expose the same
names and signatures; :func:`twins` returns both (where available) for tests that compare them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Literal

__all__ = [
    "IMPLEMENTATION",
    "TWIN_MODULES",
    "load",
    "twins",
    "lpe",
    "broadcast",
    "suspicion",
    "lzw",
    "LAZY_TWINS",
]

#: compiled module name -> its pure-Python twin
TWIN_MODULES: dict[str, str] = {
    "lpe": "serf.wire.lpe",
    "broadcast": "serf.memberlist.broadcast",
    "suspicion": "serf.memberlist.suspicion",
    "lzw": "serf.wire.lzw",
    "go": "serf.wire.go",
}
#: twins imported on first :func:`load` only
LAZY_TWINS: frozenset[str] = frozenset({"go"})


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _load_compiled() -> dict[str, ModuleType] | None:
    modules: dict[str, ModuleType] = {}
    for short in TWIN_MODULES:
        if short in LAZY_TWINS:
            continue
        try:
            modules[short] = importlib.import_module(f"serf._fast.{short}")
        except ImportError as exc:
            if _flag("SERF_REQUIRE_EXTENSIONS"):
                raise ImportError(
                    f"SERF_REQUIRE_EXTENSIONS is set but the compiled module serf._fast.{short} "
                    f"is missing ({exc}); reinstall with a C compiler available"
                ) from exc
            return None
    return modules


def _load_pure() -> dict[str, ModuleType]:
    return {
        short: importlib.import_module(path)
        for short, path in TWIN_MODULES.items()
        if short not in LAZY_TWINS
    }


def _select() -> tuple[Literal["compiled", "pure"], dict[str, ModuleType]]:
    if _flag("SERF_NO_EXTENSIONS"):
        return "pure", _load_pure()
    compiled = _load_compiled()
    if compiled is None:
        return "pure", _load_pure()
    return "compiled", compiled


IMPLEMENTATION: Literal["compiled", "pure"]
IMPLEMENTATION, _ACTIVE = _select()

lpe: ModuleType = _ACTIVE["lpe"]
broadcast: ModuleType = _ACTIVE["broadcast"]
suspicion: ModuleType = _ACTIVE["suspicion"]
lzw: ModuleType = _ACTIVE["lzw"]


def load(short: str) -> ModuleType:
    """The active twin of ``short`` ("lpe", "broadcast", "suspicion", "lzw", "go")."""
    try:
        return _ACTIVE[short]
    except KeyError:
        if short not in LAZY_TWINS:
            raise
    # a lazy twin: the compiled one when the others are compiled and it was built
    found = twins(short)
    module = (
        found["compiled"] if IMPLEMENTATION == "compiled" and "compiled" in found else found["pure"]
    )
    _ACTIVE[short] = module
    return module


def twins(short: str) -> dict[str, ModuleType]:
    """Both twins of ``short`` that can be imported here: {"pure": ..., "compiled": ...}.

    The compiled one is left out when it is not built, unless SERF_REQUIRE_EXTENSIONS is set
    (then its absence raises ImportError), and when SERF_NO_EXTENSIONS is set.
    """
    found = {"pure": importlib.import_module(TWIN_MODULES[short])}
    if _flag("SERF_NO_EXTENSIONS"):
        return found
    try:
        found["compiled"] = importlib.import_module(f"serf._fast.{short}")
    except ImportError:
        if _flag("SERF_REQUIRE_EXTENSIONS"):
            raise
    return found
