"""Helpers for the runtime tests: run a coroutine on a fresh loop, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
E = TypeVar("E")

try:
    import uvloop

    LOOPS = ["asyncio", "uvloop"]
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]
    LOOPS = ["asyncio"]


def run(coro: Coroutine[Any, Any, T], timeout: float, loop: str = "uvloop") -> T:
    """Run ``coro`` on a new loop (uvloop when installed and asked for) under ``timeout``."""
    factory = uvloop.new_event_loop if (loop == "uvloop" and uvloop is not None) else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(asyncio.wait_for(coro, timeout))


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true; TimeoutError (with no retry) after ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > end:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def collect(
    events: AsyncIterator[E], seconds: float, want: Callable[[E], bool] = lambda _: True
) -> list[E]:
    """The events of ``events`` that ``want`` keeps during ``seconds`` (of the loop's clock)."""
    got: list[E] = []

    async def read() -> None:
        async for event in events:
            if want(event):
                got.append(event)

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        pass
    return got


@pytest.fixture(params=LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per available loop implementation."""
    return str(request.param)


@pytest.fixture
def arun(loop_name: str) -> Callable[[Coroutine[Any, Any, Any], float], Any]:
    """``arun(coro, timeout)``: :func:`run` on the loop of this parametrisation."""

    def _run(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return run(coro, timeout, loop_name)

    return _run


@pytest.fixture
def poll() -> Callable[..., Awaitable[None]]:
    """The :func:`eventually` helper."""
    return eventually


@pytest.fixture
def arun_uv() -> Callable[[Coroutine[Any, Any, Any], float], Any]:
    """``arun_uv(coro, timeout)``: :func:`run` on uvloop (when installed) only."""

    def _run(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return run(coro, timeout, "uvloop")

    return _run
