"""The agent's configuration: Go serf's JSON keys and ``serf agent`` flags (reference 4.1, 4.2).

How this works: :class:`AgentConfig` holds every key of the Go agent's config file under its
snake_case name, with Go's defaults (durations in seconds, floats). A source (a JSON file, or
the command line) is first decoded into a *partial* mapping of the keys it sets
(:func:`decode_config`, :func:`parse_flags`); :func:`load_config` then merges, in Go's order,
the defaults, each ``-config-file``/``-config-dir`` in the order given (a directory gives its
``*.json`` files in lexical order, without recursing), and the flags last, then validates.

Rules kept from Go: unknown keys are errors (mapstructure ``ErrorUnused``), keys match
case-insensitively (so Go's untagged ``MsgpackUseNewTimeFormat`` works), types are strict
(no string-to-int coercion), ``tags`` merge key by key, ``start_join``/``retry_join``/
``event_handlers`` append, ``tags_file`` excludes ``tags`` and ``keyring_file`` excludes
``encrypt_key`` (Go's error texts), ``retry_interval`` and ``broadcast_timeout`` below 1 s are
raised to 1 s with a warning, the deprecated ``role`` becomes the ``role`` tag.

Quirks deliberately fixed:

* Go merges with "non-zero wins", so a later source cannot turn a boolean back to false or a
  number back to 0. Here a key a later source *sets* wins, whatever its value.
* Go's ``enable_compression`` in a file is overwritten by the flag default; here the file value
  holds unless ``-disable-compression`` is given (default: enabled, as Go's effective default).
* ``disable_coordinates`` and ``validate_node_names`` are carried for the agent to honour
  (Go parses them and never passes them on).

Our own keys: ``transport`` (``-transport=net|tls|quic``) with ``tls_ca_file``,
``tls_cert_file`` and ``tls_key_file`` (``-tls-ca-file`` ...; JSON keys of the same names),
and ``codec`` (``-codec=go|lpe``, a flag only). ``tls`` and ``quic`` are pyserf-only
transports: a cluster on them has no Go serf members. An agent
defaults to the ``go`` codec, unlike the library (``lpe``): an agent is what operators drop into
an existing cluster, and every existing cluster is Go serf, so the agent speaks Go's bytes out
of the box; an all-pyserf cluster can opt in to ``lpe``.
"""

from __future__ import annotations

import binascii
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serf.agent.flags import FlagError, FlagSet, HelpRequested, parse_duration
from serf.telemetry import LEVEL_NAMES

__all__ = [
    "AgentConfig",
    "ConfigError",
    "MDNSConfig",
    "decode_config",
    "load_config",
    "parse_flags",
    "read_config_paths",
    "unmarshal_tags",
]

LOG_LEVELS = tuple(LEVEL_NAMES.values())
PROFILES = ("lan", "wan", "local")
CODECS = ("go", "lpe")
TRANSPORTS = ("net", "tls", "quic")
MIN_RETRY_INTERVAL = 1.0
MIN_BROADCAST_TIMEOUT = 1.0


class ConfigError(ValueError):
    """Unusable configuration; the message names the source (file or flag) and the field."""


@dataclass
class MDNSConfig:
    """The ``mdns`` object: interface, disable_ipv4, disable_ipv6."""

    interface: str = ""
    disable_ipv4: bool = False
    disable_ipv6: bool = False


