"""Our ``serf`` CLI and RPC client against real Go serf agents (pinned in serf.testing.gopeer).

Every agent is on loopback with free ports; every wait is bounded. Skipped without ``go``
unless SERF_REQUIRE_GO=1 (then a failure).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serf.cli.rpc_client import QueryRecord, RPCClient, RPCConnectionError, RPCError
from serf.testing.gopeer import GoSerfAgent, free_port, go_serf_or_skip
from serf.testing.lines import LineReader

pytestmark = [pytest.mark.go, pytest.mark.integration, pytest.mark.slow]

HANDLER = "query:hello=echo hi-from-$SERF_SELF_NAME"
KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.b64encode(bytes(range(100, 132))).decode()
KEY3 = base64.b64encode(bytes(range(50, 66))).decode()


@pytest.fixture(scope="module")
def go_serf() -> Path:
    return go_serf_or_skip()


def serf(
    *args: str, timeout: float = 30.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run our CLI as a subprocess."""
    exe = shutil.which("serf")
    cmd = [exe] if exe else [sys.executable, "-P", "-m", "serf.cli.main"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def ok(*args: str, timeout: float = 30.0) -> str:
    out = serf(*args, timeout=timeout)
    assert out.returncode == 0, f"serf {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


# Go local profile, N=5: probe cycle ~4 s + max suspicion 18 s, with awareness headroom.
FAILED_WITHIN = 45.0


def wait_for(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def members_json(rpc: str, *extra: str) -> list[dict[str, object]]:
    data = json.loads(ok("members", f"-rpc-addr={rpc}", "-format=json", *extra))
    return list(data["members"] or [])


def statuses(rpc: str) -> dict[str, str]:
    return {str(m["name"]): str(m["status"]) for m in members_json(rpc)}


@pytest.fixture(scope="module")
def cluster(go_serf: Path) -> Iterator[list[GoSerfAgent]]:
    agents = [
        GoSerfAgent(name="g1", binary=go_serf, extra_args=(f"-event-handler={HANDLER}",)),
        GoSerfAgent(
            name="g2", binary=go_serf, extra_args=(f"-event-handler={HANDLER}", "-tag=role=web")
        ),
        GoSerfAgent(name="g3", binary=go_serf, extra_args=(f"-event-handler={HANDLER}",)),
    ]
    try:
        for agent in agents:
            agent.start()
        out = ok("join", f"-rpc-addr={agents[0].rpc_addr}", agents[1].bind, agents[2].bind)
        assert out.strip() == "Successfully joined cluster by contacting 2 nodes."
        for agent in agents:
            wait_for(
                lambda a=agent: sorted(statuses(a.rpc_addr).values()) == ["alive"] * 3,  # type: ignore[misc]
                what=f"{agent.name} to see 3 alive members",
            )
        yield agents
    finally:
        for agent in agents:
            agent.stop()


def test_members_text_and_json(cluster: list[GoSerfAgent]) -> None:
    g1 = cluster[0]
    rows = members_json(g1.rpc_addr)
    assert sorted(str(r["name"]) for r in rows) == ["g1", "g2", "g3"]
    for row in rows:
        agent = next(a for a in cluster if a.name == row["name"])
        assert row["addr"] == agent.bind and row["port"] == agent.port
        assert row["status"] == "alive"
        assert row["protocol"] == {"max": 5, "min": 2, "version": 5}
    text = ok("members", f"-rpc-addr={g1.rpc_addr}").splitlines()
    assert len(text) == 3
    g2_line = next(line for line in text if line.startswith("g2 "))
    assert g2_line.split() == ["g2", cluster[1].bind, "alive", "role=web"]
    detailed = ok("members", f"-rpc-addr={g1.rpc_addr}", "-detailed")
    assert "Protocol Version: 5  Available Protocol Range: [2, 5]" in detailed


def test_members_filters(cluster: list[GoSerfAgent]) -> None:
    rpc = cluster[0].rpc_addr
    assert [m["name"] for m in members_json(rpc, "-tag", "role=web")] == ["g2"]
    assert [m["name"] for m in members_json(rpc, "-role=web")] == ["g2"]
    assert [m["name"] for m in members_json(rpc, "-name=g[13]", "-status=alive")] in (
        ["g1", "g3"],
        ["g3", "g1"],
    )
    assert members_json(rpc, "-status=failed") == []
    assert json.loads(ok("members", f"-rpc-addr={rpc}", "-format=json", "-name=nobody")) == {
        "members": None
    }


def test_join_again_and_join_errors(cluster: list[GoSerfAgent]) -> None:
    out = ok("join", f"-rpc-addr={cluster[2].rpc_addr}", cluster[0].bind)
    assert out.strip() == "Successfully joined cluster by contacting 1 nodes."
    bad = serf("join", f"-rpc-addr={cluster[0].rpc_addr}", f"127.0.0.1:{free_port()}")
    assert bad.returncode == 1 and bad.stdout.startswith("Error joining the cluster: ")
    none = serf("join", f"-rpc-addr={cluster[0].rpc_addr}")
    assert none.returncode == 1
    assert "At least one address to join must be specified." in none.stdout


def test_event_reaches_a_stream_on_another_agent(cluster: list[GoSerfAgent]) -> None:
    async def main() -> dict[str, object]:
        client = await RPCClient.connect(cluster[1].rpc_addr)
        try:
            stream = await client.stream("user:deploy")
            out = await asyncio.to_thread(
                ok, "event", f"-rpc-addr={cluster[0].rpc_addr}", "-coalesce=false", "deploy", "v1"
            )
            assert out.strip() == "Event 'deploy' dispatched! Coalescing enabled: false"
            record = await asyncio.wait_for(stream.__anext__(), 15)
            await stream.stop()
            return record
        finally:
            await client.close()

    record = asyncio.run(main())
    assert record["Event"] == "user" and record["Name"] == "deploy"
    assert record["Payload"] == b"v1" and record["Coalesce"] is False


def test_query_filters_and_json(cluster: list[GoSerfAgent]) -> None:
    rpc = cluster[0].rpc_addr
    data = json.loads(
        ok("query", f"-rpc-addr={rpc}", "-timeout=3s", "-format=json", "-node=g1", "hello", "x")
    )
    assert data == {"Acks": ["g1"], "Responses": {"g1": "hi-from-g1\n"}}
    data = json.loads(
        ok("query", f"-rpc-addr={rpc}", "-timeout=3s", "-format", "json", "-tag", "role=web",
           "hello")
    )  # fmt: skip
    assert data == {"Acks": ["g2"], "Responses": {"g2": "hi-from-g2\n"}}
    text = ok("query", f"-rpc-addr={rpc}", "-timeout=3s", "hello").splitlines()
    assert text[0] == "Query 'hello' dispatched"
    assert sorted(line for line in text if line.startswith("Response from")) == [
        f"Response from 'g{i}': hi-from-g{i}" for i in (1, 2, 3)
    ]
    assert text[-2:] == ["Total Acks: 3", "Total Responses: 3"]
    no_ack = ok("query", f"-rpc-addr={rpc}", "-timeout=2s", "-no-ack", "-node=g3", "hello")
    assert "Total Acks" not in no_ack and "Total Responses: 1" in no_ack
    bad = serf("query", f"-rpc-addr={rpc}", "-relay-factor=300", "hello")
    assert bad.returncode == 1 and "Relay factor must be between 0 and 255" in bad.stdout
    internal = serf("query", f"-rpc-addr={rpc}", "_serf_x")
    assert internal.returncode == 1
    assert "Error sending query: Queries cannot contain the '_serf_' prefix" in internal.stdout


def test_rpc_client_query_with_acks_and_responses(cluster: list[GoSerfAgent]) -> None:
    async def main() -> list[QueryRecord]:
        async with await RPCClient.connect(cluster[2].rpc_addr) as client:
            records = await client.query("hello", b"", request_ack=True, timeout=3.0)
            return [rec async for rec in records]

    got = asyncio.run(main())
    acks = sorted(r.from_ for r in got if r.type == "ack")
    responses = {r.from_: r.payload for r in got if r.type == "response"}
    assert acks == ["g1", "g2", "g3"]
    assert responses == {f"g{i}": f"hi-from-g{i}\n".encode() for i in (1, 2, 3)}


def test_rpc_client_basics_and_errors(cluster: list[GoSerfAgent]) -> None:
    async def main() -> None:
        client = await RPCClient.connect(cluster[0].rpc_addr)
        try:
            names = sorted(m.name for m in await client.members())
            assert names == ["g1", "g2", "g3"]
            stats = await client.stats()
            assert stats["agent"]["name"] == "g1" and stats["serf"]["members"] == "3"
            assert "query:hello" in stats["event_handlers"]
            with pytest.raises(RPCError, match="Invalid event filter"):
                await client.stream("bogus")
            with pytest.raises(RPCError, match="Unknown log level"):
                await client.monitor("LOUD")
            with pytest.raises(RPCError, match="No pending queries matching ID"):
                await client.respond(99, b"x")
            # still usable after errors: several requests interleaved on one connection
            results = await asyncio.gather(client.members(), client.stats(), client.members())
            assert len(results[0]) == 3
        finally:
            await client.close()
        with pytest.raises(RPCConnectionError):
            await RPCClient.connect(f"127.0.0.1:{free_port()}")

    asyncio.run(main())


def test_tags_set_and_delete_visible_in_members(cluster: list[GoSerfAgent]) -> None:
    g3 = cluster[2]
    out = ok("tags", f"-rpc-addr={g3.rpc_addr}", "-set", "color=blue", "-set=size=xl")
    assert out.strip() == "Successfully updated agent tags"

    def tags_of_g3() -> dict[str, str]:
        rows = members_json(cluster[0].rpc_addr, "-name=g3")
        return dict(rows[0]["tags"]) if rows else {}  # type: ignore[call-overload]

    wait_for(lambda: tags_of_g3() == {"color": "blue", "size": "xl"}, what="tags set")
    ok("tags", f"-rpc-addr={g3.rpc_addr}", "-delete", "size")
    wait_for(lambda: tags_of_g3() == {"color": "blue"}, what="tag deleted")
    assert [m["name"] for m in members_json(cluster[0].rpc_addr, "-tag=color=bl.*")] == ["g3"]
    usage = serf("tags", f"-rpc-addr={g3.rpc_addr}")
    assert usage.returncode == 1
    bad = serf("tags", f"-rpc-addr={g3.rpc_addr}", "-set=novalue")
    assert bad.returncode == 1 and "Error: Invalid tag: 'novalue'" in bad.stdout


def test_info_text_and_json(cluster: list[GoSerfAgent]) -> None:
    rpc = cluster[0].rpc_addr
    data = json.loads(ok("info", f"-rpc-addr={rpc}", "-format=json"))
    assert data["agent"] == {"name": "g1"} and data["serf"]["encrypted"] == "false"
    text = ok("info", f"-rpc-addr={rpc}")
    assert text.startswith("agent:\n\tname = g1\n")
    assert "serf:\n" in text and "\tmembers = 3\n" in text


def test_rtt(cluster: list[GoSerfAgent]) -> None:
    rpc = cluster[0].rpc_addr

    def has_coords() -> bool:
        return serf("rtt", f"-rpc-addr={rpc}", "g2", "g3").returncode == 0

    wait_for(has_coords, what="coordinates")
    out = ok("rtt", f"-rpc-addr={rpc}", "g2", "g3").strip()
    assert out.startswith("Estimated g2 <-> g3 rtt: ") and out.endswith(" ms")
    float(out.split()[-2])
    assert ok("rtt", f"-rpc-addr={rpc}", "g2").startswith("Estimated g2 <-> g1 rtt: ")
    missing = serf("rtt", f"-rpc-addr={rpc}", "nobody")
    assert missing.returncode == 1
    assert 'Could not find a coordinate for node "nobody"' in missing.stdout
    usage = serf("rtt", f"-rpc-addr={rpc}")
    assert usage.returncode == 1 and "One or two node names must be specified" in usage.stdout


def test_reachability(cluster: list[GoSerfAgent]) -> None:
    everyone = ["Ack from 'g1'", "Ack from 'g2'", "Ack from 'g3'"]
    for _attempt in range(2):  # an ack is one UDP datagram: one lost or late ack gets a retry
        out = ok("reachability", f"-rpc-addr={cluster[0].rpc_addr}", "-verbose", timeout=60)
        assert "Total members: 3, live members: 3" in out
        acks = sorted(line.strip() for line in out.splitlines() if "Ack from" in line)
        if "Successfully contacted all live nodes" in out:
            assert acks == everyone
            return
        assert "Missing acks from:" in out and set(acks) < set(everyone), out
    pytest.fail(f"reachability missed an ack twice in a row:\n{out}")


def test_monitor_streams_until_interrupted(cluster: list[GoSerfAgent]) -> None:
    exe = shutil.which("serf")
    cmd = [exe] if exe else [sys.executable, "-P", "-m", "serf.cli.main"]
    proc = subprocess.Popen(
        [*cmd, "monitor", f"-rpc-addr={cluster[0].rpc_addr}", "-log-level=debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out = LineReader(proc.stdout)
        out.wait_for("[INFO] agent: Serf agent starting", timeout=30)  # replayed buffered lines
        ok("event", f"-rpc-addr={cluster[0].rpc_addr}", "monitored", "p")
        out.wait_for('\tName: "monitored"', timeout=30)
        proc.send_signal(signal.SIGINT)
        out.rest(timeout=10)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert any("Event Info:" in line for line in out.lines)


def test_force_leave_and_prune(go_serf: Path, cluster: list[GoSerfAgent]) -> None:
    rpc = cluster[0].rpc_addr
    for name, prune in (("g4", False), ("g5", True)):
        extra = GoSerfAgent(name=name, binary=go_serf)
        try:
            extra.start()
            ok("join", f"-rpc-addr={extra.rpc_addr}", cluster[0].bind)
            wait_for(lambda n=name: statuses(rpc).get(n) == "alive", what=f"{name} alive")  # type: ignore[misc]
            extra.kill()
            # Go's local profile: suspicion runs 3 s (one confirmation) to 18 s (none), after
            # a probe that reaches the dead node within ~N probe intervals, all stretched by
            # awareness on a loaded machine: 20 s was below the protocol's own worst case.
            wait_for(
                lambda n=name: statuses(rpc).get(n) == "failed",  # type: ignore[misc]
                timeout=FAILED_WITHIN,
                what=f"{name} failed",
            )
        finally:
            extra.stop()
        args = ["force-leave", f"-rpc-addr={rpc}", *(["-prune"] if prune else []), name]
        assert ok(*args) == ""
        if prune:
            wait_for(lambda n=name: n not in statuses(rpc), what=f"{name} pruned")  # type: ignore[misc]
        else:
            wait_for(lambda n=name: statuses(rpc).get(n) == "left", what=f"{name} left")  # type: ignore[misc]
    usage = serf("force-leave", f"-rpc-addr={rpc}")
    assert usage.returncode == 1
    assert "A node name must be specified to force leave." in usage.stdout


def _keys(rpc: str) -> dict[str, str]:
    out = ok("keys", f"-rpc-addr={rpc}", "-list")
    lines = out.splitlines()
    assert lines[0] == "==> Asking all members for installed keys..."
    assert lines[1] == "==> Keys gathered, listing cluster keys..."
    return {line.split()[0]: line.split()[1] for line in lines[3:] if line.strip()}


def test_keys_on_an_encrypted_cluster(go_serf: Path) -> None:
    a = GoSerfAgent(name="k1", binary=go_serf, encrypt=base64.b64decode(KEY1))
    b = GoSerfAgent(name="k2", binary=go_serf, encrypt=base64.b64decode(KEY1))
    try:
        a.start()
        b.start()
        ok("join", f"-rpc-addr={a.rpc_addr}", b.bind)
        wait_for(lambda: len(statuses(b.rpc_addr)) == 2, what="encrypted join")
        assert _keys(a.rpc_addr) == {KEY1: "[2/2]"}
        out = ok("keys", f"-rpc-addr={a.rpc_addr}", "-install", KEY2)
        assert out.splitlines() == [
            "==> Installing key on all members...",
            "==> Successfully installed key!",
        ]
        assert _keys(b.rpc_addr) == {KEY1: "[2/2]", KEY2: "[2/2]"}
        assert "Successfully changed primary key!" in ok(
            "keys", f"-rpc-addr={a.rpc_addr}", f"-use={KEY2}"
        )
        # removing the primary key fails on every node: exit 1 with the failures
        bad = serf("keys", f"-rpc-addr={a.rpc_addr}", "-remove", KEY2)
        assert bad.returncode == 1
        assert "Error removing key: 2/2 nodes reported failure" in bad.stdout
        assert "failed:" in bad.stdout
        assert "Successfully removed key!" in ok("keys", f"-rpc-addr={a.rpc_addr}", "-remove", KEY1)
        assert _keys(a.rpc_addr) == {KEY2: "[2/2]"}
        ok("keys", f"-rpc-addr={a.rpc_addr}", "-install", KEY3)  # a 16-byte key
        assert _keys(a.rpc_addr) == {KEY2: "[2/2]", KEY3: "[2/2]"}
        both = serf("keys", f"-rpc-addr={a.rpc_addr}", "-list", f"-install={KEY1}")
        assert both.returncode == 1
        assert "Only one of -install, -use, -remove, or -list allowed" in both.stdout
        # the cluster still works on the new key
        wait_for(lambda: set(statuses(a.rpc_addr).values()) == {"alive"}, what="alive")
    finally:
        a.stop()
        b.stop()


def test_rpc_auth_and_leave(go_serf: Path, tmp_path: Path) -> None:
    conf = tmp_path / "auth.json"
    conf.write_text(json.dumps({"rpc_auth": "s3cret"}))
    agent = GoSerfAgent(name="auth1", binary=go_serf, extra_args=(f"-config-file={conf}",))
    # gopeer's readiness check has no auth key: it sees "Authentication required" and retries
    # until its timeout, so start the process and poll with our own CLI instead.
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever gopeer raises on its timeout
            agent.start(timeout=3.0)
        agent.stop()
        agent = GoSerfAgent(name="auth1", binary=go_serf, extra_args=(f"-config-file={conf}",))
        agent.binary = go_serf
        proc = subprocess.Popen(
            [
                str(go_serf), "agent", "-node=auth1", f"-bind={agent.bind}",
                f"-rpc-addr={agent.rpc_addr}", "-profile=local", f"-config-file={conf}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            rpc = agent.rpc_addr
            wait_for(
                lambda: serf("members", f"-rpc-addr={rpc}", "-rpc-auth=s3cret").returncode == 0,
                what="auth agent",
            )
            wrong = serf("members", f"-rpc-addr={rpc}", "-rpc-auth=wrong")
            assert wrong.returncode == 1
            assert wrong.stdout.strip() == (
                "Error connecting to Serf agent: Invalid authentication token"
            )
            env = dict(os.environ, SERF_RPC_ADDR=rpc, SERF_RPC_AUTH="s3cret")
            via_env = serf("members", env=env)
            assert via_env.returncode == 0 and via_env.stdout.startswith("auth1 ")
            out = serf("leave", env=env)
            assert out.returncode == 0 and out.stdout.strip() == "Graceful leave complete"
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    finally:
        agent.stop()


def test_unreachable_agent_and_bad_flags() -> None:
    port = free_port()
    for cmd in ("members", "info", "monitor", "keys -list", "reachability", "event x"):
        out = serf(*cmd.split(), f"-rpc-addr=127.0.0.1:{port}")
        assert out.returncode == 1
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error connecting to Serf agent: ")
        assert "connection refused" in lines[0]
    bad = serf("members", "-frobnicate")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "flag provided but not defined: -frobnicate"
    assert bad.stdout.startswith("Usage: serf members")
