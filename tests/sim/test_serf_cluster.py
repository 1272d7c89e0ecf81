"""Serf cores in the simulator (virtual time, seeded network model): queries with filters,
key rotation, name conflicts, coalescing, coordinates, snapshot restarts (reference 5.3)."""

from __future__ import annotations

import base64
import math
from typing import Any

from serf.config import SerfConfig, lan
from serf.core import io as sio
from serf.core.snapshot import replay
from serf.core.vivaldi import distance
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.testing.sim import LinkModel
from serf.wire.keyring import Keyring


def cluster(n: int, seed: int = 1, **changes: Any) -> SerfSimulation:
    sim = SerfSimulation(seed)
    for i in range(n):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name, **changes), join=["n0"] if i else ())
    assert (
        sim.run_until_converged(lambda s: all(len(s.serf(x).members()) == n for x in s.nodes), 30.0)
        is not None
    )
    return sim


def auto_respond(sim: SerfSimulation) -> None:
    """Every node answers every user query with its own name, as an application would."""

    def hook(now: float, name: str, eff: Any) -> None:
        if isinstance(eff, sio.QueryReceived):
            q = eff.query
            sim.at(now, lambda: sim.request(
                name, lambda rid: sio.RespondRequest(rid, q, name.encode())))  # fmt: skip

    sim.on_serf_effect.append(hook)


def test_query_with_node_and_tag_filters_gets_exactly_the_expected_responders() -> None:
    sim = SerfSimulation(5)
    for i in range(12):
        name = f"n{i}"
        tags = {"role": "web" if i % 3 == 0 else "db", "dc": f"dc{i % 2}"}
        sim.add_serf(name, serf_sim_config(name, tags=tags), join=["n0"] if i else ())
    sim.run_for(5.0)
    auto_respond(sim)
    cases = [
        ((), (), {f"n{i}" for i in range(12)}),
        (("n1", "n2", "n5"), (), {"n1", "n2", "n5"}),
        ((), (("role", "^web$"),), {f"n{i}" for i in range(12) if i % 3 == 0}),
        (("n0", "n3", "n4"), (("role", "web"), ("dc", "dc1")), {"n3"}),
    ]
    for nodes, tags, expected in cases:

        def make(r: int, n: tuple[str, ...] = nodes, t: Any = tags) -> sio.QueryRequest:
            return sio.QueryRequest(
                r, "who", b"", filter_nodes=n, filter_tags=t, request_ack=True, relay_factor=1
            )

        rid = sim.request("n4", make)
        sim.run_for(8.0)
        acks = {e.from_ for e in sim.of_type("n4", sio.QueryAckReceived) if e.request_id == rid}
        resps = [e for e in sim.of_type("n4", sio.QueryResponseReceived) if e.request_id == rid]
        assert acks == expected
        assert {e.from_ for e in resps} == expected
        assert len(resps) == len(expected)  # each once, relays deduplicated
        assert all(e.payload == e.from_.encode() for e in resps)
        assert sio.QueryFinished(rid) in sim.of_type("n4", sio.QueryFinished)
    # every node saw each query at most once
    for name in sim.nodes:
        ids = [(e.query.ltime, e.query.id) for e in sim.of_type(name, sio.QueryReceived)]
        assert len(ids) == len(set(ids))


def test_key_rotation_across_20_members_loses_nobody() -> None:
    old, new = b"O" * 16, b"N" * 32
    sim = SerfSimulation(11)
    n = 20
    for i in range(n):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name), join=["n0"] if i else (),
                     keyring=Keyring([old]))  # fmt: skip
    assert (
        sim.run_until_converged(lambda s: all(len(s.serf(x).members()) == n for x in s.nodes), 30.0)
        is not None
    )
    for op, key in (("install", new), ("use", new), ("remove", old)):
        rid = sim.request("n7", lambda r, o=op, k=key: sio.KeyRequest(r, o, k))
        sim.run_for(10.0)
        done = sim.serf_completed[rid]
        assert done.error is None, (op, done.error)
        assert done.result.num_resp == n and done.result.num_err == 0
        sim.run_for(5.0)
        assert sim.all_alive(), op
    for name in sim.nodes:
        keyring = sim.serf(name).keyring
        assert keyring is not None and keyring.keys == [new]
        assert sim.of_type(name, sio.KeyringChanged)
    rid = sim.request("n3", lambda r: sio.KeyRequest(r, "list"))
    sim.run_for(10.0)
    listed = sim.serf_completed[rid].result
    assert listed.num_resp == n and listed.keys == {base64.b64encode(new).decode(): n}
    assert listed.primary_keys == {base64.b64encode(new).decode(): n}
    sim.run_for(30.0)
    assert sim.all_alive() and all(not sim.of_type(x, sio.MemberFailed) for x in sim.nodes)


