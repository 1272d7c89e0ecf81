"""Metric sinks: go-metrics' key handling and wire formats, checked against listeners."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import pytest

from serf.address import Address
from serf.metrics import (
    InmemSink,
    Metrics,
    StatsdSink,
    StatsiteSink,
    flatten_key,
    format_line,
    line_format,
)
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
    # the cached line format: the key with '%' doubled, the value's place as '%f'
    for kind, key, value in ((COUNTER, ("serf", "events", "50%"), 1.0), (SAMPLE, ("t",), 0.1)):
        assert line_format(kind, key) % value == format_line(kind, key, value)
    assert format_line(COUNTER, ("serf", "events", "50%"), 1) == "serf.events.50%:1.000000|c\n"


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


async def _connected_statsd(**kw: float) -> tuple[StatsdSink, socket.socket]:
    """A started StatsdSink, connected, and the socket that receives its datagrams."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    sink = StatsdSink(Address("127.0.0.1", rx.getsockname()[1]), **kw)
    sink.start()
    for _ in range(500):
        if sink.connected:
            break
        await asyncio.sleep(0.01)
    assert sink.connected
    return sink, rx


def _pending(rx: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(rx.recv(65535))
        except BlockingIOError:
            return out


def test_line_sinks_batch_lines_without_a_timer_per_batch() -> None:
    """A line finding the batch flush_interval old sends it at once; a guard armed by a
    batch's first line sends what is queued max_delay later; a send leaves the guard armed
    (no cancel), and the next batch uses it instead of arming another."""
    now = [100.0]

    async def main() -> list[tuple[str, object]]:
        sink, rx = await _connected_statsd(flush_interval=1.0, max_delay=0.3)
        loop = asyncio.get_running_loop()
        m = Metrics([sink], service_name="s", clock=lambda: now[0])
        seen: list[tuple[str, object]] = []
        try:
            for i in range(3):
                m.incr_counter(("a",), float(i))
            guard = sink._guard
            seen.append(("guard armed by the first line", guard is not None))
            now[0] += 0.5
            m.set_gauge(("b",), 1.0)
            await asyncio.sleep(0)
            seen.append(("young batch", _pending(rx)))
            now[0] += 0.5
            m.add_sample(("c",), 2.5)  # the batch is 1 s old: this call sends it
            seen.append(("old batch", [d.decode().splitlines() for d in _pending(rx)]))
            seen.append(("guard kept", sink._guard is guard))
            m.incr_counter(("d",), 1.0)  # the next batch: the same guard sends it
            seen.append(("no second guard", sink._guard is guard))
            got = await asyncio.wait_for(loop.sock_recv(rx, 65535), 5)
            seen.append(("by the guard", got.decode().splitlines()))
            seen.append(("guard spent", sink._guard is None))
            m.incr_counter(("e",), 1.0)
            assert sink._guard is not None
            seen.append(("guard due max_delay after it was armed", sink._guard.when()))
            armed = loop.time()
            got = await asyncio.wait_for(loop.sock_recv(rx, 65535), 5)
            seen.append(("lone line", got.decode().splitlines()))
        finally:
            sink.close()
            rx.close()
        seen[-2] = (seen[-2][0], round(float(seen[-2][1]) - armed, 1))  # type: ignore[arg-type]
        return seen

    assert asyncio.run(main()) == [
        ("guard armed by the first line", True),
        ("young batch", []),
        (
            "old batch",
            [
                [
                    "s.a:0.000000|c",
                    "s.a:1.000000|c",
                    "s.a:2.000000|c",
                    "s.b:1.000000|g",
                    "s.c:2.500000|ms",
                ]
            ],
        ),
        ("guard kept", True),
        ("no second guard", True),
        ("by the guard", ["s.d:1.000000|c"]),
        ("guard spent", True),
        ("guard due max_delay after it was armed", 0.3),
        ("lone line", ["s.e:1.000000|c"]),
    ]


def _go_packets(lines: list[bytes], max_len: int = 1400) -> list[bytes]:
    """go-metrics' statsd packing: a line that would take the buffer over max_len sends the
    buffer first (Go sends an empty buffer too, as an empty datagram: left out here)."""
    out: list[bytes] = []
    buf = b""
    for line in lines:
        if len(line) + len(buf) > max_len and buf:
            out.append(buf)
            buf = b""
        buf += line
    if buf:
        out.append(buf)
    return out


def test_statsd_packs_lines_into_packets_as_go_and_sends_an_overlong_line_alone() -> None:
    keys = [("k" * 40, str(i)) for i in range(40)]  # 40 lines of about 55 bytes: 2 packets
    long_key = ("x" * 1500,)  # one line over 1400 bytes: a datagram of its own

    async def main() -> list[bytes]:
        sink, rx = await _connected_statsd()
        m = Metrics([sink], clock=lambda: 0.0)  # one batch: nothing is sent before close
        try:
            for key in keys[:30]:
                m.incr_counter(key, 1.0)
            m.set_gauge(long_key, 2.0)
            for key in keys[30:]:
                m.incr_counter(key, 1.0)
            await asyncio.sleep(0)
            assert _pending(rx) == []
        finally:
            sink.close()  # sends the batch
        try:
            return _pending(rx)
        finally:
            rx.close()

    lines = [format_line(COUNTER, k, 1.0).encode() for k in keys[:30]]
    lines.append(format_line(GAUGE, long_key, 2.0).encode())
    lines += [format_line(COUNTER, k, 1.0).encode() for k in keys[30:]]
    datagrams = asyncio.run(main())
    assert datagrams == _go_packets(lines)
    assert [len(d) > 1400 for d in datagrams] == [False, False, True, False]


def test_line_sinks_send_what_is_queued_when_closed() -> None:
    async def main() -> tuple[list[bytes], str]:
        sink, rx = await _connected_statsd()
        received = bytearray()
        eof = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while chunk := await reader.read(4096):
                received.extend(chunk)
            eof.set()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        statsite = StatsiteSink(Address("127.0.0.1", server.sockets[0].getsockname()[1]))
        statsite.start()
        for _ in range(500):
            if statsite.connected:
                break
            await asyncio.sleep(0.01)
        m = Metrics([sink, statsite], service_name="s")
        m.incr_counter(("serf", "member", "left"), 1.0)
        m.set_gauge(("memberlist", "health", "score"), 0.0)
        await asyncio.sleep(0)
        assert _pending(rx) == [] and not received  # a young batch: queued
        m.close()
        await asyncio.wait_for(eof.wait(), 5)  # the sink closed its connection after the lines
        server.close()
        await server.wait_closed()
        try:
            return _pending(rx), received.decode()
        finally:
            rx.close()

    datagrams, stream = asyncio.run(main())
    expected = "s.serf.member.left:1.000000|c\ns.memberlist.health.score:0.000000|g\n"
    assert datagrams == [expected.encode()]
    assert stream == expected


def test_a_value_that_is_not_a_number_drops_only_its_line() -> None:
    async def main() -> list[bytes]:
        sink, rx = await _connected_statsd()
        m = Metrics([sink], clock=lambda: 0.0)
        m.incr_counter(("a",), 1.0)
        m.incr_counter(("b",), "many")  # type: ignore[arg-type]
        m.add_sample(("c",), 0.5)
        sink.close()
        try:
            return _pending(rx)
        finally:
            rx.close()

    assert asyncio.run(main()) == [b"a:1.000000|c\nc:0.500000|ms\n"]


def test_a_polled_line_sink_sends_on_the_drivers_wake_ups_and_arms_no_timer() -> None:
    """A driver queues its samples in ``Metrics.pending`` and polls at the end of each batch
    with the time it wakes next: they are recorded when due, and a batch ``flush_interval``
    old goes out at a poll; no guard
    timer while the next wake-up comes within ``max_delay`` of the batch's oldest line; a
    guard due ``max_delay`` after that line when it does not (or when no driver will poll)."""

    async def main() -> list[tuple[str, object]]:
        sink, rx = await _connected_statsd(flush_interval=1.0, max_delay=2.0)
        loop = asyncio.get_running_loop()
        m = Metrics([sink], service_name="s")
        seen: list[tuple[str, object]] = []
        t = loop.time()
        try:
            m.pending.append((MetricSample(COUNTER, ("a",), 1.0), t))
            m.pending.append((MetricSample(TIMER, ("b",), t - 0.25), t))
            m.poll(t, t + 0.5)
            seen.append(("queued until due", len(m.pending)))
            seen.append(("young batch: kept, no guard", (_pending(rx), sink._guard)))
            m.pending.append((MetricSample(GAUGE, ("c",), 2.0), t + 0.5))
            m.poll(t + 0.5, t + 2.0)  # the next wake-up is 2 s after the oldest line: in time
            seen.append(("still no guard", sink._guard))
            m.poll(t + 1.0, t + 1.5)
            seen.append(("a second old: sent", [d.decode() for d in _pending(rx)]))
            m.pending.append((MetricSample(COUNTER, ("d",), 1.0), t + 1.1))
            m.poll(t + 1.6, t + 3.2)  # wakes 2.1 s after the line: too late, a guard
            assert sink._guard is not None  # due 2 s after the line: 0.5 s before the poll's
            delay = sink._guard.when() - loop.time()
            seen.append(("guard due max_delay after the line", round(delay, 1)))
            sink._guard.cancel()
            sink._guard = None
            m.poll(t + 1.2, None)  # the driver stopped: a guard
            seen.append(("no driver: guard", sink._guard is not None))
            m.incr_counter(("e",), 1.0)  # from outside a batch, with no driver: a guard kept
            got = await asyncio.wait_for(loop.sock_recv(rx, 65535), 5)
            seen.append(("by the guard", got.decode()))
        finally:
            sink.close()
            rx.close()
        return seen

    assert asyncio.run(main()) == [
        ("queued until due", 2),
        ("young batch: kept, no guard", ([], None)),
        ("still no guard", None),
        ("a second old: sent", ["s.a:1.000000|c\ns.b:250.000000|ms\ns.c:2.000000|g\n"]),
        ("guard due max_delay after the line", 1.5),
        ("no driver: guard", True),
        ("by the guard", "s.d:1.000000|c\ns.e:1.000000|c\n"),
    ]


def test_a_nodes_statsd_lines_go_out_on_its_own_wake_ups() -> None:
    """A node's driver polls its metrics at the end of each batch: its statsd lines go out
    with no timer of the sink's (the node wakes well within the sink's max_delay), and the
    in-memory sink has the same samples."""
    from serf.config import SerfConfig, loopback
    from serf.runtime.serf import Serf

    fired: list[float] = []

    class Counted(StatsdSink):
        def _guard_fired(self) -> None:
            fired.append(1.0)
            super()._guard_fired()

    async def main() -> tuple[list[str], float, bool, int]:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        # max_delay above any wait of the node's (a probe interval scaled by a degraded
        # health score under load included): a guard now would be the sink's own doing
        sink = Counted(Address("127.0.0.1", rx.getsockname()[1]), max_delay=30.0)
        sink.start()
        inmem = InmemSink()
        loop = asyncio.get_running_loop()
        a = await Serf.create(SerfConfig("a", memberlist=loopback("a")))
        b = await Serf.create(
            SerfConfig("b", memberlist=loopback("b")), metrics=Metrics([sink, inmem])
        )
        lines: list[str] = []
        guard_seen = False
        try:
            await b.join([a.local_member.address])
            while sum(".probeNode:" in x for x in lines) < 3:  # three probes and their sends
                got = await asyncio.wait_for(loop.sock_recv(rx, 65535), 10)
                lines += got.decode().splitlines()
                guard_seen = guard_seen or sink._guard is not None
            fired_running = len(fired)  # (a stopped node has no wake-ups: then a guard)
        finally:
            await b.shutdown()
            await a.shutdown()
            sink.close()
            rx.close()
        return lines, inmem.value("memberlist.probeNode"), guard_seen, fired_running

    lines, probes, guard_seen, fired_running = asyncio.run(main())
    assert fired_running == 0 and not guard_seen
    assert any(x.startswith("memberlist.udp.sent:") for x in lines)
    assert probes >= 3


def test_the_drivers_samples_reach_an_inmem_sink_when_read_and_other_sinks_at_once() -> None:
    """With only sinks that can be asked (in memory) and line sinks, a driver's samples wait
    in ``Metrics.pending`` (bounded) until they are due or read; a sink that cannot be asked
    (Prometheus, scraped from its own thread; any other MetricsSink) gets them at each poll."""
    calls: list[tuple[object, ...]] = []

    class Plain:
        def incr_counter(self, key: object, value: float, labels: object) -> None:
            calls.append(("c", key, value))

        def set_gauge(self, key: object, value: float, labels: object) -> None:
            calls.append(("g", key, value))

        def add_sample(self, key: object, value: float, labels: object) -> None:
            calls.append(("s", key, value))

    inmem = InmemSink()
    m = Metrics([inmem], service_name="s")
    m.pending.append((MetricSample(COUNTER, ("a",), 2.0), 10.0))
    m.pending.append((MetricSample(TIMER, ("t",), 9.5), 10.0))
    m.poll(10.5, 11.0)
    assert len(m.pending) == 2  # nothing asked for them yet
    assert inmem.value("s.a") == 2.0 and m.pending == []  # a read records them first
    assert inmem.snapshot()["s.t"]["last"] == 500.0  # a timer: ms up to the time it was queued
    for i in range(1100):  # bounded: recorded at a poll once the queue is long
        m.pending.append((MetricSample(COUNTER, ("a",), 1.0), 11.0 + i))
        m.poll(11.0 + i, 12.0 + i)
        assert len(m.pending) < 1024
    assert inmem._data["s.a"].sum > 1000.0

    eager = Metrics([Plain(), InmemSink()])  # type: ignore[list-item]
    eager.pending.append((MetricSample(GAUGE, ("g",), 3.0), 1.0))
    eager.poll(1.0, 1.5)
    assert calls == [("g", ("g",), 3.0)] and eager.pending == []


def test_a_sample_no_sink_can_name_is_dropped_alone() -> None:
    """A driver's queued sample whose key cannot be flattened (or a timer without a start
    time) is dropped; the samples queued with it are recorded and poll does not raise."""
    inmem = InmemSink()
    m = Metrics([inmem])
    m.pending.append((MetricSample(COUNTER, ("a", 1), 1.0), 1.0))  # type: ignore[arg-type]
    m.pending.append((MetricSample(TIMER, ("t",), "then"), 1.0))  # type: ignore[arg-type]
    m.pending.append((MetricSample(COUNTER, ("b",), 1.0), 1.0))
    m.poll(1.0, None)  # no next wake-up: recorded now
    assert m.pending == [] and inmem.value("b") == 1.0
