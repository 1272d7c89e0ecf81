"""The member state table: SWIM's alive / suspect / dead / left rules as a pure state machine.

How this works
--------------
:class:`StateTable` holds one :class:`Node` per known name (ourselves included) and applies
memberlist's state rules (reference section 1.3) to typed inputs: :meth:`~StateTable.handle_alive`,
:meth:`~StateTable.handle_suspect`, :meth:`~StateTable.handle_dead`,
:meth:`~StateTable.merge_remote_state` (a push/pull), :meth:`~StateTable.suspicion_expired`
(the driver's suspicion timer fired) and :meth:`~StateTable.leave`. Every handler mutates the
table and returns a list of *effects* (small frozen dataclasses) for the driver to carry out:
queue a gossip broadcast, start / confirm / cancel a suspicion timer, notify the event
delegate, report a name conflict, raise the Lifeguard awareness score after a refutation.
The log lines and metric samples Go writes along the way (refutations, conflicts,
``memberlist.msg.*``) are appended to :attr:`StateTable.telemetry` for the owner to drain.

Nothing here reads a clock or a random source and nothing does IO: time comes in as ``now``
(the driver's monotonic seconds). The parts of Go's ``aliveNode`` / ``suspectNode`` /
``deadNode`` that need those live in the driver: the suspicion timer itself
(:class:`serf.memberlist.suspicion.SuspicionTimer`, sized from :meth:`StateTable.num_nodes`),
the random insert position and shuffle of the probe list, CIDR filtering, the Merge delegate
and ``verifyProtocol`` before a push/pull merge.

The rules, in the order Go applies them (each handler's comments name the step):

====================  ===================================================================
input                 rule
====================  ===================================================================
alive, unknown node   insert a placeholder (DEAD, incarnation 0), then go on as known
alive, new addr       accept only if the node is LEFT, or DEAD longer than
                      ``dead_node_reclaim_time`` (then even a lower incarnation wins);
                      otherwise ConflictDetected and stop (also for an alive about us)
alive, other node     ignore if incarnation <= ours; else rebroadcast, take its fields,
                      ALIVE; DEAD/LEFT -> ALIVE is a join, a new meta an update
alive, about us       ignore if incarnation < ours (or we are leaving); same incarnation,
                      meta and vsn: nothing; else refute
suspect               ignore unknown or older; SUSPECT already: a confirmation; not ALIVE:
                      ignore; about us: refute; else rebroadcast, SUSPECT, start suspicion
dead                  ignore unknown or older; cancel suspicion; DEAD/LEFT: ignore; about
                      us: refute unless leaving; else rebroadcast, LEFT if from == node
                      else DEAD, notify leave
push/pull entry       ALIVE -> alive; LEFT -> dead from the node itself; DEAD or SUSPECT ->
                      a suspect from us (a remote "dead" is only a suspicion here)
refute                incarnation = next, skipped past the accused one; rebroadcast alive
====================  ===================================================================

Where we differ from Go on purpose, the code says so (``# differs from Go: ...``).
Incarnations are Python ints and do not wrap at 2**32 as Go's uint32 does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import TYPE_CHECKING

from serf import _speedups
from serf._frozen import fast_init
from serf.telemetry import (
    COUNTER,
    ERR,
    INFO,
    WARN,
    LogLine,
    MetricSample,
    go_bytes,
    go_ip,
    memberlist_line,
)
from serf.wire.messages import Alive, Dead, PushNodeState, Suspect

if TYPE_CHECKING:
    from serf.wire.framing import CompoundSplitter

__all__ = [
    "NodeState",
    "Node",
    "Broadcast",
    "NotifyJoin",
    "NotifyLeave",
    "NotifyUpdate",
    "StartSuspicion",
    "ConfirmSuspicion",
    "CancelSuspicion",
    "ConflictDetected",
    "Refuted",
    "Effect",
    "StateTable",
]


class NodeState(IntEnum):
    """Go memberlist's ``NodeStateType``; the values are on the wire (push/pull states)."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


