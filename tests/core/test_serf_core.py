"""Unit tests of the serf core driven directly (no network): intents, clocks, user events,
queries, tags, stats, snapshot restore, coalescing and config checks (reference 3, 5.3)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from serf.address import Address
from serf.config import SerfConfig
from serf.core import io as sio
from serf.core.serf import QUERY_FLAG_ACK, SerfCore, SerfState
from serf.core.snapshot import SnapshotState, replay
from serf.memberlist import io as mio
from serf.memberlist.state import Node
from serf.testing.cores import member_node, serf_core
from serf.testing.sim import sim_config
from serf.wire.messages import (
    AckResp,
    Alive,
    MessageJoin,
    MessageLeave,
    MessagePushPull,
    MessageQuery,
    MessageQueryResponse,
    MessageUserEvent,
    Ping,
    UserMsg,
)

ADDR = Address("10.0.0.1", 7946)


make = serf_core


def node(name: str, ip: str = "10.0.0.2", meta: bytes = b"", port: int = 7946) -> Node:
    return member_node(name, ip, port=port, meta=meta)


def deliver(core: SerfCore, raw: bytes, now: float = 0.0) -> list[Any]:
    """A serf message as it arrives from the network: a user message in one packet."""
    data = core.framer.encode_message(UserMsg(raw), crc=False)
    return core.handle(mio.PacketReceived(data, Address("10.0.0.8", 7946)), now)


def serf_sends(core: SerfCore, effects: list[Any]) -> list[tuple[Address, bytes]]:
    """The serf messages in the packets ``effects`` send: (destination, message)."""
    return [
        (e.dest, m.payload)
        for e in effects
        if isinstance(e, mio.SendPacket)
        for m in core.framer.decode_packet(e.data).messages
        if isinstance(m, UserMsg)
    ]


def effects_of(effects: list[Any], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def completed(effects: list[Any], rid: int) -> mio.RequestCompleted:
    (done,) = [e for e in effects if isinstance(e, mio.RequestCompleted) and e.request_id == rid]
    return done


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="protocol_version"):
        SerfConfig("a", protocol_version=1)
    with pytest.raises(ValueError, match="user_event_size_limit"):
        SerfConfig("a", user_event_size_limit=10 * 1024)
    with pytest.raises(ValueError, match="node_name"):
        SerfConfig("bad name!", validate_node_names=True)
    with pytest.raises(ValueError, match="reap_interval"):
        SerfConfig("a", reap_interval=-1)
    cfg = SerfConfig("a")
    assert cfg.protocol_version == 4 and cfg.event_buffer == 512 and cfg.query_timeout_mult == 16
    assert cfg.reconnect_timeout == 86400 and cfg.memberlist is not None


def test_tags_over_512_bytes_are_refused_at_create_and_set_tags() -> None:
    with pytest.raises(ValueError, match="512"):
        make(tags={"k": "v" * 600})
    core = make()
    out = core.handle(sio.SetTagsRequest(1, {"k": "v" * 600}), 1.0)
    assert "512" in (completed(out, 1).error or "")
    out = core.handle(sio.SetTagsRequest(2, {"role": "web"}), 1.0)
    assert completed(out, 2).error is None
    assert core.local_member().tags == {"role": "web"}
    assert effects_of(out, sio.MemberUpdated)  # our own update event


def test_local_member_and_clocks_start_at_one() -> None:
    core = make(tags={"role": "db"})
    me = core.local_member()
    assert me.status is sio.MemberStatus.ALIVE and me.tags == {"role": "db"}
    assert me.delegate_cur == 4 and me.delegate_min == 2 and me.delegate_max == 5
    assert (core.clock.time(), core.event_clock.time(), core.query_clock.time()) == (1, 1, 1)


def test_join_then_fail_then_leave_intent_makes_left() -> None:
    core = make()
    core.membership.notify_join(node("b"))
    assert core.member("b") is not None
    core.membership.notify_leave(node("b"))
    b = core.member("b")
    assert b is not None and b.status is sio.MemberStatus.FAILED
    # a leave intent for a failed member: failed -> left with a member-leave event
    out = core.services.begin(core.services.now)
    assert core.membership.leave_intent(MessageLeave(10, "b"))
    b = core.member("b")
    assert b is not None and b.status is sio.MemberStatus.LEFT
    assert effects_of(out, sio.MemberLeft)
    assert core.clock.time() == 11
    # an older intent is ignored
    assert not core.membership.join_intent(MessageJoin(5, "b"))


def test_intents_for_unknown_nodes_are_buffered_and_applied_on_join() -> None:
    core = make()
    assert core.membership.leave_intent(MessageLeave(5, "c"))
    assert not core.membership.leave_intent(
        MessageLeave(4, "c")
    )  # older: not stored, no rebroadcast
    assert core.membership.join_intent(MessageJoin(6, "c"))  # newer of either type replaces it
    core.membership.notify_join(node("c", "10.0.0.3"))
    c = core.member("c")
    assert c is not None and c.status is sio.MemberStatus.ALIVE
    core2 = make()
    core2.membership.leave_intent(MessageLeave(5, "c"))
    core2.membership.notify_join(node("c", "10.0.0.3"))
    c = core2.member("c")
    assert c is not None and c.status is sio.MemberStatus.LEAVING
    core2.membership.notify_leave(node("c", "10.0.0.3"))
    c = core2.member("c")
    assert c is not None and c.status is sio.MemberStatus.LEFT


def test_leave_intent_about_us_is_refuted_with_a_join() -> None:
    core = make()
    assert not core.membership.leave_intent(MessageLeave(50, "a"))
    assert core.local_member().status is sio.MemberStatus.ALIVE
    assert core.broadcasts.intents.num_queued() == 1
    assert core.clock.time() > 50


def test_recent_intents_expire() -> None:
    core = make(reap_interval=1.0, recent_intent_timeout=2.0)
    core.membership.leave_intent(MessageLeave(5, "ghost"))
    assert "ghost" in core.membership.intents
    t = 0.0
    while t < 5.0:
        t = core.next_deadline() or 5.0
        core.handle(mio.Tick(), t)
    assert "ghost" not in core.membership.intents


def test_user_event_size_limits_use_go_texts() -> None:
    core = make()
    out = core.handle(sio.UserEventRequest(1, "big", b"x" * 600), 1.0)
    assert (
        completed(out, 1).error
        == "user event exceeds configured limit of 512 bytes before encoding"
    )
    out = core.handle(sio.UserEventRequest(2, "n", b"x" * 509), 1.0)
    err = completed(out, 2).error or ""
    assert err == "encoded user event exceeds configured limit of 512 bytes after encoding"
    out = core.handle(sio.UserEventRequest(3, "deploy", b"v1"), 1.0)
    assert completed(out, 3).error is None
    (ev,) = effects_of(out, sio.UserEventReceived)
    assert (ev.ltime, ev.name, ev.payload) == (1, "deploy", b"v1")
    assert core.event_clock.time() == 2


def test_user_event_dedupe_by_ltime_and_content_and_too_old() -> None:
    core = make(event_buffer=4)
    raw = core.codec.encode(MessageUserEvent(3, "e", b"p"))
    out = deliver(core, raw) + deliver(core, raw)
    assert len(effects_of(out, sio.UserEventReceived)) == 1
    out = deliver(core, core.codec.encode(MessageUserEvent(3, "e", b"q")))  # same ltime, new body
    assert len(effects_of(out, sio.UserEventReceived)) == 1
    deliver(core, core.codec.encode(MessageUserEvent(20, "e", b"p")))
    out = deliver(core, core.codec.encode(MessageUserEvent(10, "old", b"p")))  # 10 < 21 - 4
    assert not effects_of(out, sio.UserEventReceived)


def test_snapshot_restore_sets_min_times_and_rejoin_addresses() -> None:
    text = (
        "alive: b 10.0.0.2:7946\nalive: a 10.0.0.1:7946\nclock: 7\nevent-clock: 9\nquery-clock: 4\n"
    )
    state = replay(text, rejoin_after_leave=False)
    core = make(snapshot=state, snapshot_path="/x")
    assert core.user_events.min_time == 10 and core.queries.min_time == 5
    assert core.clock.time() == 8 and core.event_clock.time() == 10
    assert core.rejoin_addresses == [("b", Address("10.0.0.2", 7946))]
    out = deliver(core, core.codec.encode(MessageUserEvent(9, "old", b"")))
    assert not effects_of(out, sio.UserEventReceived)
    out += deliver(core, core.codec.encode(MessageUserEvent(10, "new", b"")))
    assert effects_of(out, sio.UserEventReceived)
    lines = [ln for e in effects_of(out, sio.SnapshotLines) for ln in e.lines]
    assert "event-clock: 10\n" in lines


def test_leave_writes_snapshot_leave_and_completes_after_propagate_delay() -> None:
    core = make(snapshot_path="/x", leave_propagate_delay=1.0)
    out = core.handle(sio.SerfLeaveRequest(1), 1.0)
    lines = [ln for e in effects_of(out, sio.SnapshotLines) for ln in e.lines]
    assert "leave\n" in lines
    assert core.serf_state is SerfState.LEAVING
    again = core.handle(sio.SerfLeaveRequest(2), 1.0)
    assert completed(again, 2).error == "Leave already in progress"
    done: list[Any] = []
    t = 1.0
    while not done and t < 20:
        t = core.next_deadline() or 20
        done = [e for e in core.handle(mio.Tick(), t) if isinstance(e, mio.RequestCompleted)]
    assert done and done[0].request_id == 1 and t >= 2.0
    assert core.serf_state is SerfState.LEFT
    out = core.handle(sio.SerfJoinRequest(3, (Address("10.0.0.9", 7946),)), t)
    assert completed(out, 3).error == "Serf can't Join after Leave or Shutdown"


def test_query_size_limit_and_default_timeout() -> None:
    core = make()
    assert core.default_query_timeout() == pytest.approx(0.2 * 16 * 1)
    out = core.handle(sio.QueryRequest(1, "q", b"x" * 1100), 1.0)
    assert completed(out, 1).error == "query exceeds limit of 1024 bytes"
    old = make(protocol_version=3)
    out = old.handle(sio.QueryRequest(1, "q", b""), 1.0)
    assert completed(out, 1).error is not None


def test_query_is_processed_locally_acked_and_answered_once() -> None:
    core = make()
    out = core.handle(sio.QueryRequest(1, "q", b"hi", request_ack=True, timeout=2.0), 1.0)
    assert completed(out, 1).error is None
    (qr,) = effects_of(out, sio.QueryReceived)
    assert effects_of(out, sio.QueryAckReceived) == [sio.QueryAckReceived(1, "a")]
    assert qr.query.deadline == pytest.approx(3.0)
    out = core.handle(sio.RespondRequest(2, qr.query, b"ans"), 1.5)
    assert completed(out, 2).error is None
    assert effects_of(out, sio.QueryResponseReceived) == [sio.QueryResponseReceived(1, "a", b"ans")]
    out = core.handle(sio.RespondRequest(3, qr.query, b"again"), 1.6)
    assert completed(out, 3).error == "Response already sent"
    out = core.handle(mio.Tick(), 3.1)
    assert sio.QueryFinished(1) in out
    assert core.query_clock.time() == 2


def test_response_past_deadline_and_duplicate_query_suppressed() -> None:
    core = make()
    q = MessageQuery(5, 77, ADDR.ip_bytes(), 7946, "b", None, 0, 0, int(1e9), "q", b"")
    raw = core.codec.encode(q)
    (qr,) = effects_of(deliver(core, raw) + deliver(core, raw), sio.QueryReceived)
    out = core.handle(sio.RespondRequest(1, qr.query, b"late"), 10.0)
    assert completed(out, 1).error == "Response is past the deadline"


def test_query_filters_select_responders() -> None:
    core = make(tags={"role": "web"})

    def got(filters: list[bytes] | None) -> bool:
        q = MessageQuery(core.query_clock.time(), random.getrandbits(31), ADDR.ip_bytes(),
                         7946, "b", filters, QUERY_FLAG_ACK, 0, int(1e9), "q", b"")  # fmt: skip
        return bool(effects_of(deliver(core, core.codec.encode(q)), sio.QueryReceived))

    from serf.wire.messages import FilterNode, FilterTag

    enc = core.codec.encode_filter
    assert got(None)
    assert got([enc(FilterNode(["x", "a"]))])
    assert not got([enc(FilterNode(["x"]))])
    assert got([enc(FilterTag("role", "we"))])  # unanchored
    assert not got([enc(FilterTag("role", "^db$"))])
    assert not got([enc(FilterTag("dc", "."))])  # missing tag matches as ""


def test_push_pull_state_round_trip_witnesses_and_applies() -> None:
    a = make("a")
    a.membership.notify_join(node("b"))
    a.membership.leave_intent(MessageLeave(9, "b"))
    a.handle(sio.UserEventRequest(1, "e", b"p"), 1.0)
    blob = a.gossip.local_state(False)
    msg = a.codec.decode_serf(blob)
    assert isinstance(msg, MessagePushPull) and len(msg.events or []) == 512
    c = make("c")
    out = c.services.begin(c.services.now)
    c.gossip.merge_remote_state(blob, join=True)
    assert c.clock.time() >= 10 and c.event_clock.time() >= 2
    ev = effects_of(out, sio.UserEventReceived)
    assert [(e.name, e.coalesce) for e in ev] == [("e", False)]
    c.gossip.merge_remote_state(b"\x05junk", join=False)  # ignored
    c.gossip.merge_remote_state(b"\x02\xff\xff", join=False)  # undecodable: a counted drop
    assert c.stats_counters["dropped"] == 1


def test_reap_failed_members_after_reconnect_timeout_with_override() -> None:
    class Short:
        def reconnect_timeout(self, member: sio.SerfMember, default: float) -> float:
            return 3.0 if member.name == "b" else default

    cfg = SerfConfig("a", memberlist=sim_config("a"), reap_interval=1.0, reconnect_timeout=100.0)
    rng = random.Random(1)
    core = SerfCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=ADDR,
                    reconnect_delegate=Short())  # fmt: skip
    core.handle(mio.Start(), 0.0)
    core.membership.notify_join(node("b"))
    core.membership.notify_join(node("c", "10.0.0.3"))
    core.membership.notify_leave(node("b"))
    core.membership.notify_leave(node("c", "10.0.0.3"))
    reaped: list[str] = []
    t = 0.0
    while t < 6.0:
        t = core.next_deadline() or 6.0
        for e in core.handle(mio.Tick(), t):
            if isinstance(e, sio.MemberReaped):
                reaped += [m.name for m in e.members]
    assert reaped == ["b"] and core.member("c") is not None


def test_force_leave_prune_erases_member() -> None:
    core = make()
    core.membership.notify_join(node("b"))
    core.membership.notify_leave(node("b"))
    out = core.handle(sio.ForceLeaveRequest(1, "b", prune=True), 1.0)
    assert completed(out, 1).error is None
    assert effects_of(out, sio.MemberLeft) and effects_of(out, sio.MemberReaped)
    assert core.member("b") is None


def test_member_coalescing_only_when_configured() -> None:
    core = make(coalesce_period=2.0, quiescent_period=1.0)
    out = core.services.begin(core.services.now)
    core.membership.notify_join(node("b"))
    core.membership.notify_leave(node("b"))
    core.membership.notify_join(node("b"))
    assert not effects_of(out, sio.MemberJoined)
    out: list[Any] = []
    t = 0.0
    while t < 1.5:
        t = core.next_deadline() or 1.5
        out += core.handle(mio.Tick(), t)
    # the start-up join of "a" and the last event of "b" come out, once each
    joined = [m.name for e in effects_of(out, sio.MemberJoined) for m in e.members]
    assert sorted(joined) == ["a", "b"]
    assert not effects_of(out, sio.MemberFailed)


def test_user_coalescing_keeps_newest_per_name_and_passes_non_coalescable() -> None:
    core = make(user_coalesce_period=2.0, user_quiescent_period=1.0)
    out: list[Any] = []
    out += core.handle(sio.UserEventRequest(1, "deploy", b"1", coalesce=True), 0.1)
    out += core.handle(sio.UserEventRequest(2, "deploy", b"2", coalesce=True), 0.2)
    out += core.handle(sio.UserEventRequest(3, "other", b"x", coalesce=False), 0.3)
    assert [e.name for e in effects_of(out, sio.UserEventReceived)] == ["other"]
    out = []
    t = 0.3
    while t < 1.5:
        t = core.next_deadline() or 1.5
        out += core.handle(mio.Tick(), t)
    assert [(e.name, e.payload) for e in effects_of(out, sio.UserEventReceived)] == [
        ("deploy", b"2")
    ]


def test_stats_keys() -> None:
    core = make()
    stats = core.stats()
    assert set(stats) == {
        "members", "failed", "left", "health_score", "member_time", "event_time",
        "query_time", "intent_queue", "event_queue", "query_queue", "encrypted",
        "coordinate_resets",
    }  # fmt: skip
    assert stats["members"] == "1" and stats["encrypted"] == "false"
    assert "coordinate_resets" not in make(disable_coordinates=True).stats()


def test_ping_delegate_versioning_and_rogue_coordinates() -> None:
    core = make()
    payload = core.coords.ack_payload()
    assert payload[0] == 1
    core.coords.notify_ping_complete(node("b"), 0.01, b"\x02" + payload[1:])
    assert core.stats_counters["ping_version_ignored"] == 1
    from serf.wire.messages import Coordinate

    rogue = b"\x01" + core.codec.encode_coordinate(Coordinate(vec=[0.0] * 3))
    core.coords.notify_ping_complete(node("b"), 0.01, rogue)
    assert core.stats_counters["coordinate_rejected"] == 1
    core.coords.notify_ping_complete(node("b"), 0.01, payload)
    assert "b" in core.coords.cache
    assert make(disable_coordinates=True).coords.ack_payload() == b""


def test_merge_delegate_vetoes() -> None:
    class No:
        def notify_merge(self, members: list[sio.SerfMember]) -> str | None:
            return "nope" if any(m.name == "bad" for m in members) else None

    cfg = SerfConfig("a", memberlist=sim_config("a"))
    rng = random.Random(1)
    core = SerfCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=ADDR, merge_delegate=No())
    assert core.membership.notify_merge([node("bad")]) == "nope"
    assert core.membership.notify_merge([node("good")]) is None


def test_internal_ping_query_not_passed_through_and_conflict_about_us_unanswered() -> None:
    core = make()
    out = core.handle(sio.QueryRequest(1, "_serf_ping", b"", request_ack=True), 0.5)
    assert not effects_of(out, sio.QueryReceived)
    assert effects_of(out, sio.QueryAckReceived)
    q = MessageQuery(9, 5, Address("10.0.0.2", 7946).ip_bytes(), 7946, "b", None, 0, 0,
                     int(1e9), "_serf_conflict", b"a")  # fmt: skip
    out = deliver(core, core.codec.encode(q), 0.5)
    assert not serf_sends(core, out)


def test_query_response_dedupe_per_sender() -> None:
    core = make()
    out = core.handle(sio.QueryRequest(1, "q", b"", timeout=5.0), 0.0)
    ltime, qid = completed(out, 1).result
    out: list[Any] = []
    for _ in range(2):
        out += deliver(core, core.codec.encode(MessageQueryResponse(ltime, qid, "b", 0, b"r")))
    assert effects_of(out, sio.QueryResponseReceived) == [sio.QueryResponseReceived(1, "b", b"r")]
    out += deliver(core, core.codec.encode(MessageQueryResponse(ltime, qid + 1, "c", 0, b"r")))
    assert len(effects_of(out, sio.QueryResponseReceived)) == 1


def test_unused_snapshot_state_type() -> None:
    assert SnapshotState().last_clock == 0


def test_response_is_relayed_through_relay_factor_members() -> None:
    core = make()
    for i in range(2, 6):
        core.membership.notify_join(node(f"m{i}", f"10.0.0.{i}"))
    origin = Address("10.0.0.9", 7946)
    q = MessageQuery(5, 1, origin.ip_bytes(), 7946, "src", None, 0, 2, int(5e9), "q", b"")
    (qr,) = effects_of(deliver(core, core.codec.encode(q)), sio.QueryReceived)
    sends = serf_sends(core, core.handle(sio.RespondRequest(1, qr.query, b"r"), 0.1))
    direct = [payload for dest, payload in sends if dest == origin]
    relayed = [payload for dest, payload in sends if dest != origin]
    assert len(direct) == 1 and len(relayed) == 2
    assert all(payload[0] == 9 for payload in relayed)  # MessageRelay type byte
    # a relayer forwards the inner message to the destination
    relayer = make("m2")
    (fwd,) = serf_sends(relayer, deliver(relayer, relayed[0]))
    assert fwd == (origin, direct[0])


def test_requests_after_shutdown_fail_and_shutdown_is_idempotent() -> None:
    core = make()
    core.handle(mio.ShutdownRequest(), 1.0)
    core.handle(mio.ShutdownRequest(), 1.0)
    out = core.handle(sio.UserEventRequest(1, "e", b""), 1.0)
    assert completed(out, 1).error == "Serf is shut down"
    assert core.next_deadline() is None


def test_snapshot_compaction_is_requested_past_the_threshold() -> None:
    core = make(snapshot_path="/x")
    assert core.delivery.recorder is not None
    core.delivery.recorder.min_compact_size = 200
    compacts: list[Any] = []
    for _ in range(20):  # a flapping member: the file grows, the alive set does not
        out = core.services.begin(core.services.now)
        core.membership.notify_join(node("b"))
        core.membership.notify_leave(node("b"))
        core.membership.notify_join(node("b"))
        compacts += effects_of(out, sio.SnapshotCompact)
    assert compacts
    state = replay(compacts[-1].text, rejoin_after_leave=False)
    assert "a" in state.alive_nodes and not state.warnings


def test_queue_check_warns_and_prunes_to_the_limit() -> None:
    core = make(queue_check_interval=1.0, max_queue_depth=10, queue_depth_warning=5)
    for i in range(30):
        core.broadcasts.events.queue_broadcast(bytes([3, i]), unique=True)
    t = 0.0
    while t < 1.5:
        t = core.next_deadline() or 1.5
        core.handle(mio.Tick(), t)
    assert core.broadcasts.events.num_queued() <= 10
    assert core.stats_counters["queue_depth_warnings"] >= 1
    min_cfg = make(queue_check_interval=1.0, min_queue_depth=3)
    assert min_cfg.broadcasts.limit() == 3  # max(min_queue_depth, 2 x 1 member)


def _ticks(core: SerfCore, start: float, until: float) -> list[tuple[float, list[Any]]]:
    """Feed Ticks at every deadline in [start, until], a peer acking each ping at once:
    (deadline, effects) for each Tick."""
    out = []
    while (d := core.next_deadline()) is not None and d <= until:
        now = max(d, start)
        effects = core.handle(mio.Tick(), now)
        out.append((d, effects))
        for eff in effects_of(effects, mio.SendPacket):
            for msg in core.framer.decode_packet(eff.data).messages:
                if isinstance(msg, Ping):
                    ack = core.framer.encode_message(AckResp(msg.seq_no, None), crc=False)
                    core.handle(mio.PacketReceived(ack, eff.dest), now + 0.001)
    return out


def _gossiped(core: SerfCore, effects: list[Any]) -> bool:
    """Whether ``effects`` gossip a serf message (in a packet that is not a probe's ping)."""
    return any(
        isinstance(m, UserMsg) and not any(isinstance(p, Ping) for p in msgs)
        for e in effects_of(effects, mio.SendPacket)
        for msgs in [core.framer.decode_packet(e.data).messages]
        for m in msgs
    )


def test_an_idle_core_wakes_for_probes_and_gossips_again_on_its_grid() -> None:
    core = make()
    peer = Address("10.0.0.2", 7946)
    alive = Alive(1, "b", peer.ip_bytes(), 7946, b"", bytes([1, 5, 2, 2, 5, 4]))
    core.handle(mio.PacketReceived(core.framer.encode_message(alive, crc=False), peer), 0.0)
    gossip = core.memberlist.config.gossip_interval
    probe = core.memberlist.config.probe_interval
    _ticks(core, 0.0, 1.0)
    # a first event's gossip rounds show the ticker's grid
    core.handle(sio.UserEventRequest(1, "deploy", b"v0"), 1.03)
    grid = [d for d, eff in _ticks(core, 1.03, 5.0) if _gossiped(core, eff)]
    assert len(grid) >= 2 and grid[1] - grid[0] == pytest.approx(gossip)
    # at rest (queues empty): one wake per probe (its ack is a packet), no gossip ticks
    quiet = _ticks(core, 5.0, 25.0)
    assert len(quiet) <= 20 / probe + 2
    assert not any(serf_sends(core, eff) for _, eff in quiet)
    # a user event wakes the ticker: it goes out at the grid's next tick
    now = 25.03
    core.handle(sio.UserEventRequest(2, "deploy", b"v1"), now)
    sent = [d for d, eff in _ticks(core, now, now + gossip) if _gossiped(core, eff)]
    assert sent and now < sent[0] <= now + gossip
    assert (sent[0] - grid[0]) / gossip == pytest.approx(round((sent[0] - grid[0]) / gossip))
