"""QUIC under churn (a bounded soak): nodes crash (no CONNECTION_CLOSE goes out) and come back
on the same address, and after each restart a key rotation must be answered by every node.

Before the fix, the survivors kept sending over their connection to the crashed process, and
the restarted node never got their messages until QUIC's idle timeout (30 s): it missed
key-rotation queries and was suspected. Now a restarted node dials whoever sends it packets
for connections it does not know, the senders switch to that connection, and a connection
whose peer stops acknowledging is replaced. aioquic's per-connection noise (a WARNING per
failed handshake) is logged at DEBUG and counted instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from serf import MemberStatus, Serf, SerfConfig
from serf.config import loopback
from serf.testing import eventually
from serf.wire.keyring import Keyring

N = 4
RESTARTS = 3
KEYS = [bytes([i]) * 16 for i in range(1, 2 + RESTARTS)]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(name: str, port: int) -> SerfConfig:
    ml = loopback(
        name,
        transport="quic",
        bind_port=port,
        probe_interval=0.4,
        probe_timeout=0.2,
        suspicion_mult=2,
        gossip_interval=0.05,
    )
    return SerfConfig(node_name=name, memberlist=ml, reap_interval=1.0)


async def _crash(node: Serf) -> None:
    """Stop ``node`` as a killed process would: no CONNECTION_CLOSE, no leave."""
    transport = node._driver.transport  # type: ignore[union-attr]
    for conn in list(transport._connections):  # type: ignore[attr-defined]
        conn.dead = True
    await node.shutdown()


@pytest.mark.slow
def test_crash_restarts_on_quic_keep_every_node_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        ports = [_free_udp_port() for _ in range(N)]
        nodes = [
            await Serf.create(_config(f"n{i}", ports[i]), keyring=Keyring([KEYS[0]]))
            for i in range(N)
        ]
        try:
            for node in nodes[1:]:
                await node.join([f"127.0.0.1:{ports[0]}"])
            await eventually(lambda: all(len(n.members(MemberStatus.ALIVE)) == N for n in nodes))
            primary = KEYS[0]
            for r in range(RESTARTS):
                victim = 1 + r % (N - 1)
                await _crash(nodes[victim])
                nodes[victim] = await Serf.create(
                    _config(f"n{victim}", ports[victim]), keyring=Keyring([primary])
                )
                await nodes[victim].join([f"127.0.0.1:{ports[0]}"])
                await eventually(
                    lambda: all(len(n.members(MemberStatus.ALIVE)) == N for n in nodes),
                    what="everyone alive after the restart",
                )
                km = nodes[0].key_manager
                new = KEYS[r + 1]
                for step in (km.install_key(new), km.use_key(new), km.remove_key(primary)):
                    answer = await step
                    assert (answer.num_resp, answer.num_err) == (N, 0), (r, answer)
                primary = new
            listed = await nodes[0].key_manager.list_keys()
            assert listed.num_resp == N and len(listed.keys) == 1
        finally:
            for node in nodes:
                await node.shutdown()

    asyncio.run(asyncio.wait_for(main(), 90))
    noisy = [r for r in caplog.records if r.name == "quic" and r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]
