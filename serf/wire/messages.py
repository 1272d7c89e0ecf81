"""Typed wire messages: one slotted dataclass per Go struct.

Every class is named after the Go struct it mirrors (memberlist's ``ping`` is :class:`Ping`,
serf's ``messageUserEvent`` is :class:`MessageUserEvent`) and its fields are the Go fields in
snake_case (``SeqNo`` -> ``seq_no``; ``From`` -> ``from_`` because ``from`` is a keyword).

Conventions that keep the ``go`` codec byte-exact (see docs/wire.md and reference section 2.2):

* A Go ``[]byte`` field that Go may leave nil is ``bytes | None``: ``None`` is msgpack nil
  (``c0``), ``b""`` is an empty raw string (``a0``). Fields with ``omitempty`` are plain ``bytes``
  (nil and empty are both left out on the wire).
* Go slices and maps that may be nil are ``list | None`` / ``dict | None`` for the same reason.
* Addresses (``Addr``, ``Target``, ``SourceAddr``) are the raw 4- or 16-byte IP as sent; use
  :func:`serf.wire.addresses.normalize_ip` to compare them.
* ``Vsn`` is the raw 6 bytes ``pmin, pmax, pcur, dmin, dmax, dcur``.
* Durations keep Go's unit: :attr:`MessageQuery.timeout` is an int of nanoseconds.

The classes are mutable (``slots=True``, not frozen) because a frozen dataclass costs about twice
as much to construct and decoding builds thousands of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

__all__ = [
    "MessageType",
    "SerfMessageType",
    "FilterType",
    "Ping",
    "IndirectPingReq",
    "AckResp",
    "NackResp",
    "ErrResp",
    "Suspect",
    "Alive",
    "Dead",
    "PushPullHeader",
    "PushNodeState",
    "PushPull",
    "UserMsgHeader",
    "UserMsg",
    "Compress",
    "MessageLeave",
    "MessageJoin",
    "MessagePushPull",
    "UserEvent",
    "UserEvents",
    "MessageUserEvent",
    "MessageQuery",
    "MessageQueryResponse",
    "Member",
    "MessageConflictResponse",
    "MessageKeyRequest",
    "MessageKeyResponse",
    "UDPAddr",
    "MessageRelay",
    "FilterNode",
    "FilterTag",
    "Coordinate",
    "MemberlistMessage",
    "SerfMessage",
    "Message",
    "Filter",
    "MEMBERLIST_TYPES",
    "SERF_TYPES",
]


class MessageType(IntEnum):
    """memberlist's ``messageType``: the first byte of every memberlist message."""

    PING = 0
    INDIRECT_PING = 1
    ACK_RESP = 2
    SUSPECT = 3
    ALIVE = 4
    DEAD = 5
    PUSH_PULL = 6
    COMPOUND = 7
    USER = 8
    COMPRESS = 9
    ENCRYPT = 10
    NACK_RESP = 11
    HAS_CRC = 12
    ERR = 13
    HAS_LABEL = 244


class SerfMessageType(IntEnum):
    """serf's ``messageType``: the first byte of a memberlist user-message payload."""

    LEAVE = 0
    JOIN = 1
    PUSH_PULL = 2
    USER_EVENT = 3
    QUERY = 4
    QUERY_RESPONSE = 5
    CONFLICT_RESPONSE = 6
    KEY_REQUEST = 7
    KEY_RESPONSE = 8
    RELAY = 9


class FilterType(IntEnum):
    """serf's query ``filterType``: the first byte of each entry of ``MessageQuery.filters``."""

    NODE = 0
    TAG = 1


# --------------------------------------------------------------------------------------------
# memberlist
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Ping:
    """A probe (``ping``, type 0). ``node`` names the intended target ("" accepts anyone)."""

    TYPE: ClassVar[int] = MessageType.PING
    seq_no: int
    node: str
    source_addr: bytes = b""
    source_node: str = ""
    source_port: int = 0


@dataclass(slots=True)
class IndirectPingReq:
    """Ask a member to probe ``target:port`` on our behalf (``indirectPingReq``, type 1)."""

    TYPE: ClassVar[int] = MessageType.INDIRECT_PING
    seq_no: int
    target: bytes | None
    port: int
    node: str
    nack: bool = False
    source_addr: bytes = b""
    source_node: str = ""
    source_port: int = 0


@dataclass(slots=True)
class AckResp:
    """Answer to a ping (``ackResp``, type 2); ``payload`` is the ping delegate's bytes."""

    TYPE: ClassVar[int] = MessageType.ACK_RESP
    seq_no: int
    payload: bytes | None = None


@dataclass(slots=True)
class NackResp:
    """Sent by an indirect prober whose target did not answer (``nackResp``, type 11)."""

    TYPE: ClassVar[int] = MessageType.NACK_RESP
    seq_no: int


