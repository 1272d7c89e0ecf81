"""Join/leave intents and the member status machine glue (reference 3.2, 3.4).

:class:`Membership` applies memberlist's join/leave/update notifications and serf's join
and leave intents to the members of the owning :class:`serf.core.serf.SerfCore` (whose
``_members``, ``_failed``, ``_left`` and ``_intents`` tables it updates), using the
transition table of :mod:`serf.core.members`, and erases (reaps, prunes) members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf.core import io as sio
from serf.core.members import JOIN_INTENT, LEAVE_INTENT, NODE_JOIN, NODE_LEAVE, transition
from serf.core.state import MemberRecord, SerfState
from serf.memberlist.state import Node
from serf.telemetry import COUNTER, DEBUG, INFO, WARN, MetricSample, go_ip
from serf.wire.messages import MessageJoin, MessageLeave

if TYPE_CHECKING:
    from serf.core.serf import SerfCore

__all__ = ["TYPE_JOIN", "TYPE_LEAVE", "Membership"]

_MEMBER_JOIN = MetricSample(COUNTER, ("serf", "member", "join"), 1.0)
_MEMBER_FLAP = MetricSample(COUNTER, ("serf", "member", "flap"), 1.0)
_MEMBER_UPDATE = MetricSample(COUNTER, ("serf", "member", "update"), 1.0)

#: the intent kinds (the serf message types of leave and join)
TYPE_LEAVE = 0
TYPE_JOIN = 1


class Membership:
    """Member transitions and intents for one :class:`~serf.core.serf.SerfCore`."""

    def __init__(self, core: SerfCore) -> None:
        self.core = core

    def record_intent(self, name: str, kind: int, ltime: int) -> bool:
        core = self.core
        old = core._intents.get(name)
        if old is None or ltime > old[1]:
            core._intents[name] = (kind, ltime, core._now)
            return True
        return False

    def leave_intent(self, msg: MessageLeave) -> bool:
        core = self.core
        core.clock.witness(msg.ltime)
        m = core._members.get(msg.node)
        if m is None:
            return self.record_intent(msg.node, TYPE_LEAVE, msg.ltime)
        if msg.ltime <= m.status_ltime:
            return False
        if msg.node == core.name and core.serf_state is SerfState.ALIVE:
            core._log(DEBUG, "Refuting an older leave intent")
            self.broadcast_join(core.clock.time())  # refute
            return False
        m.status_ltime = msg.ltime
        step = transition(LEAVE_INTENT, m.status)
        if step is not None:
            old, (m.status, etype) = m.status, step
            if old is sio.MemberStatus.FAILED and m.status is sio.MemberStatus.LEFT:
                core._failed.pop(m.name, None)
                core._left[m.name] = None
                core._log(INFO, f"EventMemberLeave (forced): {m.name} {go_ip(m.addr)}")
            if etype is not None:
                core._member_event(etype, [m])
        if msg.prune:
            self.prune(m)
        return True

    def prune(self, m: MemberRecord) -> None:
        core = self.core
        if m.status is sio.MemberStatus.LEAVING:
            delay = core.config.broadcast_timeout + core.config.leave_propagate_delay
            core._after(delay, lambda: self.prune_now(m.name))
        else:
            self.prune_now(m.name)

    def prune_now(self, name: str) -> None:
        core = self.core
        m = core._members.get(name)
        if m is not None:
            core._log(INFO, f"EventMemberReap (forced): {m.name} {go_ip(m.addr)}")
            self.erase(m)

    def join_intent(self, msg: MessageJoin) -> bool:
        core = self.core
        core.clock.witness(msg.ltime)
        m = core._members.get(msg.node)
        if m is None:
            return self.record_intent(msg.node, TYPE_JOIN, msg.ltime)
        if msg.ltime <= m.status_ltime:
            return False
        m.status_ltime = msg.ltime
        step = transition(JOIN_INTENT, m.status)
        if step is not None:
            m.status = step[0]
        return True

    def broadcast_join(self, ltime: int) -> None:
        core = self.core
        msg = MessageJoin(ltime, core.name)
        core.clock.witness(ltime)
        self.join_intent(msg)
        core.intent_queue.queue_broadcast(core.codec.encode(msg), unique=True)

    def refresh(self, m: MemberRecord, node: Node) -> None:
        core = self.core
        m.addr = bytes(node.addr)
        m.port = node.port
        m.tags = core._decode_tags(node.meta)
        m.vsn = bytes(node.vsn)

    def node_join(self, node: Node) -> None:
        core = self.core
        m = core._members.get(node.name)
        old = sio.MemberStatus.NONE
        if m is None:
            m = MemberRecord(node.name, bytes(node.addr), node.port)
            m.status = sio.MemberStatus.ALIVE
            intent = core._intents.pop(node.name, None)
            if intent is not None:
                m.status_ltime = intent[1]
                if intent[0] == TYPE_LEAVE:
                    m.status = sio.MemberStatus.LEAVING
            core._members[node.name] = m
        else:
            old = m.status
            if old is sio.MemberStatus.FAILED and core._now - m.leave_time < (
                core.config.flap_timeout
            ):
                core.flaps += 1
                core._emit(_MEMBER_FLAP)
            step = transition(NODE_JOIN, old)
            m.status = step[0] if step is not None else sio.MemberStatus.ALIVE
            m.leave_time = 0.0
            core._failed.pop(node.name, None)
            core._left.pop(node.name, None)
        self.refresh(m, node)
        core._emit(_MEMBER_JOIN)
        core._log(INFO, f"EventMemberJoin: {m.name} {go_ip(m.addr)}")
        core._member_event("member-join", [m])

    def node_leave(self, node: Node) -> None:
        core = self.core
        m = core._members.get(node.name)
        if m is None:
            return
        step = transition(NODE_LEAVE, m.status)
        if step is None:
            core._log(WARN, f"Bad state when leave: {int(m.status)}")
            return
        m.status, etype = step
        if m.status is sio.MemberStatus.LEFT:
            core._left[m.name] = None
        else:
            core._failed[m.name] = None
        m.leave_time = core._now
        status = str(m.status)
        core._emit(MetricSample(COUNTER, ("serf", "member", status), 1.0))
        what = "EventMemberLeave" if m.status is sio.MemberStatus.LEFT else "EventMemberFailed"
        core._log(INFO, f"{what}: {m.name} {go_ip(m.addr)}")
        if etype is not None:
            core._member_event(etype, [m])

    def node_update(self, node: Node) -> None:
        core = self.core
        m = core._members.get(node.name)
        if m is None:
            return
        self.refresh(m, node)
        core._emit(_MEMBER_UPDATE)
        core._log(INFO, f"EventMemberUpdate: {m.name}")
        core._member_event("member-update", [m])

    def erase(self, m: MemberRecord) -> None:
        core = self.core
        core._members.pop(m.name, None)
        core._failed.pop(m.name, None)
        core._left.pop(m.name, None)
        if core.coordinates is not None:
            core.coordinates.forget_node(m.name)
        core.coordinate_cache.remove(m.name)
        core._member_event("member-reap", [m])
