"""The agent's signal handling (``serf.agent.runner._wait``) in-process, with a stand-in agent.

The graceful leave on SIGINT ends as soon as the leave does (Go's agent selects on the leave,
a second signal and its 3 s limit); a second signal during the leave ends it at once with
status 1. The limit is raised to an hour here, so a wait that runs to the limit hangs the
test until its bounded ``wait_for`` fails instead of passing slowly.
"""

from __future__ import annotations

import asyncio
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from serf.agent import runner

HANG_GUARD = 30.0  # far above any real leave, far below the raised limit


class StandInAgent:
    """What ``_wait`` uses of an Agent: ``leave()``, ``shutdown_event``, ``exit_code``."""

    def __init__(self, leave_done: asyncio.Event) -> None:
        self.shutdown_event = asyncio.Event()
        self.exit_code = 0
        self.leave_done = leave_done
        self.leaves = 0

    async def leave(self) -> None:
        self.leaves += 1
        await self.leave_done.wait()


def _cfg(**kw: Any) -> Any:
    return SimpleNamespace(
        skip_leave_on_interrupt=kw.get("skip_leave_on_interrupt", False),
        leave_on_terminate=kw.get("leave_on_terminate", False),
    )


@pytest.fixture(autouse=True)
def long_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "GRACEFUL_TIMEOUT", 3600.0)


def test_sigint_leave_returns_when_the_leave_ends() -> None:
    async def main() -> int:
        done = asyncio.Event()
        done.set()  # the leave completes at once
        agent = StandInAgent(done)
        signals: asyncio.Queue[int] = asyncio.Queue()
        signals.put_nowait(signal.SIGINT)
        code = await asyncio.wait_for(runner._wait(agent, _cfg(), [], signals), HANG_GUARD)  # type: ignore[arg-type]
        assert agent.leaves == 1
        return code

    assert asyncio.run(main()) == 0


def test_second_signal_during_leave_exits_1_at_once() -> None:
    async def main() -> int:
        agent = StandInAgent(asyncio.Event())  # a leave that never ends by itself
        signals: asyncio.Queue[int] = asyncio.Queue()
        signals.put_nowait(signal.SIGINT)
        waiting = asyncio.ensure_future(runner._wait(agent, _cfg(), [], signals))  # type: ignore[arg-type]
        while agent.leaves == 0:
            await asyncio.sleep(0)
        signals.put_nowait(signal.SIGINT)
        return await asyncio.wait_for(waiting, HANG_GUARD)

    assert asyncio.run(main()) == 1


def test_sigterm_without_leave_on_terminate_exits_1_without_leaving() -> None:
    async def main() -> tuple[int, int]:
        agent = StandInAgent(asyncio.Event())
        signals: asyncio.Queue[int] = asyncio.Queue()
        signals.put_nowait(signal.SIGTERM)
        code = await asyncio.wait_for(runner._wait(agent, _cfg(), [], signals), HANG_GUARD)  # type: ignore[arg-type]
        return code, agent.leaves

    assert asyncio.run(main()) == (1, 0)
