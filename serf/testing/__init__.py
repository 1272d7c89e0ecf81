"""Test helpers: the test kit for applications (:func:`cluster`, :func:`eventually`,
:class:`VirtualTimeLoop`, :func:`run_virtual`), and the project's own simulator, conformance
suites, Go peers and multi-host test bed in the submodules.

The kit's names are imported lazily, so that importing a sans-IO helper such as
``serf.testing.sim`` pulls in no asyncio. See docs/testing.md, "Test kit".
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serf.testing.kit import Cluster, cluster, eventually, memory_address
    from serf.testing.virtual_time import VirtualTimeLoop, run_virtual

_LAZY: dict[str, tuple[str, str]] = {
    "Cluster": ("serf.testing.kit", "Cluster"),
    "cluster": ("serf.testing.kit", "cluster"),
    "eventually": ("serf.testing.kit", "eventually"),
    "memory_address": ("serf.testing.kit", "memory_address"),
    "VirtualTimeLoop": ("serf.testing.virtual_time", "VirtualTimeLoop"),
    "run_virtual": ("serf.testing.virtual_time", "run_virtual"),
}

__all__ = ["Cluster", "VirtualTimeLoop", "cluster", "eventually", "memory_address", "run_virtual"]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        try:
            module, attr = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'serf.testing' has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
