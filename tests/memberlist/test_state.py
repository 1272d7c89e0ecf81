"""The member state table: one example per rule of reference 1.3, and property tests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serf.memberlist.state import (
    Broadcast,
    CancelSuspicion,
    ConfirmSuspicion,
    ConflictDetected,
    Effect,
    Node,
    NodeState,
    NotifyJoin,
    NotifyLeave,
    NotifyUpdate,
    Refuted,
    StartSuspicion,
    StateTable,
)
from serf.wire.messages import Alive, Dead, PushNodeState, Suspect

ME = "me"
IP_ME = b"\x0a\x00\x00\x01"
IP_A = b"\x0a\x00\x00\x02"
IP_B = b"\x0a\x00\x00\x03"
VSN = bytes([1, 5, 2, 2, 5, 4])


def alive(node: str, inc: int, addr: bytes = IP_A, port: int = 7946, meta: bytes = b"") -> Alive:
    return Alive(inc, node, addr, port, meta, VSN)


def table(**kwargs: Any) -> StateTable:
    """A table whose local node is created as Go's Create does (incarnation 1)."""
    t = StateTable(ME, **kwargs)
    t.handle_alive(alive(ME, t.next_incarnation(), IP_ME), 0.0, bootstrap=True)
    return t


def with_alive_a(inc: int = 5, **kwargs: Any) -> StateTable:
    t = table(**kwargs)
    t.handle_alive(alive("a", inc), 1.0)
    return t


def state_of(t: StateTable, name: str) -> NodeState:
    node = t.get(name)
    assert node is not None
    return node.state


def inc_of(t: StateTable, name: str) -> int:
    node = t.get(name)
    assert node is not None
    return node.incarnation


def kinds(effects: list[Effect]) -> list[type]:
    return [type(e) for e in effects]


# -- bootstrap and joins ----------------------------------------------------------------------


def test_bootstrap_creates_us_alive_and_notifies_our_join() -> None:
    t = StateTable(ME)
    effects = t.handle_alive(alive(ME, t.next_incarnation(), IP_ME), 0.0, bootstrap=True)
    assert kinds(effects) == [Broadcast, NotifyJoin]
    me = t.get(ME)
    assert me is not None
    assert (me.state, me.incarnation, me.addr, me.vsn) == (NodeState.ALIVE, 1, IP_ME, VSN)
    assert t.num_alive() == 1


def test_new_node_joins() -> None:
    t = table()
    effects = t.handle_alive(alive("a", 1, meta=b"m"), 3.0)
    assert kinds(effects) == [Broadcast, NotifyJoin]
    assert isinstance(effects[0], Broadcast) and effects[0].name == "a"
    join = effects[1]
    assert isinstance(join, NotifyJoin)
    assert (join.node.name, join.node.meta, join.node.state) == ("a", b"m", NodeState.ALIVE)
    node = t.get("a")
    assert node is not None and node.state_change == 3.0
    assert t.num_alive() == 2 and t.num_nodes() == 2


def test_notifications_are_snapshots() -> None:
    t = table()
    (_, join) = t.handle_alive(alive("a", 1), 1.0)
    t.handle_dead(Dead(1, "a", ME), 2.0)
    assert isinstance(join, NotifyJoin) and join.node.state is NodeState.ALIVE


def test_new_node_at_incarnation_zero_stays_a_dead_placeholder() -> None:
    # as Go: the placeholder is inserted, then the alive is stale against incarnation 0
    t = table()
    assert t.handle_alive(alive("a", 0), 1.0) == []
    assert state_of(t, "a") is NodeState.DEAD
    assert [n.name for n in t.reap(1.0, 30.0)] == ["a"]


def test_bad_vsn_is_ignored() -> None:
    t = table()
    for vsn in (bytes([0, 5, 2]), bytes([1, 0, 2]), bytes([3, 2, 2, 0, 0, 0])):
        assert t.handle_alive(Alive(1, "a", IP_A, 7946, b"", vsn), 1.0) == []
    assert "a" not in t


