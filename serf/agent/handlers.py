"""Event handler scripts: an asyncio runner (reference section 4.3).

How this works: the spec syntax (``member-join,user:deploy=/usr/bin/handler``) and the events
handlers see are in :mod:`serf.agent.handler_spec` (no asyncio: the configuration checks
handlers before the agent imports its event loop), re-exported here.

:class:`EventHandlerRunner` takes events the agent layer maps from the library's
(:class:`MemberEventInfo`, :class:`UserEventInfo`, :class:`QueryInfo`), queues them and, in its
own task, runs every matching script one after another (as Go's single event loop does) with
``/bin/sh -c script``: the agent's environment plus ``SERF_EVENT``, ``SERF_SELF_NAME``,
``SERF_SELF_ROLE``, ``SERF_TAG_*`` and the user/query name and Lamport time; stdin gets member
lines or the payload. stdout and stderr are merged, and only the last 8 KiB kept. A script
still running after ``warn_after`` seconds is logged; after ``timeout`` seconds its process
group is killed (Go has no such timeout: an addition). For a query, a script that exits 0 with
output gives the response, handed to the ``respond`` callback. ``submit`` never blocks. Each
run is timed as Go's agent times it: a sample ``agent.invoke.<script>`` in milliseconds (Go's
``MeasureSince`` timer) into ``metrics``, a run that failed to start included.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from serf.agent.children import reset_signals
from serf.agent.handler_spec import (
    EVENT_TYPES,
    Event,
    EventFilter,
    EventScript,
    HandlerSpecError,
    MemberEventInfo,
    MemberInfo,
    QueryInfo,
    UserEventInfo,
    member_event_type,
    parse_event_filter,
    parse_event_script,
    parse_handlers,
)
from serf.telemetry import Labels

__all__ = [
    "EVENT_TYPES",
    "OUTPUT_LIMIT",
    "Event",
    "EventFilter",
    "EventHandlerRunner",
    "EventScript",
    "HandlerResult",
    "HandlerSpecError",
    "MemberEventInfo",
    "MemberInfo",
    "QueryInfo",
    "UserEventInfo",
    "build_env",
    "build_stdin",
    "member_event_type",
    "parse_event_filter",
    "parse_event_script",
    "parse_handlers",
    "run_script",
]

log = logging.getLogger("serf.agent.handlers")

#: How much merged stdout+stderr a script run keeps (the last bytes), as Go's ring buffer.
OUTPUT_LIMIT = 8 * 1024


class _Timing(Protocol):
    """Where the runner records each script's run time (a :class:`serf.metrics.Metrics`)."""

    def add_sample(self, key: Sequence[str], value: float, labels: Labels = ()) -> None:
        """One observation, in milliseconds."""


def _event_type(event: Event) -> str:
    if isinstance(event, MemberEventInfo):
        return event.type
    return "user" if isinstance(event, UserEventInfo) else "query"


_NOT_ENV = re.compile(r"[^A-Z0-9_]")


def build_env(
    event: Event, self_name: str, self_tags: Mapping[str, str], base: Mapping[str, str]
) -> dict[str, str]:
    """The script environment: ``base`` plus the SERF_* variables of reference 4.3."""
    env = dict(base)
    env["SERF_EVENT"] = _event_type(event)
    env["SERF_SELF_NAME"] = self_name
    env["SERF_SELF_ROLE"] = self_tags.get("role", "")
    for name, value in self_tags.items():
        env["SERF_TAG_" + _NOT_ENV.sub("_", name.upper())] = value
    if isinstance(event, UserEventInfo):
        env["SERF_USER_EVENT"] = event.name
        env["SERF_USER_LTIME"] = str(event.ltime)
    elif isinstance(event, QueryInfo):
        env["SERF_QUERY_NAME"] = event.name
        env["SERF_QUERY_LTIME"] = str(event.ltime)
    return env


def _clean(text: str) -> str:
    return text.replace("\t", "\\t").replace("\n", "\\n")


def build_stdin(event: Event) -> bytes:
    """Member lines ``name\\taddr\\trole\\ttags`` or the payload with a trailing newline."""
    if isinstance(event, MemberEventInfo):
        lines = []
        for m in event.members:
            tags = ",".join(f"{k}={v}" for k, v in m.tags.items())
            role = m.tags.get("role", "")
            lines.append(f"{_clean(m.name)}\t{m.addr}\t{_clean(role)}\t{_clean(tags)}\n")
        return "".join(lines).encode("utf-8", "surrogateescape")  # names are bytes in Go
    payload = bytes(event.payload)
    if payload and not payload.endswith(b"\n"):
        payload += b"\n"
    return payload


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """One script run: exit status (None if killed by the timeout), last output, timing."""

    script: str
    exit_code: int | None
    output: bytes
    timed_out: bool
    duration: float

    @property
    def response(self) -> bytes | None:
        """What a query gets: the output when the script exited 0 and printed something."""
        return self.output if self.exit_code == 0 and self.output else None


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            proc.stdin.write(data)
            await proc.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.close()


