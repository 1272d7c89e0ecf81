"""Metric sinks: go-metrics' key handling and wire formats, checked against listeners."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import pytest

from serf.address import Address
from serf.metrics import InmemSink, Metrics, StatsdSink, StatsiteSink, flatten_key, format_line
from serf.telemetry import COUNTER, GAUGE, SAMPLE, TIMER, MetricSample


def test_lines_are_go_metrics_lines() -> None:
    assert format_line(COUNTER, ("serf", "events"), 1) == "serf.events:1.000000|c\n"
    assert format_line(GAUGE, ("memberlist", "health", "score"), 2) == (
        "memberlist.health.score:2.000000|g\n"
    )
    assert format_line(SAMPLE, ("memberlist", "probeNode"), 0.25) == (
        "memberlist.probeNode:0.250000|ms\n"
    )
    # labels become extra key parts; ':' and ' ' become '_'
    labels = (("node_state", "alive"),)
    assert flatten_key(("memberlist", "node", "instances"), labels) == (
        "memberlist.node.instances.alive"
    )
    assert flatten_key(("serf", "events", "a b:c")) == "serf.events.a_b_c"


def test_metrics_prefix_host_and_timers() -> None:
    inmem = InmemSink()
    clock = [10.0]
    m = Metrics([inmem], service_name="serf-agent", host_name="box", clock=lambda: clock[0])
    m.emit(MetricSample(COUNTER, ("serf", "member", "join"), 1.0))
    m.emit(MetricSample(COUNTER, ("serf", "member", "join"), 1.0))
    m.emit(MetricSample(GAUGE, ("memberlist", "health", "score"), 3.0))
    m.emit(MetricSample(TIMER, ("memberlist", "gossip"), 9.75))
    assert inmem.value("serf-agent.serf.member.join") == 2.0
    # as Go's EnableHostname: the host goes before gauge keys only
    assert inmem.value("serf-agent.box.memberlist.health.score") == 3.0
    snap = inmem.snapshot()
    assert snap["serf-agent.memberlist.gossip"]["kind"] == SAMPLE
    assert snap["serf-agent.memberlist.gossip"]["last"] == pytest.approx(250.0)


def test_a_failing_sink_does_not_stop_the_others() -> None:
    class Broken:
        def incr_counter(self, *a: object) -> None:
            raise RuntimeError("boom")

        set_gauge = add_sample = incr_counter

    inmem = InmemSink()
    Metrics([Broken(), inmem]).incr_counter(("x",), 1.0)  # type: ignore[list-item]
    assert inmem.value("x") == 1.0


def test_statsd_sink_sends_go_lines_in_datagrams() -> None:
    async def main() -> list[bytes]:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        port = rx.getsockname()[1]
        sink = StatsdSink(Address("127.0.0.1", port))
        sink.start()
        m = Metrics([sink], service_name="serf-agent")
        for _ in range(100):
            m.incr_counter(("memberlist", "udp", "sent"), 50.0)
        m.set_gauge(("memberlist", "health", "score"), 1.0)
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        try:
            while sum(d.count(b"\n") for d in got) < 101:
                got.append(await asyncio.wait_for(loop.sock_recv(rx, 65535), 5))
        finally:
            sink.close()
            rx.close()
        return got

    datagrams = asyncio.run(main())
    assert all(len(d) <= 1400 for d in datagrams) and len(datagrams) >= 2
    lines = b"".join(datagrams).decode().splitlines()
    assert lines.count("serf-agent.memberlist.udp.sent:50.000000|c") == 100
    assert "serf-agent.memberlist.health.score:1.000000|g" in lines


def test_statsite_sink_streams_go_lines_over_tcp() -> None:
    async def main() -> str:
        received = bytearray()
        done = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while b"serf-agent.serf.queries:" not in received:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                received.extend(chunk)
            done.set()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sink = StatsiteSink(Address("127.0.0.1", port))
        sink.start()
        m = Metrics([sink], service_name="serf-agent")
        m.emit(MetricSample(SAMPLE, ("serf", "queue", "Event"), 3.0))
        m.emit(MetricSample(COUNTER, ("serf", "queries"), 1.0))
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            sink.close()
            server.close()
            await server.wait_closed()
        return received.decode()

    text = asyncio.run(main())
    assert text.splitlines() == [
        "serf-agent.serf.queue.Event:3.000000|ms",
        "serf-agent.serf.queries:1.000000|c",
    ]


def test_prometheus_names_are_sanitized_as_go_does() -> None:
    pytest.importorskip("prometheus_client")
    from serf.metrics_prometheus import PrometheusSink, prometheus_name

    assert prometheus_name(("serf", "coordinate", "adjustment-ms")) == (
        "serf_coordinate_adjustment_ms"
    )
    assert prometheus_name(("serf-agent", "memberlist", "msg", "alive")) == (
        "serf_agent_memberlist_msg_alive"
    )
    sink = PrometheusSink()
    m = Metrics([sink])
    m.incr_counter(("memberlist", "msg", "alive"), 2.0)
    m.set_gauge(("memberlist", "node", "instances"), 3.0, (("node_state", "alive"),))
    m.add_sample(("serf", "coordinate", "adjustment-ms"), 0.5)
    text = sink.exposition().decode()
    assert "memberlist_msg_alive_total 2.0" in text
    assert 'memberlist_node_instances{node_state="alive"} 3.0' in text
    assert "serf_coordinate_adjustment_ms_count 1.0" in text


def test_prometheus_server_is_scraped_over_http() -> None:
    pytest.importorskip("prometheus_client")
    from serf.metrics_prometheus import PrometheusSink

    sink = PrometheusSink()
    Metrics([sink]).incr_counter(("serf", "events"), 1.0)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server, _thread = sink.serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "serf_events_total 1.0" in body


def test_handler_runs_are_timed_as_agent_invoke_script() -> None:
    from serf.agent.handlers import EventHandlerRunner, UserEventInfo, parse_handlers

    inmem = InmemSink()
    metrics = Metrics([inmem], service_name="serf-agent")
    runner = EventHandlerRunner(
        parse_handlers(["user:deploy=exit 0", "user=exit 3", "query=true"]),
        self_name="me",
        metrics=metrics,
    )

    async def body() -> None:
        await runner.handle(UserEventInfo(1, "deploy", b""))
        await runner.handle(UserEventInfo(2, "other", b""))

    asyncio.run(body())
    snap = inmem.snapshot()
    # Go: MeasureSince(["agent", "invoke", script]) around every run, a failing one too
    ok, failed = snap["serf-agent.agent.invoke.exit_0"], snap["serf-agent.agent.invoke.exit_3"]
    assert ok["kind"] == SAMPLE and ok["count"] == 1
    assert failed["kind"] == SAMPLE and failed["count"] == 2
    assert 0.0 < ok["max"] < 60_000.0 and failed["min"] > 0.0  # milliseconds
    assert "serf-agent.agent.invoke.true" not in snap  # a script that did not match: no sample


def test_inmem_text_is_go_metrics_text() -> None:
    inmem = InmemSink()
    m = Metrics([inmem], service_name="serf-agent")
    m.incr_counter(("serf", "member", "join"), 1.0)
    m.incr_counter(("serf", "member", "join"), 1.0)
    m.set_gauge(("memberlist", "health", "score"), 2.0)
    for v in (1.0, 2.0, 6.0):
        m.add_sample(("memberlist", "probeNode"), v)
    # go-metrics' AggregateSample.String() (no LastUpdated) and a gauge's %0.3f
    assert inmem.go_section() == {
        "serf-agent.memberlist.health.score": "2.000",
        "serf-agent.memberlist.probeNode": (
            "Count: 3 Min: 1.000 Mean: 3.000 Max: 6.000 Stddev: 2.646 Sum: 9.000"
        ),
        "serf-agent.serf.member.join": "Count: 2 Sum: 2.000",
    }
    # the SIGUSR1 dump: gauges, counters, samples, each line stamped with the interval start
    lines = inmem.go_dump().splitlines()
    assert [line.split("]", 2)[1:] for line in lines] == [
        ["[G", " 'serf-agent.memberlist.health.score': 2.000"],
        ["[C", " 'serf-agent.serf.member.join': Count: 2 Sum: 2.000"],
        [
            "[S",
            " 'serf-agent.memberlist.probeNode': Count: 3 Min: 1.000 Mean: 3.000 Max: 6.000 "
            "Stddev: 2.646 Sum: 9.000",
        ],
    ]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(inmem.started))
    assert all(line.startswith(f"[{stamp}][") for line in lines)


def test_line_sinks_batch_lines_without_a_wakeup_per_batch() -> None:
    """A line finding the batch 100 ms old sends it at once; a lone batch goes out by a
    timer 1 s after its first line; a batch younger than 100 ms waits."""
    now = [100.0]

    async def main() -> list[tuple[str, list[str]]]:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        sink = StatsdSink(Address("127.0.0.1", rx.getsockname()[1]))
        sink._clock = lambda: now[0]
        sink.start()
        loop = asyncio.get_running_loop()
        for _ in range(500):
            if sink.connected:
                break
            await asyncio.sleep(0.01)
        m = Metrics([sink], service_name="s")
        seen: list[tuple[str, list[str]]] = []

        def pending() -> list[str]:
            try:
                return rx.recv(65535).decode().splitlines()
            except BlockingIOError:
                return []

        try:
            for i in range(3):
                m.incr_counter(("a",), float(i))
            now[0] += 0.05
            m.set_gauge(("b",), 1.0)
            await asyncio.sleep(0.05)
            seen.append(("young batch", pending()))
            assert sink._timer is not None  # armed once, for the batch
            now[0] += 0.06
            m.add_sample(("c",), 2.5)  # the batch is 110 ms old: this call sends it
            seen.append(("old batch", pending()))
            seen.append(("timer", [] if sink._timer is None else ["armed"]))
            m.incr_counter(("d",), 1.0)  # alone: the timer sends it about 1 s later
            start = loop.time()
            got = await asyncio.wait_for(loop.sock_recv(rx, 65535), 5)
            seen.append(("lone line", got.decode().splitlines()))
            seen.append(("after", ["at least 0.9 s"] if loop.time() - start >= 0.9 else []))
        finally:
            sink.close()
            rx.close()
        return seen

    assert asyncio.run(main()) == [
        ("young batch", []),
        (
            "old batch",
            [
                "s.a:0.000000|c",
                "s.a:1.000000|c",
                "s.a:2.000000|c",
                "s.b:1.000000|g",
                "s.c:2.500000|ms",
            ],
        ),
        ("timer", []),
        ("lone line", ["s.d:1.000000|c"]),
        ("after", ["at least 0.9 s"]),
    ]
