"""The Memberlist facade: lazy imports, user messages, join errors, events."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from serf.address import Address
from serf.config import local
from serf.memberlist import CompositeDelegate, NodeJoined
from serf.runtime.memberlist import JoinError, Memberlist
from serf.transport.base import StaticResolver

Arun = Callable[[Coroutine[Any, Any, Any], float], Any]
Poll = Callable[..., Awaitable[None]]


def test_core_imports_no_asyncio() -> None:
    code = (
        "import sys, serf.memberlist.core, serf.memberlist.state, serf.memberlist as m\n"
        "assert set(m.__all__) <= set(dir(m))\n"
        "[getattr(m, name) for name in m.__all__]\n"
        "assert 'asyncio' not in sys.modules, 'asyncio imported'\n"
        "assert not hasattr(m, 'Memberlist'), 'the sans-IO package names the runtime'\n"
    )
    subprocess.run([sys.executable, "-P", "-c", code], check=True, timeout=60)


class Inbox:
    """A delegate that records user messages."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def node_meta(self, limit: int) -> bytes:
        return b""

    def notify_msg(self, payload: bytes) -> None:
        self.got.append(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        return []

    def local_state(self, join: bool) -> bytes:
        return b""

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        pass


def _config(name: str, host: str) -> Any:
    return dataclasses.replace(local(name), bind_addr=host, bind_port=0)


def test_user_messages_events_and_join_errors(arun: Arun, poll: Poll) -> None:
    async def main() -> None:
        inbox = Inbox()
        a = await Memberlist.create(_config("a", "127.0.0.1"))
        b = await Memberlist.create(
            _config("b", "127.0.0.1"),
            delegate=CompositeDelegate(delegate=inbox),
            resolver=StaticResolver({"seed": [a.address]}),
        )
        events = a.events()
        try:
            assert await b.join(["seed", "nowhere"]) == 1  # partial success
            first = await asyncio.wait_for(events.__anext__(), 5)
            assert isinstance(first, NodeJoined)
            await a.send_reliable(b.address, b"over a stream")
            a.send_best_effort(b.address, b"in a packet")
            await poll(lambda: sorted(inbox.got) == [b"in a packet", b"over a stream"], 5)
            with pytest.raises(JoinError) as err:
                await b.join(["nowhere"])
            assert "nowhere" in str(err.value)
            probe = await Memberlist.create(_config("c", "127.0.0.1"))
            gone = probe.address
            await probe.shutdown()
            with pytest.raises(JoinError):
                await b.join([gone])
            with pytest.raises(ConnectionError):
                await a.send_reliable(Address(gone.host, gone.port), b"x")
        finally:
            await a.shutdown()
            await b.shutdown()
        assert [e async for e in events] == []
        with pytest.raises(RuntimeError):
            a.send_best_effort(b.address, b"after shutdown")

    arun(main(), 30)