def test_alive_filter_vetoes_and_wants_full_vsn() -> None:
    seen: list[Node] = []

    def veto_b(node: Node) -> bool:
        seen.append(node)
        return node.name != "b"

    t = table(alive_filter=veto_b)
    assert t.handle_alive(alive("b", 1, IP_B), 1.0) == []
    assert t.handle_alive(Alive(1, "c", IP_B, 7946, b"", bytes([1, 5, 2])), 1.0) == []
    assert kinds(t.handle_alive(alive("a", 1), 1.0)) == [Broadcast, NotifyJoin]
    assert [n.name for n in seen] == [ME, "b", "a"]  # as Go, our own alive too


# -- alive about others -----------------------------------------------------------------------


@pytest.mark.parametrize("inc", [4, 5])
def test_stale_or_equal_incarnation_is_ignored(inc: int) -> None:
    t = with_alive_a(5)
    assert t.handle_alive(alive("a", inc, meta=b"new"), 2.0) == []
    assert inc_of(t, "a") == 5


def test_newer_alive_with_new_meta_is_an_update() -> None:
    t = with_alive_a(5)
    effects = t.handle_alive(alive("a", 6, meta=b"new"), 2.0)
    assert kinds(effects) == [Broadcast, NotifyUpdate]
    node = t.get("a")
    assert node is not None
    assert (node.incarnation, node.meta, node.state_change) == (6, b"new", 1.0)


def test_newer_alive_same_meta_is_only_rebroadcast() -> None:
    t = with_alive_a(5)
    assert kinds(t.handle_alive(alive("a", 6), 2.0)) == [Broadcast]


def test_alive_clears_suspicion() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    effects = t.handle_alive(alive("a", 6), 3.0)
    assert kinds(effects) == [CancelSuspicion, Broadcast]
    assert state_of(t, "a") is NodeState.ALIVE
    node = t.get("a")
    assert node is not None and node.state_change == 3.0


def test_dead_node_comes_back_with_a_higher_incarnation_and_joins() -> None:
    t = with_alive_a(5)
    t.handle_dead(Dead(5, "a", "b"), 2.0)
    assert t.handle_alive(alive("a", 5), 3.0) == []
    assert kinds(t.handle_alive(alive("a", 6), 3.0)) == [Broadcast, NotifyJoin]


def test_left_node_needs_a_higher_incarnation_from_the_same_address() -> None:
    t = with_alive_a(5)
    t.handle_dead(Dead(5, "a", "a"), 2.0)
    assert state_of(t, "a") is NodeState.LEFT
    assert t.handle_alive(alive("a", 5), 3.0) == []
    assert state_of(t, "a") is NodeState.LEFT


# -- conflicts and dead-node reclaim (reference 1.4.7) -----------------------------------------


def test_alive_node_from_another_address_is_a_conflict() -> None:
    t = with_alive_a(5)
    (effect,) = t.handle_alive(alive("a", 9, IP_B), 2.0)
    assert isinstance(effect, ConflictDetected)
    assert (effect.existing.addr, effect.other.addr, effect.other.name) == (IP_A, IP_B, "a")
    node = t.get("a")
    assert node is not None and (node.addr, node.incarnation) == (IP_A, 5)


def test_suspect_node_address_can_never_be_replaced() -> None:
    t = with_alive_a(5, dead_node_reclaim_time=1.0)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    assert kinds(t.handle_alive(alive("a", 9, IP_B), 100.0)) == [ConflictDetected]


def test_another_port_is_another_address() -> None:
    t = with_alive_a(5)
    assert kinds(t.handle_alive(alive("a", 9, IP_A, port=7000), 2.0)) == [ConflictDetected]


def test_left_node_address_can_always_be_replaced_even_at_a_lower_incarnation() -> None:
    t = with_alive_a(5)
    t.handle_dead(Dead(5, "a", "a"), 2.0)
    effects = t.handle_alive(alive("a", 1, IP_B), 2.5)
    assert kinds(effects) == [Broadcast, NotifyJoin]
    node = t.get("a")
    assert node is not None
    assert (node.addr, node.incarnation, node.state) == (IP_B, 1, NodeState.ALIVE)


