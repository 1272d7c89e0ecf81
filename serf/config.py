"""Frozen configuration dataclasses and the Go presets.

:class:`MemberlistConfig` mirrors Go memberlist's ``Config`` (reference section 1.1): every
field is the Go field in snake_case, durations are float seconds instead of
``time.Duration``, and the defaults are Go's ``DefaultLANConfig``. :func:`lan`, :func:`wan`
and :func:`local` return ``DefaultLANConfig``, ``DefaultWANConfig`` and
``DefaultLocalConfig`` exactly. A config checks itself when it is built (:meth:`validate`,
called from ``__post_init__``), so bad values fail at start with a message naming the field
(design principle 6). Change a preset with :func:`dataclasses.replace`, which validates again.

Go fields that hold live objects rather than settings (``Transport``, ``Keyring``, the
delegates, ``Logger``/``LogOutput``, ``DisableTcpPingsForNode``, ``MetricLabels``) are not
config values here: they are passed to the runtime driver and the cores directly.

A ``SerfConfig`` (Go serf's ``serf.Config``, reference section 3.1) belongs in this module too.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the cores import this module: no ssl for them at run time
    from serf.transport.tls import TlsConfig

__all__ = [
    "PROTOCOL_VERSION_MIN",
    "PROTOCOL_VERSION_MAX",
    "LABEL_MAX_SIZE",
    "META_MAX_SIZE",
    "UDP_BUFFER_SIZE_MIN",
    "UDP_BUFFER_SIZE_MAX",
    "CODECS",
    "TRANSPORTS",
    "MemberlistConfig",
    "lan",
    "wan",
    "local",
    "loopback",
    "SerfConfig",
    "SERF_PROTOCOL_VERSION_MIN",
    "SERF_PROTOCOL_VERSION_MAX",
    "USER_EVENT_SIZE_LIMIT",
]

PROTOCOL_VERSION_MIN = 1
"""Go memberlist's ``ProtocolVersionMin``."""
PROTOCOL_VERSION_MAX = 5
"""Go memberlist's ``ProtocolVersionMax``."""
LABEL_MAX_SIZE = 255
"""Go memberlist's ``LabelMaxSize``: the label is at most this many bytes (UTF-8)."""
META_MAX_SIZE = 512
"""Go memberlist's ``MetaMaxSize``: node metadata is at most this many bytes."""
UDP_BUFFER_SIZE_MIN = 512
"""Our own floor for :attr:`MemberlistConfig.udp_buffer_size` (Go has none): below this a
label, the encryption overhead and one alive message with metadata may not fit in a packet."""
UDP_BUFFER_SIZE_MAX = 65507
"""The largest UDP payload over IPv4."""
CODECS = ("lpe", "go")
"""The message-body codecs :attr:`MemberlistConfig.codec` may name."""
TRANSPORTS = ("net", "tls", "quic")
"""The transports :attr:`MemberlistConfig.transport` may name."""

_SECRET_KEY_SIZES = (16, 24, 32)


