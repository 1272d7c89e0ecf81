"""The serf member status machine as data (design principle 5; reference 3.2 and 3.6).

How this works: :data:`TRANSITIONS` maps ``(input, current status)`` to ``(new status, event
type or None)`` for the four inputs that move a known member's status: memberlist's
``node-join`` and ``node-leave`` notifications, and serf's ``leave-intent`` and
``join-intent`` (already past their LTime check). A missing pair means "ignore": no change,
no event. The serf core applies the table; side effects that depend on more than the status
(the failed/left lists, leave times, pruning, refuting an intent about ourselves) stay in the
core.
"""

from __future__ import annotations

from serf.core.io import MemberStatus

__all__ = ["NODE_JOIN", "NODE_LEAVE", "LEAVE_INTENT", "JOIN_INTENT", "TRANSITIONS", "transition"]

NODE_JOIN = "node-join"
NODE_LEAVE = "node-leave"
LEAVE_INTENT = "leave-intent"
JOIN_INTENT = "join-intent"

_S = MemberStatus

TRANSITIONS: dict[tuple[str, MemberStatus], tuple[MemberStatus, str | None]] = {
    # memberlist NotifyJoin: any known member becomes alive again
    **{(NODE_JOIN, s): (_S.ALIVE, "member-join") for s in MemberStatus},
    # memberlist NotifyLeave: only a prior leave intent makes it "left"
    (NODE_LEAVE, _S.LEAVING): (_S.LEFT, "member-leave"),
    (NODE_LEAVE, _S.ALIVE): (_S.FAILED, "member-failed"),
    # a (newer) leave intent
    (LEAVE_INTENT, _S.ALIVE): (_S.LEAVING, None),
    (LEAVE_INTENT, _S.FAILED): (_S.LEFT, "member-leave"),
    (LEAVE_INTENT, _S.LEAVING): (_S.LEAVING, None),
    (LEAVE_INTENT, _S.LEFT): (_S.LEFT, None),
    # a (newer) join intent revives only a leaving member (failed/left are not revived)
    (JOIN_INTENT, _S.LEAVING): (_S.ALIVE, None),
}


def transition(event: str, status: MemberStatus) -> tuple[MemberStatus, str | None] | None:
    """The new status and the event to emit, or None when the input is ignored."""
    return TRANSITIONS.get((event, status))