def test_dead_node_reclaim_needs_the_reclaim_time() -> None:
    t = with_alive_a(5, dead_node_reclaim_time=10.0)
    t.handle_dead(Dead(5, "a", "b"), 2.0)
    assert kinds(t.handle_alive(alive("a", 1, IP_B), 12.0)) == [ConflictDetected]  # not yet
    assert kinds(t.handle_alive(alive("a", 1, IP_B), 12.5)) == [Broadcast, NotifyJoin]
    node = t.get("a")
    assert node is not None and node.addr == IP_B


def test_dead_node_reclaim_is_off_by_default() -> None:
    t = with_alive_a(5)
    t.handle_dead(Dead(5, "a", "b"), 2.0)
    assert kinds(t.handle_alive(alive("a", 9, IP_B), 1e9)) == [ConflictDetected]


def test_alive_about_us_from_another_address_is_a_conflict_not_a_refute() -> None:
    t = table()
    assert kinds(t.handle_alive(alive(ME, 7, IP_B), 1.0)) == [ConflictDetected]
    assert inc_of(t, ME) == 1


# -- alive about ourselves --------------------------------------------------------------------


def test_alive_about_us_with_higher_incarnation_is_refuted() -> None:
    t = table()
    effects = t.handle_alive(alive(ME, 7, IP_ME), 1.0)
    assert kinds(effects) == [Broadcast, Refuted]
    b, r = effects
    assert isinstance(b, Broadcast) and isinstance(b.message, Alive)
    assert b.message.incarnation == 8 and b.message.addr == IP_ME and b.message.vsn == VSN
    assert r == Refuted(8)
    assert inc_of(t, ME) == 8 and t.incarnation == 8


def test_alive_about_us_with_different_meta_is_refuted() -> None:
    t = table()
    effects = t.handle_alive(alive(ME, 1, IP_ME, meta=b"old config"), 1.0)
    assert kinds(effects) == [Broadcast, Refuted]
    assert inc_of(t, ME) == 2
    me = t.get(ME)
    assert me is not None and me.meta == b""


def test_alive_about_us_saying_what_we_say_is_ignored() -> None:
    t = table()
    assert t.handle_alive(alive(ME, 1, IP_ME), 1.0) == []


def test_older_alive_about_us_is_ignored() -> None:
    t = table()
    t.refute(4)
    assert t.handle_alive(alive(ME, 3, IP_ME, meta=b"x"), 1.0) == []


def test_update_node_is_a_bootstrap_alive() -> None:
    t = table()
    effects = t.handle_alive(alive(ME, t.next_incarnation(), IP_ME, meta=b"tags"), 1.0, True)
    assert kinds(effects) == [Broadcast, NotifyUpdate]
    assert inc_of(t, ME) == 2


# -- suspect ----------------------------------------------------------------------------------


def test_suspect_starts_suspicion() -> None:
    t = with_alive_a(5)
    effects = t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    assert effects == [
        Broadcast("a", Suspect(5, "a", "b")),
        StartSuspicion("a", 5, "b"),
    ]
    node = t.get("a")
    assert node is not None
    assert (node.state, node.state_change) == (NodeState.SUSPECT, 2.0)
    assert t.num_alive() == 2  # a suspect still counts


def test_suspect_takes_a_higher_incarnation() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(8, "a", "b"), 2.0)
    assert inc_of(t, "a") == 8


def test_stale_suspect_and_unknown_node_are_ignored() -> None:
    t = with_alive_a(5)
    assert t.handle_suspect(Suspect(4, "a", "b"), 2.0) == []
    assert t.handle_suspect(Suspect(9, "zz", "b"), 2.0) == []
    assert state_of(t, "a") is NodeState.ALIVE


def test_suspect_of_a_suspect_is_a_confirmation() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    (effect,) = t.handle_suspect(Suspect(5, "a", "c"), 3.0)
    assert effect == ConfirmSuspicion("a", "c", Broadcast("a", Suspect(5, "a", "c")))
    node = t.get("a")
    assert node is not None and node.state_change == 2.0


def test_suspect_of_dead_node_is_ignored() -> None:
    t = with_alive_a(5)
    t.handle_dead(Dead(5, "a", "b"), 2.0)
    assert t.handle_suspect(Suspect(5, "a", "b"), 3.0) == []


