"""The skip reason of the twin-comparing tests says why only the pure twin is there."""

from __future__ import annotations

import importlib.util

import pytest

from serf.testing.twins import only_pure_reason


def test_disabled_is_not_reported_as_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERF_NO_EXTENSIONS", "1")
    built = importlib.util.find_spec("serf._fast.lzw") is not None
    state = "built but disabled" if built else "disabled (and not built)"
    expected = f"serf._fast.lzw is {state} in this run (SERF_NO_EXTENSIONS=1)"
    assert only_pure_reason("lzw") == expected


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_without_the_flag_the_twin_is_not_built(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SERF_NO_EXTENSIONS", value)
    assert only_pure_reason("lzw") == (
        "serf._fast.lzw is not built (a pure-only install, or the C build failed)"
    )
