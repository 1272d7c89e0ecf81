"""Join/leave intents and the member status machine glue (reference 3.2, 3.4).

:class:`Membership` owns the serf members (``members``, the ``failed`` and ``left`` sets and
the buffered ``intents`` of nodes we do not know yet). It is the memberlist core's
``EventDelegate`` (join/leave/update notifications) and, when the application gave a merge
delegate, its ``MergeDelegate`` / ``AliveDelegate``; it applies serf's join and leave intents
using the transition table of :mod:`serf.core.members`, and erases (reaps, prunes) members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from serf.address import Address
from serf.config import META_MAX_SIZE, node_name_error
from serf.core import io as sio
from serf.core.delivery import Delivery
from serf.core.members import JOIN_INTENT, LEAVE_INTENT, NODE_JOIN, NODE_LEAVE, transition
from serf.core.services import Broadcasts, Services
from serf.core.state import MemberRecord, SerfState
from serf.memberlist.state import Node, NodeState
from serf.telemetry import COUNTER, DEBUG, INFO, WARN, MetricSample, go_ip
from serf.wire.errors import DecodeError
from serf.wire.messages import MessageJoin, MessageLeave

__all__ = ["TYPE_JOIN", "TYPE_LEAVE", "Membership", "ReconnectDelegate", "SerfMergeDelegate"]

_MEMBER_JOIN = MetricSample(COUNTER, ("serf", "member", "join"), 1.0)
_MEMBER_FLAP = MetricSample(COUNTER, ("serf", "member", "flap"), 1.0)
_MEMBER_UPDATE = MetricSample(COUNTER, ("serf", "member", "update"), 1.0)

#: the intent kinds (the serf message types of leave and join)
TYPE_LEAVE = 0
TYPE_JOIN = 1


class SerfMergeDelegate(Protocol):
    """Go serf's ``MergeDelegate``: may veto a join (and, as the Alive delegate, a node)."""

    def notify_merge(self, members: list[sio.SerfMember]) -> str | None:
        """Return an error text to refuse, None to accept."""
        ...


class ReconnectDelegate(Protocol):
    """Go serf's ``ReconnectTimeoutOverrider``: a per-member reap timeout."""

    def reconnect_timeout(self, member: sio.SerfMember, default: float) -> float:
        """The timeout (s) after which ``member`` (failed or left) is reaped."""
        ...