def test_suspect_about_us_is_refuted_past_the_accusation() -> None:
    t = table()
    effects = t.handle_suspect(Suspect(10, ME, "a"), 1.0)
    assert kinds(effects) == [Broadcast, Refuted]
    assert effects[1] == Refuted(11)
    assert state_of(t, ME) is NodeState.ALIVE and inc_of(t, ME) == 11


def test_refute_takes_the_next_incarnation_when_it_is_already_past() -> None:
    t = table()
    t.refute(10)  # 11
    assert t.refute(3)[1] == Refuted(12)


def test_suspicion_expiry_declares_dead() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    effects = t.suspicion_expired("a", 5, 7.0)
    assert effects == [
        CancelSuspicion("a"),
        Broadcast("a", Dead(5, "a", ME)),
        NotifyLeave(Node("a", IP_A, 7946, b"", 5, NodeState.DEAD, 7.0, VSN)),
    ]


def test_stale_suspicion_expiry_does_nothing() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    t.handle_alive(alive("a", 6), 3.0)  # refuted
    assert t.suspicion_expired("a", 5, 7.0) == []
    t.handle_suspect(Suspect(6, "a", "b"), 4.0)
    assert t.suspicion_expired("a", 5, 7.0) == []
    assert t.suspicion_expired("zz", 5, 7.0) == []
    assert state_of(t, "a") is NodeState.SUSPECT


# -- dead -------------------------------------------------------------------------------------


def test_dead_from_another_node_is_dead() -> None:
    t = with_alive_a(5)
    effects = t.handle_dead(Dead(6, "a", "b"), 2.0)
    assert kinds(effects) == [Broadcast, NotifyLeave]
    node = t.get("a")
    assert node is not None
    assert (node.state, node.incarnation, node.state_change) == (NodeState.DEAD, 6, 2.0)
    assert t.num_alive() == 1 and t.num_nodes() == 2


def test_dead_from_the_node_itself_is_left() -> None:
    t = with_alive_a(5)
    assert kinds(t.handle_dead(Dead(5, "a", "a"), 2.0)) == [Broadcast, NotifyLeave]
    assert state_of(t, "a") is NodeState.LEFT


def test_dead_cancels_suspicion() -> None:
    t = with_alive_a(5)
    t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    assert kinds(t.handle_dead(Dead(5, "a", "b"), 3.0)) == [
        CancelSuspicion,
        Broadcast,
        NotifyLeave,
    ]


def test_stale_dead_unknown_node_and_already_dead_are_ignored() -> None:
    t = with_alive_a(5)
    assert t.handle_dead(Dead(4, "a", "b"), 2.0) == []
    assert t.handle_dead(Dead(9, "zz", "b"), 2.0) == []
    t.handle_dead(Dead(5, "a", "b"), 2.0)
    assert t.handle_dead(Dead(7, "a", "a"), 3.0) == []
    assert state_of(t, "a") is NodeState.DEAD and inc_of(t, "a") == 5


def test_dead_about_us_is_refuted() -> None:
    t = table()
    effects = t.handle_dead(Dead(3, ME, "a"), 1.0)
    assert kinds(effects) == [Broadcast, Refuted]
    assert state_of(t, ME) is NodeState.ALIVE and inc_of(t, ME) == 4


def test_leave_marks_us_left_and_broadcasts_our_dead() -> None:
    t = with_alive_a(5)
    effects = t.leave(2.0)
    assert kinds(effects) == [Broadcast, NotifyLeave]
    assert effects[0] == Broadcast(ME, Dead(1, ME, ME))
    assert state_of(t, ME) is NodeState.LEFT and t.leaving
    assert t.leave(3.0) == []
    # while leaving: no refutation, and an in-flight alive about us does not re-join us
    assert t.handle_dead(Dead(9, ME, "a"), 3.0) == []
    assert t.handle_alive(alive(ME, 9, IP_ME), 3.0) == []
    assert t.handle_suspect(Suspect(9, ME, "a"), 3.0) == []
    assert state_of(t, ME) is NodeState.LEFT


def test_refute_and_leave_need_our_own_entry() -> None:
    t = StateTable(ME)
    with pytest.raises(RuntimeError, match="bootstrap"):
        t.refute(1)
    with pytest.raises(RuntimeError, match="bootstrap"):
        t.leave(0.0)