@dataclass(frozen=True, slots=True)
class MemberlistConfig:
    """Settings of one memberlist instance, as Go memberlist's ``Config``.

    The defaults are ``DefaultLANConfig`` with ``name`` required (Go uses the hostname).
    Durations are seconds.
    """

    name: str
    """``Name``: this node's unique name in the cluster."""
    bind_addr: str = "0.0.0.0"
    """``BindAddr``: the IP address to listen on (not a host name)."""
    bind_port: int = 7946
    """``BindPort``: the UDP and TCP port to listen on; 0 lets the kernel pick one."""
    advertise_addr: str = ""
    """``AdvertiseAddr``: the address others should use; empty means auto-detect."""
    advertise_port: int = 7946
    """``AdvertisePort``: used only when ``advertise_addr`` is set."""
    protocol_version: int = 2
    """``ProtocolVersion``: the memberlist protocol version we speak, in [1, 5]."""
    tcp_timeout: float = 10.0
    """``TCPTimeout``: dial/read/write deadline for streams."""
    indirect_checks: int = 3
    """``IndirectChecks``: peers asked to probe a node indirectly."""
    retransmit_mult: int = 4
    """``RetransmitMult``: gossip retransmits = mult * ceil(log10(N + 1))."""
    suspicion_mult: int = 4
    """``SuspicionMult``: base suspicion timeout multiplier."""
    suspicion_max_timeout_mult: int = 6
    """``SuspicionMaxTimeoutMult``: max suspicion timeout = this * the base timeout."""
    push_pull_interval: float = 30.0
    """``PushPullInterval``: period of full state sync; 0 disables it."""
    probe_interval: float = 1.0
    """``ProbeInterval``: period of failure-detection probes; 0 disables probing."""
    probe_timeout: float = 0.5
    """``ProbeTimeout``: how long to wait for a direct ack."""
    disable_tcp_pings: bool = False
    """``DisableTcpPings``: turn off the TCP fallback ping."""
    awareness_max_multiplier: int = 8
    """``AwarenessMaxMultiplier``: Lifeguard's cap on probe-timeout scaling."""
    gossip_interval: float = 0.2
    """``GossipInterval``: period of gossip rounds; 0 disables them."""
    gossip_nodes: int = 3
    """``GossipNodes``: random peers to gossip to per round; 0 disables gossip rounds."""
    gossip_to_the_dead_time: float = 30.0
    """``GossipToTheDeadTime``: keep gossiping to a dead node (and keep it listed) this long."""
    gossip_verify_incoming: bool = True
    """``GossipVerifyIncoming``: require inbound traffic to be encrypted when keyed."""
    gossip_verify_outgoing: bool = True
    """``GossipVerifyOutgoing``: encrypt outbound traffic when keyed."""
    enable_compression: bool = True
    """``EnableCompression``: LZW-compress packets (when smaller) and streams."""
    secret_key: bytes | None = None
    """``SecretKey``: an AES key of 16, 24 or 32 bytes, or None."""
    dead_node_reclaim_time: float = 0.0
    """``DeadNodeReclaimTime``: > 0 lets a node dead this long come back from a new address."""
    require_node_names: bool = False
    """``RequireNodeNames``: refuse to send to an address without a node name."""
    cidrs_allowed: tuple[str, ...] | None = None
    """``CIDRsAllowed``: networks alive messages may come from; None or empty allows all."""
    handoff_queue_depth: int = 1024
    """``HandoffQueueDepth``: cap on each queue of received messages awaiting handling."""
    udp_buffer_size: int = 1400
    """``UDPBufferSize``: the most bytes put in one packet."""
    label: str = ""
    """``Label``: a label (at most 255 bytes) in front of every packet and stream."""
    skip_inbound_label_check: bool = False
    """``SkipInboundLabelCheck``: accept unlabeled inbound traffic as if it had our label."""
    queue_check_interval: float = 30.0
    """``QueueCheckInterval``: period of the broadcast-queue-depth metric."""
    delegate_protocol_version: int = 0
    """``DelegateProtocolVersion``: advertised in Vsn byte 5."""
    delegate_protocol_min: int = 0
    """``DelegateProtocolMin``: advertised in Vsn byte 3."""
    delegate_protocol_max: int = 0
    """``DelegateProtocolMax``: advertised in Vsn byte 4."""
    dns_config_path: str = "/etc/resolv.conf"
    """``DNSConfigPath``: resolver config for the TCP-first DNS lookup on join."""
    encryption_version: int = 1
    """The AES-GCM format: 0 (PKCS7-padded) or 1 (unpadded). Go derives it from
    ``ProtocolVersion`` (v1 -> 0, v2+ -> 1); here it is explicit."""
    codec: str = "lpe"
    """Our own: the message-body codec, ``"lpe"`` (native) or ``"go"`` (byte-compatible), or
    the name of a codec registered with :func:`serf.wire.codec.register_codec`."""
    transport: str = "net"
    """Our own: the transport a node builds when none is passed in. ``"net"``: UDP + TCP
    (Go's); ``"tls"``: UDP + TCP with TLS streams (needs ``tls``); ``"quic"``: QUIC (with
    ``tls``, every connection is mutually authenticated by the CA). Only ``"net"`` talks to
    Go serf. Packets are protected by the keyring on every transport."""
    tls: TlsConfig | None = None
    """Our own: the CA and this node's certificate for ``"tls"`` and ``"quic"``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first field whose value is not allowed.

        Go checks only the protocol version, the label size and the key size (in
        ``Create``); the other checks are ours and reject values that cannot work. As in
        Go, ``probe_timeout`` may exceed ``probe_interval``.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if f.type == "int" and not isinstance(value, int):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
            if f.type == "float" and not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        try:
            if not isinstance(self.bind_addr, str):
                raise ValueError
            ipaddress.ip_address(self.bind_addr)
        except ValueError:
            raise ValueError(
                f"bind_addr must be an IP address (e.g. 0.0.0.0, 127.0.0.1, ::), got "
                f"{self.bind_addr!r}"
            ) from None
        for port in ("bind_port", "advertise_port"):
            _check_range(port, getattr(self, port), 0, 65535)
        _check_range(
            "protocol_version", self.protocol_version, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX
        )
        for positive in ("tcp_timeout", "probe_timeout", "queue_check_interval"):
            if getattr(self, positive) <= 0:
                raise ValueError(f"{positive} must be > 0, got {getattr(self, positive)!r}")
        for non_negative in (
            "push_pull_interval",
            "probe_interval",
            "gossip_interval",
            "gossip_to_the_dead_time",
            "dead_node_reclaim_time",
            "indirect_checks",
            "retransmit_mult",
            "gossip_nodes",
        ):
            if getattr(self, non_negative) < 0:
                raise ValueError(
                    f"{non_negative} must be >= 0, got {getattr(self, non_negative)!r}"
                )
        for at_least_one in (
            "suspicion_mult",
            "suspicion_max_timeout_mult",
            "awareness_max_multiplier",
            "handoff_queue_depth",
        ):
            if getattr(self, at_least_one) < 1:
                raise ValueError(
                    f"{at_least_one} must be >= 1, got {getattr(self, at_least_one)!r}"
                )
        _check_range(
            "udp_buffer_size", self.udp_buffer_size, UDP_BUFFER_SIZE_MIN, UDP_BUFFER_SIZE_MAX
        )
        if len(self.label.encode("utf-8")) > LABEL_MAX_SIZE:
            raise ValueError(f"label must be at most {LABEL_MAX_SIZE} bytes")
        if self.secret_key is not None and len(self.secret_key) not in _SECRET_KEY_SIZES:
            raise ValueError(f"secret_key must be 16, 24 or 32 bytes, got {len(self.secret_key)}")
        for vsn in ("delegate_protocol_version", "delegate_protocol_min", "delegate_protocol_max"):
            _check_range(vsn, getattr(self, vsn), 0, 255)
        if self.encryption_version not in (0, 1):
            raise ValueError(f"encryption_version must be 0 or 1, got {self.encryption_version!r}")
        if self.codec not in CODECS:
            from serf.wire.codec import available_codecs  # a codec registered by the user

            if self.codec not in available_codecs():
                raise ValueError(
                    f"codec must be one of {', '.join(available_codecs())} (register your own"
                    f" with serf.wire.codec.register_codec), got {self.codec!r}"
                )
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if self.tls is not None:
            from serf.transport.tls import TlsConfig

            if not isinstance(self.tls, TlsConfig):
                raise ValueError(f"tls must be a TlsConfig, got {type(self.tls).__name__}")
            if self.transport == "net":
                raise ValueError("tls is set but transport is 'net': use transport='tls' or 'quic'")
        elif self.transport == "tls":
            raise ValueError("transport 'tls' needs tls (a TlsConfig with the CA and certificate)")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


def lan(name: str, **overrides: Any) -> MemberlistConfig:
    """Go's ``DefaultLANConfig`` (with ``Name`` = ``name``): tuned for a local network.

    ``overrides`` change fields, e.g. ``lan("a", bind_addr="10.0.0.1", bind_port=7946)``.
    """
    return MemberlistConfig(name=name, **overrides)


def wan(name: str, **overrides: Any) -> MemberlistConfig:
    """Go's ``DefaultWANConfig``: LAN, with longer timeouts for a wide-area network
    (``overrides`` as for :func:`lan`)."""
    return _preset(
        name,
        overrides,
        tcp_timeout=30.0,
        suspicion_mult=6,
        push_pull_interval=60.0,
        probe_timeout=3.0,
        probe_interval=5.0,
        gossip_nodes=4,
        gossip_interval=0.5,
        gossip_to_the_dead_time=60.0,
    )


def local(name: str, **overrides: Any) -> MemberlistConfig:
    """Go's ``DefaultLocalConfig``: LAN, with short timeouts for a loopback cluster
    (``overrides`` as for :func:`lan`).

    Like Go's, it retransmits each broadcast only ``retransmit_mult=2`` times per
    ``ceil(log10(N+1))``, so in a cluster of several nodes a user event, query or member
    change can miss some nodes until a later push/pull repairs it (seen for up to ~17 s in
    8-node clusters, in Go too). For a test cluster on one host, use :func:`loopback`.
    """
    return _preset(
        name,
        overrides,
        tcp_timeout=1.0,
        indirect_checks=1,
        retransmit_mult=2,
        suspicion_mult=3,
        push_pull_interval=15.0,
        probe_timeout=0.2,
        probe_interval=1.0,
        gossip_interval=0.1,
        gossip_to_the_dead_time=15.0,
    )


def loopback(name: str, **overrides: Any) -> MemberlistConfig:
    """:func:`local` for test clusters on one host: binds 127.0.0.1 on a free port (0) and
    gossips with LAN's ``retransmit_mult=4``, so every node gets each event and query in the
    first gossip rounds (``overrides`` as for :func:`lan`). Not a Go preset."""
    preset: dict[str, Any] = {"bind_addr": "127.0.0.1", "bind_port": 0, "retransmit_mult": 4}
    return local(name, **{**preset, **overrides})


def _preset(name: str, overrides: dict[str, Any], **preset: Any) -> MemberlistConfig:
    return MemberlistConfig(name=name, **{**preset, **overrides})


# -- serf ----------------------------------------------------------------------------------------

SERF_PROTOCOL_VERSION_MIN = 2
"""Go serf's ``ProtocolVersionMin``."""
SERF_PROTOCOL_VERSION_MAX = 5
"""Go serf's ``ProtocolVersionMax``."""
USER_EVENT_SIZE_LIMIT = 9 * 1024
"""Go serf's hard cap ``UserEventSizeLimit`` on :attr:`SerfConfig.user_event_size_limit`."""


