"""What goes into the sans-IO memberlist core and what comes out of it.

How this works. The core (:class:`serf.memberlist.core.MemberlistCore`) never touches a socket
or a clock. A driver (asyncio in production, the simulator in tests) feeds it *inputs* with the
current time, ``core.handle(input, now) -> list[Effect]``, carries out the *effects* it returns,
and arms one timer for ``core.next_deadline()``, feeding :class:`Tick` when it fires.

Streams carry one request each (reference section 2.10) and enter the core the way packets
do: the driver only finds where the request ends, with ``core.stream_reader(listener=True)``,
and feeds what it read: a complete message as :class:`StreamRequest`, a request the framing
could not read (a :class:`serf.wire.errors.DecodeError`) as :class:`StreamUnreadable`. The
core answers each with exactly one :class:`StreamRespond` (possibly later, possibly with
``data=None`` meaning "close without reply"; for a :class:`serf.wire.StreamRejected`, Go's
``ErrResp``). For a stream the core opens (:class:`OpenStream`), the driver dials, writes
``data``, and when ``want_reply`` is set reads one reply with
``core.stream_reader(listener=False)``; then it feeds exactly one :class:`StreamResult` for
that ``stream_id`` (the reply, or an error text: refused, timed out, rejected by the peer,
undecodable).

Requests from the API (join, leave, update) carry a ``request_id`` chosen by the driver; the
core answers each with one :class:`RequestCompleted`.

Alongside, the core emits Go's log lines and metric samples as :class:`serf.telemetry.LogLine`
and :class:`serf.telemetry.MetricSample` effects (the driver logs and records them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serf._frozen import fast_init
from serf.address import Address
from serf.memberlist.state import Node
from serf.telemetry import LogLine, MetricSample
from serf.wire.errors import DecodeError
from serf.wire.framing import StreamMessage

__all__ = [
    "Input",
    "Effect",
    "Start",
    "PacketReceived",
    "StreamRequest",
    "StreamUnreadable",
    "StreamResult",
    "Tick",
    "JoinRequest",
    "LeaveRequest",
    "UpdateNodeRequest",
    "SendReliable",
    "SendBestEffort",
    "ShutdownRequest",
    "SendPacket",
    "OpenStream",
    "StreamRespond",
    "RequestCompleted",
    "NodeJoined",
    "NodeLeft",
    "NodeUpdated",
    "Dropped",
]

# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Bring the local node up: it becomes alive at incarnation 1 and schedules its timers."""


@fast_init
@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A datagram as it arrived (still framed: label, encryption, CRC, compression)."""

    data: bytes
    source: Address


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """An inbound stream's request, unwrapped by the framing; answer with StreamRespond."""

    stream_id: int
    message: StreamMessage
    source: Address


@dataclass(frozen=True, slots=True)
class StreamUnreadable:
    """An inbound stream whose request the framing could not read; answer with
    StreamRespond (Go's ``ErrResp`` for a :class:`serf.wire.StreamRejected`, else close)."""

    stream_id: int
    error: DecodeError
    source: Address


@dataclass(frozen=True, slots=True)
class StreamResult:
    """How a stream the core opened ended: its reply (if one was wanted) or an error text."""

    stream_id: int
    reply: StreamMessage | None = None
    error: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Tick:
    """The deadline the driver armed (``core.next_deadline()``) has passed."""


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """Push/pull with each address (memberlist Join); completes with the number that worked."""

    request_id: int
    addresses: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class LeaveRequest:
    """Graceful leave: broadcast our own dead message, complete once sent or after timeout."""

    request_id: int
    timeout: float


@dataclass(frozen=True, slots=True)
class UpdateNodeRequest:
    """Re-read the delegate's node meta and gossip a new alive (memberlist UpdateNode)."""

    request_id: int
    timeout: float


@dataclass(frozen=True, slots=True)
class SendReliable:
    """A user message to ``dest`` over a stream."""

    dest: Address
    payload: bytes


@dataclass(frozen=True, slots=True)
class SendBestEffort:
    """A user message to ``dest`` in one packet."""

    dest: Address
    payload: bytes


@dataclass(frozen=True, slots=True)
class ShutdownRequest:
    """Stop: no more effects except the completion of pending requests with an error."""


Input = (
    Start
    | PacketReceived
    | StreamRequest
    | StreamUnreadable
    | StreamResult
    | Tick
    | JoinRequest
    | LeaveRequest
    | UpdateNodeRequest
    | SendReliable
    | SendBestEffort
    | ShutdownRequest
)

# ----------------------------------------------------------------------------------------------
# effects
# ----------------------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class SendPacket:
    """Send ``data`` (fully framed) as one datagram to ``dest``."""

    dest: Address
    data: bytes


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Dial ``dest``, write ``data`` (fully framed), read one reply if ``want_reply``.

    The driver must answer with one StreamResult for ``stream_id`` within ``timeout``.
    """

    stream_id: int
    dest: Address
    data: bytes
    want_reply: bool
    timeout: float


@dataclass(frozen=True, slots=True)
class StreamRespond:
    """Write ``data`` (fully framed) on inbound stream ``stream_id`` and close it (None: close)."""

    stream_id: int
    data: bytes | None


@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """The answer to a JoinRequest / LeaveRequest / UpdateNodeRequest.

    ``result`` is the number of nodes joined for a join, None otherwise; ``error`` is a text
    when something failed (for a join: only when no address worked; ``errors`` lists each).
    """

    request_id: int
    result: Any = None
    error: str | None = None
    errors: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class NodeJoined:
    """A node became alive in our view (memberlist NotifyJoin)."""

    node: Node


@fast_init
@dataclass(frozen=True, slots=True)
class NodeLeft:
    """A node is dead or left in our view (memberlist NotifyLeave)."""

    node: Node


@fast_init
@dataclass(frozen=True, slots=True)
class NodeUpdated:
    """A node's meta changed (memberlist NotifyUpdate)."""

    node: Node


@dataclass(frozen=True, slots=True)
class Dropped:
    """Something from the network was dropped (counted; ``reason`` says why, for the log)."""

    reason: str
    source: Address | None = None


Effect = (
    SendPacket
    | OpenStream
    | StreamRespond
    | RequestCompleted
    | NodeJoined
    | NodeLeft
    | NodeUpdated
    | Dropped
    | LogLine
    | MetricSample
)