# -- push/pull merge --------------------------------------------------------------------------


def pns(name: str, inc: int, state: NodeState, addr: bytes = IP_A) -> PushNodeState:
    return PushNodeState(name, addr, 7946, b"", inc, int(state), VSN)


def test_merge_applies_alive_entries() -> None:
    t = table()
    effects = t.merge_remote_state(
        [pns("a", 1, NodeState.ALIVE), pns(ME, 1, NodeState.ALIVE, IP_ME)], 1.0
    )
    assert kinds(effects) == [Broadcast, NotifyJoin]
    assert state_of(t, "a") is NodeState.ALIVE


def test_merge_turns_remote_dead_into_a_suspicion_from_us() -> None:
    t = with_alive_a(5)
    effects = t.merge_remote_state([pns("a", 5, NodeState.DEAD)], 2.0)
    assert effects == [Broadcast("a", Suspect(5, "a", ME)), StartSuspicion("a", 5, ME)]
    assert state_of(t, "a") is NodeState.SUSPECT


def test_merge_remote_suspect_is_a_suspicion() -> None:
    t = with_alive_a(5)
    t.merge_remote_state([pns("a", 6, NodeState.SUSPECT)], 2.0)
    assert state_of(t, "a") is NodeState.SUSPECT and inc_of(t, "a") == 6


def test_merge_remote_left_is_a_leave() -> None:
    t = with_alive_a(5)
    effects = t.merge_remote_state([pns("a", 5, NodeState.LEFT)], 2.0)
    assert effects[0] == Broadcast("a", Dead(5, "a", "a"))
    assert state_of(t, "a") is NodeState.LEFT


def test_merge_remote_dead_or_left_about_us_is_refuted() -> None:
    t = table()
    for i, st_ in enumerate((NodeState.DEAD, NodeState.SUSPECT, NodeState.LEFT)):
        effects = t.merge_remote_state([pns(ME, 10 * (i + 1), st_, IP_ME)], 1.0)
        assert effects[-1] == Refuted(10 * (i + 1) + 1)
    assert state_of(t, ME) is NodeState.ALIVE


def test_merge_ignores_unknown_states_and_unknown_dead_nodes() -> None:
    t = table()
    assert t.merge_remote_state([PushNodeState("a", IP_A, 1, b"", 1, 9, VSN)], 1.0) == []
    assert t.merge_remote_state([pns("b", 1, NodeState.DEAD)], 1.0) == []
    assert "a" not in t and "b" not in t


# -- reaping ----------------------------------------------------------------------------------


def test_reap_forgets_dead_and_left_after_the_window() -> None:
    t = table()
    for name, ip in (("a", IP_A), ("b", IP_B), ("c", b"\x0a\x00\x00\x04")):
        t.handle_alive(alive(name, 1, ip), 0.0)
    t.handle_dead(Dead(1, "a", "x"), 10.0)
    t.handle_dead(Dead(1, "b", "b"), 20.0)
    t.leave(10.0)
    assert t.reap(40.0, 30.0) == []  # exactly the window: kept
    assert [n.name for n in t.reap(40.5, 30.0)] == ["a"]
    assert [n.name for n in t.reap(100.0, 30.0)] == ["b"]
    assert [n.name for n in t.members()] == [ME, "c"]  # never ourselves


# -- every (state, input) pair, as a table ------------------------------------------------------

A, S, D, L = NodeState.ALIVE, NodeState.SUSPECT, NodeState.DEAD, NodeState.LEFT