# Go's zero time.Time: a placeholder node "changed state" infinitely long ago, so it is
# reclaimable and reapable at once.
_NEVER = -math.inf


@dataclass(slots=True)
class Node:
    """One member as this node sees it (Go's ``nodeState``).

    ``addr`` is the raw 4- or 16-byte IP, ``vsn`` the six version bytes (empty if unknown),
    ``state_change`` the driver's ``now`` at the last state change. The defaults describe
    Go's placeholder for a name first heard of: DEAD at incarnation 0, changed "never".
    """

    name: str
    addr: bytes
    port: int
    meta: bytes = b""
    incarnation: int = 0
    state: NodeState = NodeState.DEAD
    state_change: float = _NEVER
    vsn: bytes = b""

    def dead_or_left(self) -> bool:
        """True when the node is DEAD or LEFT (Go's ``DeadOrLeft``)."""
        return self.state is NodeState.DEAD or self.state is NodeState.LEFT


# -- effects ----------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Broadcast:
    """Queue ``message`` for gossip under ``name`` (a named broadcast: it replaces a queued
    one with the same name). A :class:`~serf.wire.messages.Dead` about ourselves is our
    leave broadcast, which ``Leave`` waits on."""

    name: str
    message: Alive | Suspect | Dead


@fast_init
@dataclass(frozen=True, slots=True)
class NotifyJoin:
    """The event delegate's ``NotifyJoin``: ``node`` (a snapshot) is now alive."""

    node: Node


@fast_init
@dataclass(frozen=True, slots=True)
class NotifyLeave:
    """The event delegate's ``NotifyLeave``: ``node`` (a snapshot) died or left."""

    node: Node


@fast_init
@dataclass(frozen=True, slots=True)
class NotifyUpdate:
    """The event delegate's ``NotifyUpdate``: ``node`` (a snapshot) has new metadata."""

    node: Node


@dataclass(frozen=True, slots=True)
class StartSuspicion:
    """Start a suspicion timer for ``node_name`` (replacing any), with ``from_node`` as the
    accuser. When it fires, call :meth:`StateTable.suspicion_expired` with ``incarnation``."""

    node_name: str
    incarnation: int
    from_node: str


@dataclass(frozen=True, slots=True)
class ConfirmSuspicion:
    """``from_node`` also suspects ``node_name``: confirm the running timer, and when that
    confirmation is new and counted (``SuspicionTimer.confirm`` returns True) queue
    ``broadcast``, as Go's ``suspectNode`` does."""

    node_name: str
    from_node: str
    broadcast: Broadcast


@dataclass(frozen=True, slots=True)
class CancelSuspicion:
    """Forget the suspicion timer of ``node_name``."""

    node_name: str


@dataclass(frozen=True, slots=True)
class ConflictDetected:
    """The conflict delegate's ``NotifyConflict``: ``other`` claims ``existing``'s name from
    another address."""

    existing: Node
    other: Node


@dataclass(frozen=True, slots=True)
class Refuted:
    """We contradicted a message about ourselves and now hold ``incarnation``; the driver
    raises the awareness score by one."""

    incarnation: int


Effect = (
    Broadcast
    | NotifyJoin
    | NotifyLeave
    | NotifyUpdate
    | StartSuspicion
    | ConfirmSuspicion
    | CancelSuspicion
    | ConflictDetected
    | Refuted
)

_MSG_ALIVE = MetricSample(COUNTER, ("memberlist", "msg", "alive"), 1.0)
_MSG_SUSPECT = MetricSample(COUNTER, ("memberlist", "msg", "suspect"), 1.0)
_MSG_DEAD = MetricSample(COUNTER, ("memberlist", "msg", "dead"), 1.0)


