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

Deferred modules: asyncio also imports modules that an agent at rest never calls
(``subprocess``, ``concurrent.futures``, ``asyncio.staggered``: :data:`DEFERRED`, about
0.45 MiB). While asyncio loads, a first import of one of them makes a
:class:`DeferredModule`: in ``sys.modules`` and bound wherever it is imported, with the few
constants asyncio reads from it at its own import, its code run at the first use of any other
name (a handler's child process, ``run_in_executor``). ``importlib.util.LazyLoader`` does not
do this: every later ``import`` of a lazy module reads its ``__spec__``, which runs it.
``inspect`` cannot wait: the agent's signal handlers (``loop.add_signal_handler`` calls
``inspect.iscoroutinefunction``) use it, nor ``traceback`` (asyncio's C module reads
``traceback.extract_stack`` at its import).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from serf._extras import MissingExtraError, missing_extra
from serf.agent.config import AgentConfig, ConfigError, load_config
from serf.agent.flags import FlagError, HelpRequested

if TYPE_CHECKING:  # importlib.abc imports importlib.resources, tempfile, shutil, bz2, lzma
    from importlib.abc import Loader

__all__ = [
    "DEFERRED",
    "EVENT_LOOP_ENV",
    "DeferredModule",
    "deferring",
    "event_loop",
    "import_asyncio",
    "main",
    "uses_tls",
]

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


#: standard modules that asyncio imports and an agent at rest never calls, each with the
#: constants asyncio reads from it while it loads (the values the module defines: its real
#: code sets the same names again when it runs)
DEFERRED: dict[str, dict[str, object]] = {
    "subprocess": {"PIPE": -1, "STDOUT": -2, "DEVNULL": -3},  # a handler's child process
    "concurrent.futures": {  # run_in_executor (getaddrinfo of a name), wrap_future
        "FIRST_COMPLETED": "FIRST_COMPLETED",
        "FIRST_EXCEPTION": "FIRST_EXCEPTION",
        "ALL_COMPLETED": "ALL_COMPLETED",
    },
    "asyncio.staggered": {},  # create_connection's happy eyeballs
}


class DeferredModule(types.ModuleType):
    """A module imported but not yet run: the first attribute it lacks runs its code (in
    place, so every holder of the module sees it whole) and becomes a plain module.

    Unlike :class:`importlib.util.LazyLoader`, reading ``__spec__`` (which every later
    ``import`` of the module does) does not run it. Single-threaded use: the agent's
    modules run on its event loop's thread.
    """

    def __getattr__(self, name: str) -> Any:
        spec = self.__spec__
        assert spec is not None, "a deferred module has its spec"
        loader: Loader = self.__dict__.pop("__serf_loader__")
        spec.loader = self.__loader__ = loader
        self.__class__ = types.ModuleType  # type: ignore[assignment]  # plain from now on
        loader.exec_module(self)
        return getattr(self, name)


class _DeferringLoader:
    """A loader (by duck typing: :mod:`importlib.abc` imports much more) that makes the module
    a :class:`DeferredModule` holding ``constants`` and the real loader."""

    def __init__(self, loader: Loader, constants: Mapping[str, object]) -> None:
        self.loader, self.constants = loader, constants

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a plain module, as the real loaders of these make

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__.update(self.constants, __serf_loader__=self.loader)
        module.__class__ = DeferredModule


class _DeferringFinder:
    """A meta path finder: the spec of a :data:`DEFERRED` module with a deferring loader."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _DeferringLoader(spec.loader, DEFERRED[name])  # type: ignore[assignment]
        return spec


@contextmanager
def deferring() -> Iterator[None]:
    """While in the block, a first ``import`` of a :data:`DEFERRED` module makes a
    :class:`DeferredModule`; a module imported before stays as it is."""
    sys.meta_path.insert(0, _DeferringFinder)
    try:
        yield
    finally:
        sys.meta_path.remove(_DeferringFinder)


def import_asyncio(*, hide_ssl: bool) -> bool:
    """Import asyncio, with the :data:`DEFERRED` modules it imports deferred (see
    :class:`DeferredModule`); with ``hide_ssl``, with ``ssl`` hidden from it (its modules then
    hold ``ssl = None``, as on a Python built without ssl, and refuse TLS with a RuntimeError).

    ``ssl`` is hidden only while asyncio's modules load: a later ``import ssl`` anywhere
    works as usual. Nothing is hidden or deferred when asyncio is already imported (the
    in-process tests, a startup hook), and ssl is not hidden when it is already imported.
    Returns whether ssl was hidden.
    """
    if "asyncio" in sys.modules:
        return False
    hide = hide_ssl and "ssl" not in sys.modules
    if hide:
        sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl -> ImportError
    try:
        with deferring():
            import asyncio  # noqa: F401
    finally:
        if hide:
            del sys.modules["ssl"]
    return hide


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