@dataclass
class AgentConfig:
    """Every key of Go serf's agent config file (snake_case), with Go's defaults."""

    node_name: str = ""
    role: str = ""
    disable_coordinates: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    tags_file: str = ""
    bind: str = "0.0.0.0"
    advertise: str = ""
    encrypt_key: str = ""
    keyring_file: str = ""
    log_level: str = "INFO"
    rpc_addr: str = "127.0.0.1:7373"
    rpc_auth: str = ""
    protocol: int = 5
    replay_on_join: bool = False
    query_response_size_limit: int = 1024
    query_size_limit: int = 1024
    user_event_size_limit: int = 512
    start_join: list[str] = field(default_factory=list)
    event_handlers: list[str] = field(default_factory=list)
    profile: str = "lan"
    snapshot_path: str = ""
    leave_on_terminate: bool = False
    skip_leave_on_interrupt: bool = False
    discover: str = ""
    mdns: MDNSConfig = field(default_factory=MDNSConfig)
    interface: str = ""
    reconnect_interval: float = 0.0  # seconds; 0 = serf's default
    reconnect_timeout: float = 0.0
    tombstone_timeout: float = 0.0
    disable_name_resolution: bool = False
    enable_syslog: bool = False
    syslog_facility: str = "LOCAL0"
    retry_join: list[str] = field(default_factory=list)
    retry_max_attempts: int = 0
    retry_interval: float = 30.0
    rejoin_after_leave: bool = False
    enable_compression: bool = True
    statsite_addr: str = ""
    statsd_addr: str = ""
    broadcast_timeout: float = 5.0
    validate_node_names: bool = False
    msgpack_use_new_time_format: bool = False
    # ours
    codec: str = "go"
    transport: str = "net"
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: Prometheus exposition address (host:port; empty: off); needs pyserf[prometheus]
    prometheus_addr: str = ""
    #: status page and JSON API address (host:port; empty: off); needs pyserf[http]
    http_addr: str = ""
    #: non-fatal notes from validation (e.g. an interval raised to its minimum)
    warnings: list[str] = field(default_factory=list)

    def encrypt_bytes(self) -> bytes | None:
        """The decoded ``encrypt_key`` (None when unset)."""
        if not self.encrypt_key:
            return None
        return _decode_key(self.encrypt_key)

    def effective_tags(self) -> dict[str, str]:
        """The tags with the deprecated ``role`` folded in as ``tags['role']``."""
        tags = dict(self.tags)
        if self.role:
            tags["role"] = self.role
        return tags


_DURATIONS = {
    "reconnect_interval",
    "reconnect_timeout",
    "tombstone_timeout",
    "retry_interval",
    "broadcast_timeout",
}
_LISTS = {"start_join", "event_handlers", "retry_join"}
_INTERNAL = {"warnings", "codec"}
_KEYS: dict[str, str] = {
    f.name.replace("_", "") if f.name == "msgpack_use_new_time_format" else f.name: f.name
    for f in dataclasses.fields(AgentConfig)
    if f.name not in _INTERNAL
}
_MDNS_KEYS = ("interface", "disable_ipv4", "disable_ipv6")
_TYPES = {f.name: f.type for f in dataclasses.fields(AgentConfig)}


def _decode_key(text: str) -> bytes:
    import base64  # on use: a node without keys never loads base64 (memory per agent)

    try:
        key = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ConfigError(f"Invalid encryption key: {exc}") from None
    if len(key) not in (16, 24, 32):
        raise ConfigError("Invalid encryption key: key size must be 16, 24 or 32 bytes")
    return key


def _where(source: str, key: str) -> str:
    return f"{source}: '{key}'"


def _check_type(source: str, key: str, value: Any, want: str) -> Any:
    if want == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(source, key)} expected a boolean, got {value!r}")
        return value
    if want == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_where(source, key)} expected an integer, got {value!r}")
        return value
    if want == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{_where(source, key)} expected a string, got {value!r}")
        return value
    if want == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{_where(source, key)} expected an array of strings")
        return list(value)
    if want == "map":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{_where(source, key)} expected an object of strings")
        return dict(value)
    raise AssertionError(want)  # pragma: no cover


def _kind(name: str) -> str:
    if name in _DURATIONS:
        return "duration"
    if name in _LISTS:
        return "list"
    typ = str(_TYPES[name])
    if name == "tags":
        return "map"
    return {"bool": "bool", "int": "int", "str": "str"}.get(typ, "str")


