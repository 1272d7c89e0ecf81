"""A discrete-event simulator of many memberlist cores on a seeded virtual network.

How this works
--------------
One heap of ``(virtual_time, seq, kind, a, b)`` events drives N :class:`MemberlistCore`
instances, the same code (framing included: labels, encryption and compression work) the
asyncio driver runs. Every core arms one timer (``next_deadline()``); the simulator keeps one
heap entry per armed deadline and ignores superseded ones (a token per node).

The network (:class:`LinkModel` per directed link, a default for the rest) drops, delays
(``latency`` + uniform ``jitter``, so packets reorder) and duplicates packets; partitions are
sets of groups, ``block(a, b)`` cuts one direction. Streams are request/response, as
``serf.memberlist.io`` describes, by the same rule as the real driver: the request bytes go
through the listener's ``core.stream_reader(listener=True)`` and enter its core as
``StreamRequest`` (or ``StreamUnreadable``), the core's ``StreamRespond`` goes through the
dialer's ``stream_reader(listener=False)``; a dial across a partition times out after the stream's
timeout, a dial to a crashed node is refused after one latency.

Faults: :meth:`Simulation.crash` (the node stops; traffic to it is dropped),
:meth:`Simulation.restart` (a new core, same name and address, incarnation from scratch),
:meth:`Simulation.stall` (a slow receive path: its inbound packets and streams queue and are
handled when the stall ends, while its own timers keep running), :meth:`Simulation.freeze`
(Lifeguard's CPU-starved member, slow at everything: for the stall nothing of the node runs,
no timer fires, nothing is read or sent; then it resumes as a SIGCONTed process does, its
overdue timers first, then the backlog in arrival order).

Everything random comes from one master seed, so the same seed gives the same
:attr:`Simulation.trace` (a list of ``(time, node, event)`` tuples).
"""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, assert_never

from serf.address import Address
from serf.config import MemberlistConfig, lan
from serf.memberlist import io
from serf.memberlist.core import MemberlistCore
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.state import Node, NodeState
from serf.telemetry import LogLine, MetricSample
from serf.wire.errors import DecodeError
from serf.wire.keyring import Keyring

__all__ = ["LinkModel", "SimNode", "Simulation", "sim_config"]

_PACKET = 0
_TICK = 1
_STREAM_REQ = 2
_STREAM_REPLY = 3
_STREAM_TIMEOUT = 4
_UNSTALL = 5
_CALL = 6

# an enum member's .name goes through a property on each read; the trace names N^2 states
_STATE_NAMES = {state: state.name for state in NodeState}

# Garbage collector thresholds while a simulation runs (the larger of these and the process's
# own). A large simulation allocates millions of long-lived objects (every member of every
# view, queued broadcasts); with Python's defaults (700, 10, 10) the collector walks them
# again and again: 22% of a 700-node join storm's CPU (docs/performance.md). Collection
# timing changes no outcome: nothing in the cores or here depends on when garbage is freed.
_GC_THRESHOLDS = (100_000, 50, 100)


def sim_config(name: str, **changes: Any) -> MemberlistConfig:
    """The simulator's default config: Go's LAN preset with compression off (LZW in pure
    Python dominates the CPU of large runs; turn it on per node to test it)."""
    return replace(lan(name), enable_compression=False, **changes)


@dataclass(frozen=True, slots=True)
class LinkModel:
    """One direction of a link: loss probability, one-way latency + uniform jitter (s),
    duplication probability."""

    loss: float = 0.0
    latency: float = 0.001
    jitter: float = 0.0005
    duplicate: float = 0.0