# (state of "a" at incarnation 5, input) -> (state, incarnation) for inputs at 4, 5 and 6.
# "dead" comes from another node, "leave" from "a" itself; "alive" keeps the address.
TRANSITIONS: dict[tuple[NodeState, str], list[tuple[NodeState, int]]] = {
    (A, "alive"): [(A, 5), (A, 5), (A, 6)],
    (S, "alive"): [(S, 5), (S, 5), (A, 6)],
    (D, "alive"): [(D, 5), (D, 5), (A, 6)],
    (L, "alive"): [(L, 5), (L, 5), (A, 6)],
    (A, "suspect"): [(A, 5), (S, 5), (S, 6)],
    (S, "suspect"): [(S, 5), (S, 5), (S, 5)],  # a confirmation changes nothing here
    (D, "suspect"): [(D, 5), (D, 5), (D, 5)],
    (L, "suspect"): [(L, 5), (L, 5), (L, 5)],
    (A, "dead"): [(A, 5), (D, 5), (D, 6)],
    (S, "dead"): [(S, 5), (D, 5), (D, 6)],
    (D, "dead"): [(D, 5), (D, 5), (D, 5)],
    (L, "dead"): [(L, 5), (L, 5), (L, 5)],
    (A, "leave"): [(A, 5), (L, 5), (L, 6)],
    (S, "leave"): [(S, 5), (L, 5), (L, 6)],
    (D, "leave"): [(D, 5), (D, 5), (D, 5)],
    (L, "leave"): [(L, 5), (L, 5), (L, 5)],
}


def table_with_a_in(start: NodeState) -> StateTable:
    t = with_alive_a(5)
    if start is S:
        t.handle_suspect(Suspect(5, "a", "b"), 2.0)
    elif start is D:
        t.handle_dead(Dead(5, "a", "b"), 2.0)
    elif start is L:
        t.handle_dead(Dead(5, "a", "a"), 2.0)
    assert state_of(t, "a") is start
    return t


@pytest.mark.parametrize(("start", "kind"), sorted(TRANSITIONS, key=str))
@pytest.mark.parametrize("inc", [4, 5, 6])
def test_every_state_input_pair(start: NodeState, kind: str, inc: int) -> None:
    t = table_with_a_in(start)
    if kind == "alive":
        t.handle_alive(alive("a", inc), 3.0)
    elif kind == "suspect":
        t.handle_suspect(Suspect(inc, "a", "c"), 3.0)
    else:
        t.handle_dead(Dead(inc, "a", "b" if kind == "dead" else "a"), 3.0)
    assert (state_of(t, "a"), inc_of(t, "a")) == TRANSITIONS[start, kind][inc - 4]


# -- properties -------------------------------------------------------------------------------

NAMES = [ME, "a", "b", "c"]
ADDRS = {ME: [IP_ME, IP_B], "a": [IP_A, IP_B], "b": [IP_B, IP_A], "c": [IP_A, IP_ME]}

names = st.sampled_from(NAMES)
incs = st.integers(min_value=0, max_value=12)
inputs = st.one_of(
    st.tuples(st.just("alive"), names, incs, st.integers(0, 1), st.sampled_from([b"", b"m"])),
    st.tuples(st.just("suspect"), names, incs, names),
    st.tuples(st.just("dead"), names, incs, names),
    st.tuples(
        st.just("merge"),
        st.lists(st.tuples(names, incs, st.sampled_from(list(NodeState)), st.integers(0, 1))),
    ),
    st.tuples(st.just("expire"), names, incs),
    st.tuples(st.just("reap"), st.sampled_from([0.0, 5.0])),
    st.tuples(st.just("leave")),
)


def effect_names(effect: Effect) -> list[str]:
    if isinstance(effect, Broadcast):
        return [effect.name, effect.message.node]
    if isinstance(effect, (NotifyJoin, NotifyLeave, NotifyUpdate)):
        return [effect.node.name]
    if isinstance(effect, (StartSuspicion, ConfirmSuspicion, CancelSuspicion)):
        return [effect.node_name]
    if isinstance(effect, ConflictDetected):
        return [effect.existing.name, effect.other.name]
    return [ME]  # Refuted is about us


