"""Default signal dispositions for every child of a test process, however it was started.

A test run started in the background from a script (``pytest &`` in a non-interactive shell)
inherits SIGINT and SIGQUIT ignored, and an ignored signal stays ignored across ``fork`` and
``exec``: a ``serf monitor`` child then never stops on Ctrl-C. :func:`pass_default_signals_on`
swaps each inherited ``SIG_IGN`` for a handler that does nothing: this process still ignores
the signal, but ``exec`` resets a handled signal to its default, so every child (whoever starts
it, however) gets the defaults. This is what Go's runtime does for its own children.
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType

__all__ = ["pass_default_signals_on"]

#: not catchable, or ignored by Python itself on purpose (subprocess restores those in children)
_LEFT_ALONE = {signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE, signal.SIGXFSZ}


def _still_ignored(signum: int, frame: FrameType | None) -> None:
    """A handler that ignores the signal (unlike SIG_IGN, children do not inherit it)."""


def pass_default_signals_on() -> list[int]:
    """Replace every inherited SIG_IGN in this process by a no-op handler; the signals changed.

    Call it from the main thread (signal handlers can only be set there).
    """
    changed: list[int] = []
    for sig in signal.valid_signals():
        if sig in _LEFT_ALONE:
            continue
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, _still_ignored)
                changed.append(int(sig))
    return changed