# One object for equal addresses, metas and version bytes in every table of the process, and
# one str per name (sys.intern): a simulation holds N views of the same N members, and each
# decoded message brings its own copies (about 130 of a member entry's ~740 bytes). The core
# shares the encoded messages it queues for gossip the same way (N views queue the same alive,
# about 100 bytes each). Bounded: cleared when full (an agent's table holds far fewer
# distinct values).
_SHARED_MAX = 1 << 16
_shared: dict[bytes, bytes] = {}


def _share(value: bytes) -> bytes:
    found = _shared.get(value)
    if found is None:
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        _shared[value] = found = value
    return found


def _snapshot(node: Node) -> Node:
    # spelled out: dataclasses.replace is ~10x slower, and simulations snapshot every member of
    # every view on each invariant scan
    return Node(
        node.name,
        node.addr,
        node.port,
        node.meta,
        node.incarnation,
        node.state,
        node.state_change,
        node.vsn,
    )


def _vsn_is_bad(vsn: bytes) -> bool:
    # as Go's aliveNode: with at least 3 bytes, pmin and pmax must be set and ordered
    return len(vsn) >= 3 and (vsn[0] == 0 or vsn[1] == 0 or vsn[0] > vsn[1])


class StateTable:
    """The member table of the node called ``local_name`` (Go's ``nodeMap`` plus the rules).

    ``dead_node_reclaim_time`` is the config's; ``alive_filter`` is the ``Alive`` delegate
    (return False to veto an alive message; when set, alives with fewer than 6 vsn bytes are
    ignored, as in Go). The table starts empty: the driver creates ourselves with
    ``handle_alive(Alive(next_incarnation(), ...), now, bootstrap=True)``.
    """

    __slots__ = (
        "_alive_filter",
        "_dead_node_reclaim_time",
        "_incarnation",
        "_leaving",
        "_nodes",
        "_num_alive",
        "local_name",
        "telemetry",
    )

    def __init__(
        self,
        local_name: str,
        *,
        dead_node_reclaim_time: float = 0.0,
        alive_filter: Callable[[Node], bool] | None = None,
    ) -> None:
        self.local_name = local_name
        self._dead_node_reclaim_time = dead_node_reclaim_time
        self._alive_filter = alive_filter
        self._nodes: dict[str, Node] = {}
        # entries neither DEAD nor LEFT, kept as the rules move them (num_alive is asked on
        # every gossip round and every serf member count; a scan cost O(N) each time)
        self._num_alive = 0
        self._incarnation = 0
        self._leaving = False
        #: log lines and metric samples (Go's) the rules produced; the owner drains them
        self.telemetry: list[LogLine | MetricSample] = []

    # -- queries ------------------------------------------------------------------------------

    def get(self, name: str) -> Node | None:
        """The live entry for ``name`` (do not mutate it), or None."""
        return self._nodes.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def members(self) -> list[Node]:
        """Snapshots of every entry, dead and left ones included, in insertion order."""
        return [_snapshot(n) for n in self._nodes.values()]

    def entries(self) -> Iterable[Node]:
        """The live entries (do not mutate them), dead and left ones included, in insertion
        order: :meth:`members` without the copies, for read-only scans."""
        return self._nodes.values()

    def num_alive(self) -> int:
        """Entries neither DEAD nor LEFT, ourselves included (Go's ``NumMembers``)."""
        return self._num_alive

    def num_nodes(self) -> int:
        """Every entry, dead and left ones included (Go's ``estNumNodes``, the N for
        suspicion timeouts, retransmit limits and push/pull scaling)."""
        return len(self._nodes)

    @property
    def incarnation(self) -> int:
        """Our incarnation counter (Go's ``m.incarnation``)."""
        return self._incarnation

    @property
    def leaving(self) -> bool:
        """True once :meth:`leave` has run (Go's ``hasLeft``)."""
        return self._leaving

    def next_incarnation(self) -> int:
        """Bump and return our incarnation counter (Go's ``nextIncarnation``), for ``Create``
        and ``UpdateNode``."""
        self._incarnation += 1
        return self._incarnation

    # -- alive (Go's aliveNode) ---------------------------------------------------------------

    def ignores_alive(self, alive: Alive) -> bool:
        """True when :meth:`handle_alive` would return no effects and change nothing: a known
        node other than us, the same address and port, an incarnation no newer than ours, and
        no Alive delegate to ask. Gossip repeats every alive about 4 log N times to every node,
        so this cheap test lets the driver skip most of them (the outcome is the same)."""
        node = self._nodes.get(alive.node)
        return (
            node is not None
            and alive.incarnation <= node.incarnation
            and self._alive_filter is None
            and alive.port == node.port
            and node.addr == (alive.addr or b"")
            and alive.node != self.local_name
        )

    def compound_splitter(self) -> CompoundSplitter | None:
        """A ``split`` for :meth:`PacketFramer.decode_packet
        <serf.wire.framing.PacketFramer.decode_packet>` that leaves out the ``lpe`` alive
        parts :meth:`ignores_alive` would ignore, undecoded (``serf.memberlist.skim``); None
        with an Alive delegate (it reads every alive). Use it only with the ``lpe`` codec."""
        if self._alive_filter is not None:
            return None
        return partial(_speedups.skim.split_unknown, self._nodes, self.local_name)

    def handle_alive(self, alive: Alive, now: float, bootstrap: bool = False) -> list[Effect]:
        """Apply an alive message; ``bootstrap`` marks our own alive from Create/UpdateNode."""
        is_local = alive.node == self.local_name
        # step 1: an in-flight alive must not re-join us while we leave
        if is_local and self._leaving:
            return []
        addr = alive.addr or b""
        meta = alive.meta or b""
        vsn = alive.vsn or b""
        # step 2: vsn sanity, then the Alive delegate's veto
        if _vsn_is_bad(vsn):
            return []
        if self._alive_filter is not None:
            if len(vsn) < 6:
                return []
            claimant = Node(alive.node, addr, alive.port, meta, alive.incarnation, vsn=vsn)
            if not self._alive_filter(claimant):
                return []

        effects: list[Effect] = []
        node = self._nodes.get(alive.node)
        updates_node = fresh = False
        if node is None:
            # step 3: a placeholder, DEAD at incarnation 0 that changed state "never"
            node = Node(
                sys.intern(alive.node),
                _share(addr),
                alive.port,
                _share(meta),
                vsn=_share(vsn) if len(vsn) >= 6 else b"",
            )
            # keyed by the entry's own (shared) name: the message's copy would stay as the key
            self._nodes[node.name] = node
            fresh = True
        elif node.addr != addr or node.port != alive.port:
            # step 4: another address for a known name (dead-node reclaim, reference 1.4.7)
            reclaimable = (
                self._dead_node_reclaim_time > 0
                and now - node.state_change > self._dead_node_reclaim_time
            )
            if node.state is NodeState.LEFT or (node.state is NodeState.DEAD and reclaimable):
                updates_node = True
                self.telemetry.append(
                    memberlist_line(
                        INFO,
                        f"Updating address for left or failed node {node.name} from "
                        f"{go_ip(node.addr)}:{node.port} to {go_ip(addr)}:{alive.port}",
                    )
                )
            else:
                other = Node(alive.node, addr, alive.port, meta, alive.incarnation)
                line = memberlist_line(
                    ERR,
                    f"Conflicting address for {node.name}. Mine: {go_ip(node.addr)}:{node.port}"
                    f" Theirs: {go_ip(addr)}:{alive.port} Old state: {int(node.state)}",
                )
                self.telemetry.append(line)
                return [ConflictDetected(_snapshot(node), other)]

        # step 5: stale incarnations (ours may repeat: we check it for a changed meta below)
        if is_local:
            if alive.incarnation < node.incarnation:
                return effects
        elif alive.incarnation <= node.incarnation and not updates_node:
            return effects

        # step 6: an alive clears any suspicion
        old_state, old_meta = node.state, node.meta
        if old_state is NodeState.SUSPECT:
            effects.append(CancelSuspicion(node.name))

        # step 7: about us -> refute unless it says what we say; otherwise take it
        if is_local and not bootstrap:
            if alive.incarnation == node.incarnation and meta == node.meta and vsn == node.vsn:
                return effects
            # differs from Go: no join/update notification on this path (Go could notify a
            # join for our own placeholder entry while it stays DEAD)
            self.telemetry.append(
                memberlist_line(
                    WARN,
                    f"Refuting an alive message for '{alive.node}' ({go_ip(addr)}:{alive.port})"
                    f" meta:({go_bytes(meta)} VS {go_bytes(node.meta)}),"
                    f" vsn:({go_bytes(vsn)} VS {go_bytes(node.vsn)})",
                )
            )
            effects.extend(self.refute(alive.incarnation))
            return effects
        # the entry's name: the table's one str for it, which the queued broadcast then holds
        effects.append(Broadcast(node.name, alive))
        node.incarnation = alive.incarnation
        if not fresh:  # a placeholder made above holds these fields already
            if len(vsn) >= 6:
                node.vsn = _share(vsn)
            node.meta = _share(meta)
            node.addr = _share(addr)
            node.port = alive.port
        if node.state is not NodeState.ALIVE:
            if node.state is not NodeState.SUSPECT:
                self._num_alive += 1
            node.state = NodeState.ALIVE
            node.state_change = now
        if is_local:
            # differs from Go: keep the counter at least at our entry's incarnation, so a
            # refutation can never go below what we already announced
            self._incarnation = max(self._incarnation, alive.incarnation)

        # step 8: events
        if old_state is NodeState.DEAD or old_state is NodeState.LEFT:
            effects.append(NotifyJoin(_snapshot(node)))
        elif old_meta != node.meta:
            effects.append(NotifyUpdate(_snapshot(node)))
        self.telemetry.append(_MSG_ALIVE)
        return effects

    # -- suspect (Go's suspectNode) -----------------------------------------------------------

    def handle_suspect(self, suspect: Suspect, now: float) -> list[Effect]:
        """Apply a suspect message."""
        node = self._nodes.get(suspect.node)
        if node is None or suspect.incarnation < node.incarnation:
            return []
        # a running suspicion (only a SUSPECT node has one): Lifeguard's confirmation
        if node.state is NodeState.SUSPECT:
            return [ConfirmSuspicion(node.name, suspect.from_, Broadcast(node.name, suspect))]
        if node.state is not NodeState.ALIVE:
            return []
        if node.name == self.local_name:  # we never suspect ourselves
            line = memberlist_line(WARN, f"Refuting a suspect message (from: {suspect.from_})")
            self.telemetry.append(line)
            return self.refute(suspect.incarnation)
        node.incarnation = suspect.incarnation
        node.state = NodeState.SUSPECT
        node.state_change = now
        self.telemetry.append(_MSG_SUSPECT)
        return [
            Broadcast(node.name, suspect),
            StartSuspicion(node.name, suspect.incarnation, suspect.from_),
        ]

    def suspicion_expired(self, node_name: str, incarnation: int, now: float) -> list[Effect]:
        """The suspicion timer started for ``node_name`` at ``incarnation`` fired: declare
        the node dead if it is still that suspect (a stale timer does nothing)."""
        node = self._nodes.get(node_name)
        # as Go's timer callback, which checks state and StateChange; we check the incarnation
        if node is None or node.state is not NodeState.SUSPECT or node.incarnation != incarnation:
            return []
        return self.handle_dead(Dead(node.incarnation, node_name, self.local_name), now)

    # -- dead (Go's deadNode) -----------------------------------------------------------------

    def handle_dead(self, dead: Dead, now: float) -> list[Effect]:
        """Apply a dead message; ``from_ == node`` means the node left."""
        node = self._nodes.get(dead.node)
        if node is None or dead.incarnation < node.incarnation:
            return []
        effects: list[Effect] = []
        if node.state is NodeState.SUSPECT:
            effects.append(CancelSuspicion(node.name))
        if node.dead_or_left():
            return effects
        if node.name == self.local_name and not self._leaving:
            line = memberlist_line(WARN, f"Refuting a dead message (from: {dead.from_})")
            self.telemetry.append(line)
            effects.extend(self.refute(dead.incarnation))
            return effects
        # about us while leaving: this is our leave broadcast, and we become LEFT too
        effects.append(Broadcast(node.name, dead))
        node.incarnation = dead.incarnation
        node.state = NodeState.LEFT if dead.node == dead.from_ else NodeState.DEAD
        self._num_alive -= 1
        node.state_change = now
        effects.append(NotifyLeave(_snapshot(node)))
        self.telemetry.append(_MSG_DEAD)
        return effects

    def leave(self, now: float) -> list[Effect]:
        """Start leaving (Go's ``Leave``): mark ourselves LEFT and broadcast a dead message
        from ourselves. A second call does nothing."""
        if self._leaving:
            return []
        me = self._local_node()
        self._leaving = True
        return self.handle_dead(Dead(me.incarnation, me.name, me.name), now)

    # -- refute (Go's refute) -----------------------------------------------------------------

    def refute(self, accused_incarnation: int) -> list[Effect]:
        """Contradict a message about us at ``accused_incarnation``: take a fresh incarnation
        above it and broadcast an alive with our current fields."""
        me = self._local_node()
        incarnation = self.next_incarnation()
        if accused_incarnation >= incarnation:
            self._incarnation = incarnation = accused_incarnation + 1
        me.incarnation = incarnation
        alive = Alive(incarnation, me.name, me.addr, me.port, me.meta, me.vsn or None)
        # differs from Go: Go queues the refutation under our address string, not our name
        return [Broadcast(me.name, alive), Refuted(incarnation)]

    # -- push/pull (Go's mergeState) ----------------------------------------------------------

    def merge_remote_state(self, states: Iterable[PushNodeState], now: float) -> list[Effect]:
        """Apply a peer's node table. Run ``verifyProtocol`` and the Merge delegate first."""
        effects: list[Effect] = []
        for s in states:
            if s.state == NodeState.ALIVE:
                alive = Alive(s.incarnation, s.name, s.addr, s.port, s.meta, s.vsn)
                effects.extend(self.handle_alive(alive, now))
            elif s.state == NodeState.LEFT:
                effects.extend(self.handle_dead(Dead(s.incarnation, s.name, s.name), now))
            elif s.state in (NodeState.DEAD, NodeState.SUSPECT):
                # as Go: a remote "dead" is only a suspicion here, so the node gets to refute
                suspect = Suspect(s.incarnation, s.name, self.local_name)
                effects.extend(self.handle_suspect(suspect, now))
            # other state values are ignored, as Go's switch does
        return effects

    # -- reaping (Go's resetNodes) ------------------------------------------------------------

    def reap(self, now: float, gossip_to_the_dead_time: float) -> list[Node]:
        """Forget DEAD and LEFT nodes whose state changed more than
        ``gossip_to_the_dead_time`` ago; return them. We never forget ourselves."""
        gone = [
            n
            for n in self._nodes.values()
            if n.dead_or_left()
            and now - n.state_change > gossip_to_the_dead_time
            and n.name != self.local_name
        ]
        for n in gone:
            del self._nodes[n.name]
        return gone

    def _local_node(self) -> Node:
        me = self._nodes.get(self.local_name)
        if me is None:
            raise RuntimeError(
                f"{self.local_name!r} is not in the table yet: apply our own alive first "
                "(handle_alive(..., bootstrap=True))"
            )
        return me