async def _collect(proc: asyncio.subprocess.Process) -> bytes:
    assert proc.stdout is not None
    buf = bytearray()
    while chunk := await proc.stdout.read(65536):
        buf += chunk
        if len(buf) > OUTPUT_LIMIT:
            del buf[:-OUTPUT_LIMIT]
    return bytes(buf)


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def run_script(
    script: str,
    env: Mapping[str, str],
    stdin: bytes,
    *,
    timeout: float | None = 60.0,
    warn_after: float = 1.0,
) -> HandlerResult:
    """Run ``/bin/sh -c script`` once; output merged and capped; killed after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,  # its own process group, so a timeout kills its children too
        preexec_fn=reset_signals,  # not the agent's ignored SIGINT/SIGQUIT (`serf agent &`)
    )
    slow = f"{warn_after:g}s"  # Go prints the duration as "1s"
    warn = loop.call_later(
        warn_after,
        lambda: log.warning("agent: Script '%s' slow, execution exceeding %s", script, slow),
    )
    feeder = asyncio.create_task(_feed(proc, stdin))
    collector = asyncio.create_task(_collect(proc))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout)
        except TimeoutError:
            timed_out = True
            log.error("agent: Script '%s' killed after %ss", script, timeout)
            _kill(proc)
            await proc.wait()
        try:
            output = await asyncio.wait_for(collector, 1.0)
        except TimeoutError:  # a grandchild still holds the pipe open
            _kill(proc)
            output = b""
    except asyncio.CancelledError:
        _kill(proc)
        raise
    finally:
        warn.cancel()
        feeder.cancel()
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder
    code = None if timed_out else proc.returncode
    duration = loop.time() - start
    event_type = env.get("SERF_EVENT", "")
    log.debug(
        "agent: Event '%s' script output: %s",
        event_type,
        output.decode("utf-8", "surrogateescape"),
    )
    return HandlerResult(script, code, output, timed_out, duration)


RespondCallback = Callable[[QueryInfo, bytes], Awaitable[None] | None]


class EventHandlerRunner:
    """Runs the matching scripts for each submitted event, in order, in its own task."""

    def __init__(
        self,
        scripts: Sequence[EventScript],
        *,
        self_name: str,
        self_tags: Callable[[], Mapping[str, str]] | Mapping[str, str] | None = None,
        respond: RespondCallback | None = None,
        timeout: float | None = 60.0,
        warn_after: float = 1.0,
        base_env: Mapping[str, str] | None = None,
        queue_size: int = 1024,
        metrics: _Timing | None = None,
    ) -> None:
        self.scripts = list(scripts)
        self.self_name = self_name
        self._tags = self_tags
        self.respond = respond
        self.timeout = timeout
        self.warn_after = warn_after
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.metrics = metrics
        self._queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None

    def tags(self) -> Mapping[str, str]:
        """The local node's current tags."""
        if self._tags is None:
            return {}
        return dict(self._tags() if callable(self._tags) else self._tags)

    def submit(self, event: Event) -> bool:
        """Queue an event without waiting; False (and a log line) when the queue is full."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="serf-event-handlers")
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("agent: event handler queue full, dropping %s", _event_type(event))
            return False
        return True

    async def handle(self, event: Event) -> list[HandlerResult]:
        """Run every script matching ``event``, one after another; their results."""
        results = []
        tags = self.tags()
        for script in self.scripts:
            if not script.filter.matches(event):
                continue
            env = build_env(event, self.self_name, tags, self.base_env)
            start = time.monotonic()
            try:
                result = await run_script(
                    script.script,
                    env,
                    build_stdin(event),
                    timeout=self.timeout,
                    warn_after=self.warn_after,
                )
            except OSError as exc:
                log.error("agent: Error invoking script '%s': %s", script.script, exc)
                continue
            finally:  # Go's agent times every run, a failed start too: agent.invoke.<script>
                if self.metrics is not None:
                    elapsed_ms = (time.monotonic() - start) * 1000.0
                    self.metrics.add_sample(("agent", "invoke", script.script), elapsed_ms)
            results.append(result)
            if result.exit_code not in (0, None):
                log.error(
                    "agent: Error invoking script '%s': exit status %d",
                    script.script,
                    result.exit_code,
                )
            response = result.response
            if isinstance(event, QueryInfo) and self.respond is not None and response is not None:
                outcome = self.respond(event, response)
                if inspect.isawaitable(outcome):
                    await outcome
        return results

    async def _loop(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.handle(event)
            except Exception:  # a handler failure must not stop later events
                log.exception("agent: event handler failed")
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every submitted event has been handled."""
        await self._queue.join()

    async def aclose(self) -> None:
        """Stop the runner task (a running script is killed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
