"""How the agent's child processes start: with the default signal dispositions, as Go's do.

Handlers installed with ``signal.signal`` revert to the default at ``exec``, but an *ignored*
signal stays ignored in the child, and ``subprocess``'s ``restore_signals`` only restores SIGPIPE
and SIGXFSZ. A process started in the background from a script (``serf agent &``) inherits
SIGINT and SIGQUIT ignored, so without :func:`reset_signals` its handler scripts (and everything
they start) could not be interrupted. Go's runtime installs its own handlers for those signals,
so a Go agent's children always start with the defaults.
"""

from __future__ import annotations

import contextlib
import signal

__all__ = ["reset_signals"]

_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def reset_signals() -> None:
    """Every catchable signal back to its default disposition and none blocked.

    Meant as the ``preexec_fn`` of a child process (it runs in the child between fork and exec);
    it only makes system calls, so it is safe there even when the parent has threads.
    """
    for sig in signal.valid_signals():
        if sig in _UNCATCHABLE:
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
