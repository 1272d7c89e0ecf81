"""The transport switch in the agent: -transport=net|tls|quic, the -tls-*-file flags and the
JSON keys of the same names, down to the MemberlistConfig the node is built from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serf.agent.agent import Agent
from serf.agent.config import ConfigError, load_config
from serf.config import loopback
from serf.testing.certs import TestCA
from serf.transport.select import transport_for
from serf.transport.tls import TlsConfig


def _files(tmp_path: Path) -> list[str]:
    ca, cert, key = TestCA().write(tmp_path, "a")
    return [f"-tls-ca-file={ca}", f"-tls-cert-file={cert}", f"-tls-key-file={key}"]


@pytest.mark.parametrize("kind", ["tls", "quic"])
def test_flags_reach_the_memberlist_config(tmp_path: Path, kind: str) -> None:
    cfg = load_config([f"-transport={kind}", *_files(tmp_path), "-node=a"])
    ml = Agent(cfg).serf_config().memberlist
    assert ml is not None and ml.transport == kind
    assert isinstance(ml.tls, TlsConfig) and ml.tls.mutual
    assert ml.tls.ca_file == str(tmp_path / "ca.pem")


def test_json_keys(tmp_path: Path) -> None:
    ca, cert, key = TestCA().write(tmp_path, "a")
    doc = {"transport": "tls", "tls_ca_file": str(ca), "tls_cert_file": str(cert)}
    doc["tls_key_file"] = str(key)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    cfg = load_config([f"-config-file={path}"])
    assert (cfg.transport, cfg.tls_ca_file, cfg.tls_key_file) == ("tls", str(ca), str(key))


def test_default_is_net_without_tls() -> None:
    ml = Agent(load_config(["-node=a"])).serf_config().memberlist
    assert ml is not None and (ml.transport, ml.tls) == ("net", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-transport=tls"], "Transport tls needs -tls-ca-file"),
        (["-transport=quic", "-tls-ca-file=x"], "go together"),
        (["-transport=udp"], "Unknown transport: udp"),
    ],
)
def test_bad_flags(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(args)


def test_tls_files_with_net_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="transport is net"):
        load_config(_files(tmp_path))


def test_memberlist_config_checks_the_switch() -> None:
    ca = TestCA()
    with pytest.raises(ValueError, match="transport must be one of"):
        loopback("a", transport="carrier-pigeon")
    with pytest.raises(ValueError, match="needs tls"):
        loopback("a", transport="tls")
    with pytest.raises(ValueError, match="transport is 'net'"):
        loopback("a", tls=ca.tls())
    with pytest.raises(ValueError, match="TlsConfig"):
        loopback("a", transport="tls", tls="ca.pem")
    assert type(transport_for(loopback("a", transport="tls", tls=ca.tls()))).__name__ == (
        "NetTransport"
    )
    assert type(transport_for(loopback("a", transport="quic"))).__name__ == "QuicTransport"
    quic = transport_for(loopback("a", transport="quic", tls=ca.tls()))
    assert type(quic).__name__ == "QuicTransport" and quic._tls is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["tls", "quic"])
def test_agents_on_an_authenticated_transport(tmp_path: Path, kind: str) -> None:
    """Two agents with certificates from one CA form a cluster; one from another CA
    cannot join it."""
    from serf.agent.config import AgentConfig
    from serf.runtime.serf import SerfError
    from serf.testing.agents import cluster, run

    good, stranger = tmp_path / "good", tmp_path / "stranger"
    good.mkdir()
    stranger.mkdir()
    ca, cert, key = TestCA().write(good, "node")
    files = {"tls_ca_file": str(ca), "tls_cert_file": str(cert), "tls_key_file": str(key)}
    other = dict(zip(files, map(str, TestCA("another CA").write(stranger, "node")), strict=True))
    other["tls_ca_file"] = str(ca)  # trusts the cluster CA, but holds another CA's certificate

    async def body() -> None:
        async with cluster(2, transport=kind, **files) as nodes:
            assert {m.name for m in nodes[1].agent.serf.members()} == {"n0", "n1"}
            cfg = AgentConfig(
                node_name="x", bind="127.0.0.1:0", profile="local", transport=kind, **other
            )
            intruder = Agent(cfg)
            await intruder.start()
            try:
                with pytest.raises(SerfError):
                    await intruder.join([nodes[0].gossip], False)
                assert "x" not in {m.name for m in nodes[0].agent.serf.members()}
            finally:
                await intruder.shutdown()

    run(body(), 60)
