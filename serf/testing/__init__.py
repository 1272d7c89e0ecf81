"""Test helpers: the test kit for applications (:func:`cluster`, :func:`eventually`,
:class:`VirtualTimeLoop`, :func:`run_virtual`), and the project's own simulator, conformance
suites, Go peers and multi-host test bed in the submodules.

The kit's names are imported lazily, so that importing a sans-IO helper such as
``serf.testing.sim`` pulls in no asyncio. See docs/testing.md, "Test kit".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf._lazy import lazy_exports

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


if not TYPE_CHECKING:  # hidden from type checkers, so an unknown name is an error there
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