def test_key_request_without_encryption_reports_failures() -> None:
    sim = cluster(3)
    rid = sim.request("n0", lambda r: sio.KeyRequest(r, "install", b"K" * 16))
    sim.run_for(10.0)
    done = sim.serf_completed[rid]
    assert done.error == "3/3 nodes reported failure"
    assert set(done.result.messages.values()) == {"No keyring to modify (encryption not enabled)"}


def test_name_conflict_minority_node_shuts_down() -> None:
    sim = SerfSimulation(2)
    for name in ("a", "b", "c"):
        sim.add_serf(name, serf_sim_config(name), join=["a"] if name != "a" else ())
    sim.run_for(5.0)
    # "imposter" claims the name "b" from another address
    sim.add_serf("imposter", serf_sim_config("b"), join=["a"])
    sim.run_for(30.0)
    shut = [n for n in sim.nodes if sim.of_type(n, sio.ShutdownRequired)]
    assert shut == ["imposter"]
    assert sim.nodes["b"].up and not sim.nodes["imposter"].up
    for name in ("a", "c"):
        b = sim.serf(name).member("b")
        assert b is not None and b.addr == sim.nodes["b"].address.ip_bytes()


def test_coalescing_merges_member_and_user_events_and_nothing_else() -> None:
    sim = SerfSimulation(4)
    observer = serf_sim_config(
        "obs", coalesce_period=3.0, quiescent_period=1.0,
        user_coalesce_period=3.0, user_quiescent_period=1.0,
    )  # fmt: skip
    sim.add_serf("obs", observer)
    sim.add_serf("plain", serf_sim_config("plain"), join=["obs"])
    sim.run_for(5.0)
    before = len(sim.of_type("obs", sio.MemberJoined))
    for i in range(5):
        sim.add_serf(f"j{i}", serf_sim_config(f"j{i}"), join=["obs"])
    sim.run_for(6.0)
    batches = sim.of_type("obs", sio.MemberJoined)[before:]
    assert len(batches) == 1 and {m.name for m in batches[0].members} == {f"j{i}" for i in range(5)}
    plain = sim.of_type("plain", sio.MemberJoined)
    assert sum(len(e.members) for e in plain[-5:]) == 5 and all(len(e.members) == 1 for e in plain)
    for v in (b"1", b"2", b"3"):
        sim.user_event("plain", "deploy", v, coalesce=True)
        sim.user_event("plain", "audit", v, coalesce=False)
        sim.run_for(0.3)
    sim.run_for(6.0)
    got = [(e.name, e.payload) for e in sim.of_type("obs", sio.UserEventReceived)]
    assert [p for name, p in got if name == "deploy"] == [b"3"]
    assert [p for name, p in got if name == "audit"] == [b"1", b"2", b"3"]
    plain_got = [(e.name, e.payload) for e in sim.of_type("plain", sio.UserEventReceived)]
    assert len(plain_got) == 6


def test_coordinates_converge_to_link_latencies() -> None:
    sim = SerfSimulation(8, default_link=LinkModel(latency=0.010, jitter=0.0))
    names = ["a", "b", "c", "d"]
    # two sites: one-way 10 ms inside a site, 40 ms across
    site = {"a": 0, "b": 0, "c": 1, "d": 1}
    for x in names:
        for y in names:
            if x != y and site[x] != site[y]:
                sim.set_link(x, y, LinkModel(latency=0.040, jitter=0.0))
    for x in names:
        sim.add_serf(x, serf_sim_config(x), join=["a"] if x != "a" else ())
    sim.run_for(300.0)
    for x in names:
        for y in names:
            if x == y:
                continue
            cx = sim.serf(x).get_coordinate()
            cy = sim.serf(y).get_coordinate()
            assert cx is not None and cy is not None
            rtt = 0.020 if site[x] == site[y] else 0.080
            assert math.isclose(distance(cx, cy), rtt, rel_tol=0.25, abs_tol=0.004), (x, y)
    disabled = SerfSimulation(1)
    disabled.add_serf("a", serf_sim_config("a", disable_coordinates=True))
    assert disabled.serf("a").get_coordinate() is None


