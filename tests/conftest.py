"""Test-wide checks: the tests run against the installed package, with the twins asked for."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from serf.testing.signals import pass_default_signals_on

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.load_profile("ci")

# `pytest &` from a script starts with SIGINT and SIGQUIT ignored; the agents, CLIs and Go peers
# the tests start must not inherit that (a `serf monitor` would never stop on SIGINT).
pass_default_signals_on()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from serf import _speedups

    lines = [f"pyserf twins: {_speedups.IMPLEMENTATION} ({_speedups.__file__})"]
    if _speedups.IMPLEMENTATION == "pure" and not _flag("SERF_NO_EXTENSIONS"):
        lines.append(
            "pyserf twins: WARNING the compiled twins are not built (no C compiler at install?);"
            " SERF_REQUIRE_EXTENSIONS=1 makes this run fail"
        )
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    from serf import _speedups

    if _flag("SERF_REQUIRE_EXTENSIONS") and _speedups.IMPLEMENTATION != "compiled":
        raise pytest.UsageError("SERF_REQUIRE_EXTENSIONS=1 but the pure twins were loaded")
    if _flag("SERF_NO_EXTENSIONS") and _speedups.IMPLEMENTATION != "pure":
        raise pytest.UsageError("SERF_NO_EXTENSIONS=1 but the compiled twins were loaded")


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates (bytes that were not UTF-8) shown as ``\\xNN`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
    return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Reports carry captured logs and failure texts that may hold Go strings (arbitrary bytes,
    decoded with surrogate escapes); pytest-xdist can only send UTF-8 between processes, so
    those bytes are shown escaped instead of crashing the run with an INTERNALERROR."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [(key, _utf8_safe(value)) for key, value in report.sections]
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        if _utf8_safe(text) != text:
            report.longrepr = _utf8_safe(text)
    return None
