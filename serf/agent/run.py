"""``serf agent``: read the configuration, choose the event loop, then run the agent.

How this works: :func:`main` parses the flags and config files (one-line error and exit 1 on
a problem) before anything imports asyncio, chooses the event loop (:func:`event_loop`:
uvloop when it is installed, ``pyserf[uvloop]``, unless ``SERF_EVENT_LOOP`` says otherwise),
imports asyncio (:func:`import_asyncio`) and hands over to :mod:`serf.agent.runner`, which
runs the agent, its RPC server and signal handling on a fresh loop of that kind.

Why the order: asyncio imports ``ssl`` at its own import, which maps OpenSSL's libraries
into the process (about 4.5 MiB of RSS per agent, docs/performance.md "Memory per agent").
An agent whose configuration uses no TLS (``-transport=net``, the default) on asyncio's
loop imports asyncio with ``ssl`` hidden, so asyncio's modules see no ``ssl``; that agent
then cannot make TLS connections through asyncio, which nothing in it does (its transport,
RPC and HTTP API are plain TCP; a reload cannot change the transport). With ``tls`` or
``quic``, or on uvloop (which imports ``ssl`` itself), asyncio is imported as usual.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence

from serf._extras import MissingExtraError, missing_extra
from serf.agent.config import AgentConfig, ConfigError, load_config
from serf.agent.flags import FlagError, HelpRequested

__all__ = ["EVENT_LOOP_ENV", "event_loop", "import_asyncio", "main", "uses_tls"]

#: the environment variable that picks the agent's event loop: ``asyncio`` or ``uvloop``
#: (unset or empty: uvloop when installed, else asyncio)
EVENT_LOOP_ENV = "SERF_EVENT_LOOP"


def event_loop(environ: Mapping[str, str] = os.environ) -> str:
    """The agent's event loop, ``"uvloop"`` or ``"asyncio"``: ``SERF_EVENT_LOOP`` when set,
    else uvloop if it is installed. ValueError for another name; MissingExtraError when
    uvloop is asked for and not installed."""
    wanted = environ.get(EVENT_LOOP_ENV, "").strip().lower()
    if wanted not in ("", "asyncio", "uvloop"):
        raise ValueError(f"{EVENT_LOOP_ENV}={wanted!r}: expected asyncio or uvloop")
    if wanted == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    if wanted == "uvloop":
        raise missing_extra("uvloop", "uvloop", f"{EVENT_LOOP_ENV}=uvloop")
    return "asyncio"


def uses_tls(cfg: AgentConfig) -> bool:
    """Whether the configuration makes TLS connections (``-transport=tls`` or ``quic``)."""
    return cfg.transport != "net"


def import_asyncio(*, hide_ssl: bool) -> bool:
    """Import asyncio; with ``hide_ssl``, with ``ssl`` hidden from it (its modules then hold
    ``ssl = None``, as on a Python built without ssl, and refuse TLS with a RuntimeError).

    ``ssl`` is hidden only while asyncio's modules load: a later ``import ssl`` anywhere
    works as usual. Nothing is hidden when asyncio or ssl is already imported (the
    in-process tests, a startup hook). Returns whether ssl was hidden.
    """
    if not hide_ssl or "asyncio" in sys.modules or "ssl" in sys.modules:
        import asyncio

        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl -> ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    return True


def main(args: Sequence[str]) -> int:
    """``serf agent [flags]``: the exit status."""
    args = list(args)
    try:
        cfg = load_config(args)
    except HelpRequested as exc:  # as Go's cli library: the help on stderr, exit 0
        print(f"{exc}\n", file=sys.stderr)
        return 0
    except (ConfigError, FlagError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    try:
        loop = event_loop()
    except (ValueError, MissingExtraError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    import_asyncio(hide_ssl=loop == "asyncio" and not uses_tls(cfg))
    from serf.agent import runner  # after asyncio: it imports the agent and asyncio

    return runner.start(cfg, args, loop)
