"""The agent's log lines (LogBroker): Go's line format, one timestamp per record's second."""

from __future__ import annotations

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
