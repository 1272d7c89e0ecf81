"""The agent's metrics: statsd to a UDP listener with Go's names, the in-memory sink, and
the ``-prometheus-addr`` scrape."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import signal
import socket
import subprocess
import urllib.request
from typing import Any

import pytest

from serf.cli.rpc_client import RPCClient
from serf.testing.agents import cluster, run, until

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_statsd_gets_go_names_and_inmem_keeps_them() -> None:
    host = socket.gethostname()

    async def body() -> set[str]:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        port = rx.getsockname()[1]
        lines: set[str] = set()
        loop = asyncio.get_running_loop()
        try:
            async with cluster(2, statsd_addr=f"127.0.0.1:{port}") as (a, b):
                await b.agent.serf.user_event("deploy", b"x", coalesce=False)
                want = {
                    "serf-agent.serf.member.join:1.000000|c",
                    "serf-agent.serf.events.deploy:1.000000|c",
                }
                while not want <= lines or not any(".udp.sent:" in x for x in lines):
                    data = await asyncio.wait_for(loop.sock_recv(rx, 65535), 10)
                    lines.update(data.decode().splitlines())
                assert a.agent.sinks is not None
                inmem = a.agent.sinks.inmem
                await until(lambda: inmem.value("serf-agent.serf.events.deploy") == 1.0)
                assert inmem.value("serf-agent.memberlist.udp.sent") > 0
                async with await a.client() as client:
                    await client.members()
                assert inmem.value("serf-agent.agent.ipc.accept") == 1.0
                assert inmem.value("serf-agent.agent.ipc.command") >= 2.0  # handshake, members
        finally:
            rx.close()
        return lines

    lines = run(body())
    assert any(x.startswith("serf-agent.memberlist.udp.received:") for x in lines)
    # gauges carry the host name, as Go's EnableHostname does with a network sink
    gauges = [x for x in lines if x.endswith("|g")]
    assert all(x.startswith(f"serf-agent.{host}.") for x in gauges)


def test_prometheus_addr_serves_sanitized_names() -> None:
    pytest.importorskip("prometheus_client")
    port = _free_port()

    async def body() -> str:
        async with cluster(1, prometheus_addr=f"127.0.0.1:{port}") as (a,):
            assert a.agent.sinks is not None and a.agent.sinks.prometheus is not None

            def scrape() -> str:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text: str = resp.read().decode()
                    return text

            text = await asyncio.to_thread(scrape)
            while "serf_agent_memberlist_msg_alive_total" not in text:
                await asyncio.sleep(0.2)
                text = await asyncio.to_thread(scrape)
            return text

    text = run(body())
    assert "serf_agent_serf_member_join_total 1.0" in text
    assert 'serf_agent_memberlist_node_instances{node_state="alive"}' not in text  # no push/pull


def test_event_handler_runs_are_timed_in_the_agent(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "ran"
    script = f"touch {marker}"

    async def body() -> dict[str, Any]:
        async with cluster(1, event_handlers=[f"user:deploy={script}"]) as (a,):
            await a.agent.serf.user_event("deploy", b"", coalesce=False)
            assert a.agent.sinks is not None
            inmem = a.agent.sinks.inmem
            key = "serf-agent.agent.invoke." + script.replace(" ", "_")
            await until(lambda: inmem.value(key) == 1.0)
            return inmem.snapshot()[key]

    agg = run(body())
    assert marker.exists() and agg["kind"] == "sample" and agg["sum"] > 0.0


def test_rpc_metrics_and_serf_info_metrics_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from serf.cli.main import main

    async def body() -> tuple[dict[str, dict[str, str]], dict[str, str], list[str]]:
        async with cluster(2) as (a, _):
            async with await a.client() as client:
                stats = await client.stats()
                section = await client.metrics()
            outs = []
            for extra in ([], ["-metrics"], ["-metrics", "-format=json"]):
                argv = ["info", f"-rpc-addr={a.addr}", *extra]
                assert await asyncio.to_thread(main, argv) == 0
                outs.append(capsys.readouterr().out)
            return stats, section, outs

    stats, section, (plain, text, js) = run(body())
    # the RPC stats reply keeps Go's sections; the metrics come from their own command
    assert set(stats) == {"agent", "runtime", "serf", "tags", "event_handlers"}
    assert section["serf-agent.serf.member.join"] == "Count: 2 Sum: 2.000"
    assert section["serf-agent.agent.ipc.accept"] == "Count: 1 Sum: 1.000"
    # plain `serf info` is Go's five sections; -metrics adds a sixth in the same format,
    # sorted among them as Go's formatter sorts sections, the others unchanged
    go_sections, with_metrics = _sections(plain), _sections(text)
    assert list(go_sections) == ["agent", "event_handlers", "runtime", "serf", "tags"]
    assert list(with_metrics) == ["agent", "event_handlers", "metrics", "runtime", "serf", "tags"]
    for name, keys in go_sections.items():
        assert list(with_metrics[name]) == list(keys)
    assert with_metrics["metrics"]["serf-agent.serf.member.join"] == "Count: 2 Sum: 2.000"
    data = json.loads(js)
    assert set(data) == {"agent", "runtime", "serf", "tags", "event_handlers", "metrics"}
    assert data["metrics"]["serf-agent.serf.member.join"] == "Count: 2 Sum: 2.000"


def _sections(text: str) -> dict[str, dict[str, str]]:
    """`serf info` text: section -> key -> value."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("\t"):
            key, _, value = line[1:].partition(" = ")
            out[list(out)[-1]][key] = value
        else:
            assert line.endswith(":"), line
            out[line[:-1]] = {}
    return out


@pytest.mark.slow
def test_sigusr1_dumps_the_metrics_to_stderr_and_the_agent_runs_on() -> None:
    from serf.testing.bedagent import pyserf_command
    from serf.testing.gopeer import free_port
    from serf.testing.lines import LineReader

    rpc = f"127.0.0.1:{free_port()}"
    argv = [*pyserf_command(), "agent", "-node=usr1", f"-bind=127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(
        [*argv, f"-rpc-addr={rpc}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = LineReader(proc.stdout), LineReader(proc.stderr)
        out.wait_for("Serf agent running!", 30)

        async def members() -> int:
            async with await RPCClient.connect(rpc, timeout=5) as client:
                return len(await client.members())

        assert run(members()) == 1
        proc.send_signal(signal.SIGUSR1)
        # Go's agent (go-metrics' InmemSignal) writes its in-memory metrics and runs on
        line = err.wait_for("'serf-agent.agent.ipc.accept'", 10)
        assert re.fullmatch(
            r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\]\[C\] "
            r"'serf-agent.agent.ipc.accept': Count: 1 Sum: 1.000\n",
            line,
        ), line
        assert proc.poll() is None
        assert run(members()) == 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_agent_reports_runtime_gauges_as_gos_agent() -> None:
    async def body() -> dict[str, float]:
        async with cluster(1) as (a,):
            assert a.agent.sinks is not None
            inmem = a.agent.sinks.inmem
            names = ("num_goroutines", "sys_bytes", "heap_objects", "total_gc_runs")
            keys = [f"serf-agent.runtime.{n}" for n in names]
            await until(lambda: all(k in inmem.data for k in keys))
            return {k.rsplit(".", 1)[1]: inmem.value(k) for k in keys}

    got = run(body())
    # go-metrics' EnableRuntimeMetrics gauges (no host name: no network sink)
    assert got["num_goroutines"] >= 1 and got["sys_bytes"] > 1 << 20
    assert got["heap_objects"] > 1000 and got["total_gc_runs"] >= 0