class Membership:
    """The members of one serf core (see the module comment). ``forget`` is called with
    the name of every member erased (the coordinates forget it)."""

    def __init__(
        self,
        services: Services,
        delivery: Delivery,
        broadcasts: Broadcasts,
        *,
        merge_delegate: SerfMergeDelegate | None = None,
        reconnect_delegate: ReconnectDelegate | None = None,
        forget: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._s = services
        self._delivery = delivery
        self._broadcasts = broadcasts
        self._merge_delegate = merge_delegate
        self._reconnect_delegate = reconnect_delegate
        self._forget = forget
        self.members: dict[str, MemberRecord] = {}
        self.failed: dict[str, None] = {}
        self.left: dict[str, None] = {}
        self.intents: dict[str, tuple[int, int, float]] = {}  # name -> (type, ltime, when)
        self.flaps = 0

    def __len__(self) -> int:
        return len(self.members)

    def get(self, name: str) -> MemberRecord | None:
        """The record of ``name``, or None."""
        return self.members.get(name)

    def others_alive(self) -> bool:
        """Whether a member other than us is alive."""
        me = self._s.name
        return any(
            m.status is sio.MemberStatus.ALIVE and m.name != me for m in self.members.values()
        )

    def decode_tags(self, meta: bytes) -> dict[str, str]:
        """Tags from node meta; bad bytes from the network are no tags."""
        try:
            return self._s.codec.decode_tags(meta)
        except DecodeError:
            return {}

    def record_intent(self, name: str, kind: int, ltime: int) -> bool:
        old = self.intents.get(name)
        if old is None or ltime > old[1]:
            self.intents[name] = (kind, ltime, self._s.now)
            return True
        return False

    def leave_intent(self, msg: MessageLeave) -> bool:
        self._s.clock.witness(msg.ltime)
        m = self.members.get(msg.node)
        if m is None:
            return self.record_intent(msg.node, TYPE_LEAVE, msg.ltime)
        if msg.ltime <= m.status_ltime:
            return False
        if msg.node == self._s.name and self._s.serf_state is SerfState.ALIVE:
            self._s.log(DEBUG, "Refuting an older leave intent")
            self.broadcast_join(self._s.clock.time())  # refute
            return False
        m.status_ltime = msg.ltime
        step = transition(LEAVE_INTENT, m.status)
        if step is not None:
            old, (m.status, etype) = m.status, step
            if old is sio.MemberStatus.FAILED and m.status is sio.MemberStatus.LEFT:
                self.failed.pop(m.name, None)
                self.left[m.name] = None
                self._s.log(INFO, f"EventMemberLeave (forced): {m.name} {go_ip(m.addr)}")
            if etype is not None:
                self._delivery.member_event(etype, [m])
        if msg.prune:
            self.prune(m)
        return True

    def prune(self, m: MemberRecord) -> None:
        if m.status is sio.MemberStatus.LEAVING:
            delay = self._s.config.broadcast_timeout + self._s.config.leave_propagate_delay
            self._s.after(delay, lambda: self.prune_now(m.name))
        else:
            self.prune_now(m.name)

    def prune_now(self, name: str) -> None:
        m = self.members.get(name)
        if m is not None:
            self._s.log(INFO, f"EventMemberReap (forced): {m.name} {go_ip(m.addr)}")
            self.erase(m)

    def join_intent(self, msg: MessageJoin) -> bool:
        self._s.clock.witness(msg.ltime)
        m = self.members.get(msg.node)
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
        msg = MessageJoin(ltime, self._s.name)
        self._s.clock.witness(ltime)
        self.join_intent(msg)
        self._broadcasts.intents.queue_broadcast(self._s.codec.encode(msg), unique=True)

    def refresh(self, m: MemberRecord, node: Node) -> None:
        m.addr = bytes(node.addr)
        m.port = node.port
        m.tags = self.decode_tags(node.meta)
        m.vsn = bytes(node.vsn)

    def notify_join(self, node: Node) -> None:
        m = self.members.get(node.name)
        old = sio.MemberStatus.NONE
        if m is None:
            m = MemberRecord(node.name, bytes(node.addr), node.port)
            m.status = sio.MemberStatus.ALIVE
            intent = self.intents.pop(node.name, None)
            if intent is not None:
                m.status_ltime = intent[1]
                if intent[0] == TYPE_LEAVE:
                    m.status = sio.MemberStatus.LEAVING
            self.members[node.name] = m
        else:
            old = m.status
            if old is sio.MemberStatus.FAILED and self._s.now - m.leave_time < (
                self._s.config.flap_timeout
            ):
                self.flaps += 1
                self._s.emit(_MEMBER_FLAP)
            step = transition(NODE_JOIN, old)
            m.status = step[0] if step is not None else sio.MemberStatus.ALIVE
            m.leave_time = 0.0
            self.failed.pop(node.name, None)
            self.left.pop(node.name, None)
        self.refresh(m, node)
        self._s.emit(_MEMBER_JOIN)
        self._s.log(INFO, f"EventMemberJoin: {m.name} {go_ip(m.addr)}")
        self._delivery.member_event("member-join", [m])

    def notify_leave(self, node: Node) -> None:
        m = self.members.get(node.name)
        if m is None:
            return
        step = transition(NODE_LEAVE, m.status)
        if step is None:
            self._s.log(WARN, f"Bad state when leave: {int(m.status)}")
            return
        m.status, etype = step
        if m.status is sio.MemberStatus.LEFT:
            self.left[m.name] = None
        else:
            self.failed[m.name] = None
        m.leave_time = self._s.now
        status = str(m.status)
        self._s.emit(MetricSample(COUNTER, ("serf", "member", status), 1.0))
        what = "EventMemberLeave" if m.status is sio.MemberStatus.LEFT else "EventMemberFailed"
        self._s.log(INFO, f"{what}: {m.name} {go_ip(m.addr)}")
        if etype is not None:
            self._delivery.member_event(etype, [m])

    def notify_update(self, node: Node) -> None:
        m = self.members.get(node.name)
        if m is None:
            return
        self.refresh(m, node)
        self._s.emit(_MEMBER_UPDATE)
        self._s.log(INFO, f"EventMemberUpdate: {m.name}")
        self._delivery.member_event("member-update", [m])

    def erase(self, m: MemberRecord) -> None:
        self.members.pop(m.name, None)
        self.failed.pop(m.name, None)
        self.left.pop(m.name, None)
        self._forget(m.name)
        self._delivery.member_event("member-reap", [m])

    # -- merge / alive vetoes (only when the application gave a merge delegate) ------------

    def notify_merge(self, nodes: list[Node]) -> str | None:
        """memberlist's ``MergeDelegate``: the application's veto of a join."""
        if self._merge_delegate is None:
            return None
        members: list[sio.SerfMember] = []
        for node in nodes:
            if self._s.config.validate_node_names:
                err = node_name_error(node.name)
                if err is not None:
                    return err
            if len(node.addr) not in (4, 16):
                return f"IP byte length is invalid: {len(node.addr)} bytes is not either 4 or 16"
            if len(node.meta) > META_MAX_SIZE:
                return f"Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes"
            status = (
                sio.MemberStatus.LEFT if node.state is NodeState.LEFT else sio.MemberStatus.NONE
            )
            m = MemberRecord(node.name, bytes(node.addr), node.port)
            m.tags = self.decode_tags(node.meta)
            m.status = status
            m.vsn = bytes(node.vsn)
            members.append(m.snapshot())
        return self._merge_delegate.notify_merge(members)

    def notify_alive(self, node: Node) -> str | None:
        """memberlist's ``AliveDelegate``: the same veto for one node."""
        return self.notify_merge([node])

    # -- periodic work: reap, reconnect ------------------------------------------------------

    def _timeout_for(self, m: MemberRecord, default: float) -> float:
        if self._reconnect_delegate is None:
            return default
        return self._reconnect_delegate.reconnect_timeout(m.snapshot(), default)

    def reap(self) -> None:
        """Erase failed and left members past their timeouts; forget old intents."""
        now = self._s.now
        cfg = self._s.config
        for names, default in (
            (self.failed, cfg.reconnect_timeout),
            (self.left, cfg.tombstone_timeout),
        ):
            for name in list(names):
                m = self.members.get(name)
                if m is None:
                    names.pop(name, None)
                    continue
                if now - m.leave_time > self._timeout_for(m, default):
                    self._s.log(INFO, f"EventMemberReap: {m.name}")
                    self.erase(m)
        for name, (_, _, when) in list(self.intents.items()):
            if now - when > cfg.recent_intent_timeout:
                del self.intents[name]

    def reconnect_target(self) -> Address | None:
        """A failed member to try to reconnect to, or None (as Go's ``reconnect``: randomly
        throttled by the share of failed members)."""
        s = self._s
        n_failed = len(self.failed)
        if n_failed == 0 or s.serf_state is not SerfState.ALIVE:
            return None
        denom = len(self.members) - n_failed - len(self.left)
        if denom <= 0:
            denom = 1
        if s.rng.random() > n_failed / denom:
            s.log(DEBUG, "forgoing reconnect for random throttling")
            return None
        names = list(self.failed)
        m = self.members.get(names[s.rng.randrange(len(names))])
        if m is None:
            return None
        addr = Address.from_ip(m.addr, m.port)
        s.log(INFO, f"attempting reconnect to {m.name} {addr}")
        return addr
