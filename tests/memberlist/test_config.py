"""MemberlistConfig: the Go presets, number for number, and validation naming the field."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from serf.config import MemberlistConfig, lan, local, loopback, wan

# Go's DefaultLANConfig (reference 1.1), durations in seconds.
LAN: dict[str, Any] = {
    "bind_addr": "0.0.0.0",
    "bind_port": 7946,
    "advertise_addr": "",
    "advertise_port": 7946,
    "protocol_version": 2,
    "tcp_timeout": 10.0,
    "indirect_checks": 3,
    "retransmit_mult": 4,
    "suspicion_mult": 4,
    "suspicion_max_timeout_mult": 6,
    "push_pull_interval": 30.0,
    "probe_interval": 1.0,
    "probe_timeout": 0.5,
    "disable_tcp_pings": False,
    "awareness_max_multiplier": 8,
    "gossip_interval": 0.2,
    "gossip_nodes": 3,
    "gossip_to_the_dead_time": 30.0,
    "gossip_verify_incoming": True,
    "gossip_verify_outgoing": True,
    "enable_compression": True,
    "secret_key": None,
    "dead_node_reclaim_time": 0.0,
    "require_node_names": False,
    "cidrs_allowed": None,
    "handoff_queue_depth": 1024,
    "udp_buffer_size": 1400,
    "label": "",
    "skip_inbound_label_check": False,
    "queue_check_interval": 30.0,
    "delegate_protocol_version": 0,
    "delegate_protocol_min": 0,
    "delegate_protocol_max": 0,
    "dns_config_path": "/etc/resolv.conf",
    "encryption_version": 1,
    "codec": "lpe",
    # pyserf's own (not in Go's presets): the transport a node builds, and its TLS material
    "transport": "net",
    "tls": None,
}

# DefaultWANConfig: LAN with these overrides.
WAN = {
    **LAN,
    "tcp_timeout": 30.0,
    "suspicion_mult": 6,
    "push_pull_interval": 60.0,
    "probe_timeout": 3.0,
    "probe_interval": 5.0,
    "gossip_nodes": 4,
    "gossip_interval": 0.5,
    "gossip_to_the_dead_time": 60.0,
}

# DefaultLocalConfig: LAN with these overrides.
LOCAL = {
    **LAN,
    "tcp_timeout": 1.0,
    "indirect_checks": 1,
    "retransmit_mult": 2,
    "suspicion_mult": 3,
    "push_pull_interval": 15.0,
    "probe_timeout": 0.2,
    "probe_interval": 1.0,
    "gossip_interval": 0.1,
    "gossip_to_the_dead_time": 15.0,
}


@pytest.mark.parametrize(
    ("preset", "expected"), [(lan, LAN), (wan, WAN), (local, LOCAL)], ids=["lan", "wan", "local"]
)
def test_presets_are_gos_defaults(preset: Any, expected: dict[str, Any]) -> None:
    cfg = preset("node-a")
    got = dataclasses.asdict(cfg)
    assert got.pop("name") == "node-a"
    assert got == expected


def test_every_field_is_checked_by_the_preset_tests() -> None:
    assert {f.name for f in dataclasses.fields(MemberlistConfig)} == {"name", *LAN}


def test_default_construction_is_lan() -> None:
    assert MemberlistConfig(name="x") == lan("x")


def test_frozen_and_slotted() -> None:
    cfg = lan("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.probe_interval = 2.0  # type: ignore[misc]
    assert not hasattr(cfg, "__dict__")


def test_replace_validates_again() -> None:
    cfg = dataclasses.replace(lan("x"), probe_interval=2.0)
    assert cfg.probe_interval == 2.0
    with pytest.raises(ValueError, match="probe_interval"):
        dataclasses.replace(cfg, probe_interval=-1.0)


BAD: list[tuple[str, Any]] = [
    ("name", ""),
    ("bind_port", -1),
    ("bind_port", 65536),
    ("advertise_port", 70000),
    ("protocol_version", 0),
    ("protocol_version", 6),
    ("tcp_timeout", 0.0),
    ("probe_timeout", -0.5),
    ("queue_check_interval", 0),
    ("push_pull_interval", -1.0),
    ("probe_interval", -1.0),
    ("gossip_interval", -0.1),
    ("gossip_to_the_dead_time", -1.0),
    ("dead_node_reclaim_time", -1.0),
    ("probe_interval", math.nan),
    ("tcp_timeout", math.inf),
    ("indirect_checks", -1),
    ("retransmit_mult", -1),
    ("gossip_nodes", -1),
    ("suspicion_mult", 0),
    ("suspicion_max_timeout_mult", 0),
    ("awareness_max_multiplier", 0),
    ("handoff_queue_depth", 0),
    ("udp_buffer_size", 100),
    ("udp_buffer_size", 70000),
    ("label", "x" * 256),
    ("label", "é" * 128),  # 256 bytes in UTF-8
    ("secret_key", b"short"),
    ("delegate_protocol_version", 256),
    ("delegate_protocol_min", -1),
    ("encryption_version", 2),
    ("codec", "json"),
    ("indirect_checks", 1.5),
    ("bind_port", True),
    ("probe_interval", "1s"),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}"[:40] for f, v in BAD])
def test_bad_values_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        MemberlistConfig(**{"name": "x", field: value})


GOOD: list[tuple[str, Any]] = [
    ("bind_port", 0),
    ("protocol_version", 1),
    ("protocol_version", 5),
    ("probe_interval", 0.0),  # disables probing
    ("push_pull_interval", 0.0),  # disables anti-entropy
    ("gossip_interval", 0.0),
    ("gossip_nodes", 0),
    ("probe_timeout", 5.0),  # Go allows a probe timeout longer than the interval
    ("probe_interval", 2),  # an int is a fine number of seconds
    ("label", "x" * 255),
    ("secret_key", bytes(16)),
    ("secret_key", bytes(24)),
    ("secret_key", bytes(32)),
    ("encryption_version", 0),
    ("codec", "go"),
    ("udp_buffer_size", 512),
    ("udp_buffer_size", 65507),
    ("cidrs_allowed", ("10.0.0.0/8",)),
]


@pytest.mark.parametrize(("field", "value"), GOOD, ids=[f"{f}={v!r}"[:40] for f, v in GOOD])
def test_good_edge_values_are_accepted(field: str, value: Any) -> None:
    cfg = MemberlistConfig(**{"name": "x", field: value})
    assert getattr(cfg, field) == value


@pytest.mark.parametrize("preset", [lan, wan, local])
def test_presets_take_field_overrides(preset: Any) -> None:
    assert preset("x", bind_port=7999, codec="go") == dataclasses.replace(
        preset("x"), bind_port=7999, codec="go"
    )
    with pytest.raises(TypeError, match="no_such_field"):
        preset("x", no_such_field=1)
    with pytest.raises(ValueError, match="bind_port"):
        preset("x", bind_port=-1)


def test_loopback_is_local_on_127_0_0_1_with_lans_retransmit_mult() -> None:
    assert loopback("x") == dataclasses.replace(
        local("x"), bind_addr="127.0.0.1", bind_port=0, retransmit_mult=lan("x").retransmit_mult
    )
    assert loopback("x", bind_port=7946).bind_port == 7946


@pytest.mark.parametrize("bad", ["localhost", "", "10.0.0", 7946])
def test_bind_addr_must_be_an_ip_address(bad: Any) -> None:
    with pytest.raises(ValueError, match="bind_addr must be an IP address"):
        lan("x", bind_addr=bad)
