"""Property: after any sequence of join/leave intents about an alive member, its status is
decided by the intent with the highest LTime (first one wins a tie), and the member clock
is past every LTime seen (reference 3.6, serf_internals_test's joinLeave_ltime)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serf.core import io as sio
from serf.core.members import JOIN_INTENT, LEAVE_INTENT, NODE_JOIN, NODE_LEAVE, TRANSITIONS
from serf.core.serf import SerfCore
from serf.testing.cores import member_node, serf_core
from serf.wire.messages import MessageJoin, MessageLeave

intents = st.lists(st.tuples(st.booleans(), st.integers(1, 50)), min_size=1, max_size=30)


@given(intents)
def test_status_follows_the_newest_intent(seq: list[tuple[bool, int]]) -> None:
    core = serf_core(seed=0)
    b = member_node("b")
    core.membership.notify_join(b)
    mb = core.membership
    for is_leave, ltime in seq:
        if is_leave:
            mb.leave_intent(MessageLeave(ltime, "b"))
        else:
            mb.join_intent(MessageJoin(ltime, "b"))
    top = max(lt for _, lt in seq)
    first_top = next(is_leave for is_leave, lt in seq if lt == top)
    m = core.member("b")
    assert m is not None
    assert m.status is (sio.MemberStatus.LEAVING if first_top else sio.MemberStatus.ALIVE)
    assert core.membership.members["b"].status_ltime == top
    assert core.clock.time() > top


@given(intents)
def test_buffered_intents_keep_only_the_newest(seq: list[tuple[bool, int]]) -> None:
    core = serf_core(seed=0, start=False)
    rebroadcasts = 0
    for is_leave, ltime in seq:
        msg_ok = (
            core.membership.leave_intent(MessageLeave(ltime, "u"))
            if is_leave
            else core.membership.join_intent(MessageJoin(ltime, "u"))
        )
        rebroadcasts += msg_ok
    top = max(lt for _, lt in seq)
    assert core.membership.intents["u"][1] == top
    # a rebroadcast happens exactly when a strictly newer intent is stored
    newer = 0
    best = -1
    for _, lt in seq:
        if lt > best:
            best = lt
            newer += 1
    assert rebroadcasts == newer


def _core() -> SerfCore:
    return serf_core(seed=0)


_B = member_node("b")
_EVENT_EFFECT = {
    "member-join": sio.MemberJoined,
    "member-leave": sio.MemberLeft,
    "member-failed": sio.MemberFailed,
}


@pytest.mark.parametrize("status", list(sio.MemberStatus))
@pytest.mark.parametrize("event", [NODE_JOIN, NODE_LEAVE, LEAVE_INTENT, JOIN_INTENT])
def test_every_status_input_pair_follows_the_table(event: str, status: sio.MemberStatus) -> None:
    core = _core()
    core.membership.notify_join(_B)
    core.membership.members["b"].status = status
    out = core.services.begin(core.services.now)
    if event == NODE_JOIN:
        core.membership.notify_join(_B)
    elif event == NODE_LEAVE:
        core.membership.notify_leave(_B)
    elif event == LEAVE_INTENT:
        core.membership.leave_intent(MessageLeave(10, "b"))
    else:
        core.membership.join_intent(MessageJoin(10, "b"))
    step = TRANSITIONS.get((event, status))
    emitted = [type(e) for e in out if isinstance(e, tuple(_EVENT_EFFECT.values()))]
    if step is None:
        assert core.membership.members["b"].status is status and emitted == []
    else:
        assert core.membership.members["b"].status is step[0]
        assert emitted == ([_EVENT_EFFECT[step[1]]] if step[1] else [])
    if step is not None and step[0] is sio.MemberStatus.FAILED and status is not step[0]:
        assert "b" in core.membership.failed
    if step is not None and step[0] is sio.MemberStatus.LEFT and status is not step[0]:
        assert "b" in core.membership.left and "b" not in core.membership.failed
    if event == NODE_JOIN:
        assert "b" not in core.membership.failed and "b" not in core.membership.left