def _default_tags() -> dict[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class SerfConfig:
    """Settings of one serf node, field for field Go serf's ``serf.Config`` in snake_case.

    Durations are seconds; the defaults are Go's ``serf.DefaultConfig()``. ``memberlist``
    None means ``lan(node_name)``; the node sets the memberlist name, protocol and delegate
    versions itself, as Go does. Go's live objects are arguments of
    :meth:`serf.Serf.create` instead of fields (``merge_delegate``, ``reconnect_delegate``;
    events come from :meth:`serf.Serf.subscribe`, logs from the ``serf`` logger).
    """

    node_name: str
    """``NodeName``: also the memberlist name."""
    tags: dict[str, str] = field(default_factory=_default_tags)
    """``Tags``: carried in the memberlist node meta."""
    protocol_version: int = 4
    """``ProtocolVersion``: serf protocol, in [2, 5]."""
    broadcast_timeout: float = 5.0
    """``BroadcastTimeout``: how long leave, force-leave and set-tags wait for gossip."""
    leave_propagate_delay: float = 1.0
    """``LeavePropagateDelay``: extra wait at the end of a leave."""
    coalesce_period: float = 0.0
    """``CoalescePeriod``: member-event coalescing (on when this and quiescent are > 0)."""
    quiescent_period: float = 0.0
    """``QuiescentPeriod``."""
    user_coalesce_period: float = 0.0
    """``UserCoalescePeriod``: user-event coalescing (on when both user periods are > 0)."""
    user_quiescent_period: float = 0.0
    """``UserQuiescentPeriod``."""
    reap_interval: float = 15.0
    """``ReapInterval``."""
    reconnect_interval: float = 30.0
    """``ReconnectInterval``."""
    reconnect_timeout: float = 24 * 3600.0
    """``ReconnectTimeout``: failed members are reaped after this."""
    tombstone_timeout: float = 24 * 3600.0
    """``TombstoneTimeout``: left members are reaped after this."""
    flap_timeout: float = 60.0
    """``FlapTimeout``: a rejoin within this of a failure counts as a flap."""
    queue_check_interval: float = 30.0
    """``QueueCheckInterval``."""
    queue_depth_warning: int = 128
    """``QueueDepthWarning``."""
    max_queue_depth: int = 4096
    """``MaxQueueDepth``."""
    min_queue_depth: int = 0
    """``MinQueueDepth``: if > 0 the limit is max(this, 2 x members)."""
    recent_intent_timeout: float = 300.0
    """``RecentIntentTimeout``."""
    event_buffer: int = 512
    """``EventBuffer``."""
    query_buffer: int = 512
    """``QueryBuffer``."""
    query_timeout_mult: int = 16
    """``QueryTimeoutMult``."""
    query_response_size_limit: int = 1024
    """``QueryResponseSizeLimit``."""
    query_size_limit: int = 1024
    """``QuerySizeLimit``."""
    user_event_size_limit: int = 512
    """``UserEventSizeLimit``: at most 9 KiB (9216 bytes). An event is gossiped only if it
    fits one packet (``memberlist.udp_buffer_size``, 1400 bytes, less framing); a larger one,
    allowed once this is raised, is not gossiped at all and reaches the others only in the
    push/pull state exchange (every ``push_pull_interval``: up to 30 s with ``lan()``), as
    in Go."""
    memberlist: MemberlistConfig | None = None
    """``MemberlistConfig``: None means ``lan(node_name)``."""
    snapshot_path: str = ""
    """``SnapshotPath``: non-empty turns on :class:`~serf.core.io.SnapshotLines` effects."""
    rejoin_after_leave: bool = False
    """``RejoinAfterLeave``."""
    enable_name_conflict_resolution: bool = True
    """``EnableNameConflictResolution``."""
    disable_coordinates: bool = False
    """``DisableCoordinates``."""
    keyring_file: str = ""
    """``KeyringFile``: the driver rewrites it after keyring changes."""
    validate_node_names: bool = False
    """``ValidateNodeNames``."""

    def __post_init__(self) -> None:
        if self.memberlist is None and isinstance(self.node_name, str) and self.node_name:
            object.__setattr__(self, "memberlist", lan(self.node_name))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first field whose value is not allowed."""
        if not isinstance(self.node_name, str) or not self.node_name:
            raise ValueError("node_name must be a non-empty string")
        if not isinstance(self.tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise ValueError("tags must be a dict of str to str")
        _check_range(
            "protocol_version",
            self.protocol_version,
            SERF_PROTOCOL_VERSION_MIN,
            SERF_PROTOCOL_VERSION_MAX,
        )
        for name in (
            "broadcast_timeout",
            "leave_propagate_delay",
            "coalesce_period",
            "quiescent_period",
            "user_coalesce_period",
            "user_quiescent_period",
            "reap_interval",
            "reconnect_interval",
            "reconnect_timeout",
            "tombstone_timeout",
            "flap_timeout",
            "queue_check_interval",
            "recent_intent_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in (
            "queue_depth_warning",
            "max_queue_depth",
            "min_queue_depth",
            "event_buffer",
            "query_buffer",
            "query_timeout_mult",
            "query_response_size_limit",
            "query_size_limit",
            "user_event_size_limit",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("event_buffer", "query_buffer", "query_timeout_mult"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.user_event_size_limit > USER_EVENT_SIZE_LIMIT:
            raise ValueError(
                f"user_event_size_limit must be at most {USER_EVENT_SIZE_LIMIT}, "
                f"got {self.user_event_size_limit}"
            )
        if not isinstance(self.memberlist, MemberlistConfig):
            raise ValueError("memberlist must be a MemberlistConfig")
        if self.validate_node_names:
            err = node_name_error(self.node_name)
            if err is not None:
                raise ValueError(f"node_name: {err}")


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
MAX_NODE_NAME_LENGTH = 128
"""Go serf's ``MaxNodeNameLength``."""


def node_name_error(name: str) -> str | None:
    """Go serf's ``ValidateNodeName``: None when ``name`` is acceptable, else why not."""
    if any(c not in _NAME_CHARS for c in name):
        return (
            f"Node name contains invalid characters {name!r}, "
            "Valid characters include all alpha-numerics and dashes and '.'"
        )
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NODE_NAME_LENGTH:
        return f"Node name is {len(name)} characters. Valid length is between 1 and 128 characters"
    return None
