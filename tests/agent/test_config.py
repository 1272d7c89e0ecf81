"""Agent configuration: every key, merge order, durations, flags, Go's error texts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from serf.agent.config import (
    AgentConfig,
    ConfigError,
    decode_config,
    load_config,
    unmarshal_tags,
)
from serf.agent.flags import FlagError, FlagSet, format_duration, parse_duration

KEY16 = base64.b64encode(bytes(16)).decode()
KEY32 = base64.b64encode(bytes(range(32))).decode()

EVERY_KEY = {
    "node_name": "n1",
    "role": "web",
    "disable_coordinates": True,
    "tags": {"a": "b"},
    "bind": "127.0.0.1:8000",
    "advertise": "10.0.0.1",
    "encrypt_key": KEY16,
    "log_level": "debug",
    "rpc_addr": "127.0.0.1:9000",
    "rpc_auth": "secret",
    "protocol": 4,
    "replay_on_join": True,
    "query_response_size_limit": 123,
    "query_size_limit": 456,
    "user_event_size_limit": 789,
    "start_join": ["a", "b"],
    "event_handlers": ["foo.sh", "user:deploy=bar.sh"],
    "profile": "wan",
    "snapshot_path": "/tmp/snap",
    "leave_on_terminate": True,
    "skip_leave_on_interrupt": True,
    "discover": "cluster",
    "mdns": {"interface": "eth0", "disable_ipv4": True, "disable_ipv6": False},
    "interface": "eth1",
    "reconnect_interval": "15s",
    "reconnect_timeout": "48h",
    "tombstone_timeout": "36h",
    "disable_name_resolution": True,
    "enable_syslog": True,
    "syslog_facility": "LOCAL4",
    "retry_join": ["c"],
    "retry_max_attempts": 3,
    "retry_interval": "1m30s",
    "rejoin_after_leave": True,
    "enable_compression": False,
    "statsite_addr": "127.0.0.1:8125",
    "statsd_addr": "127.0.0.1:8126",
    "broadcast_timeout": "500ms",
    "validate_node_names": True,
    "MsgpackUseNewTimeFormat": True,
}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_defaults_are_gos() -> None:
    cfg = load_config([])
    assert cfg.bind == "0.0.0.0" and cfg.rpc_addr == "127.0.0.1:7373"
    assert cfg.log_level == "INFO" and cfg.profile == "lan" and cfg.protocol == 5
    assert cfg.retry_interval == 30.0 and cfg.broadcast_timeout == 5.0
    assert cfg.syslog_facility == "LOCAL0"
    assert (cfg.query_response_size_limit, cfg.query_size_limit) == (1024, 1024)
    assert cfg.user_event_size_limit == 512
    assert cfg.enable_compression is True
    assert cfg.codec == "go" and cfg.transport == "net"


def test_every_key_decodes(tmp_path: Path) -> None:
    cfg = load_config([f"-config-file={_write(tmp_path / 'a.json', EVERY_KEY)}"])
    assert cfg.node_name == "n1" and cfg.role == "web" and cfg.disable_coordinates
    assert cfg.tags == {"a": "b"} and cfg.effective_tags() == {"a": "b", "role": "web"}
    assert cfg.encrypt_bytes() == bytes(16)
    assert cfg.protocol == 4 and cfg.replay_on_join
    assert cfg.query_response_size_limit == 123 and cfg.user_event_size_limit == 789
    assert cfg.start_join == ["a", "b"] and cfg.retry_join == ["c"]
    assert cfg.mdns.interface == "eth0" and cfg.mdns.disable_ipv4
    assert cfg.reconnect_interval == 15.0 and cfg.reconnect_timeout == 48 * 3600
    assert cfg.tombstone_timeout == 36 * 3600 and cfg.retry_interval == 90.0
    # 500ms is below the 1 s minimum: raised with Go's warning
    assert cfg.broadcast_timeout == 1.0 and cfg.warnings
    assert cfg.enable_compression is False  # fixed quirk: the file value holds
    assert cfg.validate_node_names and cfg.msgpack_use_new_time_format
    assert cfg.statsd_addr == "127.0.0.1:8126" and cfg.syslog_facility == "LOCAL4"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", {"node_name": "x", "foo": 1})
    with pytest.raises(ConfigError, match=rf"config file {path}: unknown key 'foo'"):
        load_config(["-config-file", str(path)])
    with pytest.raises(ConfigError, match=r"unknown key 'mdns\.bogus'"):
        decode_config({"mdns": {"bogus": 1}}, "x")


def test_wrong_types_name_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", {"protocol": "4"})
    with pytest.raises(ConfigError, match=rf"config file {path}: 'protocol' expected an integer"):
        load_config([f"-config-file={path}"])
    with pytest.raises(ConfigError, match="'retry_interval' time: invalid duration"):
        decode_config({"retry_interval": "soon"}, "f")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=rf"config file {bad}: invalid JSON"):
        load_config([f"-config-file={bad}"])


def test_keys_match_case_insensitively() -> None:
    assert decode_config({"Node_Name": "x", "msgpackusenewtimeformat": True}, "f") == {
        "node_name": "x",
        "msgpack_use_new_time_format": True,
    }


def test_merge_order_files_dirs_then_flags(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "sub").mkdir()
    _write(d / "sub" / "zz.json", {"node_name": "never"})  # not recursive
    _write(d / "b.json", {"node_name": "dir-b", "tags": {"b": "1"}, "start_join": ["j2"]})
    _write(d / "a.json", {"node_name": "dir-a", "tags": {"a": "1"}, "start_join": ["j1"]})
    (d / "ignored.txt").write_text("{garbage")
    first = _write(tmp_path / "first.json", {"node_name": "file", "log_level": "DEBUG"})
    last = _write(tmp_path / "last.json", {"replay_on_join": True, "protocol": 3})
    cfg = load_config([f"-config-file={first}", "-config-dir", str(d), f"-config-file={last}"])
    assert cfg.node_name == "dir-b"  # lexical order inside the dir
    assert cfg.tags == {"a": "1", "b": "1"}
    assert cfg.start_join == ["j1", "j2"]
    assert cfg.log_level == "DEBUG" and cfg.replay_on_join and cfg.protocol == 3
    cfg = load_config(
        [f"-config-dir={d}", "-node=flag", "-join=j3", "-tag", "c=2", "-replay=false"]
    )
    assert cfg.node_name == "flag" and cfg.start_join == ["j1", "j2", "j3"]
    assert cfg.tags == {"a": "1", "b": "1", "c": "2"}


def test_later_false_wins_deliberately(tmp_path: Path) -> None:
    # Go's "non-zero wins" merge could not turn a boolean off again; we can.
    a = _write(tmp_path / "a.json", {"replay_on_join": True})
    b = _write(tmp_path / "b.json", {"replay_on_join": False})
    assert load_config([f"-config-file={a}", f"-config-file={b}"]).replay_on_join is False
    assert load_config([f"-config-file={a}", "-replay=false"]).replay_on_join is False


def test_flags_forms_and_durations() -> None:
    cfg = load_config(
        [
            "-bind", "127.0.0.1:7000", "--node=n", "-encrypt", KEY32, "-protocol=3",
            "-retry-interval=2m", "-broadcast-timeout", "10s", "-disable-compression",
            "-event-handler", "member-join=a.sh", "-event-handler=b.sh", "-retry-join=x",
            "-retry-join", "y", "-mdns-disable-ipv6", "-codec=lpe", "-transport=net",
        ]
    )  # fmt: skip
    assert cfg.bind == "127.0.0.1:7000" and cfg.node_name == "n" and cfg.protocol == 3
    assert cfg.encrypt_bytes() == bytes(range(32))
    assert cfg.retry_interval == 120.0 and cfg.broadcast_timeout == 10.0
    assert cfg.enable_compression is False and cfg.mdns.disable_ipv6
    assert cfg.event_handlers == ["member-join=a.sh", "b.sh"]
    assert cfg.retry_join == ["x", "y"] and cfg.codec == "lpe"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["-node"], "flag needs an argument: -node"),
        (["-protocol=abc"], 'invalid value "abc" for flag -protocol'),
        (["-replay=maybe"], 'invalid boolean value "maybe" for -replay'),
        (["-retry-interval=5"], "-retry-interval: time: missing unit"),
        (["-encrypt=!!!"], "Invalid encryption key"),
        (["-encrypt=" + base64.b64encode(bytes(10)).decode()], "key size must be 16, 24 or 32"),
        (["-tag=novalue"], "Invalid tag: 'novalue'"),
        (["-profile=moon"], "Unknown profile: moon"),
        (["-log-level=LOUD"], "Invalid log level: LOUD"),
        (["-codec=xml"], "Unknown codec: xml"),
        (["-transport=carrier-pigeon"], "Unknown transport"),
        (["-event-handler=bogus=x.sh"], 'Invalid event script: Event "bogus" invoking "x.sh"'),
        (["-event-handler=FOO=1 handler.sh"], "Invalid event script"),  # Go's documented trap
        (["-config-file=/nonexistent/x.json"], "config file /nonexistent/x.json"),
        (["extra"], "unexpected argument"),
    ],
)
def test_bad_flags(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        load_config(args)


def test_mutually_exclusive_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Tags config not allowed while using tag files$"):
        load_config(["-tags-file=/tmp/t.json", "-tag=a=b"])
    with pytest.raises(ConfigError, match=r"^Encryption key not allowed while using a keyring$"):
        load_config(["-keyring-file=/tmp/k.json", f"-encrypt={KEY16}"])
    path = _write(tmp_path / "a.json", {"tags_file": "/tmp/t", "tags": {"x": "y"}})
    with pytest.raises(ConfigError, match="Tags config not allowed"):
        load_config([f"-config-file={path}"])


def test_low_intervals_are_raised_to_one_second() -> None:
    cfg = load_config(["-retry-interval=10ms", "-broadcast-timeout=1ms"])
    assert cfg.retry_interval == 1.0 and cfg.broadcast_timeout == 1.0
    assert cfg.warnings == [
        "Warning: 'RetryInterval' is too low. Setting to 1s",
        "Warning: 'BroadcastTimeout' is too low. Setting to 1s",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("24h", 86400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0", 0.0),
        ("-2s", -2.0),
        ("10us", 1e-5),
        ("1h2m3s4ms", 3723.004),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5", "1x", "1s2", "--1s", " 1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 30, 90, 3600, 0.5)] == [
        "0s",
        "30s",
        "1m30s",
        "1h0m0s",
        "500ms",
    ]


def test_flagset_stops_at_first_positional_and_double_dash() -> None:
    fs = FlagSet("t")
    fs.boolean("b")
    fs.string("s", "d")
    values, rest = fs.parse(["-b", "x", "-s=1"])
    assert values == {"b": True, "s": "d"} and rest == ["x", "-s=1"]
    values, rest = fs.parse(["-s", "v", "--", "-b"])
    assert values == {"b": False, "s": "v"} and rest == ["-b"]
    with pytest.raises(FlagError, match="bad flag syntax: ---x"):
        fs.parse(["---x"])


def test_unmarshal_tags() -> None:
    assert unmarshal_tags(["a=b", "c=d=e", "e="]) == {"a": "b", "c": "d=e", "e": ""}
    with pytest.raises(ConfigError, match="Invalid tag: '=x'"):
        unmarshal_tags(["=x"])


def test_dataclass_has_every_reference_key() -> None:
    names = {f for f in AgentConfig.__dataclass_fields__}
    missing = {k for k in EVERY_KEY if k != "MsgpackUseNewTimeFormat"} - names
    assert not missing
