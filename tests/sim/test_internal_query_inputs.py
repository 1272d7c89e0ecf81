"""Internal (``_serf_``) queries with inputs the key manager does not expect, in virtual time.

Anyone who may send a query may send one named ``_serf_...`` (``serf reachability`` sends
``_serf_ping``): an unknown internal query is logged and left unanswered, a key operation
whose payload is not a key request is refused without touching the keyring, and a key
operation on a cluster without encryption is refused with Go's message by every member. An
unknown operation asked of the key manager fails at once.
"""

from __future__ import annotations

from typing import Any

from serf.core import io as sio
from serf.memberlist import io as mio
from serf.telemetry import WARN, LogLine
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.testing.sim import SimNode
from serf.wire import get_codec
from serf.wire.keyring import Keyring
from serf.wire.messages import MessageKeyResponse

KEY = bytes(range(32))
NAMES = ("n0", "n1", "n2")


def _cluster(keyring: bool) -> SerfSimulation:
    sim = SerfSimulation(3)
    for i, name in enumerate(NAMES):
        sim.add_serf(name, serf_sim_config(name), join=["n0"] if i else (),
                     keyring=Keyring([KEY]) if keyring else None)  # fmt: skip
    sim.run_for(5.0)
    assert all(sim.serf(n).memberlist.num_members() == 3 for n in NAMES)
    return sim


def _query(sim: SerfSimulation, name: str, payload: bytes) -> list[sio.QueryResponseReceived]:
    rid = sim.request("n0", lambda r: sio.QueryRequest(r, name, payload, timeout=2.0))
    sim.run_for(5.0)
    return [e for e in sim.of_type("n0", sio.QueryResponseReceived) if e.request_id == rid]


def test_an_unknown_internal_query_is_logged_and_not_answered() -> None:
    sim = _cluster(keyring=False)
    warned: list[tuple[str, str]] = []

    def watch(now: float, node: SimNode, eff: Any) -> None:
        if isinstance(eff, LogLine) and eff.level == WARN and "internal query" in eff.text:
            warned.append((node.name, eff.text))

    sim.observers.append(watch)
    assert _query(sim, "_serf_frobnicate", b"") == []
    text = "serf: Unhandled internal query 'frobnicate'"
    assert sorted(warned) == [(n, text) for n in NAMES]


def test_a_key_operation_whose_payload_is_no_key_request_is_refused() -> None:
    sim = _cluster(keyring=True)
    changed = {n: len(sim.of_type(n, sio.KeyringChanged)) for n in NAMES}
    codec = get_codec(sim.serf_configs["n0"].memberlist.codec)  # type: ignore[union-attr]
    for op in ("install-key", "use-key", "remove-key"):
        for payload in (b"", b"\x07\xc1garbage", codec.encode(MessageKeyResponse(True, "", None))):
            got = _query(sim, f"_serf_{op}", payload)
            assert sorted(r.from_ for r in got) == list(NAMES), (op, payload)
            for r in got:
                resp = codec.decode_serf(r.payload)
                assert isinstance(resp, MessageKeyResponse)
                assert (resp.result, resp.message) == (False, ""), (op, payload)
    # no keyring changed, the key is still there and primary
    assert {n: len(sim.of_type(n, sio.KeyringChanged)) for n in NAMES} == changed
    for n in NAMES:
        assert sim.serf(n).memberlist.keyring.keys == [KEY]  # type: ignore[union-attr]


def test_key_operations_without_encryption_fail_on_every_member() -> None:
    sim = _cluster(keyring=False)
    for op in ("install", "use", "remove"):
        rid = sim.request("n0", lambda r, o=op: sio.KeyRequest(r, o, KEY))
        sim.run_for(10.0)
        done = sim.serf_completed[rid]
        assert done.error == "3/3 nodes reported failure", op
        resp = done.result
        assert isinstance(resp, sio.KeyResponse)
        assert (resp.num_nodes, resp.num_resp, resp.num_err) == (3, 3, 3)
        refused = "No keyring to modify (encryption not enabled)"
        assert resp.messages == dict.fromkeys(NAMES, refused)
    rid = sim.request("n0", lambda r: sio.KeyRequest(r, "list"))
    sim.run_for(10.0)
    done = sim.serf_completed[rid]
    assert isinstance(done.result, sio.KeyResponse)
    assert done.result.messages == dict.fromkeys(NAMES, "Keyring is empty (encryption not enabled)")


def test_an_unknown_key_operation_fails_at_once() -> None:
    sim = _cluster(keyring=True)
    sent = sim.packets_sent
    rid = sim.request("n0", lambda r: sio.KeyRequest(r, "rotate", KEY))
    done = sim.serf_completed[rid]  # completed on the spot, without running the clock
    assert isinstance(done, mio.RequestCompleted)
    assert done.error == "unknown key operation 'rotate'" and done.result is None
    assert sim.packets_sent == sent