def test_restart_from_snapshot_does_not_replay_old_events() -> None:
    sim = SerfSimulation(9)
    lines: list[str] = []

    def record(now: float, name: str, eff: Any) -> None:
        if name == "n2" and isinstance(eff, sio.SnapshotLines):
            lines.extend(eff.lines)

    sim.on_serf_effect.append(record)
    for i in range(4):
        name = f"n{i}"
        cfg = serf_sim_config(name, snapshot_path="/snap" if i == 2 else "")
        sim.add_serf(name, cfg, join=["n0"] if i else ())
    sim.run_for(5.0)
    for i in range(3):
        sim.user_event("n0", f"old{i}", b"")
    sim.run_for(5.0)
    assert len(sim.of_type("n2", sio.UserEventReceived)) == 3
    sim.crash("n2")
    sim.run_for(1.0)
    state = replay("".join(lines), rejoin_after_leave=False)
    assert state.last_event_clock >= 3 and "n0" in state.alive_nodes
    sim.events["n2"] = []
    sim.snapshots["n2"] = state
    sim.restart("n2")
    core = sim.serf("n2")
    targets = tuple(addr for _, addr in core.rejoin_addresses)
    assert targets
    sim.serf_join("n2", targets[:1])
    sim.run_for(10.0)
    assert len(core.members()) == 4
    sim.user_event("n1", "new", b"")
    sim.run_for(5.0)
    assert [e.name for e in sim.of_type("n2", sio.UserEventReceived)] == ["new"]


def test_join_ignore_old_delivers_no_old_events() -> None:
    sim = cluster(3, seed=12)
    sim.user_event("n0", "old", b"")
    sim.run_for(3.0)
    sim.add_serf("late", serf_sim_config("late"))
    sim.add_serf("late2", serf_sim_config("late2"))
    sim.serf_join("late", (sim.nodes["n1"].address,), ignore_old=True)
    sim.serf_join("late2", (sim.nodes["n1"].address,), ignore_old=False)
    sim.run_for(5.0)
    assert sim.of_type("late", sio.UserEventReceived) == []
    assert [e.name for e in sim.of_type("late2", sio.UserEventReceived)] == ["old"]


def test_leave_is_seen_as_left_and_failure_as_failed_then_reaped() -> None:
    sim = cluster(5, seed=3, reap_interval=1.0, reconnect_timeout=20.0, reconnect_interval=600.0)
    rid = sim.request("n1", lambda r: sio.SerfLeaveRequest(r))
    sim.run_for(10.0)
    assert sim.serf_completed[rid].error is None
    sim.crash("n1")
    sim.crash("n2")
    sim.run_for(30.0)
    for name in ("n0", "n3", "n4"):
        left = [m.name for e in sim.of_type(name, sio.MemberLeft) for m in e.members]
        failed = [m.name for e in sim.of_type(name, sio.MemberFailed) for m in e.members]
        reaped = [m.name for e in sim.of_type(name, sio.MemberReaped) for m in e.members]
        assert left == ["n1"] and failed == ["n2"], name
        assert reaped == ["n2"], name  # failed reaped after 20 s; left waits 24 h
        assert sim.serf(name).stats()["left"] == "1"


def test_failed_member_is_reconnected() -> None:
    sim = cluster(4, seed=6, reconnect_interval=5.0)
    sim.partition(["n0", "n1", "n2"], ["n3"])
    sim.run_for(40.0)
    m = sim.serf("n0").member("n3")
    assert m is not None and m.status is sio.MemberStatus.FAILED
    sim.heal()
    sim.run_for(60.0)
    for name in ("n0", "n1", "n2"):
        m = sim.serf(name).member("n3")
        assert m is not None and m.status is sio.MemberStatus.ALIVE


