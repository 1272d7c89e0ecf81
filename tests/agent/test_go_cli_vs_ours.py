"""Existing clients against OUR agent: the Go ``serf`` CLI (gopeer's pinned binary) and, when it
is importable, the published ``serfclient`` package from PyPI.

Skipped when ``go`` is missing unless ``SERF_REQUIRE_GO=1``. ``serfclient`` (1.2.0, pure
Python, msgpack >= 0.5) is looked for on ``sys.path`` and in ``SERF_PYPI_CLIENT_PATH``; install
it with ``pip install --no-deps serfclient==1.2.0`` (or ``--target DIR`` and point the variable
at DIR) to run that test."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serf.testing.agents import SERF, AgentProc, serf_cli, wait_for
from serf.testing.gopeer import GoSerfAgent, go_serf_or_skip
from serf.testing.multicast import multicast_unavailable, private_lan
from serf.testing.netbed import in_namespace, netbed_or_skip
from serf.wire.rpc import RpcDecoder, encode_rpc

pytestmark = [pytest.mark.go, pytest.mark.integration, pytest.mark.slow]


KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def go_serf() -> Path:
    return go_serf_or_skip()  # skipped without go, failed with SERF_REQUIRE_GO=1


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[AgentProc, AgentProc]]:
    a = AgentProc("ours0", tmp_path, f"-encrypt={KEY}", "-event-handler", "query:hi=echo hello")
    b = AgentProc("ours1", tmp_path, f"-encrypt={KEY}", "-event-handler", "query:hi=echo hello")
    try:
        a.start()
        b.start(f"-join={a.bind}")
        wait_for(lambda: a.members() == {"ours0": "alive", "ours1": "alive"})
        yield a, b
    finally:
        a.stop()
        b.stop()


def go(binary: Path, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_go_cli_against_our_agent(go_serf: Path, pair: tuple[AgentProc, AgentProc]) -> None:
    a, b = pair
    out = go(go_serf, "members", a.rpc, "-format=json")
    assert out.returncode == 0, out.stderr
    members = {m["name"]: m for m in json.loads(out.stdout)["members"]}
    assert set(members) == {"ours0", "ours1"}
    assert members["ours1"]["addr"] == b.bind and members["ours1"]["status"] == "alive"
    out = go(go_serf, "members", a.rpc, "-name=ours1", "-status=alive")
    assert out.returncode == 0 and "ours1" in out.stdout and "ours0" not in out.stdout
    out = go(go_serf, "event", a.rpc, "deploy", "payload")
    assert out.returncode == 0 and "Event 'deploy' dispatched" in out.stdout
    out = go(go_serf, "query", a.rpc, "-timeout=3s", "-format=json", "hi")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["Acks"]) == {"ours0", "ours1"}
    assert {k: v.strip() for k, v in result["Responses"].items()} == {
        "ours0": "hello",
        "ours1": "hello",
    }
    out = go(go_serf, "keys", a.rpc, "-list")
    assert out.returncode == 0 and KEY in out.stdout and "[2/2]" in out.stdout
    out = go(go_serf, "tags", b.rpc, "-set", "role=db", "-set", "dc=x")
    assert out.returncode == 0 and "Successfully updated agent tags" in out.stdout
    assert go(go_serf, "tags", b.rpc, "-delete", "dc").returncode == 0
    wait_for(lambda: '"role": "db"' in go(go_serf, "members", a.rpc, "-format=json").stdout)
    assert '"dc"' not in go(go_serf, "members", a.rpc, "-format=json").stdout
    out = go(go_serf, "info", a.rpc, "-format=json")
    assert out.returncode == 0
    info = json.loads(out.stdout)
    assert info["agent"]["name"] == "ours0" and info["serf"]["members"] == "2"
    out = go(go_serf, "info", a.rpc)
    assert out.returncode == 0 and "event_handlers:" in out.stdout
    out = go(go_serf, "reachability", a.rpc)
    assert out.returncode == 0 and "Successfully contacted all live nodes" in out.stdout
    out = go(go_serf, "rtt", a.rpc, "ours0")
    assert out.returncode == 0 and "rtt" in out.stdout
    # Go's monitor: replayed lines first, then Ctrl-C sends stop and exits
    mon = subprocess.Popen(
        [str(go_serf), "monitor", a.rpc, "-log-level=debug"], stdout=subprocess.PIPE
    )
    try:
        assert mon.stdout is not None
        ready, _, _ = select.select([mon.stdout], [], [], 10)
        assert ready, "no monitor output"
        assert b"[" in mon.stdout.read1(65536)  # type: ignore[attr-defined]
        mon.send_signal(signal.SIGINT)
        mon.wait(timeout=10)
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait(timeout=5)
    # our CLI agrees with Go's about the members
    ours = serf_cli("members", a.rpc, "-format=json")
    assert {m["name"] for m in json.loads(ours.stdout)["members"]} == set(members)
    out = go(go_serf, "leave", b.rpc)
    assert out.returncode == 0
    assert b.proc is not None and b.proc.wait(timeout=15) == 0
    wait_for(lambda: a.members().get("ours1") == "left")


def _serfclient() -> object:
    extra = os.environ.get("SERF_PYPI_CLIENT_PATH", "/tmp/pypiclients/site")
    if extra and os.path.isdir(extra) and extra not in sys.path:
        sys.path.append(extra)
    try:
        return importlib.import_module("serfclient")
    except ImportError:
        pytest.skip("serfclient (PyPI) is not installed")


def test_pypi_serfclient_against_our_agent(tmp_path: Path) -> None:
    serfclient = _serfclient()
    a = AgentProc("pyc0", tmp_path, "-tag", "role=web")
    try:
        a.start()
        client_cls: Callable[..., object] = serfclient.SerfClient  # type: ignore[attr-defined]
        client = client_cls(host="127.0.0.1", port=a.rpc_port)
        members = client.members().body["Members"]  # type: ignore[attr-defined]
        assert [m["Name"] for m in members] == ["pyc0"]
        assert members[0]["Tags"] == {"role": "web"}
        filtered = client.members(tags={"role": "w.*"}).body["Members"]  # type: ignore[attr-defined]
        assert len(filtered) == 1
        assert client.event("deploy", "v1").head["Error"] == ""  # type: ignore[attr-defined]
        stats = client.stats().body  # type: ignore[attr-defined]
        assert stats["agent"]["name"] == "pyc0"
        joined = client.join([a.bind]).body  # type: ignore[attr-defined]
        assert joined["Num"] == 1
        client.close()  # type: ignore[attr-defined]
    finally:
        a.stop()


def _shape(obj: object) -> object:
    """Keys and value types of an RPC object, recursively (values themselves left out)."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


