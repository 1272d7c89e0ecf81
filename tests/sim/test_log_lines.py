"""Go's log lines from the cores: each family is triggered in the simulator and found.

The cores emit :class:`serf.telemetry.LogLine` effects; an observer collects every node's
lines so each test can look for the exact text Go's memberlist / serf would write.
"""

from __future__ import annotations

from collections import defaultdict

from serf.core import io as sio
from serf.telemetry import (
    DEBUG,
    ERR,
    INFO,
    MEMBERLIST_LOGGER,
    SERF_LOGGER,
    WARN,
    LogLine,
    MetricSample,
)
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.wire.keyring import Keyring
from serf.wire.messages import Alive, Dead, Suspect


class Recorder:
    """Every LogLine and MetricSample per node, in order."""

    def __init__(self, sim: SerfSimulation) -> None:
        self.lines: dict[str, list[LogLine]] = defaultdict(list)
        self.samples: dict[str, list[MetricSample]] = defaultdict(list)
        sim.observers.append(self._seen)

    def _seen(self, now: float, node: object, eff: object) -> None:
        name = getattr(node, "name", "?")
        if isinstance(eff, LogLine):
            self.lines[name].append(eff)
        elif isinstance(eff, MetricSample):
            self.samples[name].append(eff)

    def texts(self, node: str, level: int | None = None) -> list[str]:
        return [x.text for x in self.lines[node] if level is None or x.level == level]

    def has(self, node: str, level: int, text: str) -> bool:
        return text in self.texts(node, level)


def cluster(n: int, seed: int = 1, **changes: object) -> tuple[SerfSimulation, Recorder]:
    sim = SerfSimulation(seed)
    rec = Recorder(sim)
    for i in range(n):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name, **changes), join=["n0"] if i else ())
    done = sim.run_until_converged(
        lambda s: all(len(s.serf(x).members()) == n for x in s.nodes), 30.0
    )
    assert done is not None
    return sim, rec


def test_join_lines_name_the_member_and_its_ip() -> None:
    sim, rec = cluster(3)
    ip = str(sim.nodes["n1"].address.host)
    assert rec.has("n0", INFO, f"serf: EventMemberJoin: n1 {ip}")
    assert rec.has("n0", INFO, f"serf: EventMemberJoin: n0 {sim.nodes['n0'].address.host}")
    # the joiner's push/pull and the seed's accepted stream, as Go's memberlist writes them
    assert f"memberlist: Initiating push/pull sync with:  {sim.nodes['n0'].address}" in rec.texts(
        "n1", DEBUG
    )
    assert any(t.startswith("memberlist: Stream connection from=") for t in rec.texts("n0", DEBUG))
    assert all(x.logger in (MEMBERLIST_LOGGER, SERF_LOGGER) for x in rec.lines["n0"])
    assert all(
        x.text.startswith("memberlist: ") == (x.logger == MEMBERLIST_LOGGER)
        for x in rec.lines["n0"]
    )


def test_a_killed_node_is_suspected_then_marked_failed_then_fails() -> None:
    sim, rec = cluster(4)
    sim.crash("n3")
    sim.run_for(30.0)
    ip = sim.nodes["n3"].address.host
    for node in ("n0", "n1", "n2"):
        assert rec.has(node, DEBUG, "memberlist: Failed UDP ping: n3 (timeout reached)")
    texts = [t for n in ("n0", "n1", "n2") for t in rec.texts(n)]
    assert "memberlist: Suspect n3 has failed, no acks received" in texts
    marked = [t for t in texts if t.startswith("memberlist: Marking n3 as failed")]
    assert marked and marked[0].endswith("peer confirmations)")
    for node in ("n0", "n1", "n2"):
        lines = rec.texts(node, INFO)
        assert f"serf: EventMemberFailed: n3 {ip}" in lines
    # Go's order on the node that declared it dead: "Marking" before "EventMemberFailed"
    for node in ("n0", "n1", "n2"):
        lines = rec.texts(node)
        if any(t.startswith("memberlist: Marking n3") for t in lines):
            mark = next(i for i, t in enumerate(lines) if t.startswith("memberlist: Marking n3"))
            failed = lines.index(f"serf: EventMemberFailed: n3 {ip}")
            assert mark < failed


def test_graceful_leave_and_reap() -> None:
    sim, rec = cluster(3, reconnect_timeout=5.0, tombstone_timeout=5.0)
    ip = sim.nodes["n2"].address.host
    sim.request("n2", lambda r: sio.SerfLeaveRequest(r))
    sim.run_for(60.0)
    assert rec.has("n0", INFO, f"serf: EventMemberLeave: n2 {ip}")
    assert rec.has("n0", INFO, "serf: EventMemberReap: n2")
    assert rec.has("n0", DEBUG, "serf: messageLeaveType: n2")