def test_set_tags_reaches_every_node() -> None:
    sim = cluster(6, seed=7)
    rid = sim.request("n2", lambda r: sio.SetTagsRequest(r, {"role": "lb"}))
    sim.run_for(5.0)
    assert sim.serf_completed[rid].error is None
    for name in sim.nodes:
        m = sim.serf(name).member("n2")
        assert m is not None and m.tags == {"role": "lb"}


def test_config_default_memberlist_is_lan() -> None:
    cfg = SerfConfig("x")
    assert cfg.memberlist == lan("x")


def test_go_codec_cluster_with_encryption_events_queries_keys() -> None:
    sim = SerfSimulation(21)
    for i in range(5):
        name = f"n{i}"
        cfg = serf_sim_config(name, tags={"role": "x"}, memberlist_changes={"codec": "go"})
        sim.add_serf(name, cfg, join=["n0"] if i else (), keyring=Keyring([b"K" * 16]))
    sim.run_for(5.0)
    assert all(len(sim.serf(x).members()) == 5 for x in sim.nodes)
    rid = sim.request("n1", lambda r: sio.KeyRequest(r, "list"))
    sim.user_event("n2", "e", b"p")
    q = sim.request(
        "n3",
        lambda r: sio.QueryRequest(r, "q", b"", request_ack=True, filter_tags=(("role", "x"),)),
    )
    sim.run_for(5.0)
    assert sim.serf_completed[rid].error is None
    assert all(len(sim.of_type(x, sio.UserEventReceived)) == 1 for x in sim.nodes)
    acks = {e.from_ for e in sim.of_type("n3", sio.QueryAckReceived) if e.request_id == q}
    assert acks == set(sim.nodes)
    assert sim.serf("n0").stats()["encrypted"] == "true"


def test_leave_rejoin_leave_does_not_rebroadcast_forever() -> None:
    sim = cluster(4, seed=14)
    sim.request("n3", lambda r: sio.SerfLeaveRequest(r))
    sim.run_for(10.0)
    sim.crash("n3")
    sim.run_for(5.0)
    sim.restart("n3")
    sim.serf_join("n3", (sim.nodes["n0"].address,))
    sim.run_for(10.0)
    assert all(sim.serf(x).member("n3").status is sio.MemberStatus.ALIVE for x in sim.nodes)  # type: ignore[union-attr]
    sim.request("n3", lambda r: sio.SerfLeaveRequest(r))
    sim.run_for(60.0)
    for name in ("n0", "n1", "n2"):
        core = sim.serf(name)
        assert core.broadcasts.intents.num_queued() == 0, name
        m = core.member("n3")
        assert m is not None and m.status is sio.MemberStatus.LEFT


def test_force_leave_of_a_failed_node_emits_member_leave_everywhere() -> None:
    sim = cluster(4, seed=15)
    sim.crash("n3")
    sim.run_for(30.0)
    assert sim.serf("n0").member("n3").status is sio.MemberStatus.FAILED  # type: ignore[union-attr]
    rid = sim.request("n0", lambda r: sio.ForceLeaveRequest(r, "n3"))
    sim.run_for(10.0)
    assert sim.serf_completed[rid].error is None
    for name in ("n0", "n1", "n2"):
        left = [m.name for e in sim.of_type(name, sio.MemberLeft) for m in e.members]
        assert left == ["n3"], name


def test_merge_delegate_cancels_a_join() -> None:
    class Refuse:
        def __init__(self, name: str) -> None:
            self.name = name

        def notify_merge(self, members: list[sio.SerfMember]) -> str | None:
            return "not welcome" if any(m.name == self.name for m in members) else None

    sim = SerfSimulation(16)
    sim.add_serf("a", serf_sim_config("a"), merge_delegate=Refuse("intruder"))
    sim.add_serf("intruder", serf_sim_config("intruder"), merge_delegate=Refuse("a"))
    rid = sim.serf_join("intruder", (sim.nodes["a"].address,))
    sim.run_for(10.0)
    assert sim.serf("a").member("intruder") is None
    assert sim.serf("intruder").member("a") is None
    done = sim.serf_completed[rid]
    assert done.result == 0 and "not welcome" in (done.error or "")
