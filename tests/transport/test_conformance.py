"""Every transport passes the one conformance suite (serf.testing.conformance)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from serf.testing.certs import TestCA
from serf.testing.conformance import (
    CHECKS,
    MemoryFactory,
    NetFactory,
    TransportFactory,
    ipv6_loopback_available,
    run_check,
)

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None

FACTORIES: dict[str, Callable[[], TransportFactory]] = {
    "memory": MemoryFactory,
    "net-ipv4": lambda: NetFactory("127.0.0.1"),
    "net-ipv6": lambda: NetFactory("::1"),
    "net-tls": lambda: NetFactory("127.0.0.1", tls=TestCA().tls()),
}

LOOPS: dict[str, LoopFactory] = {"asyncio": None}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
@pytest.mark.parametrize("factory_name", sorted(FACTORIES))
@pytest.mark.parametrize("check_name", sorted(CHECKS))
def test_conformance(check_name: str, factory_name: str, loop_name: str) -> None:
    if factory_name == "net-ipv6" and not ipv6_loopback_available():
        pytest.skip("::1 cannot be bound here")
    run_check(CHECKS[check_name], FACTORIES[factory_name], 60.0, LOOPS[loop_name])
