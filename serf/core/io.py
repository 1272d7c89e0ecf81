"""What goes into the sans-IO serf core and what comes out of it.

How this works. :class:`serf.core.serf.SerfCore` wraps a memberlist core. A driver feeds it
every memberlist input (:mod:`serf.memberlist.io`: packets, streams, ``Tick``, ``Start``,
``ShutdownRequest``, ...) plus the serf requests below, ``core.handle(input, now)``, and
carries out the effects: every memberlist effect except ``NodeJoined`` / ``NodeLeft`` /
``NodeUpdated`` (under a serf core memberlist reports member changes to the serf core's
delegate only), plus the serf events and completions below.
Each request carries a driver-chosen ``request_id`` (non-negative) and is answered by one
:class:`serf.memberlist.io.RequestCompleted` with that id (a query also gets acks, responses
and a :class:`QueryFinished` later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from serf.address import Address, bytes_to_ip

__all__ = [
    "MemberStatus",
    "SerfMember",
    "QueryHandle",
    "UserEventRequest",
    "QueryRequest",
    "RespondRequest",
    "SetTagsRequest",
    "SerfJoinRequest",
    "SerfLeaveRequest",
    "ForceLeaveRequest",
    "KeyRequest",
    "SerfInput",
    "MemberJoined",
    "MemberLeft",
    "MemberFailed",
    "MemberUpdated",
    "MemberReaped",
    "MemberEffect",
    "UserEventReceived",
    "QueryReceived",
    "QueryAckReceived",
    "QueryResponseReceived",
    "QueryFinished",
    "SnapshotLines",
    "ShutdownRequired",
    "SnapshotCompact",
    "KeyResponse",
    "KeyringChanged",
    "SerfEffect",
]


class MemberStatus(IntEnum):
    """Go serf's ``MemberStatus``; ``str()`` gives Go's text ("alive", ...)."""

    NONE = 0
    ALIVE = 1
    LEAVING = 2
    LEFT = 3
    FAILED = 4

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class SerfMember:
    """A serf member as we see it (Go's ``Member``); ``addr`` is the raw 4/16-byte IP."""

    name: str
    addr: bytes
    port: int
    tags: dict[str, str]
    status: MemberStatus
    protocol_min: int = 0
    protocol_max: int = 0
    protocol_cur: int = 0
    delegate_min: int = 0
    delegate_max: int = 0
    delegate_cur: int = 0

    @property
    def address(self) -> Address:
        """``addr:port`` as an :class:`Address`."""
        return Address(bytes_to_ip(self.addr), self.port)


@dataclass(frozen=True, slots=True)
class QueryHandle:
    """A query delivered to us (Go's ``*Query``): answer it with :class:`RespondRequest`."""

    ltime: int
    id: int
    name: str
    payload: bytes
    source_node: str
    deadline: float


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserEventRequest:
    """Broadcast a user event (Go's ``UserEvent``)."""

    request_id: int
    name: str
    payload: bytes
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """Start a query (Go's ``Query``); ``timeout`` 0 means the default timeout."""

    request_id: int
    name: str
    payload: bytes
    filter_nodes: tuple[str, ...] = ()
    filter_tags: tuple[tuple[str, str], ...] = ()
    request_ack: bool = False
    relay_factor: int = 0
    timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class RespondRequest:
    """Answer a query we received (Go's ``Query.Respond``); one answer per query."""

    request_id: int
    query: QueryHandle
    payload: bytes


@dataclass(frozen=True, slots=True)
class SetTagsRequest:
    """Replace our tags and gossip them (Go's ``SetTags``)."""

    request_id: int
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class SerfJoinRequest:
    """Join through ``addresses`` (Go's ``Join``); completes with the number contacted."""

    request_id: int
    addresses: tuple[Address, ...]
    ignore_old: bool = False


@dataclass(frozen=True, slots=True)
class SerfLeaveRequest:
    """Leave gracefully (Go's ``Leave``)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class ForceLeaveRequest:
    """Force a failed member to leave (Go's ``RemoveFailedNode[Prune]``)."""

    request_id: int
    node: str
    prune: bool = False


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """A cluster-wide keyring operation (Go's ``KeyManager``): ``op`` is install, use,
    remove or list; ``key`` the raw key (ignored for list). Completes with a
    :class:`KeyResponse` as ``result``."""

    request_id: int
    op: str
    key: bytes = b""
    relay_factor: int = 0


SerfInput = (
    UserEventRequest
    | QueryRequest
    | RespondRequest
    | SetTagsRequest
    | SerfJoinRequest
    | SerfLeaveRequest
    | ForceLeaveRequest
    | KeyRequest
)

# -- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """Members became alive (``member-join``)."""

    members: tuple[SerfMember, ...]


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """Members left gracefully (``member-leave``)."""

    members: tuple[SerfMember, ...]


@dataclass(frozen=True, slots=True)
class MemberFailed:
    """Members failed (``member-failed``)."""

    members: tuple[SerfMember, ...]


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """Members changed tags or address (``member-update``)."""

    members: tuple[SerfMember, ...]


@dataclass(frozen=True, slots=True)
class MemberReaped:
    """Members were forgotten (``member-reap``)."""

    members: tuple[SerfMember, ...]


MemberEffect = MemberJoined | MemberLeft | MemberFailed | MemberUpdated | MemberReaped


@dataclass(frozen=True, slots=True)
class UserEventReceived:
    """A user event (Go's ``UserEvent``)."""

    ltime: int
    name: str
    payload: bytes
    coalesce: bool


@dataclass(frozen=True, slots=True)
class QueryReceived:
    """A query for us to answer (internal ``_serf_*`` queries are answered by the core)."""

    query: QueryHandle


@dataclass(frozen=True, slots=True)
class QueryAckReceived:
    """An ack for the query we started with ``request_id``."""

    request_id: int
    from_: str


@dataclass(frozen=True, slots=True)
class QueryResponseReceived:
    """A response for the query we started with ``request_id``."""

    request_id: int
    from_: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class QueryFinished:
    """The query started with ``request_id`` reached its deadline: no more answers."""

    request_id: int


@dataclass(frozen=True, slots=True)
class SnapshotLines:
    """Lines to append to the snapshot file (``leave`` among them: flush and fsync)."""

    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotCompact:
    """The snapshot grew past Go's threshold: write ``text`` to ``<path>.compact``, fsync,
    rename it over the snapshot and append to it from then on."""

    text: str


@dataclass(frozen=True, slots=True)
class ShutdownRequired:
    """The core shut itself down (name conflict lost): the driver should stop."""

    reason: str


@dataclass(frozen=True, slots=True)
class KeyringChanged:
    """An install/use/remove-key query changed our keyring: the driver rewrites the
    keyring file (when ``keyring_file`` is set) with ``keys``, primary first."""

    keys: tuple[bytes, ...]


@dataclass(slots=True)
class KeyResponse:
    """Go's ``KeyResponse``: the aggregated answers of a keyring query."""

    messages: dict[str, str] = field(default_factory=dict)
    num_nodes: int = 0
    num_resp: int = 0
    num_err: int = 0
    keys: dict[str, int] = field(default_factory=dict)
    primary_keys: dict[str, int] = field(default_factory=dict)
    not_answered: list[str] = field(default_factory=list)
    """Our own: the members the query went to that did not answer before its deadline."""


SerfEffect = (
    MemberJoined
    | MemberLeft
    | MemberFailed
    | MemberUpdated
    | MemberReaped
    | UserEventReceived
    | QueryReceived
    | QueryAckReceived
    | QueryResponseReceived
    | QueryFinished
    | SnapshotLines
    | SnapshotCompact
    | ShutdownRequired
    | KeyringChanged
)