@settings(max_examples=400, deadline=None)
@given(
    steps=st.lists(inputs, max_size=40),
    reclaim=st.sampled_from([0.0, 2.0]),
    leave_allowed=st.booleans(),
)
@pytest.mark.slow
def test_invariants_over_random_inputs(
    steps: list[tuple[Any, ...]], reclaim: float, leave_allowed: bool
) -> None:
    t = StateTable(ME, dead_node_reclaim_time=reclaim)
    t.handle_alive(alive(ME, t.next_incarnation(), IP_ME), 0.0, bootstrap=True)
    now = 0.0
    # a merge is a loop over its entries; check the invariants after each entry
    ops: list[tuple[Any, ...]] = []
    for step in steps:
        if step[0] == "merge":
            ops.extend(("merge", [entry]) for entry in step[1])
        else:
            ops.append(step)
    for step in ops:
        now += 1.0
        before = {n.name: n for n in t.members()}
        accused: int | None = None
        kind = step[0]
        if kind == "alive":
            _, name, inc, a, meta = step
            effects = t.handle_alive(Alive(inc, name, ADDRS[name][a], 7946, meta, VSN), now)
        elif kind == "suspect":
            _, name, inc, frm = step
            effects = t.handle_suspect(Suspect(inc, name, frm), now)
            accused = inc if name == ME else None
        elif kind == "dead":
            _, name, inc, frm = step
            effects = t.handle_dead(Dead(inc, name, frm), now)
            accused = inc if name == ME else None
        elif kind == "merge":
            states = [
                PushNodeState(n, ADDRS[n][a], 7946, b"", i, int(s), VSN) for n, i, s, a in step[1]
            ]
            effects = t.merge_remote_state(states, now)
            about_us = [s.incarnation for s in states if s.name == ME and s.state != 0]
            accused = max(about_us) if about_us else None
        elif kind == "expire":
            effects = t.suspicion_expired(step[1], step[2], now)
        elif kind == "reap":
            t.reap(now, step[1])
            effects = []
        elif leave_allowed:
            effects = t.leave(now)
        else:
            effects = []

        after = {n.name: n for n in t.members()}
        # the kept count of live entries is the count of a scan
        assert t.num_alive() == sum(1 for n in after.values() if not n.dead_or_left())
        # suspicion effects match the states they start and stop
        for effect in effects:
            if isinstance(effect, StartSuspicion):
                node = after[effect.node_name]
                assert (node.state, node.incarnation) == (NodeState.SUSPECT, effect.incarnation)
            elif isinstance(effect, ConfirmSuspicion):
                assert after[effect.node_name].state is NodeState.SUSPECT
            elif isinstance(effect, CancelSuspicion):
                assert before[effect.node_name].state is NodeState.SUSPECT
                assert after[effect.node_name].state is not NodeState.SUSPECT
        # no effect references a node the table does not know
        for effect in effects:
            for name in effect_names(effect):
                assert name in after, (effect, after)
        # our entry is always there; our incarnation never goes down
        assert after[ME].incarnation >= before[ME].incarnation
        assert t.incarnation >= after[ME].incarnation
        if accused is not None and not t.leaving:
            assert after[ME].state is NodeState.ALIVE
            assert after[ME].incarnation > accused
        for name, old in before.items():
            new = after.get(name)
            if new is None:
                assert old.dead_or_left()  # only reaping forgets, and only the dead
                continue
            reclaimed = (old.addr, old.port) != (new.addr, new.port)
            if reclaimed:
                # only a LEFT node, or a DEAD one past the reclaim time, changes address
                assert old.state is NodeState.LEFT or (
                    old.state is NodeState.DEAD and reclaim > 0
                ), (old, new)
            else:
                # a node's incarnation never goes down while it keeps its address ...
                assert new.incarnation >= old.incarnation, (old, new)
                # ... and a LEFT node returns only with a newer incarnation
                if old.state is NodeState.LEFT and new.state is NodeState.ALIVE:
                    assert new.incarnation > old.incarnation
        if t.leaving:
            assert after[ME].state is NodeState.LEFT


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(st.tuples(names, incs, st.sampled_from(list(NodeState)), st.integers(0, 1))),
    seed_alive=st.lists(st.tuples(names, incs), max_size=4),
)
def test_a_merge_is_its_entries_in_order(
    entries: list[tuple[str, int, NodeState, int]], seed_alive: list[tuple[str, int]]
) -> None:
    def fresh() -> StateTable:
        t = table()
        for name, inc in seed_alive:
            t.handle_alive(alive(name, inc, ADDRS[name][0]), 0.5)
        return t

    states = [PushNodeState(n, ADDRS[n][a], 7946, b"", i, int(s), VSN) for n, i, s, a in entries]
    batch, single = fresh(), fresh()
    batch_effects = batch.merge_remote_state(states, 1.0)
    single_effects = [e for s in states for e in single.merge_remote_state([s], 1.0)]
    assert batch_effects == single_effects
    assert batch.members() == single.members()


