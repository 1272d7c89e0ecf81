"""Skip reasons for the tests that compare a compiled twin with its pure twin."""

from __future__ import annotations

import importlib.util
import os

__all__ = ["only_pure_reason"]


def only_pure_reason(short: str) -> str:
    """Why :func:`serf._speedups.twins` gives only the pure twin of ``short`` in this run:
    the compiled one is disabled (``SERF_NO_EXTENSIONS=1``) or is not built."""
    module = f"serf._fast.{short}"
    if os.environ.get("SERF_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no"):
        built = importlib.util.find_spec(module) is not None
        state = "built but disabled" if built else "disabled (and not built)"
        return f"{module} is {state} in this run (SERF_NO_EXTENSIONS=1)"
    return f"{module} is not built (a pure-only install, or the C build failed)"
