"""Fuzz target per RPC command body (issue 9 item 7): each command gets bodies of every shape
(its own keys holding values of every msgpack type, odd bytes, huge and negative numbers,
nested containers, or no map at all) from a seeded generator. After each one the same
connection (or, once the server closed it, a new one) must answer a ``members`` request:
the server replies or closes, and never hangs, crashes or stops serving. ``join`` and
``leave`` are left out (one would send packets to fuzzed addresses, the other ends the
agent). ``SERF_FUZZ_SECONDS=n`` runs each command for n seconds instead of CASES bodies."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from serf.agent.rpc_server import COMMANDS as RPC_COMMANDS
from serf.testing.agents import Raw, cluster, run
from serf.testing.fuzz import fuzz_budget

CASES = 60
ODD = b"\x9aA".decode("utf-8", "surrogateescape")

KEYS: dict[str, tuple[str, ...]] = {
    "handshake": ("Version",),
    "auth": ("AuthKey",),
    "event": ("Name", "Payload", "Coalesce"),
    "force-leave": ("Node", "Prune"),
    "members-filtered": ("Tags", "Status", "Name"),
    "tags": ("Tags", "DeleteTags"),
    "stream": ("Type",),
    "monitor": ("LogLevel",),
    "stop": ("Stop",),
    "query": (
        "FilterNodes",
        "FilterTags",
        "RequestAck",
        "RelayFactor",
        "Timeout",
        "Name",
        "Payload",
    ),
    "respond": ("ID", "Payload"),
    "install-key": ("Key",),
    "use-key": ("Key",),
    "remove-key": ("Key",),
    "get-coordinate": ("Node",),
}
_WITH_BODY = {name for name, command in RPC_COMMANDS.items() if command.has_body}
COMMANDS = sorted((_WITH_BODY - {"join", "leave"}) | {"members", "list-keys", "stats"})
STRINGS = ("", "*", "n0", "user:x", "(.*.*)*Z", "(", ODD, "x" * 300, "AAAAAAAAAAAAAAAAAAAAAA==")
INTS = (0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1)


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 2 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice(INTS)
    if kind == 3:
        return rng.choice((0.5, float("nan"), float("inf"), -1e300))
    if kind == 4:
        return rng.choice(STRINGS)
    if kind == 5:
        return rng.randbytes(rng.randint(0, 40))
    if kind == 6:
        return rng.choice(STRINGS).encode("utf-8", "surrogateescape")
    if kind == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == 8:
        return {rng.choice(STRINGS): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return {rng.choice((1, -1, b"\xff", None, True, 0.5, ODD)): _value(rng, depth + 1)}


def _body(rng: random.Random, command: str) -> Any:
    if rng.random() < 0.15:
        return _value(rng)
    keys = KEYS.get(command, ("X",))
    return {k: _value(rng) for k in keys if rng.random() < 0.8}


async def _open(addr: str) -> Raw:
    raw = await Raw.open(addr)
    await raw.send({"Command": "handshake", "Seq": 0}, {"Version": 1})
    assert (await raw.recv())["Error"] == ""
    return raw


async def _still_serves(raw: Raw, seq: int) -> bool:
    """Ask for members; True when answered, False when the server closed the connection."""
    try:
        await raw.send({"Command": "members", "Seq": seq})
        while True:
            obj = await raw.recv(timeout=10.0)
            if isinstance(obj, dict) and obj.get("Seq") == seq and "Error" in obj:
                if obj["Error"] == "":
                    body = await raw.recv(timeout=10.0)
                    if isinstance(body, dict) and "Members" in body:
                        return True
                    continue  # a stream record that looked like our header
                return True  # an error reply is an answer too
    except (EOFError, ConnectionError):
        return False


@pytest.mark.slow
@pytest.mark.integration
def test_every_command_survives_hostile_bodies() -> None:
    budget = fuzz_budget()

    async def body() -> None:
        async with cluster(1) as (node,):
            rng = random.Random(9)
            raw = await _open(node.addr)
            seq = 1
            for command in COMMANDS:
                end = time.monotonic() + budget if budget is not None else None
                done = 0
                while done < CASES if end is None else time.monotonic() < end:
                    seq += 2
                    objs: list[Any] = [{"Command": command, "Seq": seq}]
                    if command in _WITH_BODY:
                        objs.append(_body(rng, command))
                    try:
                        raw.writer.write(b"".join(_pack(o) for o in objs))
                        await raw.writer.drain()
                    except ConnectionError:
                        pass
                    if not await _still_serves(raw, seq + 1):
                        raw.close()
                        raw = await _open(node.addr)
                    done += 1
            raw.close()
            async with await node.client() as c:  # and a well-behaved client still works
                assert [m.name for m in await c.members()] == ["n0"]

    run(body(), timeout=600)


def _pack(obj: Any) -> bytes:
    import msgpack

    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogateescape")
    except (TypeError, ValueError, OverflowError):
        packed = msgpack.packb(None)
    return packed


def test_generator_covers_every_command() -> None:
    assert set(COMMANDS) >= set(KEYS) and "join" not in COMMANDS
    rng = random.Random(0)
    shapes = {type(_body(rng, "query")).__name__ for _ in range(200)}
    assert {"dict", "list", "bytes"} <= shapes
    assert asyncio.iscoroutinefunction(_still_serves)