@dataclass(slots=True)
class ErrResp:
    """Error reply on a stream (``errResp``, type 13)."""

    TYPE: ClassVar[int] = MessageType.ERR
    error: str


@dataclass(slots=True)
class Suspect:
    """``from_`` suspects ``node`` at ``incarnation`` (``suspect``, type 3)."""

    TYPE: ClassVar[int] = MessageType.SUSPECT
    incarnation: int
    node: str
    from_: str


@dataclass(slots=True)
class Alive:
    """``node`` is alive at ``incarnation`` (``alive``, type 4)."""

    TYPE: ClassVar[int] = MessageType.ALIVE
    incarnation: int
    node: str
    addr: bytes | None
    port: int
    meta: bytes | None = None
    vsn: bytes | None = None


@dataclass(slots=True)
class Dead:
    """``from_`` declares ``node`` dead (``dead``, type 5); ``from_ == node`` is a leave."""

    TYPE: ClassVar[int] = MessageType.DEAD
    incarnation: int
    node: str
    from_: str


@dataclass(slots=True)
class PushPullHeader:
    """Header of a push/pull stream body (``pushPullHeader``)."""

    nodes: int
    user_state_len: int
    join: bool


@dataclass(slots=True)
class PushNodeState:
    """One member's state in a push/pull exchange (``pushNodeState``); ``state`` is 0..3."""

    name: str
    addr: bytes | None
    port: int
    meta: bytes | None
    incarnation: int
    state: int
    vsn: bytes | None


@dataclass(slots=True)
class PushPull:
    """A whole push/pull stream message (type 6): header, node states, then delegate state.

    On the wire this is ``pushPullHeader`` followed by ``len(states)`` ``pushNodeState`` bodies
    and ``len(user_state)`` raw bytes; the header is derived from the other fields.
    """

    TYPE: ClassVar[int] = MessageType.PUSH_PULL
    join: bool
    states: list[PushNodeState]
    user_state: bytes = b""


@dataclass(slots=True)
class UserMsgHeader:
    """Header of a user message on a stream (``userMsgHeader``)."""

    user_msg_len: int


@dataclass(slots=True)
class UserMsg:
    """A delegate (user) message, type 8.

    In a packet the payload follows the type byte; on a stream (``Codec.encode_stream``) a
    ``userMsgHeader`` carrying the length comes first.
    """

    TYPE: ClassVar[int] = MessageType.USER
    payload: bytes


@dataclass(slots=True)
class Compress:
    """A compressed message (``compress``, type 9): ``algo`` 0 is LZW."""

    TYPE: ClassVar[int] = MessageType.COMPRESS
    algo: int
    buf: bytes | None


# --------------------------------------------------------------------------------------------
# serf
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MessageLeave:
    """Leave intent (``messageLeave``, serf type 0)."""

    TYPE: ClassVar[int] = SerfMessageType.LEAVE
    ltime: int
    node: str
    prune: bool = False


@dataclass(slots=True)
class MessageJoin:
    """Join intent (``messageJoin``, serf type 1)."""

    TYPE: ClassVar[int] = SerfMessageType.JOIN
    ltime: int
    node: str


@dataclass(slots=True)
class UserEvent:
    """One event in the event buffer (``userEvent``)."""

    name: str
    payload: bytes | None


@dataclass(slots=True)
class UserEvents:
    """The events seen at one Lamport time (``userEvents``)."""

    ltime: int
    events: list[UserEvent] | None


@dataclass(slots=True)
class MessagePushPull:
    """serf's push/pull user state (``messagePushPull``, serf type 2).

    ``events`` is Go's whole event ring: empty slots are ``None`` (msgpack nil).
    """

    TYPE: ClassVar[int] = SerfMessageType.PUSH_PULL
    ltime: int
    status_ltimes: dict[str, int] | None
    left_members: list[str] | None
    event_ltime: int
    events: list[UserEvents | None] | None
    query_ltime: int


@dataclass(slots=True)
class MessageUserEvent:
    """A user event (``messageUserEvent``, serf type 3); ``cc`` means "can coalesce"."""

    TYPE: ClassVar[int] = SerfMessageType.USER_EVENT
    ltime: int
    name: str
    payload: bytes | None
    cc: bool = False


@dataclass(slots=True)
class MessageQuery:
    """A query (``messageQuery``, serf type 4). ``timeout`` is in nanoseconds, as in Go."""

    TYPE: ClassVar[int] = SerfMessageType.QUERY
    ltime: int
    id: int
    addr: bytes | None
    port: int
    source_node: str
    filters: list[bytes] | None
    flags: int
    relay_factor: int
    timeout: int
    name: str
    payload: bytes | None


@dataclass(slots=True)
class MessageQueryResponse:
    """An ack (``flags & 1``) or a response to a query (``messageQueryResponse``, serf type 5)."""

    TYPE: ClassVar[int] = SerfMessageType.QUERY_RESPONSE
    ltime: int
    id: int
    from_: str
    flags: int
    payload: bytes | None


