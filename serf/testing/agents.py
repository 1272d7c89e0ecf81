"""Agents for tests, every wait bounded: in-process agents with their RPC servers on loopback
and a raw RPC connection (:class:`Node`, :func:`cluster`, :class:`Raw`), and ``serf agent``
subprocesses driven through our ``serf`` CLI (:class:`AgentProc`, :func:`serf_cli`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from serf.agent.agent import Agent
from serf.agent.config import AgentConfig
from serf.agent.rpc_server import RpcServer
from serf.cli.rpc_client import RPCClient
from serf.testing.gopeer import free_port
from serf.wire.rpc import RpcDecoder, encode_rpc

__all__ = ["SERF", "AgentProc", "Node", "Raw", "cluster", "run", "serf_cli", "until", "wait_for"]

T = TypeVar("T")

#: our ``serf`` CLI as a command line (this interpreter, no script on PATH needed)
SERF = [sys.executable, "-P", "-m", "serf.cli.main"]


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run a test coroutine with an overall bound."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


class Node:
    """An in-process agent with its RPC server."""

    def __init__(self, agent: Agent, rpc: RpcServer) -> None:
        self.agent = agent
        self.rpc = rpc

    @property
    def addr(self) -> str:
        assert self.rpc.bound is not None
        return str(self.rpc.bound)

    @property
    def gossip(self) -> str:
        return str(self.agent.serf.local_member.address)

    async def client(self, auth: str = "") -> RPCClient:
        return await RPCClient.connect(self.addr, auth, timeout=5)


@contextlib.asynccontextmanager
async def cluster(
    n: int = 1, *, names: Sequence[str] = (), **overrides: Any
) -> AsyncIterator[list[Node]]:
    """``n`` agents on loopback (named ``names``, else n0, n1...), joined to the first."""
    nodes: list[Node] = []
    try:
        for i in range(n):
            settings: dict[str, Any] = {
                "node_name": names[i] if names else f"n{i}",
                "bind": "127.0.0.1:0",
                "rpc_addr": "127.0.0.1:0",
                "profile": "local",
            }
            cfg = AgentConfig(**{**settings, **overrides})
            agent = Agent(cfg)
            await agent.start()
            rpc = RpcServer(agent, cfg.rpc_addr, cfg.rpc_auth)
            await rpc.start()
            nodes.append(Node(agent, rpc))
        for node in nodes[1:]:
            await node.agent.join([nodes[0].gossip], False)
        if n > 1:
            await until(lambda: all(len(x.agent.serf.members()) == n for x in nodes))
        yield nodes
    finally:
        for node in nodes:
            await node.rpc.stop()
            await node.agent.shutdown()


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Raw:
    """A raw RPC connection: send objects, read objects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.dec = RpcDecoder()

    @classmethod
    async def open(cls, addr: str) -> Raw:
        host, port = addr.rsplit(":", 1)
        r, w = await asyncio.open_connection(host, int(port))
        return cls(r, w)

    async def send(self, *objs: Any) -> None:
        self.writer.write(b"".join(encode_rpc(o) for o in objs))
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> Any:
        while True:
            for obj in self.dec:
                return obj
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.dec.feed(data)

    async def closed(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                await self.recv(timeout)
        except (EOFError, ConnectionError):
            return True

    def close(self) -> None:
        self.writer.close()


def serf_cli(*args: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Our ``serf`` CLI, as a subprocess."""
    return subprocess.run(
        [*SERF, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_for(cond: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``cond`` every 0.2 s until it returns a true value, and return that value;
    AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class AgentProc:
    """One ``serf agent`` subprocess on loopback (free ports, ``-profile=local``, debug log
    in ``<workdir>/<name>/agent.log``), with ``extra`` flags."""

    def __init__(self, name: str, workdir: Path, *extra: str) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.rpc_port = free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "agent.log"

    @property
    def rpc(self) -> str:
        """The ``-rpc-addr`` flag that reaches this agent."""
        return f"-rpc-addr=127.0.0.1:{self.rpc_port}"

    @property
    def bind(self) -> str:
        """Its gossip address, to join."""
        return f"127.0.0.1:{self.port}"

    def start(self, *more: str) -> None:
        """Launch the agent and wait until its RPC answers; it must still be running then."""
        self.launch(*more)
        wait_for(
            lambda: self.exited() or serf_cli("members", self.rpc).returncode == 0,
            what=f"{self.name} RPC",
        )
        assert not self.exited(), self.log.read_text()

    def launch(self, *more: str) -> None:
        """Launch the agent (with ``more`` flags after the others) without waiting."""
        args = [
            *SERF,
            "agent",
            f"-node={self.name}",
            f"-bind={self.bind}",
            f"-rpc-addr=127.0.0.1:{self.rpc_port}",
            "-profile=local",
            "-log-level=debug",
            *self.extra,
            *more,
        ]
        with open(self.log, "ab") as fh:  # the child has its own copy
            self.proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)

    def exited(self) -> bool:
        """True once the launched agent has exited."""
        return self.proc is not None and self.proc.poll() is not None

    def members(self) -> dict[str, str]:
        """Member name -> status, as ``serf members`` reports them ({} if RPC fails)."""
        out = serf_cli("members", self.rpc, "-format=json")
        if out.returncode != 0:
            return {}
        return {m["name"]: m["status"] for m in json.loads(out.stdout)["members"]}

    def signal(self, sig: int) -> int:
        """Send ``sig`` and wait (at most 15 s) for the exit status."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=15)

    def stop(self) -> None:
        """SIGTERM (no leave, as a kill: leave_on_terminate is off by default, but the agent
        exits through its own path, so a coverage run keeps its data); SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