class SimNode:
    """One simulated node: its core (replaced on restart) and fault state."""

    __slots__ = (
        "address",
        "armed",
        "backlog",
        "config",
        "core",
        "delegate",
        "events",
        "frozen_until",
        "generation",
        "keyring",
        "name",
        "open_streams",
        "restarts",
        "stalled_until",
        "tick_deferred",
        "token",
        "up",
    )

    def __init__(self, name: str, address: Address, config: MemberlistConfig) -> None:
        self.name = name
        self.address = address
        self.config = config
        self.core: MemberlistCore = None  # type: ignore[assignment]
        self.delegate: CompositeDelegate | None = None
        self.keyring: Keyring | None = None
        self.up = False
        self.generation = 0
        self.armed: float | None = None
        self.token = 0
        self.stalled_until = -1.0
        self.frozen_until = -1.0
        self.tick_deferred = False
        self.backlog: list[Callable[[], None]] = []
        self.open_streams: dict[int, bool] = {}
        self.events: list[tuple[float, str, object]] = []
        self.restarts = 0

    def view(self) -> dict[str, Node]:
        """This node's member table (every entry, dead and left included)."""
        return {n.name: n for n in self.core.state.members()}

    def state_of(self, name: str) -> NodeState | None:
        """How this node sees ``name`` (None: unknown)."""
        node = self.core.state.get(name)
        return None if node is None else node.state