async def _exchange(addr: str, script: list[tuple[object, ...]], replies: int) -> list[object]:
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    dec = RpcDecoder()
    for objs in script:
        writer.write(b"".join(encode_rpc(o) for o in objs))
    await writer.drain()
    out: list[object] = []
    try:
        while len(out) < replies:
            for obj in dec:
                out.append(obj)
            if len(out) >= replies:
                break
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                out.append("EOF")
                break
            dec.feed(data)
    finally:
        writer.close()
    return out


def test_raw_replies_match_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """The same raw requests to Go's agent and to ours give replies of the same shape."""
    ours = AgentProc("same", tmp_path, "-tag", "role=web")
    theirs = GoSerfAgent(name="same", binary=go_serf, extra_args=("-tag", "role=web"))
    hs = ({"Command": "handshake", "Seq": 1}, {"Version": 1})
    cases: list[tuple[list[tuple[object, ...]], int]] = [
        ([({"Command": "members", "Seq": 7},)], 2),
        ([({"Command": "handshake", "Seq": 1}, {"Version": 9})], 1),
        ([hs, hs], 2),
        ([hs, ({"Command": "members", "Seq": 2},)], 3),
        ([hs, ({"Command": "members-filtered", "Seq": 2}, {"Name": "s.*"})], 3),
        ([hs, ({"Command": "members-filtered", "Seq": 2}, {"Name": "("})], 2),
        ([hs, ({"Command": "list-keys", "Seq": 2},)], 3),
        ([hs, ({"Command": "get-coordinate", "Seq": 2}, {"Node": "nobody"})], 3),
        ([hs, ({"Command": "stop", "Seq": 2}, {"Stop": 99})], 2),
        ([hs, ({"Command": "stream", "Seq": 2}, {"Type": "bogus"})], 2),
        ([hs, ({"Command": "monitor", "Seq": 2}, {"LogLevel": "loud"})], 2),
        ([hs, ({"Command": "query", "Seq": 2}, {"Name": "_serf_x", "Payload": b""})], 2),
        ([hs, ({"Command": "respond", "Seq": 2}, {"ID": 5, "Payload": b""})], 2),
        ([hs, ({"Command": "event", "Seq": 2}, {"Name": "e", "Payload": b"x" * 600})], 2),
        ([hs, ({"Command": "nope", "Seq": 2},)], 3),
        (
            [
                hs,
                (
                    {"Command": "query", "Seq": 2},
                    {"Name": "q", "RequestAck": True, "Timeout": 500_000_000},
                ),
            ],
            5,
        ),
    ]
    try:
        ours.start()
        theirs.start()
        for script, replies in cases:
            a = asyncio.run(_exchange(f"127.0.0.1:{ours.rpc_port}", script, replies))
            b = asyncio.run(_exchange(theirs.rpc_addr, script, replies))
            assert _shape(a) == _shape(b), (script, a, b)
            errors_a = [x.get("Error") for x in a if isinstance(x, dict) and "Error" in x]
            errors_b = [x.get("Error") for x in b if isinstance(x, dict) and "Error" in x]
            assert errors_a == errors_b, (script, a, b)
        stats_a = asyncio.run(
            _exchange(f"127.0.0.1:{ours.rpc_port}", [hs, ({"Command": "stats", "Seq": 2},)], 3)
        )
        stats_b = asyncio.run(
            _exchange(theirs.rpc_addr, [hs, ({"Command": "stats", "Seq": 2},)], 3)
        )
        assert isinstance(stats_a[2], dict) and isinstance(stats_b[2], dict)
        assert set(stats_a[2]) == set(stats_b[2])
        for section in ("agent", "runtime", "serf"):
            assert set(stats_a[2][section]) == set(stats_b[2][section]), section
    finally:
        ours.stop()
        theirs.stop()


