"""Shared helpers for the adversarial suite: attacks that could hang run in a child."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

#: A watchdog, not a speed bound: the fixed code finishes in well under a second; the bug
#: it guards against runs for hours, so a child still busy after this long has hung.
HANG_WATCHDOG = 60.0


def _run_or_hang(code: str) -> str:
    """Run ``code`` in a child interpreter; its stdout, or AssertionError if it hung."""
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-c", code],
            capture_output=True,
            text=True,
            timeout=HANG_WATCHDOG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hung: still running after {HANG_WATCHDOG:.0f} s") from None
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def run_or_hang() -> Callable[[str], str]:
    """Run code in a child interpreter; its stdout, or AssertionError if it hung."""
    return _run_or_hang