class Simulation:
    """A seeded discrete-event simulation of memberlist nodes (see the module comment).

    :attr:`trace` records starts, crashes, request completions and every membership change
    in every view (``NodeJoined n3 ALIVE 2``); :attr:`observers` see every effect.
    """

    def __init__(self, seed: int, *, default_link: LinkModel | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.default_link = default_link or LinkModel()
        self.links: dict[tuple[str, str], LinkModel] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.blocked_udp: set[tuple[str, str]] = set()
        self.group_of: dict[str, int] = {}
        self.nodes: dict[str, SimNode] = {}
        self.by_address: dict[Address, SimNode] = {}
        self.trace: list[tuple[float, str, str]] = []
        self.observers: list[Callable[[float, SimNode, io.Effect], None]] = []
        self.on_boot: list[Callable[[SimNode], None]] = []
        self._heap: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self._stream_seq = 0
        self._server_streams: dict[int, tuple[SimNode, int, int, bool, SimNode]] = {}
        self._request_seq = 0
        self.completed: dict[int, io.RequestCompleted] = {}
        self.events_processed = 0
        self.packets_sent = 0
        self.packets_lost = 0
        #: log lines per (logger, level) and metric samples per key, over every node
        self.log_counts: dict[tuple[str, int], int] = {}
        self.metric_counts: dict[tuple[str, ...], int] = {}

    # -- building -------------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        config: MemberlistConfig | None = None,
        *,
        delegate: CompositeDelegate | None = None,
        keyring: Keyring | None = None,
        start: bool = True,
        join: Iterable[str] = (),
    ) -> SimNode:
        """Add (and by default start) a node; ``join`` names nodes to join through."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        index = len(self.nodes) + 1
        address = Address(f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}", 7946)
        cfg = config if config is not None else sim_config(name)
        node = SimNode(name, address, cfg)
        node.delegate = delegate
        node.keyring = keyring
        self.nodes[name] = node
        self.by_address[address] = node
        if start:
            self._boot(node)
            targets = tuple(self.nodes[j].address for j in join)
            if targets:
                self.join(name, targets)
        return node

    def _boot(self, node: SimNode) -> None:
        seed = self.rng.getrandbits(64)
        rng = random.Random(seed)
        node.core = MemberlistCore(
            node.config,
            rng=rng,
            token_bytes=rng.randbytes,
            keyring=node.keyring,
            delegate=node.delegate,
            advertise=node.address,
        )
        node.up = True
        node.generation += 1
        node.armed = None
        node.stalled_until = -1.0
        node.frozen_until = -1.0
        node.tick_deferred = False
        node.backlog = []
        node.open_streams = {}
        self._record(node, "start")
        for hook in self.on_boot:
            hook(node)
        self._feed(node, io.Start())

    # -- API calls --------------------------------------------------------------------------

    def join(self, name: str, addresses: tuple[Address, ...]) -> int:
        """Feed a JoinRequest; returns its request id (see :attr:`completed`)."""
        return self._request(name, lambda rid: io.JoinRequest(rid, addresses))

    def leave(self, name: str, timeout: float = 5.0) -> int:
        """Feed a LeaveRequest; returns its request id."""
        return self._request(name, lambda rid: io.LeaveRequest(rid, timeout))

    def _request(self, name: str, make: Callable[[int], io.Input]) -> int:
        self._request_seq += 1
        rid = self._request_seq
        self._feed(self.nodes[name], make(rid))
        return rid

    def feed(self, name: str, inp: io.Input) -> None:
        """Feed any input to a node now."""
        self._feed(self.nodes[name], inp)

    # -- faults -----------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Stop the node: no more processing, traffic to it is dropped."""
        node = self.nodes[name]
        node.up = False
        node.generation += 1
        node.backlog = []
        self._record(node, "crash")

    def restart(self, name: str) -> None:
        """A new core under the same name and address (incarnation from scratch), joining
        through ``join`` afterwards is the caller's choice."""
        node = self.nodes[name]
        node.restarts += 1
        self._boot(node)

    def stall(self, name: str, duration: float) -> None:
        """Queue the node's inbound traffic for ``duration`` seconds (timers keep running)."""
        node = self.nodes[name]
        node.stalled_until = max(node.stalled_until, self.now + duration)
        self._push(node.stalled_until, _UNSTALL, node, node.generation)

    def freeze(self, name: str, duration: float) -> None:
        """Starve the node of CPU for ``duration`` seconds, as SIGSTOP does: no timer fires,
        nothing is read (packets and streams queue) and so nothing is sent. When the freeze
        ends its overdue timers fire first (one Tick at the resume time; a resumed Go runtime
        runs expired timers at once, while one reader drains the socket), then the backlog
        is handled in arrival order."""
        node = self.nodes[name]
        node.frozen_until = max(node.frozen_until, self.now + duration)
        node.stalled_until = max(node.stalled_until, node.frozen_until)
        self._push(node.frozen_until, _UNSTALL, node, node.generation)

    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes in the same group can talk; nodes in no group talk to everyone."""
        self.group_of = {n: i for i, g in enumerate(groups) for n in g}

    def heal(self) -> None:
        """Remove partitions and one-way blocks."""
        self.group_of = {}
        self.blocked.clear()
        self.blocked_udp.clear()

    def block(self, src: str, dst: str, *, streams: bool = True) -> None:
        """Cut the direction src -> dst: packets, and stream dials unless ``streams`` is
        False (a firewall that drops UDP only)."""
        (self.blocked if streams else self.blocked_udp).add((src, dst))

    def set_link(self, src: str, dst: str, model: LinkModel) -> None:
        """Give the direction src -> dst its own model."""
        self.links[(src, dst)] = model

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at virtual time ``when``."""
        self._push(when, _CALL, fn, None)

    # -- running ------------------------------------------------------------------------------

    def run_until(self, t: float) -> None:
        """Process every event up to virtual time ``t``."""
        saved = gc.get_threshold()
        gc.set_threshold(*(max(own, ours) for own, ours in zip(saved, _GC_THRESHOLDS, strict=True)))
        try:
            self._run_until(t)
        finally:
            gc.set_threshold(*saved)

    def _run_until(self, t: float) -> None:
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= t:
            when, _, kind, a, b = pop(heap)
            self.now = when
            self.events_processed += 1
            if kind == _PACKET:
                self._deliver(a, b)
            elif kind == _TICK:
                node: SimNode = a
                if node.up and b == node.token:
                    node.armed = None
                    if node.frozen_until > when:
                        node.tick_deferred = True  # fired when the freeze ends
                    else:
                        self._feed(node, io.Tick())
            elif kind == _STREAM_REQ:
                self._stream_request(*a)
            elif kind == _STREAM_REPLY:
                self._stream_reply(*a)
            elif kind == _STREAM_TIMEOUT:
                # the dialer's own deadline: it fires even while the node is stalled (not
                # while it is frozen)
                self._stream_timeout(*a)
            elif kind == _UNSTALL:
                self._unstall(a, b)
            else:
                a()
        self.now = max(self.now, t)

    def run_for(self, dt: float) -> None:
        """Run ``dt`` more virtual seconds."""
        self.run_until(self.now + dt)

    def run_until_converged(
        self, predicate: Callable[[Simulation], bool], timeout: float, step: float = 0.1
    ) -> float | None:
        """Run until ``predicate(self)`` holds (checked every ``step``); the virtual time it
        took, or None after ``timeout``."""
        start = self.now
        while self.now - start <= timeout:
            if predicate(self):
                return self.now - start
            self.run_for(step)
        return None

    # -- views ----------------------------------------------------------------------------

    def live_nodes(self) -> list[SimNode]:
        """Nodes that are up."""
        return [n for n in self.nodes.values() if n.up]

    def all_alive(self, names: Iterable[str] | None = None) -> bool:
        """Every live node sees every node of ``names`` (default: the live ones) alive."""
        live = self.live_nodes()
        wanted = list(names) if names is not None else [n.name for n in live]
        for node in live:
            state = node.core.state
            for name in wanted:
                entry = state.get(name)
                if entry is None or entry.state is not NodeState.ALIVE:
                    return False
        return True

    # -- internals ----------------------------------------------------------------------------

    def _push(self, when: float, kind: int, a: Any, b: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, a, b))

    def _record(self, node: SimNode, event: str) -> None:
        self.trace.append((self.now, node.name, event))

    def _feed(self, node: SimNode, inp: io.Input) -> None:
        if not node.up:
            return
        effects = node.core.handle(inp, self.now)
        if effects:
            self._effects(node, effects)
        deadline = node.core.next_deadline()
        if deadline is not None and (node.armed is None or deadline < node.armed):
            node.armed = deadline
            node.token += 1
            self._push(max(deadline, self.now), _TICK, node, node.token)

    def _link(self, src: SimNode, dst: SimNode) -> LinkModel | None:
        """The model of src -> dst, or None when the direction is cut."""
        if (src.name, dst.name) in self.blocked:
            return None
        groups = self.group_of
        if groups:
            g1 = groups.get(src.name)
            g2 = groups.get(dst.name)
            if g1 is not None and g2 is not None and g1 != g2:
                return None
        return self.links.get((src.name, dst.name), self.default_link)

    def _delay(self, model: LinkModel) -> float:
        return model.latency + self.rng.random() * model.jitter if model.jitter else model.latency

    def _effects(self, node: SimNode, effects: list[io.Effect]) -> None:
        for eff in effects:
            for obs in self.observers:
                obs(self.now, node, eff)
            cls = type(eff)
            if cls is MetricSample:  # the most frequent effects after packets: cheap checks
                key = eff.key  # type: ignore[union-attr]
                self.metric_counts[key] = self.metric_counts.get(key, 0) + 1
                continue
            if cls is LogLine:
                where = (eff.logger, eff.level)  # type: ignore[union-attr]
                self.log_counts[where] = self.log_counts.get(where, 0) + 1
                continue
            match eff:
                case io.SendPacket():
                    self.packets_sent += 1
                    dst = self.by_address.get(eff.dest)
                    if dst is None:
                        continue
                    model = self._link(node, dst)
                    if self.blocked_udp and (node.name, dst.name) in self.blocked_udp:
                        model = None
                    rng = self.rng
                    if model is None or (model.loss and rng.random() < model.loss):
                        self.packets_lost += 1
                        continue
                    pkt = io.PacketReceived(eff.data, node.address)
                    self._push(self.now + self._delay(model), _PACKET, dst, pkt)
                    if model.duplicate and rng.random() < model.duplicate:
                        self._push(self.now + self._delay(model), _PACKET, dst, pkt)
                case io.OpenStream():
                    self._open_stream(node, eff)
                case io.StreamRespond():
                    self._respond(node, eff)
                case io.RequestCompleted():
                    self.completed[eff.request_id] = eff
                    self._record(node, f"completed {eff.request_id} {eff.result} {eff.error}")
                case io.NodeJoined() | io.NodeLeft() | io.NodeUpdated():
                    n = eff.node
                    kind = type(eff).__name__
                    state = _STATE_NAMES[n.state]
                    self._record(node, f"{kind} {n.name} {state} {n.incarnation}")
                case io.Dropped() | LogLine() | MetricSample():
                    pass  # drops: counted by the core's stats (logs, metrics: above)
                case _:  # every effect kind has its case (mypy checks it)
                    assert_never(eff)

    def _deliver(self, node: SimNode, pkt: io.PacketReceived) -> None:
        if not node.up:
            return
        if node.stalled_until > self.now:
            node.backlog.append(lambda: self._feed(node, pkt))
            return
        self._feed(node, pkt)

    def _unstall(self, node: SimNode, generation: int) -> None:
        if node.generation != generation or node.frozen_until > self.now:
            return
        if node.tick_deferred:
            node.tick_deferred = False
            self._feed(node, io.Tick())
        if node.stalled_until > self.now:
            return
        backlog, node.backlog = node.backlog, []
        for deferred in backlog:
            deferred()

    # streams: a dial is a request event at the listener; its StreamRespond a reply event

    def _stream_timeout(self, client: SimNode, gen: int, sid: int) -> None:
        if client.frozen_until > self.now and client.up and client.generation == gen:
            client.backlog.append(lambda: self._stream_timeout(client, gen, sid))
            return
        if client.up and client.generation == gen and client.open_streams.pop(sid, False):
            self._feed(client, io.StreamResult(sid, error="i/o timeout"))

    def _open_stream(self, client: SimNode, eff: io.OpenStream) -> None:
        gen = client.generation
        client.open_streams[eff.stream_id] = True
        self._push(self.now + eff.timeout, _STREAM_TIMEOUT, (client, gen, eff.stream_id), None)
        server = self.by_address.get(eff.dest)
        if server is None:
            return  # nobody there: the timeout answers
        model = self._link(client, server)
        if model is None:
            return  # partitioned: the dial times out
        args = (client, gen, eff, server)
        self._push(self.now + self._delay(model), _STREAM_REQ, args, None)

    def _stream_request(
        self, client: SimNode, gen: int, eff: io.OpenStream, server: SimNode
    ) -> None:
        if not server.up:
            self._stream_done(client, gen, eff.stream_id, error="connection refused")
            return
        if server.stalled_until > self.now:
            server.backlog.append(lambda: self._stream_request(client, gen, eff, server))
            return
        self._stream_seq += 1
        sid = self._stream_seq
        reader = server.core.stream_reader(listener=True)
        inp: io.StreamRequest | io.StreamUnreadable
        try:
            msg = reader.feed(eff.data)
            if msg is None:
                msg = reader.feed_eof()
            inp = io.StreamRequest(sid, msg, client.address)
        except DecodeError as exc:  # the core answers (as the real driver: one rule)
            inp = io.StreamUnreadable(sid, exc, client.address)
        self._server_streams[sid] = (client, gen, eff.stream_id, eff.want_reply, server)
        self._feed(server, inp)

    def _respond(self, server: SimNode, eff: io.StreamRespond) -> None:
        entry = self._server_streams.pop(eff.stream_id, None)
        if entry is None:
            return
        client, gen, client_sid, want_reply, _ = entry
        model = self._link(server, client)
        if model is None:
            return  # the reply is lost: the client times out
        when = self.now + self._delay(model)
        self._push(when, _STREAM_REPLY, (client, gen, client_sid, want_reply, eff.data), None)

    def _stream_reply(
        self, client: SimNode, gen: int, sid: int, want_reply: bool, data: bytes | None
    ) -> None:
        if client.stalled_until > self.now:
            client.backlog.append(lambda: self._stream_reply(client, gen, sid, want_reply, data))
            return
        if not want_reply:
            self._stream_done(client, gen, sid)
            return
        if data is None:
            self._stream_done(client, gen, sid, error="connection closed without a reply")
            return
        if not client.up or client.generation != gen:
            return
        reader = client.core.stream_reader(listener=False)
        try:
            msg = reader.feed(data)
            if msg is None:
                msg = reader.feed_eof()
        except DecodeError as exc:
            self._stream_done(client, gen, sid, error=f"bad reply: {exc}")
            return
        if client.open_streams.pop(sid, False):
            self._feed(client, io.StreamResult(sid, reply=msg))

    def _stream_done(self, client: SimNode, gen: int, sid: int, error: str | None = None) -> None:
        if client.stalled_until > self.now and client.up and client.generation == gen:
            client.backlog.append(lambda: self._stream_done(client, gen, sid, error))
            return
        if client.up and client.generation == gen and client.open_streams.pop(sid, False):
            self._feed(client, io.StreamResult(sid, error=error))
