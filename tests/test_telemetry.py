"""serf.telemetry: sans-IO like the cores that import it, Go's formatting helpers, and the
driver's routing of LogLine effects to named stdlib loggers (silent unless configured)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable

import pytest

from serf.telemetry import go_bytes, go_ip, go_quote, memberlist_line, serf_line
from serf.testing.sansio import FORBIDDEN, probe_imports


def test_telemetry_is_sans_io() -> None:
    added, bad = probe_imports("serf.telemetry", preload=("dataclasses",))
    assert "serf.telemetry" in added
    assert not [m for m in added if m.split(".")[0] in FORBIDDEN], added
    assert bad == []


def test_go_formatting() -> None:
    assert go_ip(bytes([10, 0, 0, 1])) == "10.0.0.1"
    assert go_ip(b"") == "<nil>"
    assert go_bytes(b"\x01\x02") == "[1 2]"
    assert go_quote(b'a"b\n') == '"a\\"b\\n"'
    assert memberlist_line(20, "x").text == "memberlist: x"
    assert serf_line(30, "y").logger == "serf.core"


def _join_two_nodes(joined: Callable[[], bool]) -> None:
    """Nodes a and b on loopback, b joined to a, until ``joined()`` (at most 10 s)."""
    from serf.config import SerfConfig, loopback
    from serf.runtime.serf import Serf

    async def main() -> None:
        a = await Serf.create(SerfConfig("a", memberlist=loopback("a")))
        b = await Serf.create(SerfConfig("b", memberlist=loopback("b")))
        try:
            await b.join([a.local_member.address])
            loop = asyncio.get_running_loop()
            end = loop.time() + 10
            while not joined():
                assert loop.time() < end, "no join line"
                await asyncio.sleep(0.05)
        finally:
            await b.shutdown()
            await a.shutdown()

    asyncio.run(main())


def test_library_nodes_log_to_named_loggers_and_never_print(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="serf")
    _join_two_nodes(lambda: any("EventMemberJoin: b" in r.message for r in caplog.records))
    names = {r.name for r in caplog.records}
    assert {"serf.core", "serf.memberlist"} <= names
    join = [r for r in caplog.records if r.message.startswith("serf: EventMemberJoin: b ")]
    assert join and join[0].levelno == logging.INFO and join[0].name == "serf.core"
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_unconfigured_logging_stays_silent() -> None:
    code = (
        "import logging, serf.runtime.driver; "
        "logging.getLogger('serf.core').warning('serf: minority in name conflict resolution')"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == "" and out.stdout == ""


def test_a_line_sink_takes_the_lines_instead_of_logging(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serf.runtime.driver import MemberlistDriver

    caplog.set_level(logging.DEBUG, logger="serf")
    taken: list[tuple[str, int, str]] = []
    monkeypatch.setattr(MemberlistDriver, "line_sink", lambda *line: taken.append(line))
    _join_two_nodes(lambda: any("EventMemberJoin: b" in text for _, _, text in taken))
    assert {name for name, _, _ in taken} >= {"serf.core", "serf.memberlist"}
    join = [line for line in taken if line[2].startswith("serf: EventMemberJoin: b ")]
    assert join and join[0][:2] == ("serf.core", logging.INFO)
    assert not [r for r in caplog.records if r.name in ("serf.core", "serf.memberlist")]


def test_log_line_takes_the_sink_when_one_is_set(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serf.runtime.driver import MemberlistDriver, log_line

    logger = logging.getLogger("serf.agent")
    caplog.set_level(logging.DEBUG, logger="serf")
    log_line(logger, logging.DEBUG, "agent: 100% sent")  # the text as it is, % included
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("serf.agent", logging.DEBUG, "agent: 100% sent")
    ]
    taken: list[tuple[str, int, str]] = []
    monkeypatch.setattr(MemberlistDriver, "line_sink", lambda *line: taken.append(line))
    log_line(logger, logging.INFO, "agent: Received event: user-event: x")
    assert taken == [("serf.agent", logging.INFO, "agent: Received event: user-event: x")]
    assert len(caplog.records) == 1
