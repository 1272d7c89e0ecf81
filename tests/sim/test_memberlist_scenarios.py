"""Go memberlist's own scenarios (reference 5.2) re-expressed on the simulator."""

from __future__ import annotations

from serf.address import Address
from serf.memberlist import io
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.state import Node, NodeState
from serf.testing.invariants import dead_declarations
from serf.testing.sim import Simulation, sim_config
from serf.wire.messages import Alive


class App:
    """A Delegate + EventDelegate + ConflictDelegate recording what it sees."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.meta = f"meta-{name}".encode()
        self.outgoing: list[list[object]] = []  # [payload, sends left]
        self.messages: list[bytes] = []
        self.remote_states: list[tuple[bytes, bool]] = []
        self.updates: list[Node] = []
        self.conflicts: list[tuple[Node, Node]] = []

    def node_meta(self, limit: int) -> bytes:
        return self.meta

    def notify_msg(self, payload: bytes) -> None:
        self.messages.append(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        # the delegate does its own retransmits (serf uses a TransmitLimitedQueue): 10 each
        out = []
        for item in self.outgoing:
            out.append(item[0])
            item[1] = int(item[1]) - 1  # type: ignore[call-overload]
        self.outgoing = [i for i in self.outgoing if int(i[1]) > 0]  # type: ignore[call-overload]
        return out  # type: ignore[return-value]

    def local_state(self, join: bool) -> bytes:
        return f"state-of-{self.name}".encode()

    def merge_remote_state(self, buf: bytes, join: bool) -> None:
        self.remote_states.append((buf, join))

    def notify_join(self, node: Node) -> None:
        pass

    def notify_leave(self, node: Node) -> None:
        pass

    def notify_update(self, node: Node) -> None:
        self.updates.append(node)

    def notify_conflict(self, existing: Node, other: Node) -> None:
        self.conflicts.append((existing, other))


def app_cluster(n: int, seed: int) -> tuple[Simulation, dict[str, App]]:
    sim = Simulation(seed)
    apps = {f"n{i}": App(f"n{i}") for i in range(n)}
    for i, (name, app) in enumerate(apps.items()):
        d = CompositeDelegate(delegate=app, events=app, conflict=app)
        sim.add_node(name, delegate=d, join=["n0"] if i else ())
    sim.run_for(5.0)
    assert sim.all_alive() and all(x.core.num_members() == n for x in sim.live_nodes())
    return sim, apps


def test_user_data_broadcasts_and_push_pull_state_reach_the_others() -> None:
    sim, apps = app_cluster(5, seed=21)
    # the join push/pull carried each side's local state, flagged as a join
    assert (b"state-of-n0", True) in apps["n3"].remote_states
    assert (b"state-of-n3", True) in apps["n0"].remote_states
    apps["n2"].outgoing.append([b"hello from n2", 10])
    sim.run_for(2.0)
    for name, app in apps.items():
        if name != "n2":
            assert app.messages.count(b"hello from n2") >= 1, name
    # meta went out with the alive messages
    assert sim.nodes["n4"].core.state.get("n1").meta == b"meta-n1"  # type: ignore[union-attr]


def test_update_node_propagates_new_meta() -> None:
    sim, apps = app_cluster(6, seed=22)
    apps["n3"].meta = b"v2"
    sim.feed("n3", io.UpdateNodeRequest(99, 5.0))
    sim.run_for(5.0)
    assert sim.completed[99].error is None
    for name in apps:
        assert sim.nodes[name].core.state.get("n3").meta == b"v2"  # type: ignore[union-attr]
        if name != "n3":
            assert [u.meta for u in apps[name].updates if u.name == "n3"] == [b"v2"]


def test_same_name_from_another_address_is_a_conflict() -> None:
    sim, apps = app_cluster(3, seed=23)
    impostor = Address("10.9.9.9", 7946)
    framer = sim.nodes["n1"].core.framer
    claim = Alive(50, "n2", impostor.ip_bytes(), 7946, b"", bytes([1, 5, 2, 0, 0, 0]))
    sim.feed("n0", io.PacketReceived(framer.encode_message(claim, crc=False), impostor))
    assert len(apps["n0"].conflicts) == 1
    existing, other = apps["n0"].conflicts[0]
    assert existing.name == other.name == "n2" and other.addr == impostor.ip_bytes()
    assert sim.nodes["n0"].core.state.get("n2").addr == sim.nodes["n2"].address.ip_bytes()  # type: ignore[union-attr]


def test_protocol_versions_1_to_5_interoperate() -> None:
    sim = Simulation(24)
    for v in range(1, 6):
        cfg = sim_config(f"v{v}", protocol_version=v)
        sim.add_node(f"v{v}", cfg, join=["v1"] if v > 1 else ())
    sim.run_for(5.0)
    assert sim.all_alive() and all(x.core.num_members() == 5 for x in sim.live_nodes())
    sim.crash("v3")
    sim.run_for(25.0)
    assert all(x.state_of("v3") is NodeState.DEAD for x in sim.live_nodes())


def test_tcp_fallback_keeps_a_node_alive_when_udp_is_blocked() -> None:
    # two nodes (no indirect helpers): UDP cut both ways, TCP still works
    for disable, expected in ((False, NodeState.ALIVE), (True, NodeState.DEAD)):
        sim = Simulation(25)
        sim.add_node("a", sim_config("a", disable_tcp_pings=disable))
        sim.add_node("b", sim_config("b", disable_tcp_pings=disable), join=["a"])
        sim.run_for(2.0)
        sim.block("a", "b", streams=False)
        sim.block("b", "a", streams=False)
        sim.run_for(30.0)
        assert sim.nodes["a"].state_of("b") is expected, disable
        if not disable:
            assert sim.nodes["a"].core.stats["tcp_fallback_probes"] > 5
            assert not dead_declarations(sim)


def test_best_effort_and_reliable_user_messages() -> None:
    sim, apps = app_cluster(3, seed=26)
    dest = sim.nodes["n2"].address
    sim.feed("n0", io.SendBestEffort(dest, b"udp hello"))
    sim.feed("n0", io.SendReliable(dest, b"tcp hello" * 500))
    sim.run_for(1.0)
    assert sorted(apps["n2"].messages) == [b"tcp hello" * 500, b"udp hello"]
