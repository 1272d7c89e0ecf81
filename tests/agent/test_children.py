"""Child processes start with the default signal dispositions even when their parent ignores
SIGINT/SIGQUIT (as a process started with ``&`` from a non-interactive shell does)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

from serf.agent.children import reset_signals
from serf.agent.handlers import run_script
from serf.testing.signals import pass_default_signals_on

# prints "survived" only when SIGINT is ignored; otherwise the shell dies of it
PROBE = "kill -INT $$; echo survived"


@contextlib.contextmanager
def ignoring(*sigs: int) -> Iterator[None]:
    """This process ignores ``sigs`` (SIG_IGN) for the duration; then the old handlers."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def test_handler_scripts_get_default_sigint_when_the_agent_ignores_it() -> None:
    with ignoring(signal.SIGINT, signal.SIGQUIT):
        result = asyncio.run(run_script(PROBE, {"PATH": "/usr/bin:/bin"}, b""))
    assert result.exit_code == -signal.SIGINT and b"survived" not in result.output


def test_reset_signals_restores_every_ignored_signal() -> None:
    with ignoring(signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        plain = subprocess.run(["/bin/sh", "-c", PROBE], capture_output=True, timeout=30)
        reset = subprocess.run(
            ["/bin/sh", "-c", "kill -QUIT $$; kill -USR1 $$; " + PROBE],
            capture_output=True,
            timeout=30,
            preexec_fn=reset_signals,
        )
    assert plain.returncode == 0 and plain.stdout == b"survived\n"  # the problem being solved
    assert reset.returncode == -signal.SIGQUIT and reset.stdout == b""


def test_a_process_that_ignores_sigint_passes_the_default_to_its_children() -> None:
    with ignoring(signal.SIGINT, signal.SIGQUIT):
        changed = pass_default_signals_on()
        assert {signal.SIGINT, signal.SIGQUIT} <= set(changed)
        os.kill(os.getpid(), signal.SIGINT)  # still ignored here: no KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGQUIT)
        child = subprocess.run(["/bin/sh", "-c", PROBE], capture_output=True, timeout=30)
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
    assert child.returncode == -signal.SIGINT and child.stdout == b""
