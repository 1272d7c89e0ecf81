"""The one place that picks the compiled twins (``serf._fast``) or their pure-Python twins.

* ``SERF_NO_EXTENSIONS=1``: always the pure twins.
* the ``go`` codec's twins (``serf._fast.go`` / ``serf.wire.go``) are imported on first
  :func:`load`, not at import, so a node that does not speak Go's dialect never imports msgpack.
* otherwise the compiled twins; when one is missing we fall back to the pure twins, unless
  ``SERF_REQUIRE_EXTENSIONS=1`` is set, which turns a missing compiled module into ImportError.
* every twin is imported on first use (``_speedups.lpe``, ``load("lpe")``), not at import:
  the choice above is made from the installed files (``importlib.util.find_spec``), so
  ``import serf.wire.framing`` loads no memberlist module. Type checkers see each name as its
  pure twin's module (the twins have the same names and signatures).

:data:`IMPLEMENTATION` says which set is active ("compiled" or "pure"). The twins expose the same
names and signatures; :func:`twins` returns both (where available) for tests that compare them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the types of the lazily loaded twins: the pure twins' modules
    from serf import metrics_record as metrics_record
    from serf.memberlist import broadcast as broadcast
    from serf.memberlist import skim as skim
    from serf.memberlist import suspicion as suspicion
    from serf.wire import lpe as lpe
    from serf.wire import lzw as lzw

__all__ = [
    "IMPLEMENTATION",
    "TWIN_MODULES",
    "load",
    "twins",
    "lpe",
    "broadcast",
    "suspicion",
    "lzw",
    "skim",
    "metrics_record",
    "LAZY_TWINS",
]

#: compiled module name -> its pure-Python twin
TWIN_MODULES: dict[str, str] = {
    "lpe": "serf.wire.lpe",
    "broadcast": "serf.memberlist.broadcast",
    "suspicion": "serf.memberlist.suspicion",
    "lzw": "serf.wire.lzw",
    "skim": "serf.memberlist.skim",
    "metrics_record": "serf.metrics_record",
    "go": "serf.wire.go",
}
#: twins that may be missing from a compiled build without making the whole set pure
LAZY_TWINS: frozenset[str] = frozenset({"go"})


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _compiled_missing() -> str | None:
    """The first compiled (non-lazy) twin that is not installed, or None."""
    for short in TWIN_MODULES:
        if short in LAZY_TWINS:
            continue
        try:
            found = importlib.util.find_spec(f"serf._fast.{short}")
        except ImportError:  # a finder refused it
            found = None
        if found is None:
            return short
    return None


def _select() -> Literal["compiled", "pure"]:
    if _flag("SERF_NO_EXTENSIONS"):
        return "pure"
    missing = _compiled_missing()
    if missing is None:
        return "compiled"
    if _flag("SERF_REQUIRE_EXTENSIONS"):
        raise ImportError(
            f"SERF_REQUIRE_EXTENSIONS is set but the compiled module serf._fast.{missing} "
            "is missing; reinstall with a C compiler available"
        )
    return "pure"


IMPLEMENTATION: Literal["compiled", "pure"] = _select()
_ACTIVE: dict[str, ModuleType] = {}


def load(short: str) -> ModuleType:
    """The active twin of ``short`` ("lpe", "broadcast", "suspicion", "lzw", "skim",
    "metrics_record", "go"), imported on first use."""
    module = _ACTIVE.get(short)
    if module is not None:
        return module
    if short not in TWIN_MODULES:
        raise KeyError(short)
    if IMPLEMENTATION == "pure":
        module = importlib.import_module(TWIN_MODULES[short])
    elif short in LAZY_TWINS:
        # the compiled one when it was built, else the pure one
        found = twins(short)
        module = found.get("compiled", found["pure"])
    else:
        try:
            module = importlib.import_module(f"serf._fast.{short}")
        except ImportError as exc:  # installed but not importable (a broken build)
            if _flag("SERF_REQUIRE_EXTENSIONS"):
                raise ImportError(
                    f"SERF_REQUIRE_EXTENSIONS is set but the compiled module serf._fast.{short} "
                    f"cannot be imported ({exc}); reinstall with a C compiler available"
                ) from exc
            module = importlib.import_module(TWIN_MODULES[short])
    _ACTIVE[short] = module
    return module


def __getattr__(name: str) -> ModuleType:
    """``_speedups.lpe`` and friends: the active twin, loaded on first use."""
    if name in TWIN_MODULES and name not in LAZY_TWINS:
        module = load(name)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
