"""The serf agent: an :class:`~serf.agent.config.AgentConfig` wired to a running node.

How this works: :class:`Agent` turns the agent configuration into a
:class:`~serf.config.SerfConfig` (memberlist profile, bind/advertise, tags or tags file,
keyring, snapshot, limits, and the Go agent's coalescing overrides: 3 s / 1 s for member and
user events) and starts :class:`~serf.runtime.serf.Serf`. One task reads ``Serf.events()``
and fans each event out, in order, to the event-handler runner (mapped to the handlers'
inputs; a query script's output is sent back with ``Query.respond``) and to every registered
listener (the RPC server's ``stream`` subscriptions). :class:`LogBroker` is a
:mod:`logging` handler that formats lines as Go's agent does (``2006/01/02 15:04:05 [INFO]
...``), keeps the last 512 for ``monitor`` replays and pushes live lines to the monitors.
``start_join`` happens in :meth:`Agent.start` (an error when no address works);
``retry_join`` runs in the background and, when its attempts run out, ends the agent with
exit status 1. :meth:`Agent.reload` applies SIGHUP's changes: log level, handlers, tags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serf.address import Address
from serf.agent.config import AgentConfig
from serf.agent.sinks import AgentSinks, SinkError, start_sinks
from serf.config import SerfConfig, lan, local, wan
from serf.core import io as sio
from serf.core.delivery import member_event_type
from serf.runtime.advertise import AdvertiseError, interface_bind_host, parse_host_port
from serf.runtime.driver import log_line
from serf.runtime.serf import Event, Query, Serf, SerfError
from serf.telemetry import LEVEL_NAMES, TRACE
from serf.wire.keyring import Keyring

if TYPE_CHECKING:
    # imported on use (memory per agent, docs/performance.md): the handler runner when
    # handlers are configured, TLS with -transport=tls|quic
    from serf.agent.handler_spec import EventScript, MemberEventInfo, QueryInfo, UserEventInfo
    from serf.agent.handlers import EventHandlerRunner
    from serf.transport.tls import TlsConfig

__all__ = [
    "Agent",
    "AgentError",
    "LogBroker",
    "TRACE",
    "go_arch",
    "go_level",
    "go_os",
    "member_event_type",
]

log = logging.getLogger("serf.agent")

# Go's TRACE (serf.telemetry.TRACE) sits below DEBUG.
logging.addLevelName(TRACE, "TRACE")

_PY_LEVEL = {name: level for level, name in LEVEL_NAMES.items()}

#: The coalescing the Go agent sets on its serf config (member and user events).
AGENT_COALESCE = {
    "coalesce_period": 3.0,
    "quiescent_period": 1.0,
    "user_coalesce_period": 3.0,
    "user_quiescent_period": 1.0,
}


#: platform.machine() names -> Go's GOARCH names (what Go serf's ``info`` reports)
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "x86": "386",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loongarch64": "loong64",
}


def go_arch(machine: str | None = None) -> str:
    """This machine's architecture as Go's GOARCH names it (``amd64``, ``arm64``, ...)."""
    if machine is None:
        import platform  # json and platform: imported on use (memory per agent)

        machine = platform.machine()
    name = machine.lower()
    return _GOARCH.get(name, name)


def _python_version() -> str:
    import platform

    return platform.python_version()


def go_os(plat: str | None = None) -> str:
    """This OS as Go's GOOS names it (``linux``, ``darwin``, ``windows``, ``freebsd``)."""
    name = plat if plat is not None else sys.platform
    if name == "win32":
        return "windows"
    return name.rstrip("0123456789") or name


class AgentError(Exception):
    """The agent could not start (the text is the one line to print)."""


def go_level(levelno: int) -> str:
    """Go's level name for a :mod:`logging` level number."""
    if levelno >= logging.ERROR:
        return "ERR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


def python_level(name: str) -> int:
    """The :mod:`logging` level number for a Go level name (case-insensitive)."""
    return _PY_LEVEL[name.upper()]


Monitor = Callable[[str, int], None]
_PREFIXED = re.compile(r"^[\w.-]+: ")
#: the prefixes of the cores' lines (``serf.telemetry``), which _PREFIXED matches: no regex
_CORE_PREFIXES = ("serf: ", "memberlist: ")


