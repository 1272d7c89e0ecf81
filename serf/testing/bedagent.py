"""``serf agent`` processes (ours or Go serf's) on the hosts of a :class:`NetBed`.

How this works: :class:`BedAgent` starts ``serf agent -node <name>`` inside one bed host with
an event handler for ``user`` and ``query`` events, and nothing else unless asked: no
``-bind``, no ``-advertise``, so the agent picks its address from the host's default route as
it would on a real machine. The handler appends ``<event name> <lamport time>`` to
``events.log`` for each user event and answers each query with the node's name. The agent's
RPC listens on the host's own ``127.0.0.1:7373``; :meth:`BedAgent.members` and friends reach it
through a socket opened inside the host's namespace, one short RPC connection per call (these
methods block; call them from plain test code).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from serf.cli.rpc_client import Member, RPCClient
from serf.testing.netbed import Host, NetBed, NetBedError

__all__ = ["AgentKind", "BedAgent", "pyserf_command", "wait_until"]

AgentKind = Literal["pyserf", "go"]
T = TypeVar("T")
RPC_PORT = 7373
SERF_PORT = 7946

_HANDLER = """#!/bin/sh
# a user event: one line per delivery; a query: the response is this node's name
cat > /dev/null
case "$SERF_EVENT" in
  user) echo "$SERF_USER_EVENT $SERF_USER_LTIME" >> "{log}" ;;
  query) printf '%s' "$SERF_SELF_NAME" ;;
esac
"""


def pyserf_command() -> list[str]:
    """How to run our ``serf`` CLI: the ``serf`` script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("serf")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-P", "-m", "serf.cli.main"]


def wait_until(
    cond: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    bed: NetBed | None = None,
    interval: float = 0.25,
) -> float:
    """Poll ``cond`` until true; the seconds it took. AssertionError after ``timeout``."""
    start = time.monotonic()
    while True:
        if bed is not None:
            bed.check()
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.1f} s: {what}")
        time.sleep(interval)


class BedAgent:
    """One ``serf agent`` in one bed host; ``kind`` is ``"pyserf"`` (ours) or ``"go"``.

    ``go_binary`` is the Go serf binary (see :func:`serf.testing.gopeer.go_serf_or_skip`).
    ``args`` are extra agent flags for every start (e.g. ``-snapshot=...``).
    """

    def __init__(
        self,
        host: Host,
        name: str,
        workdir: Path,
        *,
        kind: AgentKind = "pyserf",
        go_binary: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        if kind == "go" and go_binary is None:
            raise ValueError("a go agent needs go_binary")
        self.host = host
        self.name = name
        self.kind: AgentKind = kind
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_log = self.dir / "events.log"
        self.log_path = self.dir / "agent.log"
        self.handler = self.dir / "handler.sh"
        self.handler.write_text(_HANDLER.format(log=self.events_log))
        self.handler.chmod(0o755)
        self._command = [str(go_binary)] if kind == "go" else pyserf_command()
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- process ------------------------------------------------------------------------

    def start(self, *more: str, ready_timeout: float = 60.0) -> None:
        """Start the agent and wait until its RPC answers (or fail with its log)."""
        argv = [
            *self._command,
            "agent",
            f"-node={self.name}",
            f"-event-handler=user,query={self.handler}",
            *self.args,
            *more,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        wait_until(
            lambda: not self.running or self._answers(),
            ready_timeout,
            f"{self.name}'s RPC on {self.host.name}",
        )
        if not self.running:
            raise NetBedError(f"{self.name} exited at start:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        """Whether the agent process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the agent (and its handlers) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the agent's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- RPC ----------------------------------------------------------------------------

    def _rpc(self, fn: Callable[[RPCClient], Awaitable[T]], timeout: float = 10.0) -> T:
        async def call() -> T:
            sock = self.host.connect("127.0.0.1", RPC_PORT, timeout=timeout)
            client = await RPCClient.connect(sock=sock, timeout=timeout)
            try:
                return await asyncio.wait_for(fn(client), timeout)
            finally:
                await client.close()

        return asyncio.run(call())

    def _answers(self) -> bool:
        try:
            self._rpc(lambda c: c.members(), timeout=2.0)
        except (TimeoutError, OSError):
            return False
        return True

    def member_list(self) -> list[Member]:
        """``members`` as the agent reports them ([] when it does not answer)."""
        try:
            return self._rpc(lambda c: c.members())
        except (TimeoutError, OSError):
            return []

    def members(self) -> dict[str, str]:
        """``{name: status}`` as this agent sees the cluster ({} when it does not answer)."""
        return {m.name: m.status for m in self.member_list()}

    def join(self, *addrs: str) -> int:
        """Join ``addrs`` (``host:port``); the number joined."""
        return self._rpc(lambda c: c.join(list(addrs)))

    def user_event(self, name: str, payload: bytes = b"", coalesce: bool = False) -> None:
        """Send a user event from this agent."""
        self._rpc(lambda c: c.user_event(name, payload, coalesce))

    def query(
        self, name: str, payload: bytes = b"", timeout: float = 10.0
    ) -> tuple[set[str], dict[str, bytes]]:
        """Run a query with acks; ``(nodes that acked, {node: response})`` once it is done."""

        async def run(client: RPCClient) -> tuple[set[str], dict[str, bytes]]:
            acks: set[str] = set()
            responses: dict[str, bytes] = {}
            sub = await client.query(name, payload, request_ack=True, timeout=timeout)
            async for record in sub:
                if record.type == "ack":
                    acks.add(record.from_)
                elif record.type == "response":
                    responses[record.from_] = record.payload or b""
            return acks, responses

        return self._rpc(run, timeout=timeout + 10.0)

    # -- handler output -----------------------------------------------------------------

    def events(self) -> list[tuple[str, int]]:
        """Every user event the handler was run for, in order: ``(name, lamport time)``."""
        try:
            text = self.events_log.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            name, _, ltime = line.rpartition(" ")
            if name and ltime.isdigit():
                out.append((name, int(ltime)))
        return out

    def __repr__(self) -> str:
        return f"BedAgent({self.name}, {self.kind}, {self.host.name})"