def test_auth_quirk_matches_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """With rpc_auth, an unauthorised request with a body gets two replies, as in Go."""
    conf = tmp_path / "auth.json"
    conf.write_text(json.dumps({"rpc_auth": "sekret"}))
    ours = AgentProc("auth", tmp_path, f"-config-file={conf}")
    theirs = GoSerfAgent(name="auth", binary=go_serf, extra_args=(f"-config-file={conf}",))
    hs = ({"Command": "handshake", "Seq": 1}, {"Version": 1})
    script: list[tuple[object, ...]] = [
        hs,
        ({"Command": "event", "Seq": 2}, {"Name": "x", "Payload": b"", "Coalesce": True}),
        ({"Command": "auth", "Seq": 3}, {"AuthKey": "wrong"}),
        ({"Command": "auth", "Seq": 4}, {"AuthKey": "sekret"}),
        ({"Command": "members", "Seq": 5},),
    ]
    try:
        _start_with_auth(ours)()
        _go_start_with_auth(theirs)()
        a = asyncio.run(_exchange(f"127.0.0.1:{ours.rpc_port}", script, 7))
        b = asyncio.run(_exchange(theirs.rpc_addr, script, 7))
        assert _shape(a) == _shape(b)
        assert [x.get("Error") for x in a[:6] if isinstance(x, dict)] == [
            x.get("Error") for x in b[:6] if isinstance(x, dict)
        ]
    finally:
        ours.stop()
        theirs.stop()


def _start_with_auth(agent: AgentProc) -> Callable[[], None]:
    """Start without the members probe (it has no auth key): wait for the banner."""

    def start() -> None:
        args = [*SERF, "agent", f"-node={agent.name}", f"-bind={agent.bind}", agent.rpc]
        fh = open(agent.log, "ab")  # noqa: SIM115 - the child owns it
        agent.proc = subprocess.Popen([*args, *agent.extra], stdout=fh, stderr=subprocess.STDOUT)
        fh.close()
        wait_for(lambda: "Serf agent running!" in agent.log.read_text(), what="banner")

    return start