class LogBroker(logging.Handler):
    """Formats records as Go's agent log lines; keeps 512 for replay; feeds monitors.

    A line is kept as (level, time, message) and formatted only when something reads it: the
    stream (at its level), a monitor, a replay. Most lines are debug lines nobody reads (Go's
    ``serf: messageUserEventType`` for each user-event message an agent receives, about four
    per event), kept for a later ``monitor`` as Go's 512-line buffer keeps them.
    """

    def __init__(self, buffer: int = 512, stream: Any = None) -> None:
        super().__init__(TRACE)
        #: the last ``buffer`` lines: (level, time.time(), message with its subsystem prefix)
        self.lines: deque[tuple[int, float, str]] = deque(maxlen=buffer)
        self.monitors: list[Monitor] = []
        self.stream = stream
        self.stream_level = logging.INFO
        #: as Go's gated writer: stream lines are held until the banner is out
        self.gated = False
        self._held: list[str] = []
        self._stamp_second = -1
        self._stamp = ""

    def open_gate(self) -> None:
        """Write the held lines and stream from now on."""
        self.gated = False
        held, self._held = self._held, []
        for line in held:
            self._write(line)

    def _write(self, line: str) -> None:
        with contextlib.suppress(Exception):
            self.stream.write(f"    {line}\n")
            self.stream.flush()

    def _stamped(self, created: float, level: int, msg: str) -> str:
        """``2006/01/02 15:04:05 [LEVEL] msg`` for a line made at ``created``."""
        second = int(created)
        if second != self._stamp_second:  # one strftime a second, not one a line
            self._stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(second))
            self._stamp_second = second
        return f"{self._stamp} [{go_level(level)}] {msg}"

    def format_line(self, record: logging.LogRecord) -> str:
        """``2006/01/02 15:04:05 [LEVEL] logger: message``."""
        return self._stamped(record.created, record.levelno, _message(record))

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the line, print it to the stream at the stream's level, feed monitors."""
        try:
            msg = _message(record)
        except Exception:  # a bad format string must not break logging
            return
        self._take(record.levelno, record.created, msg)

    def line(self, logger: str, level: int, text: str) -> None:
        """A line without a :class:`logging.LogRecord` (what :meth:`emit` does with the
        record ``logging.getLogger(logger).log(level, text)`` makes, for a fifth of its cost:
        see :attr:`serf.runtime.driver.MemberlistDriver.line_sink`)."""
        if not text.startswith(_CORE_PREFIXES) and not _PREFIXED.match(text):
            text = f"{_subsystem(logger)}: {text}"
        self._take(level, time.time(), text)

    def _take(self, level: int, created: float, msg: str) -> None:
        self.lines.append((level, created, msg))
        line = None
        if self.stream is not None and level >= self.stream_level:
            line = self._stamped(created, level, msg)
            if self.gated:
                self._held.append(line)
            else:
                self._write(line)
        if self.monitors:
            if line is None:
                line = self._stamped(created, level, msg)
            for monitor in list(self.monitors):
                with contextlib.suppress(Exception):
                    monitor(line, level)

    def replay(self, level: int) -> list[str]:
        """The buffered lines at ``level`` or above, oldest first."""
        return [self._stamped(t, lvl, msg) for lvl, t, msg in list(self.lines) if lvl >= level]


def _subsystem(logger: str) -> str:
    """The subsystem a logger's lines name when their text does not: ``serf.agent`` -> agent."""
    return logger.removeprefix("serf.").split(".")[0]


def _message(record: logging.LogRecord) -> str:
    """A record's message as Go's line carries it: with its subsystem prefix and error."""
    msg = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        msg += f": {record.exc_info[1]!r}"
    if not _PREFIXED.match(msg):  # Go's lines name their subsystem: "agent: ..."
        msg = f"{_subsystem(record.name)}: {msg}"
    return msg


def _read_tags_file(path: str) -> dict[str, str]:
    """Tags are Go strings (bytes): values that are not UTF-8 round-trip as surrogate
    escapes (``write_tags_file`` writes them as ``\\udcXX``, which reads back the same)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AgentError(f"Failed to read tags file: {exc}") from None
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AgentError(f"Failed to decode tags file: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AgentError("Failed to decode tags file: not an object of strings")
    return {str(k): v for k, v in data.items()}


def write_tags_file(path: str, tags: Mapping[str, str]) -> None:
    """Write ``tags`` pretty-printed, mode 0600 (as Go's agent)."""
    import json

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(tags), indent="  ", sort_keys=True))


def _parse_handlers(specs: Sequence[str]) -> list[EventScript]:
    """The event handler scripts of ``specs`` (the configuration checked them); the parser is
    imported only when there are handlers (memory per agent, docs/performance.md)."""
    if not specs:
        return []
    from serf.agent.handler_spec import parse_handlers

    return parse_handlers(specs)