def test_user_event_and_query_debug_lines() -> None:
    sim, rec = cluster(3)
    sim.user_event("n1", "deploy", b"v1")
    sim.request("n2", lambda r: sio.QueryRequest(r, "uptime", b"", request_ack=True))
    sim.run_for(5.0)
    assert rec.has("n0", DEBUG, "serf: messageUserEventType: deploy")
    assert rec.has("n0", DEBUG, "serf: messageQueryType: uptime")
    assert rec.has("n2", DEBUG, "serf: messageQueryResponseType: n0")


def test_refuting_a_suspicion_about_ourselves() -> None:
    sim, _ = cluster(2)
    me = sim.nodes["n1"]
    inc = sim.serf("n1").memberlist.state.get("n1")
    assert inc is not None
    state = sim.serf("n1").memberlist.state
    state.telemetry.clear()
    assert state.handle_suspect(Suspect(inc.incarnation, "n1", "n0"), sim.now)
    assert state.handle_dead(Dead(inc.incarnation + 5, "n1", "n0"), sim.now)
    assert [(x.level, x.text) for x in state.telemetry] == [
        (WARN, "memberlist: Refuting a suspect message (from: n0)"),
        (WARN, "memberlist: Refuting a dead message (from: n0)"),
    ]
    state.telemetry.clear()
    alive = Alive(inc.incarnation + 100, "n1", inc.addr, inc.port, b"other", inc.vsn)
    state.handle_alive(alive, sim.now)
    (line,) = state.telemetry
    assert line.level == WARN
    assert line.text.startswith(
        f"memberlist: Refuting an alive message for 'n1' ({me.address.host}"
    )
    assert "meta:([111 116 104 101 114] VS [" in line.text


def test_conflicting_address_is_an_error_line() -> None:
    sim, _ = cluster(2)
    core = sim.serf("n0").memberlist
    n1 = core.state.get("n1")
    assert n1 is not None
    alive = Alive(n1.incarnation + 1, "n1", bytes([127, 9, 9, 9]), 7000, n1.meta, n1.vsn)
    effects = core.state.handle_alive(alive, sim.now)
    assert effects
    line = core.state.telemetry[-1]
    assert line.level == ERR
    assert line.text.startswith("memberlist: Conflicting address for n1. Mine: ")
    assert "Theirs: 127.9.9.9:7000 Old state: 0" in line.text


def test_bad_packets_are_logged_with_their_source() -> None:
    sim, rec = cluster(2)
    sim.feed("n0", sio_packet(b"\xff\x00garbage", sim.nodes["n1"].address))
    errs = rec.texts("n0", ERR)
    assert any(t.startswith("memberlist: ") and t.endswith(f"from={sim.nodes['n1'].address}")
               for t in errs)  # fmt: skip


def sio_packet(data: bytes, source: object) -> object:
    from serf.memberlist import io as mio

    return mio.PacketReceived(data, source)  # type: ignore[arg-type]


def test_key_queries_are_logged() -> None:
    key = bytes(range(16))
    sim = SerfSimulation(3)
    rec = Recorder(sim)
    for i in range(3):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name), join=["n0"] if i else (),
                     keyring=Keyring([key]))  # fmt: skip
    sim.run_for(5.0)
    sim.request("n0", lambda r: sio.KeyRequest(r, "install", bytes(range(1, 17))))
    sim.request("n0", lambda r: sio.KeyRequest(r, "list"))
    sim.run_for(5.0)
    assert rec.has("n1", INFO, "serf: Received install-key query")
    assert rec.has("n1", INFO, "serf: Received list-keys query")


def test_metrics_are_counted_with_go_names() -> None:
    sim, rec = cluster(3)
    sim.user_event("n1", "deploy", b"v1")
    sim.run_for(5.0)
    keys = {s.key for s in rec.samples["n0"]}
    for key in (
        ("memberlist", "msg", "alive"),
        ("memberlist", "udp", "sent"),
        ("memberlist", "udp", "received"),
        ("memberlist", "tcp", "accept"),
        ("memberlist", "probeNode"),
        ("memberlist", "gossip"),
        ("serf", "member", "join"),
        ("serf", "events"),
        ("serf", "events", "deploy"),
        ("serf", "msgs", "received"),
    ):
        assert key in keys, key
    assert sim.metric_counts[("memberlist", "udp", "sent")] > 0
    assert sum(v for (logger, _), v in sim.log_counts.items() if logger == SERF_LOGGER) > 0


def test_queue_depth_warnings_and_samples() -> None:
    sim, rec = cluster(2, queue_depth_warning=2, queue_check_interval=0.05)
    sim.partition(["n0"], ["n1"])  # nothing drains the event queue's retransmits quickly
    for i in range(20):
        sim.user_event("n0", f"e{i}", b"")
    sim.run_for(0.2)
    assert any(t.startswith("serf: Event queue depth: ") for t in rec.texts("n0", WARN)), rec.texts(
        "n0", WARN
    )
    depths = [s.value for s in rec.samples["n0"] if s.key == ("serf", "queue", "Event")]
    assert depths and max(depths) >= 2