def _go_start_with_auth(agent: GoSerfAgent) -> Callable[[], None]:
    def start() -> None:
        args = [str(agent.binary), "agent", f"-node={agent.name}", f"-bind={agent.bind}"]
        args += [f"-rpc-addr={agent.rpc_addr}", *agent.extra_args]
        agent._log = open(agent.log_path, "wb")  # noqa: SIM115 - closed in stop()
        agent.proc = subprocess.Popen(args, stdout=agent._log, stderr=subprocess.STDOUT)
        wait_for(lambda: "Serf agent running!" in agent.log_text(), what="go banner")

    return start


def test_mixed_cluster_with_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """Our agent joins a Go agent: both see each other; events and queries cross over."""
    theirs = GoSerfAgent(
        name="go0",
        binary=go_serf,
        encrypt=b"k" * 32,
        extra_args=("-event-handler", "query:who=echo go-here"),
    )
    marker = tmp_path / "from-go"
    ours = AgentProc(
        "py0",
        tmp_path,
        f"-encrypt={KEY}",
        "-event-handler",
        f"user:fromgo=cat > {marker}",
        "-event-handler",
        "query:who=echo py-here",
    )
    try:
        theirs.start()
        ours.start(f"-join={theirs.bind}")
        wait_for(lambda: {m.name: m.status for m in theirs.members()} == _both_alive())
        wait_for(lambda: ours.members() == _both_alive())
        out = go(go_serf, "event", f"-rpc-addr={theirs.rpc_addr}", "fromgo", "hello-py")
        assert out.returncode == 0
        wait_for(lambda: marker.exists() and "hello-py" in marker.read_text(), what="event")
        out = go(go_serf, "query", f"-rpc-addr={theirs.rpc_addr}", "-format=json", "who")
        responses = {k: v.strip() for k, v in json.loads(out.stdout)["Responses"].items()}
        assert responses == {"go0": "go-here", "py0": "py-here"}
        out = go(go_serf, "query", ours.rpc, "-format=json", "who")
        responses = {k: v.strip() for k, v in json.loads(out.stdout)["Responses"].items()}
        assert responses == {"go0": "go-here", "py0": "py-here"}
        out = go(go_serf, "members", ours.rpc, "-detailed")
        assert out.returncode == 0 and "go0" in out.stdout and "Protocol Version" in out.stdout
        out = go(go_serf, "keys", ours.rpc, "-list")
        assert out.returncode == 0 and "[2/2]" in out.stdout
        assert ours.signal(signal.SIGINT) == 0
        wait_for(lambda: theirs.status_of("py0") == "left", what="py0 left on the Go side")
    finally:
        ours.stop()
        theirs.stop()


def _both_alive() -> dict[str, str]:
    return {"go0": "alive", "py0": "alive"}


def test_mdns_discovery_with_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """Go's agent (hashicorp/mdns) and ours (zeroconf) find each other with -discover."""
    pytest.importorskip("zeroconf")
    netbed_or_skip()  # mDNS multicasts on every interface: only inside a namespace of its own
    cluster = f"g{os.getpid()}"
    theirs = GoSerfAgent(name="gomd", binary=go_serf, extra_args=(f"-discover={cluster}",))
    ours = AgentProc("pymd", tmp_path, f"-discover={cluster}")

    def discover() -> None:
        if reason := multicast_unavailable():
            pytest.fail(f"no multicast on the private LAN: {reason}")
        try:
            theirs.start()
            ours.start()
            wait_for(lambda: ours.members() == {"gomd": "alive", "pymd": "alive"}, timeout=20)
            wait_for(lambda: theirs.status_of("pymd") == "alive")
        finally:
            ours.stop()
            theirs.stop()

    with private_lan() as netns:
        in_namespace(netns, discover)