def _addr(text: str, what: str) -> Address:
    try:
        return parse_host_port(text, what)
    except AdvertiseError as exc:
        raise AgentError(str(exc)) from None


class Agent:
    """One running agent: the serf node, event handlers, listeners and the log broker."""

    def __init__(self, config: AgentConfig, broker: LogBroker | None = None) -> None:
        self.config = config
        self.broker = broker or LogBroker()
        self._node: Serf | None = None
        self.node_name = config.node_name or socket.gethostname()
        #: the gossip bind address once configured (``-iface`` applied), as the banner shows it
        self.bind_address: Address | None = None
        self.tags: dict[str, str] = {}
        self.keyring: Keyring | None = None
        self.listeners: list[Callable[[Event], None]] = []
        self.runner: EventHandlerRunner | None = None
        self.scripts = _parse_handlers(config.event_handlers)
        self.shutdown_event = asyncio.Event()
        self.exit_code = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._handler_queries: dict[int, tuple[QueryInfo, Query]] = {}
        self._shutting_down = False
        #: the metric sinks (set by start)
        self.sinks: AgentSinks | None = None

    # -- configuration -----------------------------------------------------------------

    def _tls_config(self) -> TlsConfig | None:
        """The TLS files of ``-transport=tls|quic`` (None without them)."""
        cfg = self.config
        if not cfg.tls_ca_file:
            return None
        from serf.transport.tls import TlsConfig, TlsConfigError

        try:
            return TlsConfig.from_files(cfg.tls_ca_file, cfg.tls_cert_file, cfg.tls_key_file)
        except TlsConfigError as exc:
            raise AgentError(f"Invalid TLS configuration: {exc}") from None

    def serf_config(self) -> SerfConfig:
        """The library configuration for this agent's settings."""
        cfg = self.config
        profile = {"lan": lan, "wan": wan, "local": local}[cfg.profile]
        bind = _addr(cfg.bind, "bind")
        if cfg.interface:
            try:
                host = interface_bind_host(bind.host, cfg.interface)
            except AdvertiseError as exc:
                raise AgentError(str(exc)) from None
            if host != bind.host:
                log.info("agent: using interface '%s' address '%s'", cfg.interface, host)
                bind = Address(host, bind.port)
        self.bind_address = bind
        try:
            ml = replace(
                profile(self.node_name),
                bind_addr=bind.host,
                bind_port=bind.port,
                enable_compression=cfg.enable_compression,
                codec=cfg.codec,
            )
        except ValueError as exc:
            raise AgentError(f"Invalid bind address {cfg.bind!r}: {exc}") from None
        ml = replace(ml, transport=cfg.transport, tls=self._tls_config())
        if cfg.advertise:
            adv = _addr(cfg.advertise, "advertise")
            ml = replace(ml, advertise_addr=adv.host, advertise_port=adv.port)
        extra: dict[str, Any] = {}
        for key in ("reconnect_interval", "reconnect_timeout", "tombstone_timeout"):
            if getattr(cfg, key) > 0:
                extra[key] = getattr(cfg, key)
        try:
            return SerfConfig(
                node_name=self.node_name,
                tags=dict(self.tags),
                protocol_version=cfg.protocol,
                broadcast_timeout=cfg.broadcast_timeout,
                query_response_size_limit=cfg.query_response_size_limit,
                query_size_limit=cfg.query_size_limit,
                user_event_size_limit=cfg.user_event_size_limit,
                memberlist=ml,
                snapshot_path=cfg.snapshot_path,
                rejoin_after_leave=cfg.rejoin_after_leave,
                enable_name_conflict_resolution=not cfg.disable_name_resolution,
                disable_coordinates=cfg.disable_coordinates,
                keyring_file=cfg.keyring_file,
                validate_node_names=cfg.validate_node_names,
                coalesce_period=AGENT_COALESCE["coalesce_period"],
                quiescent_period=AGENT_COALESCE["quiescent_period"],
                user_coalesce_period=AGENT_COALESCE["user_coalesce_period"],
                user_quiescent_period=AGENT_COALESCE["user_quiescent_period"],
                **extra,
            )
        except ValueError as exc:
            raise AgentError(f"Invalid configuration: {exc}") from None

    def _load_keyring(self) -> Keyring | None:
        cfg = self.config
        if cfg.keyring_file:
            from serf.core.keyring_file import parse_keyring

            try:
                text = Path(cfg.keyring_file).read_text(encoding="utf-8")
                return Keyring(parse_keyring(text))
            except (OSError, ValueError) as exc:
                raise AgentError(f"Failed to load keyring file: {exc}") from None
        key = cfg.encrypt_bytes()
        return Keyring([key]) if key else None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the serf node and the event pump (AgentError on a setup failure)."""
        cfg = self.config
        root = logging.getLogger("serf")
        if self.broker not in root.handlers:
            root.addHandler(self.broker)
        root.setLevel(min(root.level or logging.WARNING, TRACE))
        log.info("agent: Serf agent starting")
        self.tags = cfg.effective_tags()
        if cfg.tags_file:
            self.tags.update(_read_tags_file(cfg.tags_file))
        self.keyring = self._load_keyring()
        serf_cfg = self.serf_config()
        try:
            self.sinks = start_sinks(cfg)
        except SinkError as exc:
            raise AgentError(str(exc)) from None
        try:
            self._node = await Serf.create(
                serf_cfg, keyring=self.keyring, metrics=self.sinks.metrics
            )
        except (OSError, ValueError, SerfError) as exc:
            self.sinks.close()
            raise AgentError(f"Error creating Serf: {exc}") from None
        if self.scripts:
            self.runner = self._make_runner()
        events = self._node.events()
        self._tasks.append(asyncio.create_task(self._pump(events), name="serf-agent-events"))

    def _make_runner(self) -> EventHandlerRunner:
        """The handler runner: made when handlers are configured (at start or a reload), so
        an agent without handlers never imports it."""
        from serf.agent.handlers import EventHandlerRunner

        return EventHandlerRunner(
            self.scripts,
            self_name=self.node_name,
            self_tags=lambda: self.tags,
            respond=self._respond_handler,
            metrics=self.sinks.metrics if self.sinks is not None else None,
        )

    async def start_join(self) -> None:
        """Join ``start_join`` (AgentError when none can be reached)."""
        if not self.config.start_join:
            return
        replay = self.config.replay_on_join
        # as Go's startupJoin: these two go to the console, not the log
        print(f"Joining cluster...(replay: {'true' if replay else 'false'})", flush=True)
        try:
            n = await self.join(self.config.start_join, replay)
        except (SerfError, OSError, ValueError) as exc:
            raise AgentError(f"Failed to join: {exc}") from None
        print(f"Join completed. Synced with {n} initial agents", flush=True)

    def start_retry_join(self) -> None:
        """Run ``retry_join`` in the background."""
        if self.config.retry_join:
            self._tasks.append(asyncio.create_task(self._retry_join(), name="serf-retry-join"))

    async def _retry_join(self) -> None:
        cfg = self.config
        attempt = 0
        while not self.shutdown_event.is_set():
            attempt += 1
            replay = "true" if cfg.replay_on_join else "false"
            log.info("agent: Joining cluster...(replay: %s)", replay)
            try:
                n = await self.join(cfg.retry_join, cfg.replay_on_join)
                log.info("agent: Join completed. Synced with %d initial agents", n)
                return
            except (SerfError, OSError, ValueError) as exc:
                wait = f"{cfg.retry_interval:g}s"  # Go prints the duration: "30s"
                log.warning("agent: Join failed: %s, retrying in %s", exc, wait)
            if cfg.retry_max_attempts > 0 and attempt >= cfg.retry_max_attempts:
                log.error("agent: maximum retry join attempts made, exiting")
                self.exit_code = 1
                self.shutdown_event.set()
                return
            await asyncio.sleep(cfg.retry_interval)

    async def join(self, addrs: list[str], replay: bool) -> int:
        """Join through ``addrs`` (replay: deliver old user events); nodes contacted."""
        # Go's agent.Join lines: "joining: [a b] replay: false", then joined or the error
        log.info("agent: joining: [%s] replay: %s", " ".join(addrs), "true" if replay else "false")
        try:
            n = await self.serf.join(addrs, ignore_old=not replay)
        except (SerfError, OSError, ValueError) as exc:
            log.warning("agent: error joining: %s", exc)
            raise
        log.info("agent: joined: %d nodes", n)
        return n

    @property
    def serf(self) -> Serf:
        """The agent's serf node (SerfError before :meth:`start`)."""
        if self._node is None:
            raise SerfError("agent is not started")
        return self._node

    async def leave(self) -> None:
        """Gracefully leave the cluster."""
        log.info("agent: requesting graceful leave from Serf")
        await self.serf.leave()

    async def shutdown(self) -> None:
        """Stop everything (without leaving). Idempotent."""
        if self._shutting_down:
            return
        self._shutting_down = True
        log.info("agent: requesting serf shutdown")
        if self._node is not None:
            await self._node.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.runner is not None:
            await self.runner.aclose()
        if self.sinks is not None:
            self.sinks.close()
        log.info("agent: shutdown complete")
        logging.getLogger("serf").removeHandler(self.broker)
        self.shutdown_event.set()

    # -- events ------------------------------------------------------------------------

    async def _pump(self, events: Any) -> None:
        async for event in events:
            self._dispatch(event)
        if not self._shutting_down:  # serf shut itself down (e.g. a name conflict)
            self.shutdown_event.set()

    def _dispatch(self, event: Event) -> None:
        kind = member_event_type(event)
        if kind is not None:
            log_line(log, logging.INFO, f"agent: Received event: {kind}")
        elif isinstance(event, sio.UserEventReceived):
            log_line(log, logging.INFO, f"agent: Received event: user-event: {event.name}")
        elif isinstance(event, Query):
            log_line(log, logging.INFO, f"agent: Received event: query: {event.name}")
        else:
            return
        if self.runner is not None and self.scripts:
            self.runner.submit(self._handler_event(event, kind))
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # one listener must not starve the others
                log.exception("agent: event listener failed")

    def _handler_event(
        self, event: Event, kind: str | None
    ) -> MemberEventInfo | UserEventInfo | QueryInfo:
        """What the handlers see of ``event`` (a member event of type ``kind``, a user event or
        a query, which is remembered for the handler's response)."""
        # loaded with the runner (handlers configured)
        from serf.agent.handler_spec import QueryInfo, event_info

        info = event_info(event, kind)
        assert info is not None  # (_dispatch submits only the events handlers see)
        if isinstance(info, QueryInfo):
            assert isinstance(event, Query)
            self._remember_query(info, event)
        return info

    def _remember_query(self, info: QueryInfo, query: Query) -> None:
        key = id(info)
        self._handler_queries[key] = (info, query)
        loop = asyncio.get_running_loop()
        delay = max(0.0, query.handle.deadline - loop.time()) + 1.0
        loop.call_later(delay, self._handler_queries.pop, key, None)

    async def _respond_handler(self, info: QueryInfo, payload: bytes) -> None:
        entry = self._handler_queries.get(id(info))
        if entry is None or entry[0] is not info:
            log.warning("agent: query response for an expired query %r", info.name)
            return
        try:
            await entry[1].respond(payload)
        except SerfError as exc:
            log.warning("agent: failed to respond to query %r: %s", info.name, exc)

    # -- operations used by the RPC server ---------------------------------------------

    async def set_tags(self, tags: Mapping[str, str], delete: list[str]) -> None:
        """(current - delete) | tags; gossip, then persist to the tags file."""
        new = {k: v for k, v in self.tags.items() if k not in set(delete)}
        new.update(tags)
        await self.serf.set_tags(new)
        self.tags = new
        if self.config.tags_file:
            write_tags_file(self.config.tags_file, new)

    def stats(self) -> dict[str, dict[str, str]]:
        """The ``stats`` sections: agent, runtime, serf, tags, event_handlers."""
        handlers: dict[str, str] = {}
        for script in self.scripts:
            handlers[f"{script.filter.event}:{script.filter.name}"] = script.script
        return {
            "agent": {"name": self.node_name},
            "runtime": {
                "os": go_os(),
                "arch": go_arch(),
                "version": f"python{_python_version()}",
                "max_procs": str(os.cpu_count() or 1),
                "goroutines": str(len(asyncio.all_tasks())),
                "cpu_count": str(os.cpu_count() or 1),
            },
            "serf": dict(self.serf.stats()),
            "tags": dict(self.tags),
            "event_handlers": handlers,
        }

    async def reload(self, config: AgentConfig) -> None:
        """SIGHUP: take the new log level, event handlers and tags."""
        self.broker.stream_level = python_level(config.log_level)
        self.scripts = _parse_handlers(config.event_handlers)
        if self.runner is not None:
            self.runner.scripts = list(self.scripts)
        elif self.scripts and self._node is not None:
            self.runner = self._make_runner()
        new_tags = config.effective_tags()
        if config.tags_file:
            new_tags.update(_read_tags_file(config.tags_file))
        if new_tags != self.tags:
            await self.set_tags(new_tags, [k for k in self.tags if k not in new_tags])
        self.config = config
        log.info("agent: reloaded configuration")