def decode_config(data: Any, source: str) -> dict[str, Any]:
    """The keys one JSON document sets, checked and converted (durations to seconds).

    ``source`` names the origin in errors, e.g. ``"config file /etc/serf/a.json"``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object at the top level")
    lowered = {k.lower(): v for k, v in _KEYS.items()}
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        name = _KEYS.get(raw_key) or lowered.get(str(raw_key).lower())
        if name is None:
            raise ConfigError(f"{source}: unknown key '{raw_key}'")
        if name == "mdns":
            if not isinstance(value, dict):
                raise ConfigError(f"{_where(source, 'mdns')} expected an object")
            sub: dict[str, Any] = {}
            for mk, mv in value.items():
                mname = str(mk).lower()
                if mname not in _MDNS_KEYS:
                    raise ConfigError(f"{source}: unknown key 'mdns.{mk}'")
                want = "str" if mname == "interface" else "bool"
                sub[mname] = _check_type(source, f"mdns.{mk}", mv, want)
            out["mdns"] = sub
            continue
        kind = _kind(name)
        if kind == "duration":
            text = _check_type(source, raw_key, value, "str")
            try:
                out[name] = parse_duration(text) if text else 0.0
            except ValueError as exc:
                raise ConfigError(f"{_where(source, raw_key)} {exc}") from None
        else:
            out[name] = _check_type(source, raw_key, value, kind)
    return out


def _read_file(path: Path) -> dict[str, Any]:
    import json  # on use: an agent without config files never loads it (memory per agent)

    source = f"config file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON: {exc}") from None
    return decode_config(data, source)


def read_config_paths(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Partial configs of each path in order; a directory gives its ``*.json`` files sorted."""
    parts: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                entries = sorted(os.listdir(path))
            except OSError as exc:
                raise ConfigError(f"config dir {path}: {exc.strerror or exc}") from None
            for entry in entries:
                child = path / entry
                if entry.endswith(".json") and child.is_file():
                    parts.append(_read_file(child))
        elif path.exists():
            parts.append(_read_file(path))
        else:
            raise ConfigError(f"config file {path}: no such file or directory")
    return parts


