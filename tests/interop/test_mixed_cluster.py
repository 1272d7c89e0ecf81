"""A mixed cluster as an operator runs one: 3 Go serf v0.11.0 agents and 3 pyserf agents on
loopback, encrypted (g1 and p1 from a keyring file), event handlers on all six, driven through
both CLIs.

One cluster for the module (it is the costly part); every test leaves it as it found it: six
alive members, the original key. A test that fails prints all six agent logs. Every wait is
bounded (``wait_for``); none is a sleep.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serf.testing.gopeer import PYSERF_COMMAND, GoSerfAgent, go_serf_or_skip

# one cluster per module: under pytest-xdist (--dist loadgroup) all its tests share one worker
pytestmark = [
    pytest.mark.go,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.xdist_group("mixed_cluster"),
]

KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.b64encode(bytes(range(200, 232))).decode()
# 455 bytes with every byte value but NUL (argv cannot carry NUL): with the name and the
# encoding it stays under the 512-byte user event limit
PAYLOAD = bytes(range(1, 256)) + bytes(range(255, 55, -1))
ALL = ("g0", "g1", "g2", "p0", "p1", "p2")


def handler_for(workdir: Path) -> tuple[str, ...]:
    """A user-event handler that keeps each payload and counts deliveries; a query handler."""
    user = (
        f'user:=f="{workdir}/user-$SERF_USER_EVENT"; cat > "$f.$$"; '
        f'echo "$SERF_USER_EVENT" >> "{workdir}/user.log"'
    )
    return ("-event-handler", user, "-event-handler", "query:who=echo $SERF_SELF_NAME")


class Mixed:
    """The six agents and the two CLIs."""

    def __init__(self, go_bin: Path, tmp: Path) -> None:
        self.go_cli = [str(go_bin)]
        self.our_cli = list(PYSERF_COMMAND)
        self.tmp = tmp
        self.agents: dict[str, GoSerfAgent] = {}
        for name in ALL:
            kind = "go" if name[0] == "g" else "py"
            work = tmp / name
            work.mkdir()
            args: list[str] = ["-tag", f"kind={kind}", "-tag", f"idx={name[1]}"]
            args += [f"-snapshot={work / 'snapshot'}", *handler_for(work)]
            if name[1] == "1":
                ring = work / "keyring.json"
                ring.write_text(json.dumps([KEY1]))
                args.append(f"-keyring-file={ring}")
            else:
                args.append(f"-encrypt={KEY1}")
            self.agents[name] = GoSerfAgent(
                name=name,
                binary=go_bin,
                command=None if kind == "go" else PYSERF_COMMAND,
                # LAN: with local's retransmit multiplier of 2 a query in a 6-node cluster
                # misses a node now and then (as in Go: queries are not in push/pull)
                profile="lan",
                extra_args=tuple(args),
            )

    def cli(self, kind: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = self.go_cli if kind == "go" else self.our_cli
        return subprocess.run([*cmd, *args], capture_output=True, timeout=30, check=False)

    def ok(self, kind: str, *args: str) -> str:
        out = self.cli(kind, *args)
        assert out.returncode == 0, f"{kind} serf {' '.join(args)}: {out!r}"
        return out.stdout.decode("utf-8", "surrogateescape")

    def rpc(self, name: str) -> str:
        return f"-rpc-addr={self.agents[name].rpc_addr}"

    def members(self, kind: str, at: str) -> list[dict[str, object]]:
        out = self.cli(kind, "members", self.rpc(at), "-format=json")
        if out.returncode != 0:
            return []
        return sorted(json.loads(out.stdout)["members"] or [], key=lambda m: str(m["name"]))

    def statuses(self, at: str) -> dict[str, str]:
        return {str(m["name"]): str(m["status"]) for m in self.members("py", at)}

    def wait_status(self, want: dict[str, str], viewers: tuple[str, ...], what: str) -> None:
        for viewer in viewers:
            wait_for(
                lambda v=viewer: all(  # type: ignore[misc]
                    self.statuses(v).get(n) == s for n, s in want.items()
                ),
                what=f"{viewer} to see {what}",
                timeout=45,
            )

    def logs(self) -> str:
        return "\n".join(
            f"===== {name} ({agent.command[0]}) log =====\n{agent.log_text()[-20000:]}"
            for name, agent in self.agents.items()
        )


#: A user event reaches a node by gossip, or else by the event buffer in the next push/pull
#: it takes part in (every 30 s on the LAN profile, in Go as here): gossip alone misses a
#: node now and then (seen under load: Go's g2 got an event only from its push/pull, just
#: after a 30 s wait), so a wait for "everywhere" covers one push/pull period and margin.
EVENT_EVERYWHERE = 70.0


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    m = Mixed(go_serf_or_skip(), tmp_path_factory.mktemp("mixed"))
    try:
        with ThreadPoolExecutor(len(ALL)) as pool:
            list(pool.map(lambda a: a.start(), m.agents.values()))
        seed = m.agents["g0"].bind
        for name in ALL[1:]:
            m.ok("go" if name[0] == "p" else "py", "join", m.rpc(name), seed)
        m.wait_status(dict.fromkeys(ALL, "alive"), ALL, "six alive members")
        yield m
    except BaseException:
        print(m.logs())
        raise
    finally:
        for agent in m.agents.values():
            agent.stop()


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest, mixed: Mixed) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(mixed.logs())


def test_members_json_is_the_same_through_both_clis_at_every_agent(mixed: Mixed) -> None:
    reference = mixed.members("go", "g0")
    assert [m["name"] for m in reference] == list(ALL)
    for name in ALL:
        for kind in ("go", "py"):
            assert mixed.members(kind, name) == reference, (kind, name)
    for row in reference:
        agent = mixed.agents[str(row["name"])]
        assert (row["addr"], row["port"], row["status"]) == (agent.bind, agent.port, "alive")
        assert row["tags"] == {"kind": "go" if agent.name[0] == "g" else "py", "idx": agent.name[1]}
        assert row["protocol"] == {"max": 5, "min": 2, "version": 5}


def _deliveries(mixed: Mixed, event: str) -> dict[str, int]:
    counts = {}
    for name in ALL:
        log = mixed.tmp / name / "user.log"
        lines = log.read_text().splitlines() if log.exists() else []
        counts[name] = lines.count(event)
    return counts


def _payloads(mixed: Mixed, event: str) -> dict[str, list[bytes]]:
    return {
        name: [p.read_bytes() for p in (mixed.tmp / name).glob(f"user-{event}.*")] for name in ALL
    }


def _fence(mixed: Mixed, sender: str, tag: str) -> None:
    """Send one more event and wait until all six ran it: what was sent before had its turn."""
    kind = "go" if sender[0] == "g" else "py"
    fence = f"fence-{tag}"
    mixed.ok(kind, "event", mixed.rpc(sender), "-coalesce=false", fence)
    wait_for(
        lambda: min(_deliveries(mixed, fence).values()) >= 1,
        EVENT_EVERYWHERE,
        what=f"{fence} everywhere",
    )


@pytest.mark.parametrize(("cli", "at"), [("go", "p0"), ("py", "g0"), ("py", "p2"), ("go", "g2")])
@pytest.mark.parametrize("coalesce", [True, False])
def test_user_events_reach_all_six_handlers_once_intact(
    mixed: Mixed, cli: str, at: str, coalesce: bool
) -> None:
    event = f"ev-{cli}-{at}-{'c' if coalesce else 'n'}"
    payload = PAYLOAD.decode("utf-8", "surrogateescape")  # argv carries these bytes as they are
    mixed.ok(cli, "event", mixed.rpc(at), f"-coalesce={str(coalesce).lower()}", event, payload)
    wait_for(
        lambda: min(_deliveries(mixed, event).values()) >= 1,
        EVENT_EVERYWHERE,
        what=f"{event} everywhere",
    )
    _fence(mixed, at, event)
    assert _deliveries(mixed, event) == dict.fromkeys(ALL, 1)
    for name, got in _payloads(mixed, event).items():
        assert got == [PAYLOAD + b"\n"], name  # handlers' stdin: payload plus a newline


def _responders(
    mixed: Mixed, cli: str, at: str, want: list[str], *filters: str
) -> tuple[list[str], list[str]]:
    """Who acked and who answered a ``who`` query. Gossip reaches every node only with high
    probability, in Go as here (docs/agent.md: 4 of 300 queries among 6 Go agents missed one
    node), so a query some of ``want`` did not see, or answered too late, is sent again, at
    most three times in all; anyone outside ``want`` or a wrong answer is returned at once."""
    for _ in range(3):
        args = ("query", mixed.rpc(at), "-format=json", "-timeout=3s", *filters, "who")
        out = mixed.ok(cli, *args)
        data = json.loads(out)
        responses = {k: v.strip() for k, v in data["Responses"].items()}
        assert all(k == v for k, v in responses.items()), responses  # each answered its own name
        got = sorted(data["Acks"] or []), sorted(responses)
        missing_only = set(got[0]) <= set(want) and set(got[1]) <= set(want)
        if not missing_only or got == (sorted(want), sorted(want)):
            return got
        print(f"query {filters} at {at} reached {got}, not all of {want}: sent again")
    return got


@pytest.mark.parametrize(("cli", "at"), [("go", "p1"), ("py", "g1")])
def test_queries_with_node_and_tag_filters_get_exactly_the_expected_responders(
    mixed: Mixed, cli: str, at: str
) -> None:
    assert _responders(mixed, cli, at, list(ALL)) == (list(ALL), list(ALL))
    nodes = _responders(mixed, cli, at, ["g2", "p0"], "-node=g2", "-node=p0")
    assert nodes == (["g2", "p0"], ["g2", "p0"])
    py = _responders(mixed, cli, at, ["p0", "p1", "p2"], "-tag", "kind=py")
    assert py == (["p0", "p1", "p2"], ["p0", "p1", "p2"])
    both = _responders(mixed, cli, at, ["g0", "g1"], "-tag", "kind=go", "-tag", "idx=[01]")
    assert both == (["g0", "g1"], ["g0", "g1"])


def _keys(mixed: Mixed, cli: str, at: str) -> dict[str, str]:
    out = _key_op(mixed, cli, at, "-list")
    return dict(re.findall(r"^(\S+=)\s+\[(\d+/\d+)\]$", out, re.M))


def _key_op(mixed: Mixed, cli: str, at: str, flag: str) -> str:
    """One key command. ``N/6 nodes reported success`` (no node failed, one did not answer
    within the key query's timeout, about 3 s on LAN) is what Go reports for a slow answer
    too; the operation is idempotent and an operator runs it again, so does this, once."""
    out = mixed.cli(cli, "keys", mixed.rpc(at), flag)
    if out.returncode != 0 and b"nodes reported success" in out.stdout:
        print(f"retrying keys {flag} after: {out.stdout!r}")
        out = mixed.cli(cli, "keys", mixed.rpc(at), flag)
    assert out.returncode == 0, f"{cli} serf keys {flag}: {out!r}"
    return out.stdout.decode()


def _rotate(mixed: Mixed, cli: str, at: str, new: str, old: str) -> None:
    _key_op(mixed, cli, at, f"-install={new}")
    assert _keys(mixed, cli, at) == {old: "6/6", new: "6/6"}
    _key_op(mixed, cli, at, f"-use={new}")
    _key_op(mixed, cli, at, f"-remove={old}")
    assert _keys(mixed, cli, at) == {new: "6/6"}


def test_key_rotation_from_either_side_keeps_events_and_queries_flowing(mixed: Mixed) -> None:
    try:
        _rotate(mixed, "go", "p0", KEY2, KEY1)  # Go's CLI through a pyserf agent
        for name in ("g1", "p1"):  # the keyring files follow
            assert json.loads((mixed.tmp / name / "keyring.json").read_text()) == [KEY2]
        _fence(mixed, "g2", "after-key2")
        assert _responders(mixed, "py", "p2", list(ALL)) == (list(ALL), list(ALL))
        mixed.wait_status(dict.fromkeys(ALL, "alive"), ("g0", "p0"), "six alive on KEY2")
    finally:
        _rotate(mixed, "py", "g0", KEY1, KEY2)  # and back, ours through a Go agent
    _fence(mixed, "p1", "after-key1")
    assert _responders(mixed, "go", "g2", list(ALL)) == (list(ALL), list(ALL))


def test_rtt_between_a_go_and_a_pyserf_node_agrees_on_both_sides(mixed: Mixed) -> None:
    def rtt_ms(cli: str, at: str) -> float:
        out = mixed.cli(cli, "rtt", mixed.rpc(at), "g0", "p0")
        if out.returncode != 0:
            return -1.0
        match = re.search(rb"rtt: ([\d.]+) ms", out.stdout)
        assert match, out
        return float(match.group(1))

    wait_for(lambda: rtt_ms("go", "g0") >= 0 and rtt_ms("py", "p0") >= 0, what="coordinates")
    on_go, on_py = rtt_ms("go", "g0"), rtt_ms("py", "p0")
    # Both sides estimate the same pair from Vivaldi coordinates that each learned from the
    # other's ping acks. On loopback the real RTT is ~0.1 ms, and each estimate is a distance
    # between two coordinates that are still being adjusted, with a height floor of 10 us per
    # side; Vivaldi's per-update error bound keeps a cold loopback estimate within a few ms.
    # 5 ms tells a wrong unit or a swapped coordinate (Go's CLI prints whatever the agent sends,
    # so a mismatch in coordinate encoding shows as tens of ms or an error) from loopback noise.
    assert 0 <= on_go < 5.0 and 0 <= on_py < 5.0, (on_go, on_py)
    assert abs(on_go - on_py) < 5.0, (on_go, on_py)


def test_failures_leaves_and_snapshots_swapped_between_kinds(mixed: Mixed) -> None:
    """SIGKILL g2 and p2: both kinds see them failed. Each restarts as the OTHER kind from the
    snapshot the first kind wrote, without -join, and the cluster is whole again. Then g1 and
    p1 leave gracefully (through the other kind's CLI): seen left; they come back with -join."""
    g2, p2 = mixed.agents["g2"], mixed.agents["p2"]
    viewers = ("g0", "p0", "g1", "p1")
    g2.kill()
    p2.kill()
    mixed.wait_status({"g2": "failed", "p2": "failed"}, viewers, "g2 and p2 failed")
    # swap the programs, keep name, ports, flags and the snapshot file the other kind wrote
    g2.command, p2.command = list(p2.command), list(g2.command)
    try:
        g2.start()
        p2.start()
        mixed.wait_status(dict.fromkeys(ALL, "alive"), ALL, "six alive after restart")
    finally:
        g2.command, p2.command = list(p2.command), list(g2.command)

    seed = mixed.agents["g0"].bind
    for name, cli in (("g1", "py"), ("p1", "go")):
        agent = mixed.agents[name]
        out = mixed.ok(cli, "leave", mixed.rpc(name))
        assert out.strip() == "Graceful leave complete"
        assert agent.proc is not None
        assert agent.proc.wait(timeout=20) == 0
    others = ("g0", "g2", "p0", "p2")
    mixed.wait_status({"g1": "left", "p1": "left"}, others, "g1 and p1 left")
    for name in ("g1", "p1"):
        agent = mixed.agents[name]
        agent.stop()
        agent.start()
        mixed.ok("py", "join", mixed.rpc(name), seed)
    mixed.wait_status(dict.fromkeys(ALL, "alive"), ALL, "six alive after the leaves")


def test_protocol_versions_2_to_5_interoperate(mixed: Mixed) -> None:
    """A Go agent and a pyserf agent at each serf protocol version form a cluster of two."""
    go_bin = Path(mixed.go_cli[0])
    pairs = {
        v: (
            GoSerfAgent(name=f"go-v{v}", binary=go_bin, extra_args=(f"-protocol={v}",)),
            GoSerfAgent(name=f"py-v{v}", command=PYSERF_COMMAND, extra_args=(f"-protocol={v}",)),
        )
        for v in (2, 3, 4, 5)
    }
    try:
        for go, py in pairs.values():
            go.start()
            py.start()
            mixed.ok("py", "join", f"-rpc-addr={py.rpc_addr}", go.bind)
        for v, (go, py) in pairs.items():
            for agent in (go, py):
                wait_for(
                    lambda a=agent, g=go, p=py: (
                        {  # type: ignore[misc]
                            m.name: m.status for m in a.members()
                        }
                        == {g.name: "alive", p.name: "alive"}
                    ),
                    what=f"protocol {v}: {agent.name} to see both alive",
                )
            rows = json.loads(mixed.ok("go", "members", f"-rpc-addr={go.rpc_addr}", "-format=json"))
            assert {r["name"]: r["protocol"]["version"] for r in rows["members"]} == {
                go.name: v,
                py.name: v,
            }
    finally:
        for go, py in pairs.values():
            go.stop()
            py.stop()
