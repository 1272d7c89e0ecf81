"""The sans-IO memberlist core, fed by hand: every input in, every effect checked."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf.address import Address
from serf.config import lan
from serf.memberlist import io
from serf.memberlist.core import MemberlistCore, push_pull_scale
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.state import Node, NodeState
from serf.telemetry import LogLine, MetricSample
from serf.testing.strategies import memberlist_messages
from serf.wire.framing import PacketFramer, StreamMessage, make_compound
from serf.wire.messages import (
    AckResp,
    Alive,
    ErrResp,
    IndirectPingReq,
    Message,
    NackResp,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    UserMsg,
)

ME = Address("10.0.0.1", 7946)
VSN = bytes([1, 5, 2, 0, 0, 0])
IP = bytes([10, 0, 0, 9])
PEER_FRAMER = PacketFramer("lpe", compression=False, token_bytes=random.Random(9).randbytes)


def protocol(effects: list[io.Effect]) -> list[io.Effect]:
    """The effects without the log lines and metric samples."""
    return [e for e in effects if not isinstance(e, LogLine | MetricSample)]


def make_core(**changes: object) -> MemberlistCore:
    cfg = replace(lan("me"), **changes)  # type: ignore[arg-type]
    rng = random.Random(1)
    return MemberlistCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=ME)


def peer(i: int) -> Address:
    return Address(f"10.0.0.{i}", 7946)


def packet(msg: Message, source: Address) -> io.PacketReceived:
    return io.PacketReceived(PEER_FRAMER.encode_message(msg, crc=False), source)


def alive(i: int, inc: int = 1) -> io.PacketReceived:
    return packet(Alive(inc, f"p{i}", peer(i).ip_bytes(), 7946, b"", VSN), peer(i))


def sent_messages(effects: list[io.Effect]) -> list[tuple[Address, object]]:
    out: list[tuple[Address, object]] = []
    for eff in effects:
        if isinstance(eff, io.SendPacket):
            for msg in PEER_FRAMER.decode_packet(eff.data).messages:
                out.append((eff.dest, msg))
    return out


def run(core: MemberlistCore, until: float) -> list[io.Effect]:
    """Feed Ticks at every deadline up to ``until``."""
    effects: list[io.Effect] = []
    while (d := core.next_deadline()) is not None and d <= until:
        effects += core.handle(io.Tick(), d)
    return effects


def started(n_peers: int = 0, **changes: object) -> MemberlistCore:
    core = make_core(**changes)
    core.handle(io.Start(), 0.0)
    for i in range(2, 2 + n_peers):
        core.handle(alive(i), 0.0)
    return core


def test_start_makes_us_alive_and_arms_one_deadline() -> None:
    core = make_core()
    assert core.next_deadline() is None
    core.handle(io.Start(), 0.0)
    assert core.local_node.state is NodeState.ALIVE
    assert core.local_node.incarnation == 1
    assert core.num_members() == 1
    deadline = core.next_deadline()
    assert deadline is not None and 0.0 <= deadline < 1.0


def test_ping_gets_an_ack_back_to_the_source() -> None:
    core = started()
    ping = Ping(7, "me", peer(2).ip_bytes(), "p2", 7946)
    out = sent_messages(core.handle(packet(ping, Address("192.0.2.9", 1)), 0.1))
    assert (peer(2), AckResp(7, None)) in [(d, m) for d, m in out if isinstance(m, AckResp)]


def test_ping_for_another_node_is_dropped_without_ack() -> None:
    core = started()
    effects = core.handle(packet(Ping(7, "someone-else"), peer(2)), 0.1)
    assert not sent_messages(effects)
    assert any(isinstance(e, io.Dropped) for e in effects)


def test_ack_payload_comes_from_the_ping_delegate() -> None:
    class P:
        def ack_payload(self) -> bytes:
            return b"coord"

        def notify_ping_complete(self, node: object, rtt: float, payload: bytes) -> None:
            pass

    cfg = lan("me")
    rng = random.Random(1)
    core = MemberlistCore(
        cfg,
        rng=rng,
        token_bytes=rng.randbytes,
        advertise=ME,
        delegate=CompositeDelegate(ping=P()),
    )
    core.handle(io.Start(), 0.0)
    out = sent_messages(core.handle(packet(Ping(3, ""), peer(2)), 0.1))
    assert any(isinstance(m, AckResp) and m.payload == b"coord" for _, m in out)


def _first_ping(core: MemberlistCore, until: float) -> tuple[float, Address, Ping]:
    while (d := core.next_deadline()) is not None and d <= until:
        for dest, msg in sent_messages(core.handle(io.Tick(), d)):
            if isinstance(msg, Ping):
                return d, dest, msg
    raise AssertionError("no ping sent")


def test_ack_ends_the_probe() -> None:
    core = started(1)
    t, dest, ping = _first_ping(core, 2.0)
    assert dest == peer(2) and ping.node == "p2" and ping.source_node == "me"
    core.awareness.apply_delta(2)
    core.handle(packet(AckResp(ping.seq_no, None), peer(2)), t + 0.01)
    assert core.health_score == 1  # -1 on success
    later = sent_messages(run(core, t + 0.99))
    assert not [m for _, m in later if isinstance(m, IndirectPingReq)]
    assert core.stats["probe_failures"] == 0


def test_missing_ack_leads_to_indirect_pings_tcp_ping_then_suspect() -> None:
    core = started(3)
    t, dest, ping = _first_ping(core, 2.0)
    target = {peer(i): f"p{i}" for i in (2, 3, 4)}[dest]
    effects = run(core, t + 0.5)
    indirect = [(d, m) for d, m in sent_messages(effects) if isinstance(m, IndirectPingReq)]
    assert len(indirect) == 2  # the two other peers
    assert all(m.node == target and m.nack and m.seq_no == ping.seq_no for _, m in indirect)
    tcp = [e for e in effects if isinstance(e, io.OpenStream)]
    assert len(tcp) == 1 and tcp[0].dest == dest
    core.handle(io.StreamResult(tcp[0].stream_id, error="i/o timeout"), t + 0.9)
    # one helper sends a nack: the other missed nack costs +1
    core.handle(packet(NackResp(ping.seq_no), indirect[0][0]), t + 0.6)
    run(core, t + 1.0)
    assert core.state.get(target).state is NodeState.SUSPECT  # type: ignore[union-attr]
    assert core.health_score == 1
    assert core.stats["probe_failures"] == 1


def test_tcp_fallback_ack_keeps_the_node_alive() -> None:
    core = started(1)
    t, _, ping = _first_ping(core, 2.0)
    tcp = [e for e in run(core, t + 0.5) if isinstance(e, io.OpenStream)]
    reply = StreamMessage(AckResp(ping.seq_no, None), b"", b"", False, False)
    core.handle(io.StreamResult(tcp[0].stream_id, reply=reply), t + 0.6)
    run(core, t + 1.0)
    assert core.state.get("p2").state is NodeState.ALIVE  # type: ignore[union-attr]


def test_no_tcp_ping_when_disabled() -> None:
    core = started(1, disable_tcp_pings=True)
    t, _, _ = _first_ping(core, 2.0)
    assert not [e for e in run(core, t + 1.0) if isinstance(e, io.OpenStream)]
    assert core.state.get("p2").state is NodeState.SUSPECT  # type: ignore[union-attr]


def test_indirect_ping_request_is_relayed_and_nacked_on_timeout() -> None:
    core = started(1)
    req = IndirectPingReq(42, peer(3).ip_bytes(), 7946, "p3", True, peer(2).ip_bytes(), "p2", 7946)
    out = sent_messages(core.handle(packet(req, peer(2)), 10.0))
    pings = [(d, m) for d, m in out if isinstance(m, Ping)]
    assert pings and pings[0][0] == peer(3) and pings[0][1].node == "p3"
    # the target answers in time: the ack is forwarded with the requester's seq
    fwd = sent_messages(core.handle(packet(AckResp(pings[0][1].seq_no, None), peer(3)), 10.1))
    assert (peer(2), AckResp(42, None)) in [(d, m) for d, m in fwd if isinstance(m, AckResp)]
    # a second request that nobody answers gets a nack after probe_timeout
    out = sent_messages(core.handle(packet(req, peer(2)), 20.0))
    effects = run(core, 20.6)
    assert (peer(2), NackResp(42)) in [(d, m) for d, m in sent_messages(effects)]


def test_a_suspect_about_us_is_refuted() -> None:
    core = started(1)
    core.handle(packet(Suspect(1, "me", "p2"), peer(2)), 1.0)
    assert core.local_node.incarnation == 2
    assert core.health_score == 1
    assert core.stats["refutes"] == 1
    # the refutation rides on the next message we send
    out = sent_messages(core.handle(packet(Ping(1, "me"), peer(2)), 1.1))
    assert any(isinstance(m, Alive) and m.node == "me" and m.incarnation == 2 for _, m in out)


def _push_pull_reply(*names: str, vsn: bytes = VSN) -> StreamMessage:
    states = [
        PushNodeState(n, peer(i + 2).ip_bytes(), 7946, b"", 1, 0, vsn) for i, n in enumerate(names)
    ]
    return StreamMessage(PushPull(True, states), b"", b"", False, False)


def test_join_completes_with_the_count_of_addresses_that_worked() -> None:
    core = started()
    effects = core.handle(io.JoinRequest(5, (peer(2), peer(3))), 1.0)
    opened = [e for e in effects if isinstance(e, io.OpenStream)]
    assert len(opened) == 2 and all(e.want_reply for e in opened)
    first = core.handle(io.StreamResult(opened[0].stream_id, reply=_push_pull_reply("p2")), 1.1)
    assert not [e for e in first if isinstance(e, io.RequestCompleted)]
    done = core.handle(io.StreamResult(opened[1].stream_id, error="connection refused"), 1.2)
    completed = [e for e in done if isinstance(e, io.RequestCompleted)]
    assert completed == [
        io.RequestCompleted(
            5, result=1, error=None, errors=("failed to join 10.0.0.3:7946: connection refused",)
        )
    ]
    assert core.num_members() == 2


def test_join_with_no_working_address_is_an_error() -> None:
    core = started()
    opened = [
        e for e in core.handle(io.JoinRequest(1, (peer(2),)), 1.0) if isinstance(e, io.OpenStream)
    ]
    done = core.handle(io.StreamResult(opened[0].stream_id, error="refused"), 1.1)
    # as Go (memberlist's join error is a go-multierror)
    assert done[-1] == io.RequestCompleted(
        1,
        result=0,
        error="1 error occurred:\n\t* failed to join 10.0.0.2:7946: refused\n\n",
        errors=("failed to join 10.0.0.2:7946: refused",),
    )


def test_join_errors_are_listed_as_go_multierror_lists_them() -> None:
    core = started()
    effects = core.handle(io.JoinRequest(3, (peer(2), peer(3))), 1.0)
    opened = [e for e in effects if isinstance(e, io.OpenStream)]
    core.handle(io.StreamResult(opened[0].stream_id, error="e2"), 1.1)
    done = core.handle(io.StreamResult(opened[1].stream_id, error="e3"), 1.2)
    assert done[-1].error == (
        "2 errors occurred:\n\t* failed to join 10.0.0.2:7946: e2\n"
        "\t* failed to join 10.0.0.3:7946: e3\n\n"
    )


def test_join_refuses_an_incompatible_protocol_version() -> None:
    core = started()
    opened = [
        e for e in core.handle(io.JoinRequest(1, (peer(2),)), 1.0) if isinstance(e, io.OpenStream)
    ]
    bad = bytes([1, 1, 1, 0, 0, 0])  # speaks only protocol 1: our current 2 does not fit
    done = core.handle(
        io.StreamResult(opened[0].stream_id, reply=_push_pull_reply("p2", vsn=bad)), 1.1
    )
    assert done[-1].error is not None and "incompatible" in done[-1].error  # type: ignore[union-attr]
    assert core.num_members() == 1


def _verify_protocol_scan(local: list[Node], remote: list[PushNodeState]) -> str | None:
    # the core's verifyProtocol as it was written first (one ordered scan), the reference
    ranges = [n.vsn for n in local if len(n.vsn) >= 6 and not n.dead_or_left()]
    ranges += [bytes(s.vsn) for s in remote if s.vsn and len(s.vsn) >= 6 and s.state == 0]
    if not ranges:
        return None
    max_pmin, min_pmax = max(v[0] for v in ranges), min(v[1] for v in ranges)
    max_dmin, min_dmax = max(v[3] for v in ranges), min(v[4] for v in ranges)
    entries = [(n.name, n.vsn) for n in local] + [(s.name, bytes(s.vsn or b"")) for s in remote]
    for name, vsn in entries:
        pcur = vsn[2] if len(vsn) >= 6 else 0
        dcur = vsn[5] if len(vsn) >= 6 else 0
        if not max_pmin <= pcur <= min_pmax:
            return (
                f"Node '{name}' protocol version ({pcur}) is incompatible: [{max_pmin}, {min_pmax}]"
            )
        if not max_dmin <= dcur <= min_dmax:
            return (
                f"Node '{name}' delegate protocol version ({dcur}) is incompatible: "
                f"[{max_dmin}, {min_dmax}]"
            )
    return None


_vsns = st.sampled_from(
    [
        b"",
        b"\x01\x05",
        VSN,
        bytes([1, 5, 3, 2, 5, 4]),
        bytes([1, 1, 1, 0, 0, 0]),
        bytes([2, 5, 2, 0, 2, 1]),
        bytes([1, 5, 5, 0, 5, 0]),
    ]
)


@given(
    local=st.lists(st.tuples(_vsns, st.sampled_from(list(NodeState))), max_size=8),
    remote=st.lists(st.tuples(_vsns, st.integers(0, 4)), max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_verify_protocol_answers_as_one_ordered_scan(
    local: list[tuple[bytes, NodeState]], remote: list[tuple[bytes, int]]
) -> None:
    core = started()
    for i, (vsn, state) in enumerate(local):
        core.state._nodes[f"l{i}"] = Node(f"l{i}", IP, 7946, b"", 1, state, 0.0, vsn)
    states = [
        PushNodeState(f"r{i}", IP, 7946, b"", 1, state, vsn or None)
        for i, (vsn, state) in enumerate(remote)
    ]
    expected = _verify_protocol_scan(list(core.state.entries()), states)
    assert core._verify_protocol(states) == expected


def test_inbound_push_pull_is_answered_then_merged() -> None:
    core = started()
    req = io.StreamRequest(9, _push_pull_reply("p2", "p3"), peer(2))
    effects = core.handle(req, 1.0)
    respond = [e for e in effects if isinstance(e, io.StreamRespond)]
    assert len(respond) == 1 and respond[0].stream_id == 9 and respond[0].data
    reply = PEER_FRAMER.stream_reader(listener=False).feed(respond[0].data)
    assert reply is not None and isinstance(reply.message, PushPull) and reply.message.join
    assert core.num_members() == 3
    assert sum(isinstance(e, io.NodeJoined) for e in effects) == 2


def test_leave_completes_when_the_broadcast_is_done() -> None:
    core = started(1, probe_interval=0.0, push_pull_interval=0.0)
    effects = core.handle(io.LeaveRequest(3, 10.0), 1.0)
    assert not [e for e in effects if isinstance(e, io.RequestCompleted)]
    effects = run(core, 5.0)
    done = [e for e in effects if isinstance(e, io.RequestCompleted)]
    assert done == [io.RequestCompleted(3)]
    assert core.local_node.state is NodeState.LEFT
    # the limit for 2 nodes is 4 * ceil(log10(3)) = 4 transmissions, one per gossip round
    dead = [m for _, m in sent_messages(effects) if type(m).__name__ == "Dead"]
    assert len(dead) == 4


def test_leave_times_out_when_nothing_is_sent() -> None:
    core = started(1, probe_interval=0.0, push_pull_interval=0.0, gossip_interval=0.0)
    core.handle(io.LeaveRequest(3, 10.0), 1.0)
    assert core.next_deadline() == 11.0
    done = core.handle(io.Tick(), 11.0)
    assert done == [io.RequestCompleted(3, error="timeout waiting for leave broadcast")]


def test_leave_alone_completes_at_once() -> None:
    core = started()
    effects = core.handle(io.LeaveRequest(3, 10.0), 1.0)
    assert effects[-1] == io.RequestCompleted(3)
    assert isinstance(effects[0], io.NodeLeft) and effects[0].node.name == "me"


def test_update_node_gossips_a_new_incarnation() -> None:
    core = started(1, probe_interval=0.0, push_pull_interval=0.0)
    core.handle(io.UpdateNodeRequest(4, 10.0), 1.0)
    assert core.local_node.incarnation == 2
    done = [e for e in run(core, 5.0) if isinstance(e, io.RequestCompleted)]
    assert done == [io.RequestCompleted(4)]


def test_garbage_packets_become_dropped_effects() -> None:
    core = started(1)
    for junk in (b"", b"\xff\xff\xff", b"\x00", b"\x07\x05\x00", bytes(range(256))):
        effects = core.handle(io.PacketReceived(junk, peer(2)), 1.0)
        assert any(isinstance(e, io.Dropped) for e in effects), junk
    assert core.stats["dropped"] >= 5


def test_user_messages_go_out_and_come_in() -> None:
    got: list[bytes] = []

    class D:
        def node_meta(self, limit: int) -> bytes:
            return b""

        def notify_msg(self, payload: bytes) -> None:
            got.append(payload)

        def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
            return []

        def local_state(self, join: bool) -> bytes:
            return b""

        def merge_remote_state(self, buf: bytes, join: bool) -> None:
            pass

    rng = random.Random(1)
    core = MemberlistCore(
        lan("me"),
        rng=rng,
        token_bytes=rng.randbytes,
        advertise=ME,
        delegate=CompositeDelegate(delegate=D()),
    )
    core.handle(io.Start(), 0.0)
    out = core.handle(io.SendBestEffort(peer(2), b"hello"), 1.0)
    assert sent_messages(out) == [(peer(2), UserMsg(b"hello"))]
    streams = core.handle(io.SendReliable(peer(2), b"big"), 1.0)
    assert isinstance(streams[0], io.OpenStream) and not streams[0].want_reply
    core.handle(packet(UserMsg(b"in"), peer(2)), 1.1)
    req = io.StreamRequest(1, StreamMessage(UserMsg(b"tcp"), b"", b"", False, False), peer(2))
    assert protocol(core.handle(req, 1.2)) == [io.StreamRespond(1, None)]
    assert got == [b"in", b"tcp"]


def test_push_pull_scale_matches_go() -> None:
    assert push_pull_scale(30.0, 32) == 30.0
    assert push_pull_scale(30.0, 33) == 60.0
    assert push_pull_scale(30.0, 64) == 60.0
    assert push_pull_scale(30.0, 65) == 90.0
    assert push_pull_scale(30.0, 1000) == 180.0


def test_shutdown_fails_pending_requests_and_stops() -> None:
    core = started()
    core.handle(io.JoinRequest(1, (peer(2),)), 1.0)
    out = core.handle(io.ShutdownRequest(), 1.1)
    assert out == [io.RequestCompleted(1, result=0, error="shut down")]
    assert core.next_deadline() is None
    assert core.handle(io.Tick(), 5.0) == []


@pytest.mark.parametrize("inc", [1, 5])
def test_alive_about_a_new_node_is_a_join(inc: int) -> None:
    core = started()
    effects = core.handle(alive(2, inc), 1.0)
    assert [type(e) for e in protocol(effects)] == [io.NodeJoined]
    assert core.num_members() == 2


def test_cidrs_allowed_filters_alive_messages() -> None:
    core = started(cidrs_allowed=("10.0.0.0/24",))
    outsider = Address("192.168.1.5", 7946)
    msg = Alive(1, "x", outsider.ip_bytes(), 7946, b"", VSN)
    effects = core.handle(packet(msg, outsider), 1.0)
    assert any(isinstance(e, io.Dropped) for e in effects)
    assert core.num_members() == 1
    core.handle(alive(2), 1.0)
    assert core.num_members() == 2


def test_merge_and_alive_delegates_can_veto() -> None:
    class Veto:
        def notify_merge(self, nodes: list[object]) -> str | None:
            return "not this cluster"

        def notify_alive(self, node: object) -> str | None:
            return "no"

    rng = random.Random(1)
    core = MemberlistCore(
        lan("me"),
        rng=rng,
        token_bytes=rng.randbytes,
        advertise=ME,
        delegate=CompositeDelegate(merge=Veto(), alive=None),  # type: ignore[arg-type]
    )
    core.handle(io.Start(), 0.0)
    opened = [
        e for e in core.handle(io.JoinRequest(1, (peer(2),)), 1.0) if isinstance(e, io.OpenStream)
    ]
    done = core.handle(io.StreamResult(opened[0].stream_id, reply=_push_pull_reply("p2")), 1.1)
    assert done[-1] == io.RequestCompleted(
        1,
        result=0,
        error="1 error occurred:\n\t* failed to join 10.0.0.2:7946: not this cluster\n\n",
        errors=("failed to join 10.0.0.2:7946: not this cluster",),
    )
    rng = random.Random(1)
    guarded = MemberlistCore(
        lan("me"),
        rng=rng,
        token_bytes=rng.randbytes,
        advertise=ME,
        delegate=CompositeDelegate(alive=Veto()),
    )
    guarded.handle(io.Start(), 0.0)  # our own alive is vetoed too, as in Go
    guarded.handle(alive(2), 1.0)
    assert guarded.state.get("p2") is None


def _no_probes(core: MemberlistCore) -> MemberlistCore:
    """Cancel the probe ticker (probe_interval must stay 1 s: it scales the suspicion)."""
    from serf.memberlist.core import TimerKind

    for token, (kind, _) in list(core._live.items()):
        if kind is TimerKind.PROBE_TICK:
            del core._live[token]
    return core


def test_suspicion_dogpile_shortens_the_timeout_to_the_minimum() -> None:
    # 11 nodes: k = 4 - 2 = 2, min = 4 * log10(11) = 4.164 s, max = 6 * min = 24.984 s
    core = _no_probes(started(10, gossip_interval=0.0, push_pull_interval=0.0))
    core.handle(packet(Suspect(1, "p2", "p3"), peer(3)), 10.0)
    run(core, 10.0 + 4.2)
    assert core.state.get("p2").state is NodeState.SUSPECT  # type: ignore[union-attr]
    core.handle(packet(Suspect(1, "p2", "p4"), peer(4)), 14.2)
    core.handle(packet(Suspect(1, "p2", "p5"), peer(5)), 14.3)
    assert core.next_deadline() == 14.3  # overdue: min 4.164 s after 10.0
    effects = run(core, 14.3)
    assert core.state.get("p2").state is NodeState.DEAD  # type: ignore[union-attr]
    assert [e.node.name for e in effects if isinstance(e, io.NodeLeft)] == ["p2"]


def test_lone_suspicion_waits_for_the_maximum() -> None:
    core = _no_probes(started(10, gossip_interval=0.0, push_pull_interval=0.0))
    core.handle(packet(Suspect(1, "p2", "p3"), peer(3)), 10.0)
    assert core.next_deadline() == pytest.approx(10.0 + 6 * 4.164)
    run(core, 10.0 + 24.9)
    assert core.state.get("p2").state is NodeState.SUSPECT  # type: ignore[union-attr]
    run(core, 10.0 + 25.0)
    assert core.state.get("p2").state is NodeState.DEAD  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(msgs=st.lists(memberlist_messages, min_size=1, max_size=4))
@pytest.mark.slow
def test_any_wellformed_packet_never_raises(msgs: list[Message]) -> None:
    core = started(2)
    parts = []
    for m in msgs:
        try:
            parts.append(PEER_FRAMER.codec.encode(m))
        except Exception:  # some generated messages cannot be encoded at all
            return
    raw = parts[0] if len(parts) == 1 else make_compound(parts)
    for now in (1.0, 2.0, 30.0):
        core.handle(io.PacketReceived(PEER_FRAMER.encode_packet(raw, crc=False), peer(2)), now)
        run(core, now)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_never_raise(data: bytes) -> None:
    core = started(1)
    core.handle(io.PacketReceived(data, peer(2)), 1.0)
    run(core, 3.0)


def test_gossip_packets_fit_the_udp_budget_with_label_and_encryption() -> None:
    from serf.wire.keyring import Keyring

    rng = random.Random(1)
    cfg = replace(lan("me"), label="cluster-a", probe_interval=0.0, push_pull_interval=0.0)
    core = MemberlistCore(
        cfg, rng=rng, token_bytes=rng.randbytes, advertise=ME, keyring=Keyring([], bytes(32))
    )
    core.handle(io.Start(), 0.0)
    sender = PacketFramer(
        "lpe", keyring=Keyring([], bytes(32)), label="cluster-a", token_bytes=rng.randbytes
    )
    for i in range(2, 202):  # 200 alives with 100-byte metas to gossip
        ip = Address(f"10.0.{i // 250}.{i % 250 + 1}", 7946).ip_bytes()
        msg = Alive(1, f"peer-{i:04d}", ip, 7946, rng.randbytes(100), VSN)
        core.handle(io.PacketReceived(sender.encode_message(msg, crc=False), peer(2)), 0.0)
    sizes = [len(e.data) for e in run(core, 5.0) if isinstance(e, io.SendPacket)]
    assert len(sizes) > 50
    assert max(sizes) <= cfg.udp_buffer_size
    assert max(sizes) > cfg.udp_buffer_size - 200  # and they are packed full


def test_awareness_stretches_the_probe_period() -> None:
    # one peer that never answers (no helpers, no TCP) but keeps refuting (a fresh alive
    # after every ping): each failed probe adds +1, so the window after a ping grows
    # 1 s, 2 s, 3 s, ... up to 8 s (awareness_max_multiplier)
    core = started(1, disable_tcp_pings=True, gossip_interval=0.0, push_pull_interval=0.0)
    pings: list[float] = []
    d = core.next_deadline()
    while d is not None and d <= 60.0:
        for _, msg in sent_messages(core.handle(io.Tick(), d)):
            if isinstance(msg, Ping):
                pings.append(d)
                core.handle(alive(2, inc=len(pings) + 1), d)
        d = core.next_deadline()
    gaps = [round(b - a) for a, b in itertools.pairwise(pings)]
    # the i-th window is min(i + 1, 8) s; as in Go, a tick can be lost at the wrap of the
    # 2-entry probe list (the wrap counts as a check and we skip ourselves): +1 s then
    windows = [min(i + 1, 8) for i in range(len(gaps))]
    assert all(w <= g <= w + 1 for g, w in zip(gaps, windows, strict=True)), gaps
    assert gaps[-1] >= 8 and core.health_score == 7


def test_an_unreadable_stream_is_answered_by_the_core() -> None:
    # one rule for the real driver and the simulator: the framing's error goes to the core,
    # which answers a StreamRejected with Go's ErrResp and closes on any other error
    from serf.wire.errors import DecodeError
    from serf.wire.framing import StreamRejected

    core = started(1)
    rejected = io.StreamUnreadable(7, StreamRejected("Stream is encrypted"), peer(2))
    out = core.handle(rejected, 1.0)
    (resp,) = [e for e in out if isinstance(e, io.StreamRespond)]
    assert resp.stream_id == 7 and resp.data is not None
    reader = PEER_FRAMER.stream_reader(listener=False)
    reply = reader.feed(resp.data) or reader.feed_eof()
    assert reply.message == ErrResp("Stream is encrypted")
    lines = [e.text for e in out if isinstance(e, LogLine)]
    assert lines == [f"memberlist: failed to receive: Stream is encrypted from={peer(2)}"]
    out = core.handle(io.StreamUnreadable(8, DecodeError("label mismatch"), peer(2)), 1.0)
    assert [e for e in out if isinstance(e, io.StreamRespond)] == [io.StreamRespond(8, None)]
    core.handle(io.ShutdownRequest(), 2.0)
    out = core.handle(io.StreamUnreadable(9, DecodeError("late"), peer(2)), 2.0)
    assert out == [io.StreamRespond(9, None)]


def test_stream_reader_finds_one_request() -> None:
    core = started()
    data = PEER_FRAMER.encode_stream_message(Ping(3, "me", b"", "p2", 0), dialer=True)
    reader = core.stream_reader(listener=True)
    got = reader.feed(data) or reader.feed_eof()
    assert got.message == Ping(3, "me", b"", "p2", 0)


def test_an_acked_probe_leaves_no_timer_behind() -> None:
    # the probe timeout's timer is cancelled by the ack: an idle node wakes for its probe
    # ticks, not also half a probe interval after each one
    core = started(1, gossip_interval=0.0, push_pull_interval=0.0)
    t, _, ping = _first_ping(core, 2.0)
    core.handle(packet(AckResp(ping.seq_no, None), peer(2)), t + 0.01)
    assert core.next_deadline() == pytest.approx(t + core.config.probe_interval)