# -- sans-IO ----------------------------------------------------------------------------------


# -- the driver's shortcut for gossip repeats ---------------------------------------------------

_NAMES = st.sampled_from([ME, "a", "b"])
_ADDRS = st.sampled_from([IP_ME, IP_A, IP_B, b"", None])


@given(
    history=st.lists(
        st.tuples(
            st.sampled_from(["alive", "suspect", "dead"]),
            _NAMES,
            st.integers(0, 6),
            _ADDRS,
            st.sampled_from([7946, 7947]),
        ),
        max_size=8,
    ),
    probe=st.tuples(_NAMES, st.integers(0, 6), _ADDRS, st.sampled_from([7946, 7947])),
    leaving=st.booleans(),
    reclaim=st.sampled_from([0.0, 1.0]),
)
@settings(max_examples=400, deadline=None)
def test_ignores_alive_means_handle_alive_does_nothing(
    history: list[tuple[str, str, int, bytes | None, int]],
    probe: tuple[str, int, bytes | None, int],
    leaving: bool,
    reclaim: float,
) -> None:
    t = table(dead_node_reclaim_time=reclaim)
    now = 1.0
    for kind, name, inc, addr, port in history:
        now += 1.0
        if kind == "alive":
            t.handle_alive(Alive(inc, name, addr, port, b"", VSN), now)
        elif kind == "suspect":
            t.handle_suspect(Suspect(inc, name, ME), now)
        else:
            t.handle_dead(Dead(inc, name, "b"), now)
    if leaving:
        t.leave(now)
    name, inc, addr, port = probe
    msg = Alive(inc, name, addr, port, b"", VSN)
    if t.ignores_alive(msg):
        before = t.members()
        assert t.handle_alive(msg, now + 1.0) == []
        assert t.members() == before
        assert name != ME


def test_num_alive_follows_every_transition() -> None:
    t = with_alive_a(5)
    assert t.num_alive() == 2
    t.handle_suspect(Suspect(5, "a", ME), 2.0)
    assert t.num_alive() == 2  # a suspect still counts
    t.handle_alive(alive("a", 6), 3.0)
    assert t.num_alive() == 2  # suspect -> alive is no join
    t.handle_alive(alive("b", 0), 3.5)
    assert t.num_alive() == 2  # a placeholder is dead
    t.handle_dead(Dead(6, "a", "b"), 4.0)
    t.handle_dead(Dead(6, "a", "b"), 4.5)
    assert t.num_alive() == 1
    t.handle_alive(alive("a", 7), 5.0)
    assert t.num_alive() == 2  # dead -> alive is a join
    t.reap(100.0, 1.0)
    t.leave(101.0)
    assert t.num_alive() == 1 == sum(1 for n in t.entries() if not n.dead_or_left())


def test_ignores_alive_only_without_an_alive_delegate() -> None:
    t = with_alive_a(5)
    assert t.ignores_alive(alive("a", 5)) and t.ignores_alive(alive("a", 4))
    assert not t.ignores_alive(alive("a", 6))
    assert not t.ignores_alive(alive("a", 5, IP_B))
    assert not t.ignores_alive(alive("b", 1))
    vetoing = with_alive_a(5, alive_filter=lambda node: True)
    assert not vetoing.ignores_alive(alive("a", 5))


def test_tables_share_one_object_per_equal_name_address_meta_and_vsn() -> None:
    # a simulation holds N views of the same members: each view must not keep its own copies
    # of what every decoded message brings anew
    def fresh() -> Alive:
        return Alive(5, "".join(["no", "de"]), bytes(IP_A), 7946, b"m" * 3, bytes(VSN))

    first, second = table(), table()
    effects = first.handle_alive(fresh(), 1.0)
    second.handle_alive(fresh(), 1.0)
    a, b = first.get("node"), second.get("node")
    assert a is not None and b is not None
    assert a.name is b.name and a.addr is b.addr and a.meta is b.meta and a.vsn is b.vsn
    # nor as the table's key, nor in the broadcast it queues
    assert next(key for key in first._nodes if key == "node") is a.name
    broadcast = next(e for e in effects if isinstance(e, Broadcast))
    assert broadcast.name is a.name
