"""free_port: ports for test agents that no other test or the README example will take."""

from __future__ import annotations

import os

import pytest

from serf.testing import gopeer


def _aim_at(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make free_port's next candidate be ``port`` (its worker slice and walk offset)."""
    top = max(gopeer._ephemeral_floor(), gopeer._PORT_FLOOR + 1000)
    width = (top - gopeer._PORT_FLOOR) // 8
    index, offset = divmod(port - gopeer._PORT_FLOOR, width)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
    counter = (offset - os.getpid() * 7) % width
    monkeypatch.setattr(gopeer, "_next_port_offset", [counter])


@pytest.mark.parametrize("port", sorted(gopeer.RESERVED_PORTS))
def test_free_port_never_hands_out_the_readme_example_ports(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aim_at(port, monkeypatch)
    got = gopeer.free_port()
    assert got != port and got not in gopeer.RESERVED_PORTS


def test_free_port_walks_its_slice_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    _aim_at(12345, monkeypatch)
    first = gopeer.free_port()
    second = gopeer.free_port()
    assert first >= 12345 and second > first