async def _stream_session(addr: str) -> list[object]:
    """stream + event + query + respond on one raw connection; every object received."""
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    dec = RpcDecoder()
    got: list[object] = []

    async def more(count: int) -> None:
        while len(got) < count:
            for obj in dec:
                got.append(obj)
            if len(got) >= count:
                return
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, f"connection closed after {got}"
            dec.feed(data)

    def send(*objs: object) -> None:
        writer.write(b"".join(encode_rpc(o) for o in objs))

    send({"Command": "handshake", "Seq": 1}, {"Version": 1})
    send({"Command": "stream", "Seq": 2}, {"Type": "user,query"})
    await more(2)
    send({"Command": "event", "Seq": 3}, {"Name": "e", "Payload": b"p", "Coalesce": False})
    await more(5)  # the event's reply and the user record (either order)
    query = {"Name": "q", "Payload": b"x", "RequestAck": True, "Timeout": 1_500_000_000}
    send({"Command": "query", "Seq": 4}, query)
    while not any(isinstance(o, dict) and o.get("Event") == "query" for o in got):
        await more(len(got) + 1)
    qid = next(o["ID"] for o in got if isinstance(o, dict) and o.get("Event") == "query")
    send({"Command": "respond", "Seq": 5}, {"ID": qid, "Payload": b"answer"})
    while not any(isinstance(o, dict) and o.get("Type") == "done" for o in got):
        await more(len(got) + 1)
    writer.close()
    return got


def test_stream_and_query_records_match_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """The stream, query and respond records of Go's agent and ours have the same shapes."""
    ours = AgentProc("rec", tmp_path)
    theirs = GoSerfAgent(name="rec", binary=go_serf)
    try:
        ours.start()
        theirs.start()
        a = asyncio.run(_stream_session(f"127.0.0.1:{ours.rpc_port}"))
        b = asyncio.run(_stream_session(theirs.rpc_addr))
        shapes_a = sorted(json.dumps(_shape(o), sort_keys=True) for o in a)
        shapes_b = sorted(json.dumps(_shape(o), sort_keys=True) for o in b)
        assert shapes_a == shapes_b, (a, b)
        for objs in (a, b):
            records = [o for o in objs if isinstance(o, dict) and ("Type" in o or "Event" in o)]
            kinds = [o.get("Type") or o.get("Event") for o in records]
            assert kinds.count("user") == 1 and kinds.count("query") == 1
            assert {"ack", "response", "done"} <= set(kinds)
            response = next(o for o in records if o.get("Type") == "response")
            assert response["Payload"] == b"answer" and response["From"] == "rec"
    finally:
        ours.stop()
        theirs.stop()


def test_key_replies_match_go_agent(go_serf: Path, tmp_path: Path) -> None:
    """install-key / use-key / remove-key / list-keys bodies and errors, Go vs ours."""
    other = base64.b64encode(b"o" * 16).decode()
    ours = AgentProc("keys", tmp_path, f"-encrypt={KEY}")
    theirs = GoSerfAgent(name="keys", binary=go_serf, encrypt=b"k" * 32)
    hs = ({"Command": "handshake", "Seq": 1}, {"Version": 1})
    script: list[tuple[object, ...]] = [
        hs,
        ({"Command": "install-key", "Seq": 2}, {"Key": other}),
        ({"Command": "list-keys", "Seq": 3},),
        ({"Command": "remove-key", "Seq": 4}, {"Key": KEY}),
        ({"Command": "use-key", "Seq": 5}, {"Key": other}),
        ({"Command": "remove-key", "Seq": 6}, {"Key": KEY}),
        ({"Command": "install-key", "Seq": 7}, {"Key": "not base64!"}),
    ]
    try:
        ours.start()
        theirs.start()
        a = asyncio.run(_exchange(f"127.0.0.1:{ours.rpc_port}", script, 13))
        b = asyncio.run(_exchange(theirs.rpc_addr, script, 13))
        assert _shape(a) == _shape(b), (a, b)
        errors = [[x["Error"] for x in r if isinstance(x, dict) and "Error" in x] for r in (a, b)]
        assert errors[0] == errors[1], (a, b)
        assert a[5] == b[5]  # list-keys body
    finally:
        ours.stop()
        theirs.stop()
