"""``serf agent`` as real subprocesses on loopback, driven through our own ``serf`` CLI:
convergence, event handlers on every node (their environment written to files), queries
answered by handlers, key rotation, a SIGKILLed node restarted from its snapshot that does not
replay old user events, force-leave, signals and exit statuses. Every wait is bounded."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from serf.testing.agents import SERF, AgentProc, serf_cli, wait_for
from serf.testing.gopeer import free_port
from serf.testing.lines import LineReader
from serf.testing.multicast import multicast_unavailable, private_lan
from serf.testing.netbed import in_namespace, netbed_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.slow]


KEY1 = base64.b64encode(b"a" * 32).decode()
KEY2 = base64.b64encode(b"b" * 32).decode()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProc]]:
    made: list[AgentProc] = []

    def make(name: str, *extra: str) -> AgentProc:
        a = AgentProc(name, tmp_path, *extra)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()


HANDLER = 'env | grep ^SERF_ | sort > "{d}/$SERF_EVENT-$(date +%s%N).env"; cat >> "{d}/stdin.log"'
QUERY_HANDLER = "query:whoami=echo I am $SERF_SELF_NAME"


def test_three_agents_handlers_queries_keys(agents: Callable[..., AgentProc]) -> None:
    nodes = []
    for i in range(3):
        # Go's default LAN profile (after the fixture's -profile=local: the last one counts):
        # the key queries' deadline is 16 gossip intervals, 1.6 s on the local profile, and a
        # CI run under coverage once had one of three agents answer `keys -list` later
        a = agents(f"p{i}", f"-encrypt={KEY1}", "-tag", f"idx={i}", "-profile=lan")
        a.extra += ["-event-handler", HANDLER.format(d=a.dir), "-event-handler", QUERY_HANDLER]
        nodes.append(a)
    nodes[0].start()
    for a in nodes[1:]:
        a.start(f"-join={nodes[0].bind}")
    for a in nodes:
        wait_for(partial(_all_alive, a, ["p0", "p1", "p2"]), what=f"{a.name} converged")
    out = serf_cli("members", nodes[1].rpc, "-tag", "idx=2")
    assert out.returncode == 0 and "p2" in out.stdout and "p0" not in out.stdout
    assert serf_cli("event", nodes[0].rpc, "deploy", "v42").returncode == 0
    for a in nodes:
        wait_for(partial(_contains, a.dir / "stdin.log", "v42"), what=f"user event on {a.name}")
        env = _envs(a.dir, "user")
        assert env["SERF_USER_EVENT"] == "deploy" and env["SERF_SELF_NAME"] == a.name
        assert env["SERF_TAG_IDX"] == a.name[1:] and "SERF_USER_LTIME" in env
        assert _envs(a.dir, "member-join")["SERF_EVENT"] == "member-join"
    q = serf_cli("query", nodes[2].rpc, "-format=json", "-timeout=3s", "whoami")
    assert q.returncode == 0, q.stderr
    responses = json.loads(q.stdout)["Responses"]
    assert {k: v.strip() for k, v in responses.items()} == {f"p{i}": f"I am p{i}" for i in range(3)}
    # key rotation across agents
    assert serf_cli("keys", nodes[0].rpc, "-install", KEY2).returncode == 0
    assert serf_cli("keys", nodes[1].rpc, "-use", KEY2).returncode == 0
    assert serf_cli("keys", nodes[2].rpc, "-remove", KEY1).returncode == 0
    listing = serf_cli("keys", nodes[0].rpc, "-list")
    assert listing.returncode == 0 and KEY2 in listing.stdout and KEY1 not in listing.stdout
    assert serf_cli("event", nodes[1].rpc, "after-rotation").returncode == 0
    for a in nodes:
        wait_for(partial(_has_env, a.dir, "after-rotation"), what="event after rotation")
    # graceful leave on SIGINT: exit 0, others see "left"
    assert nodes[2].signal(signal.SIGINT) == 0
    wait_for(lambda: nodes[0].members().get("p2") == "left", what="p2 left")


def test_snapshot_restart_and_force_leave(agents: Callable[..., AgentProc]) -> None:
    a = agents("s0")
    b = agents("s1")
    a.extra = ["-event-handler", f"user=cat >> {a.dir}/events.log; echo >> {a.dir}/events.log"]
    b.extra = [
        f"-snapshot={b.dir}/snap",
        "-event-handler",
        f"user=echo $SERF_USER_EVENT >> {b.dir}/events.log",
    ]
    a.start()
    b.start(f"-join={a.bind}")
    wait_for(lambda: a.members().get("s1") == "alive")
    assert serf_cli("event", a.rpc, "old-event").returncode == 0
    wait_for(lambda: "old-event" in _read(b.dir / "events.log"), what="old event")
    b.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    b.proc.wait(timeout=10)  # type: ignore[union-attr]
    wait_for(lambda: a.members().get("s1") == "failed", timeout=30, what="s1 failed")
    b.start()  # no -join: the snapshot rejoins
    wait_for(lambda: a.members().get("s1") == "alive", timeout=30, what="s1 rejoined")
    assert serf_cli("event", a.rpc, "new-event").returncode == 0
    wait_for(lambda: "new-event" in _read(b.dir / "events.log"), what="new event")
    time.sleep(1.5)
    assert _read(b.dir / "events.log").split().count("old-event") == 1
    # force-leave a killed node
    b.stop()
    wait_for(lambda: a.members().get("s1") == "failed", timeout=30, what="s1 failed again")
    assert serf_cli("force-leave", a.rpc, "s1").returncode == 0
    wait_for(lambda: a.members().get("s1") == "left", what="s1 force-left")
    # SIGTERM without leave_on_terminate: exit 1
    assert a.signal(signal.SIGTERM) == 1


def test_bad_flags_and_failed_join(tmp_path: Path) -> None:
    out = serf_cli("agent", "-profile=moon", timeout=20)
    assert out.returncode == 1 and "Unknown profile" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"nonsense": 1}')
    out = serf_cli("agent", f"-config-file={bad}", timeout=20)
    assert out.returncode == 1 and "nonsense" in out.stderr
    port, rpc = free_port(), free_port()
    out = serf_cli(
        "agent",
        f"-bind=127.0.0.1:{port}",
        f"-rpc-addr=127.0.0.1:{rpc}",
        f"-join=127.0.0.1:{free_port()}",
        timeout=30,
    )
    assert out.returncode == 1 and "Failed to join" in out.stderr
    if importlib.util.find_spec("zeroconf") is None:
        out = serf_cli("agent", "-discover=x", f"-rpc-addr=127.0.0.1:{rpc}", timeout=20)
        assert out.returncode == 1
        assert (
            out.stderr.strip()
            == "mDNS discovery needs the zeroconf package: pip install 'pyserf[mdns]'"
        )


def test_mdns_discovery(agents: Callable[..., AgentProc]) -> None:
    pytest.importorskip("zeroconf")
    netbed_or_skip()  # mDNS multicasts on every interface: only inside a namespace of its own
    cluster = f"t{os.getpid()}{int(time.time()) % 100000}"
    a = agents("md0", f"-discover={cluster}")
    b = agents("md1", f"-discover={cluster}")

    def discover() -> None:
        if reason := multicast_unavailable():
            pytest.fail(f"no multicast on the private LAN: {reason}")
        a.start()
        b.start()
        wait_for(lambda: a.members() == {"md0": "alive", "md1": "alive"}, timeout=15)

    with private_lan() as netns:
        in_namespace(netns, discover)
    assert "mDNS cluster: " + cluster in a.log.read_text()


def test_rpc_leave_exits_zero(agents: Callable[..., AgentProc]) -> None:
    a = agents("l0")
    a.start()
    assert serf_cli("leave", a.rpc).returncode == 0
    assert a.proc is not None and a.proc.wait(timeout=15) == 0
    text = a.log.read_text()
    for needle in ("Serf agent running!", "Node name: 'l0'", "RPC addr:", "Profile: local"):
        assert needle in text


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _envs(d: Path, event: str) -> dict[str, str]:
    files = sorted(d.glob(f"{event}-*.env"))
    assert files, f"no {event} handler output in {d}"
    pairs = (line.split("=", 1) for line in files[0].read_text().splitlines() if "=" in line)
    return dict(pairs)


def _has_env(d: Path, user_event: str) -> bool:
    return any(f"SERF_USER_EVENT={user_event}" in f.read_text() for f in d.glob("user-*.env"))


def _contains(path: Path, text: str) -> bool:
    return text in _read(path)


def _all_alive(a: AgentProc, names: list[str]) -> bool:
    return a.members() == dict.fromkeys(names, "alive")


def test_demo_runs_and_stops_on_ctrl_c() -> None:
    out = serf_cli("demo", "-n", "2", "-duration", "1", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("alive") == 2 and "stopped." in out.stdout
    proc = subprocess.Popen([*SERF, "demo"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        out_lines = LineReader(proc.stdout)
        out_lines.wait_for("press Ctrl-C", timeout=60)
        proc.send_signal(signal.SIGINT)
        rest = out_lines.rest(timeout=30)
        assert proc.wait(timeout=30) == 0 and "stopped." in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sighup_reloads_tags_and_handlers(agents: Callable[..., AgentProc], tmp_path: Path) -> None:
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"tags": {"v": "1"}}))
    a = agents("h0", f"-config-file={conf}")
    a.start()
    out = serf_cli("members", a.rpc, "-format=json")
    assert json.loads(out.stdout)["members"][0]["tags"] == {"v": "1"}
    marker = tmp_path / "fired"
    conf.write_text(json.dumps({"tags": {"v": "2"}, "event_handlers": [f"user=touch {marker}"]}))
    assert a.proc is not None
    a.proc.send_signal(signal.SIGHUP)

    def tags() -> dict[str, str]:
        res = serf_cli("members", a.rpc, "-format=json")
        return dict(json.loads(res.stdout)["members"][0]["tags"]) if res.returncode == 0 else {}

    wait_for(lambda: tags() == {"v": "2"}, what="reloaded tags")
    assert serf_cli("event", a.rpc, "-coalesce=false", "ping").returncode == 0
    wait_for(marker.exists, what="reloaded handler")
    assert a.signal(signal.SIGINT) == 0


@pytest.mark.parametrize(
    ("conf", "sig", "code"),
    [
        ({"leave_on_terminate": True}, signal.SIGTERM, 0),
        ({"skip_leave_on_interrupt": True}, signal.SIGINT, 1),
    ],
)
def test_signal_settings(
    agents: Callable[..., AgentProc], tmp_path: Path, conf: dict[str, bool], sig: int, code: int
) -> None:
    path = tmp_path / "sig.json"
    path.write_text(json.dumps(conf))
    a = agents("sg0", f"-config-file={path}")
    a.start()
    assert a.signal(sig) == code


def test_retry_join_gives_up(agents: Callable[..., AgentProc]) -> None:
    a = agents("rj0", f"-retry-join=127.0.0.1:{free_port()}", "-retry-max=2", "-retry-interval=1s")
    # launch, not start: the agent may give up (after ~1 s) before a loaded machine has run a
    # CLI probe against it, and giving up is what this test waits for
    a.launch()
    assert a.proc is not None and a.proc.wait(timeout=30) == 1
    assert "maximum retry join attempts made, exiting" in a.log.read_text()