@dataclass(slots=True)
class Member:
    """serf's ``Member`` as it travels in a conflict response; ``status`` is Go's int."""

    name: str
    addr: bytes | None
    port: int
    tags: dict[str, str] | None
    status: int
    protocol_min: int
    protocol_max: int
    protocol_cur: int
    delegate_min: int
    delegate_max: int
    delegate_cur: int


@dataclass(slots=True)
class MessageConflictResponse:
    """Payload of a ``_serf_conflict`` response (serf type 6): the member we know, or None."""

    TYPE: ClassVar[int] = SerfMessageType.CONFLICT_RESPONSE
    member: Member | None


@dataclass(slots=True)
class MessageKeyRequest:
    """Payload of a key query (``keyRequest``, serf type 7): the raw key bytes."""

    TYPE: ClassVar[int] = SerfMessageType.KEY_REQUEST
    key: bytes | None


@dataclass(slots=True)
class MessageKeyResponse:
    """Payload of a key query response (``nodeKeyResponse``, serf type 8); keys in base64."""

    TYPE: ClassVar[int] = SerfMessageType.KEY_RESPONSE
    result: bool
    message: str
    keys: list[str] | None
    primary_key: str = ""


@dataclass(slots=True)
class UDPAddr:
    """Go's ``net.UDPAddr`` as encoded inside a relay header."""

    ip: bytes | None
    port: int
    zone: str = ""


@dataclass(slots=True)
class MessageRelay:
    """A relayed query response (serf type 9).

    ``payload`` is the inner message as encoded by the same codec: its type byte and body.
    """

    TYPE: ClassVar[int] = SerfMessageType.RELAY
    dest_addr: UDPAddr
    dest_name: str
    payload: bytes


# --------------------------------------------------------------------------------------------
# Values carried inside messages
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FilterNode:
    """Query filter: only the named nodes answer."""

    TYPE: ClassVar[int] = FilterType.NODE
    nodes: list[str] | None


@dataclass(slots=True)
class FilterTag:
    """Query filter: only nodes whose tag ``tag`` matches the (unanchored) regex ``expr``."""

    TYPE: ClassVar[int] = FilterType.TAG
    tag: str
    expr: str


@dataclass(slots=True)
class Coordinate:
    """A Vivaldi network coordinate (seconds), as carried in ack payloads."""

    vec: list[float] | None = field(default_factory=lambda: [0.0] * 8)
    error: float = 1.5
    adjustment: float = 0.0
    height: float = 10e-6

    def raw_distance_to(self, other: Coordinate) -> float:
        """``||va - vb|| + ha + hb`` in seconds, without the adjustment terms (Go's
        ``rawDistanceTo``); ValueError when the two have different dimensions."""
        va, vb = self.vec or [], other.vec or []
        if len(va) != len(vb):
            raise ValueError(f"dimensions aren't compatible: {len(va)} != {len(vb)}")
        # d * d, not d ** 2: float ** raises OverflowError where Go yields +Inf (then a reset).
        squares = sum((x - y) * (x - y) for x, y in zip(va, vb, strict=True))
        return math.sqrt(squares) + self.height + other.height

    def distance_to(self, other: Coordinate) -> float:
        """The estimated round-trip time to ``other`` in seconds (Go's ``DistanceTo``):
        the raw distance plus both adjustments while that sum stays positive; ValueError
        when the two have different dimensions. (The math is here, with the coordinate, so
        the wire layer does not reach up into the Vivaldi client of serf.core.)"""
        dist = self.raw_distance_to(other)
        adjusted = dist + self.adjustment + other.adjustment
        return adjusted if adjusted > 0.0 else dist


MemberlistMessage = (
    Ping
    | IndirectPingReq
    | AckResp
    | NackResp
    | ErrResp
    | Suspect
    | Alive
    | Dead
    | PushPull
    | UserMsg
    | Compress
)
SerfMessage = (
    MessageLeave
    | MessageJoin
    | MessagePushPull
    | MessageUserEvent
    | MessageQuery
    | MessageQueryResponse
    | MessageConflictResponse
    | MessageKeyRequest
    | MessageKeyResponse
    | MessageRelay
)
Message = MemberlistMessage | SerfMessage
Filter = FilterNode | FilterTag

MEMBERLIST_TYPES: tuple[type, ...] = (
    Ping,
    IndirectPingReq,
    AckResp,
    NackResp,
    ErrResp,
    Suspect,
    Alive,
    Dead,
    PushPull,
    UserMsg,
    Compress,
)
SERF_TYPES: tuple[type, ...] = (
    MessageLeave,
    MessageJoin,
    MessagePushPull,
    MessageUserEvent,
    MessageQuery,
    MessageQueryResponse,
    MessageConflictResponse,
    MessageKeyRequest,
    MessageKeyResponse,
    MessageRelay,
)
