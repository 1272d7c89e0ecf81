"""Key-list answers the asking node cannot use, in virtual time (issue 16 item 5).

A member's answer to ``_serf_list-keys`` that is of another message type, or that does not
decode, counts as that member's failure with Go's words (``Invalid key query response type:
[...]``, ``Failed to decode key query response: [...]``); the other members' keys still count.
A keyring too large for the response limit even with no key listed is not answered at all,
and the node says why in its log, as Go's does; a truncated answer is logged on both ends.

The bad answer is forged: as soon as ``n0`` gossips its list-keys query, a query response
claiming to come from ``n1`` is delivered to ``n0`` (``n1``'s real answer comes later and is a
duplicate, which a query ignores).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from serf.core import io as sio
from serf.memberlist import io as mio
from serf.telemetry import ERR, WARN, LogLine
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.testing.sim import SimNode
from serf.wire import get_codec
from serf.wire.framing import PacketFramer
from serf.wire.keyring import Keyring
from serf.wire.messages import (
    MessageKeyResponse,
    MessageQuery,
    MessageQueryResponse,
    MessageUserEvent,
    UserMsg,
)

KEYS = [bytes([i]) * 32 for i in range(1, 3)]
B64 = [base64.b64encode(k).decode() for k in KEYS]
NAMES = ("n0", "n1", "n2")


def _cluster(seed: int = 11, **changes: Any) -> SerfSimulation:
    sim = SerfSimulation(seed)
    for i, name in enumerate(NAMES):
        sim.add_serf(name, serf_sim_config(name, **changes), join=["n0"] if i else (),
                     keyring=Keyring(KEYS))  # fmt: skip
    sim.run_for(5.0)
    assert all(sim.serf(n).memberlist.num_members() == 3 for n in NAMES)
    return sim


def _framer(sim: SerfSimulation) -> PacketFramer:
    cfg = sim.serf_configs["n0"].memberlist
    assert cfg is not None
    return PacketFramer(cfg.codec, keyring=Keyring(KEYS), compression=False)


def _logs(sim: SerfSimulation) -> list[tuple[str, int, str]]:
    """Every log line of every node from now on, as (node, level, text)."""
    lines: list[tuple[str, int, str]] = []

    def watch(now: float, node: SimNode, eff: Any) -> None:
        if isinstance(eff, LogLine):
            lines.append((node.name, eff.level, eff.text))

    sim.observers.append(watch)
    return lines


def _forge_answer(sim: SerfSimulation, body: bytes) -> list[MessageQuery]:
    """Answer n0's first list-keys query with ``body``, in n1's name, as soon as it goes out."""
    framer = _framer(sim)
    codec = framer.codec
    seen: list[MessageQuery] = []

    def watch(now: float, node: SimNode, eff: Any) -> None:
        if node.name != "n0" or seen or not isinstance(eff, mio.SendPacket):
            return
        for msg in framer.decode_packet(eff.data).messages:
            if not isinstance(msg, UserMsg):
                continue
            query = codec.decode_serf(bytes(msg.payload))
            if isinstance(query, MessageQuery) and query.name == "_serf_list-keys":
                seen.append(query)
                forged = MessageQueryResponse(query.ltime, query.id, "n1", 0, body)
                data = framer.encode_message(UserMsg(codec.encode(forged)), crc=False)
                packet = mio.PacketReceived(data, sim.nodes["n1"].address)
                sim.at(now, lambda p=packet: sim.feed("n0", p))
                return

    sim.observers.append(watch)
    return seen


def _list(sim: SerfSimulation) -> mio.RequestCompleted:
    rid = sim.request("n0", lambda r: sio.KeyRequest(r, "list"))
    sim.run_for(10.0)
    return sim.serf_completed[rid]


def _bad_bodies() -> list[Any]:
    codec = get_codec("lpe")  # any codec: only the first byte (the serf type) is read
    event = codec.encode(MessageUserEvent(1, "not-keys", b"", False))
    listed = " ".join(map(str, event))
    undecodable = bytes([MessageKeyResponse.TYPE, 0xC1, 0xFF])
    return [
        pytest.param(b"", "Invalid key query response type: []", id="empty"),
        pytest.param(event, f"Invalid key query response type: [{listed}]", id="another-type"),
        pytest.param(
            undecodable, "Failed to decode key query response: [8 193 255]", id="undecodable"
        ),
    ]


@pytest.mark.parametrize(("body", "message"), _bad_bodies())
def test_an_unusable_key_list_answer_is_that_members_failure(body: bytes, message: str) -> None:
    sim = _cluster()
    seen = _forge_answer(sim, body)
    done = _list(sim)
    assert len(seen) == 1, "n0 never gossiped its list-keys query"
    resp = done.result
    assert isinstance(resp, sio.KeyResponse)
    assert done.error == "1/3 nodes reported failure"
    assert (resp.num_nodes, resp.num_resp, resp.num_err) == (3, 3, 1)
    assert resp.messages == {"n1": message}
    assert resp.not_answered == []
    # n1's real answer came later and was a duplicate: only n0's and n2's keys are counted
    assert resp.keys == {B64[0]: 2, B64[1]: 2}
    assert resp.primary_keys == {B64[0]: 2}


def test_a_good_answer_counts_every_member() -> None:
    """The baseline of the test above: nothing forged, nothing failed."""
    done = _list(_cluster())
    resp = done.result
    assert isinstance(resp, sio.KeyResponse) and done.error is None
    assert (resp.num_nodes, resp.num_resp, resp.num_err) == (3, 3, 0)
    assert resp.messages == {} and resp.keys == {B64[0]: 3, B64[1]: 3}


def test_a_keyring_that_cannot_fit_the_limit_is_not_answered_and_logged() -> None:
    # a limit below an answer listing no key at all: no member can answer
    sim = _cluster(query_response_size_limit=40)
    logs = _logs(sim)
    done = _list(sim)
    resp = done.result
    assert isinstance(resp, sio.KeyResponse)
    assert (resp.num_nodes, resp.num_resp, resp.num_err) == (3, 0, 0)
    assert done.error == "0/3 nodes reported success"
    assert resp.not_answered == list(NAMES)
    failed = "serf: Failed to truncate response so that it fits into message"
    assert sorted(n for n, level, text in logs if level == ERR and text == failed) == list(NAMES)


def test_a_truncated_answer_is_logged_by_the_member_and_the_asker() -> None:
    many = [bytes([i]) * 32 for i in range(1, 41)]  # ~1.8 KB of base64, over 1024 B
    sim = SerfSimulation(5)
    for i, name in enumerate(NAMES):
        sim.add_serf(name, serf_sim_config(name), join=["n0"] if i else (), keyring=Keyring(many))
    sim.run_for(5.0)
    logs = _logs(sim)
    done = _list(sim)
    resp = done.result
    assert isinstance(resp, sio.KeyResponse) and done.error is None
    (text,) = set(resp.messages.values())
    assert text.startswith("truncated key list response, showing first ")
    warned = [(n, t) for n, level, t in logs if level == WARN and "truncated key list" in t]
    # each member warns as it answers; the asker (n0) warns once per truncated answer it got
    line = f"serf: {text}"
    assert sorted(warned) == sorted([(n, line) for n in NAMES] + [("n0", line)] * 3)
