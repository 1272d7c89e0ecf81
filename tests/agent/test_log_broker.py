"""The agent's log lines (LogBroker): Go's line format, one timestamp per record's second."""

from __future__ import annotations

import io
import logging
import time

from serf.agent.agent import LogBroker


def _line(broker: LogBroker, created: float, text: str) -> str:
    record = logging.LogRecord("serf.agent", logging.INFO, "", 0, text, (), None)
    record.created = created
    return broker.format_line(record)


def test_each_line_carries_its_own_records_second() -> None:
    broker = LogBroker()
    base = float(int(time.time()))
    times = (base, base + 0.9, base + 1.2, base - 5.0, base + 0.1)  # a step back too
    stamps = [_line(broker, created, f"agent: line {i}") for i, created in enumerate(times)]
    expected = [
        time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(int(created)))
        + f" [INFO] agent: line {i}"
        for i, created in enumerate(times)
    ]
    assert stamps == expected
    assert stamps[0][:19] == stamps[1][:19] != stamps[2][:19]


def test_a_line_is_the_line_of_its_record_formatted_when_read() -> None:
    out = io.StringIO()
    broker = LogBroker(stream=out)  # the stream at INFO
    seen: list[tuple[str, int]] = []
    before = float(int(time.time()))
    broker.line("serf.core", logging.DEBUG, "serf: messageUserEventType: load1")
    broker.line("serf.agent", logging.INFO, "Received event: user-event: load1")  # no prefix
    broker.monitors.append(lambda line, level: seen.append((line, level)))
    broker.line("serf.memberlist", logging.WARNING, "memberlist: Refuting a suspect message")
    after = time.time()
    replay = broker.replay(logging.DEBUG)
    stamps = {time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t)) for t in (before, after)}
    assert {line[:19] for line in replay} <= stamps
    assert [line[20:] for line in replay] == [
        "[DEBUG] serf: messageUserEventType: load1",
        "[INFO] agent: Received event: user-event: load1",
        "[WARN] memberlist: Refuting a suspect message",
    ]
    assert broker.replay(logging.INFO) == replay[1:]
    assert out.getvalue() == "".join(f"    {line}\n" for line in replay[1:])
    assert seen == [(replay[2], logging.WARNING)]
    record = logging.LogRecord("serf.agent", logging.INFO, "", 0, "Received %s", ("x",), None)
    record.created = before
    broker.emit(record)
    assert broker.replay(logging.INFO)[-1] == _line(broker, before, "Received x")
    assert broker.replay(logging.INFO)[-1].endswith(" [INFO] agent: Received x")
