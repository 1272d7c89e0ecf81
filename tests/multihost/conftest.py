"""Shared pieces of the multi-host tests: every one needs root and network namespaces."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serf.testing.bedagent import BedAgent
from serf.testing.netbed import Host, netbed_or_skip


@pytest.fixture(autouse=True)
def _need_bed() -> None:
    netbed_or_skip()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., BedAgent]]:
    """Make :class:`BedAgent`s in ``tmp_path``; every one is killed at the end.

    Tests with agents run in the compiled CI run only: they exercise processes and the
    network, not the twins, and a second run would double their minutes.
    """
    if os.environ.get("SERF_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.skip("multi-host agent tests run in the compiled run only (SERF_NO_EXTENSIONS)")
    made: list[BedAgent] = []

    def make(host: Host, name: str, **kwargs: Any) -> BedAgent:
        agent = BedAgent(host, name, tmp_path, **kwargs)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.kill()