def unmarshal_tags(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings as a tag map (Go's UnmarshalTags: ``Invalid tag: 'x'``)."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"Invalid tag: '{pair}'")
        tags[key] = value
    return tags


_AGENT_FLAG_HELP = {
    "advertise": "Address to advertise to the other members (host[:port]).",
    "bind": "Address to bind the gossip listeners to (host[:port],\n"
    "default 0.0.0.0:7946; [::1] for IPv6).",
    "broadcast-timeout": "How long to wait for a broadcast to go out (Go\nduration).",
    "codec": "Message body codec: go (Go serf's, the default) or lpe.",
    "prometheus-addr": "Serve Prometheus metrics on this address (host:port;\n"
    "needs pip install 'pyserf[prometheus]').",
    "config-dir": "Read every *.json file in this directory, in order\n(repeatable).",
    "config-file": "Read configuration from this JSON file (repeatable).",
    "disable-compression": "Do not compress messages.",
    "discover": "Cluster name to find peers by over mDNS.",
    "encrypt": "Base64 key to encrypt gossip with (16, 24 or 32 bytes).",
    "event-handler": "[type[:name]=]script to run on events (repeatable).",
    "http-addr": "Serve the status page (/ui) and JSON (/v1/members, /v1/stats,\n"
    "/metrics) on this address (e.g. 127.0.0.1:7380; off by default;\n"
    "no host: loopback); needs pip install 'pyserf[http]'.",
    "iface": "Network interface to bind to (instead of -bind's host).",
    "join": "Address of an agent to join at start (repeatable).",
    "keyring-file": "Keyring file: loaded at start, kept up to date.",
    "log-level": "Lowest log level shown: trace, debug, info, warn, err.",
    "mdns-disable-ipv4": "Do not use IPv4 for mDNS.",
    "mdns-disable-ipv6": "Do not use IPv6 for mDNS.",
    "mdns-iface": "Network interface for mDNS (default: -iface).",
    "node": "Name of this node (default: the hostname).",
    "profile": "Timing profile: lan (default), wan or local.",
    "protocol": "Serf protocol version to speak (2-5; default the newest).",
    "rejoin": "Rejoin the cluster from the snapshot after a leave.",
    "replay": "Replay old user events when joining with -join.",
    "retry-interval": "Time between -retry-join attempts (Go duration).",
    "retry-join": "Address to join, retried until it works (repeatable).",
    "retry-max": "Number of -retry-join attempts (0: no limit).",
    "role": "Deprecated: the same as -tag role=<value>.",
    "rpc-addr": "Address of the RPC listener (default 127.0.0.1:7373).",
    "snapshot": "File to save the cluster state to and restore it from.",
    "syslog": "Log to syslog (not supported by pyserf: ignored).",
    "tag": "key=value tag of this node (repeatable).",
    "tags-file": "File the tags are kept in (JSON), read and written.",
    "tls-ca-file": "PEM file of the cluster CA (-transport=tls|quic).",
    "tls-cert-file": "PEM file of this node's certificate (signed by the CA).",
    "tls-key-file": "PEM file of this node's private key (unencrypted).",
    "transport": "Gossip transport: net (UDP+TCP, the default, Go's), tls\n"
    "(net with TLS streams) or quic; tls and quic need the\n"
    "-tls-*-file flags and pyserf peers.",
}


def _agent_flags() -> FlagSet:
    fs = FlagSet(
        "agent",
        "serf agent [options]",
        "Starts a Serf agent and runs it until interrupted. The agent is one node\nof a cluster.",
    )

    def help_of(name: str) -> str:
        return _AGENT_FLAG_HELP.get(name, "")

    # no -rpc-auth, as Go: a secret on the command line shows in ps
    for name in (
        "bind", "advertise", "encrypt", "keyring-file", "log-level", "node", "role", "rpc-addr",
        "profile", "snapshot", "discover", "iface", "mdns-iface", "tags-file",
        "retry-interval", "broadcast-timeout", "codec", "transport", "tls-ca-file",
        "tls-cert-file", "tls-key-file", "http-addr", "prometheus-addr",
    ):  # fmt: skip
        fs.string(name, help=help_of(name))
    for name in ("event-handler", "join", "tag", "retry-join"):
        fs.repeated(name, help=help_of(name))
    # Go appends both to one list, so files and directories keep their command-line order
    fs.repeated("config-file", help=help_of("config-file"), into="config")
    fs.repeated("config-dir", help=help_of("config-dir"), into="config")
    for name in (
        "replay", "mdns-disable-ipv4", "mdns-disable-ipv6", "syslog", "rejoin",
        "disable-compression",
    ):  # fmt: skip
        fs.boolean(name, help=help_of(name))
    fs.integer("protocol", -1, help=help_of("protocol"))
    fs.integer("retry-max", 0, help=help_of("retry-max"))
    return fs


def agent_usage() -> str:
    """The help text of ``serf agent``."""
    return _agent_flags().usage()


_FLAG_TO_KEY = {
    "bind": "bind",
    "advertise": "advertise",
    "encrypt": "encrypt_key",
    "keyring-file": "keyring_file",
    "log-level": "log_level",
    "node": "node_name",
    "role": "role",
    "rpc-addr": "rpc_addr",
    "profile": "profile",
    "snapshot": "snapshot_path",
    "discover": "discover",
    "iface": "interface",
    "tags-file": "tags_file",
    "codec": "codec",
    "transport": "transport",
    "tls-ca-file": "tls_ca_file",
    "tls-cert-file": "tls_cert_file",
    "tls-key-file": "tls_key_file",
    "http-addr": "http_addr",
    "prometheus-addr": "prometheus_addr",
    "event-handler": "event_handlers",
    "join": "start_join",
    "retry-join": "retry_join",
    "replay": "replay_on_join",
    "syslog": "enable_syslog",
    "rejoin": "rejoin_after_leave",
    "retry-max": "retry_max_attempts",
    "protocol": "protocol",
}


def parse_flags(args: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The ``serf agent`` flags: (the keys they set, the config paths in the order given)."""
    seen: set[str] = set()
    try:
        values, rest = _agent_flags().parse(args, seen=seen)
    except HelpRequested:
        raise
    except FlagError as exc:
        raise ConfigError(str(exc)) from None
    if rest:
        raise ConfigError(f"unexpected argument: {rest[0]!r}")
    out: dict[str, Any] = {}
    for flag_name, key in _FLAG_TO_KEY.items():
        if flag_name in seen:
            out[key] = values[flag_name]
    if "protocol" in out and out["protocol"] < 0:
        del out["protocol"]
    for flag_name, key in (
        ("retry-interval", "retry_interval"),
        ("broadcast-timeout", "broadcast_timeout"),
    ):
        if flag_name in seen and values[flag_name]:
            try:
                out[key] = parse_duration(values[flag_name])
            except ValueError as exc:
                raise ConfigError(f"flag -{flag_name}: {exc}") from None
    if "tag" in seen:
        out["tags"] = unmarshal_tags(values["tag"])
    mdns = {
        k: values[f]
        for f, k in (
            ("mdns-iface", "interface"),
            ("mdns-disable-ipv4", "disable_ipv4"),
            ("mdns-disable-ipv6", "disable_ipv6"),
        )
        if f in seen
    }
    if mdns:
        out["mdns"] = mdns
    if "disable-compression" in seen:
        out["enable_compression"] = not values["disable-compression"]
    return out, list(values["config"])


def _apply(cfg: AgentConfig, part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if key == "tags":
            cfg.tags.update(value)
        elif key in _LISTS:
            getattr(cfg, key).extend(value)
        elif key == "mdns":
            for mk, mv in value.items():
                setattr(cfg.mdns, mk, mv)
        else:
            setattr(cfg, key, value)


def validate(cfg: AgentConfig) -> AgentConfig:
    """Check cross-field rules (Go's texts) and clamp intervals; returns ``cfg``."""
    if cfg.tags_file and cfg.tags:
        raise ConfigError("Tags config not allowed while using tag files")
    if cfg.keyring_file and cfg.encrypt_key:
        raise ConfigError("Encryption key not allowed while using a keyring")
    cfg.encrypt_bytes()
    if cfg.profile not in PROFILES:
        raise ConfigError(f"Unknown profile: {cfg.profile}")
    if cfg.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"Invalid log level: {cfg.log_level}. Valid log levels are: [{' '.join(LOG_LEVELS)}]"
        )
    if cfg.codec not in CODECS:
        raise ConfigError(f"Unknown codec: {cfg.codec} (expected one of {', '.join(CODECS)})")
    if cfg.transport not in TRANSPORTS:
        raise ConfigError(
            f"Unknown transport: {cfg.transport} (expected one of {', '.join(TRANSPORTS)})"
        )
    tls_files = (cfg.tls_ca_file, cfg.tls_cert_file, cfg.tls_key_file)
    if cfg.transport == "tls" and not all(tls_files):
        raise ConfigError(
            "Transport tls needs -tls-ca-file, -tls-cert-file and -tls-key-file "
            "(tls_ca_file, tls_cert_file, tls_key_file)"
        )
    if any(tls_files) and not all(tls_files):
        raise ConfigError("-tls-ca-file, -tls-cert-file and -tls-key-file go together")
    if any(tls_files) and cfg.transport == "net":
        raise ConfigError("TLS files given but transport is net: use -transport=tls or quic")
    if cfg.http_addr:
        from serf.agent.http_api import http_address

        try:
            http_address(cfg.http_addr)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not 2 <= cfg.protocol <= 5:
        raise ConfigError(f"'protocol' must be between 2 and 5, got {cfg.protocol}")
    if cfg.event_handlers:  # the parser is imported for handlers only (memory per agent)
        from serf.agent.handler_spec import HandlerSpecError, parse_handlers

        try:
            parse_handlers(cfg.event_handlers)
        except HandlerSpecError as exc:
            raise ConfigError(str(exc)) from None
    if cfg.retry_interval < MIN_RETRY_INTERVAL:
        cfg.retry_interval = MIN_RETRY_INTERVAL
        cfg.warnings.append("Warning: 'RetryInterval' is too low. Setting to 1s")
    if cfg.broadcast_timeout < MIN_BROADCAST_TIMEOUT:
        cfg.broadcast_timeout = MIN_BROADCAST_TIMEOUT
        cfg.warnings.append("Warning: 'BroadcastTimeout' is too low. Setting to 1s")
    return cfg


def load_config(args: Sequence[str]) -> AgentConfig:
    """Defaults, then config files/dirs in the order given, then the flags; validated."""
    flag_part, paths = parse_flags(args)
    cfg = AgentConfig()
    for part in read_config_paths(paths):
        _apply(cfg, part)
    _apply(cfg, flag_part)
    return validate(cfg)
