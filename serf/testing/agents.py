"""In-process agents with their RPC servers on loopback, and a raw RPC connection, for
tests that drive the agent through RPC (every wait bounded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from serf.agent.agent import Agent
from serf.agent.config import AgentConfig
from serf.agent.rpc_server import RpcServer
from serf.cli.rpc_client import RPCClient
from serf.wire.rpc import RpcDecoder, encode_rpc

__all__ = ["Node", "Raw", "cluster", "run", "until"]

T = TypeVar("T")


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
