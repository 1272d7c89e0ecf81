"""``serf agent`` once configured: run an :class:`~serf.agent.agent.Agent`, handle signals.

How this works: :func:`start` (called by :func:`serf.agent.run.main` with the configuration
read and the event loop chosen) sets up logging through a :class:`~serf.agent.agent.LogBroker`
(stderr at the configured level, every level buffered for ``monitor``), then runs :func:`run`
on a fresh event loop of the chosen kind (asyncio's or uvloop's). :func:`run` starts the
agent, the RPC server, the HTTP API and status page (``-http-addr``, when set) and
``start_join`` (exit 1 when no address works), prints Go's startup banner, starts
``retry_join`` and waits for a signal or for the agent to end (``leave`` over RPC: exit 0;
``retry_join`` exhausted: exit 1).

Signals as Go's agent: SIGINT leaves gracefully unless ``skip_leave_on_interrupt``; SIGTERM
leaves only with ``leave_on_terminate`` (otherwise exit 1 at once); the graceful leave has
3 s, and a second signal meanwhile forces exit 1; a completed leave exits 0. SIGHUP reloads
the config files and flags and applies the log level, event handlers and tags. SIGUSR1 writes
the in-memory metrics to stderr (go-metrics' dump, as Go's agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from serf._extras import MissingExtraError
from serf.agent.agent import Agent, AgentError, LogBroker, python_level
from serf.agent.config import AgentConfig, ConfigError, load_config
from serf.agent.flags import FlagError
from serf.agent.rpc_server import RpcServer
from serf.runtime.driver import MemberlistDriver

if TYPE_CHECKING:
    from serf.agent.http_api import HttpApi

__all__ = ["start", "run", "loop_factory", "GRACEFUL_TIMEOUT"]

log = logging.getLogger("serf.agent")

#: how long a graceful leave on a signal may take
GRACEFUL_TIMEOUT = 3.0


def _banner(agent: Agent, rpc_addr: str, http_addr: str = "") -> str:
    cfg = agent.config
    serf = agent.serf
    local = serf.local_member
    bind = str(agent.bind_address) if agent.bind_address else cfg.bind  # [v6]:port as Go
    # as Go's banner: labels right-aligned to "Message Compression Enabled" under a 4-space
    # indent; Go leaves "Advertise addr" unaligned, and so do we (scripts match it as it is)
    rows = [("Node name", f"'{agent.node_name}'"), ("Bind addr", f"'{bind}'")]
    if cfg.advertise:
        rows.append(("Advertise addr", f"'{local.address}'"))
    rows += [
        ("RPC addr", f"'{rpc_addr}'"),
        *([("HTTP addr", f"'{http_addr}'")] if http_addr else []),
        ("Encrypted", "true" if agent.keyring is not None else "false"),
        ("Snapshot", "true" if cfg.snapshot_path else "false"),
        ("Profile", cfg.profile),
        ("Message Compression Enabled", "true" if cfg.enable_compression else "false"),
    ]
    if cfg.discover:
        rows.append(("mDNS cluster", cfg.discover))
    width = len("Message Compression Enabled")
    lines = ["==> Serf agent running!"]
    for label, value in rows:
        shown = label if label == "Advertise addr" else label.rjust(width)
        lines.append(f"    {shown}: {value}")
    lines += ["", "==> Log data will now stream in as it occurs:", ""]
    return "\n".join(lines)


def _setup_logging(cfg: AgentConfig) -> LogBroker:
    broker = LogBroker(stream=sys.stdout)  # as Go's agent: log lines go to stdout
    broker.stream_level = python_level(cfg.log_level)
    broker.gated = True
    logging.getLogger("serf").propagate = False  # the agent attaches the broker
    # The broker reads a record's time, level, logger name, message and exception only; the
    # agent process has no other handler. What logging would also gather for each record
    # (the caller's frame, thread, process), Python's logging HOWTO "Optimization" switches
    # off: a third of a record's cost, and an agent makes ~5 records per user event (Go's
    # debug line for each user-event message, kept in the 512-line monitor buffer as Go's).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # ... and the drivers' lines (~4 per user event) skip the records: straight to the broker
    MemberlistDriver.line_sink = broker.line
    return broker


async def run(cfg: AgentConfig, args: Sequence[str], broker: LogBroker) -> int:
    """Run the agent until a signal or its end; the exit status."""
    if cfg.discover:
        from serf.agent import mdns

        try:
            mdns.check_available()
        except mdns.MDNSUnavailable as exc:
            print(str(exc), file=sys.stderr)
            return 1
    for warning in cfg.warnings:
        print(f"==> {warning}", file=sys.stderr)
    if cfg.enable_syslog:
        print("==> Warning: syslog is not supported by pyserf; ignoring -syslog", file=sys.stderr)
    print("==> Starting Serf agent...", flush=True)
    agent = Agent(cfg, broker)
    try:
        await agent.start()
    except AgentError as exc:
        print(f"Failed to start the Serf agent: {exc}", file=sys.stderr)
        return 1
    print("==> Starting Serf agent RPC...", flush=True)
    rpc = RpcServer(agent, cfg.rpc_addr, cfg.rpc_auth)
    try:
        bound = await rpc.start()
    except (OSError, ValueError) as exc:
        print(f"Error starting RPC listener: {exc}", file=sys.stderr)
        await agent.shutdown()
        return 1
    http: HttpApi | None = None
    if cfg.http_addr:
        from serf.agent.http_api import HttpApi  # imported only when asked for

        http = HttpApi(agent, cfg.http_addr, cfg.rpc_auth)
        try:
            await http.start()
        except (MissingExtraError, OSError, ValueError) as exc:
            print(f"Error starting HTTP listener: {exc}", file=sys.stderr)
            await rpc.stop()
            await agent.shutdown()
            return 1
    discovery = None
    try:
        await agent.start_join()
        if cfg.discover:
            from serf.agent import mdns

            discovery = mdns.Discovery(agent, cfg)
            try:
                await discovery.start()
            except Exception as exc:  # zeroconf's errors: one line, exit 1
                await discovery.stop()
                discovery = None
                raise AgentError(f"Error starting mDNS listener: {exc}") from None
    except AgentError as exc:
        print(str(exc), file=sys.stderr)
        if http is not None:
            await http.stop()
        await rpc.stop()
        await agent.shutdown()
        return 1
    # the handlers go in before the banner: a script that waits for the banner and then
    # signals gets the signal handled (Go installs its handlers after the banner, so a
    # signal in between kills its agent at once: docs/compatibility.md)
    loop = asyncio.get_running_loop()
    signals: asyncio.Queue[int] = asyncio.Queue()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    loop.add_signal_handler(signal.SIGUSR1, _dump_metrics, agent)  # as Go's InmemSignal
    try:
        http_bound = str(http.bound) if http is not None else ""
        print(_banner(agent, str(bound), http_bound), flush=True)
        broker.open_gate()
        agent.start_retry_join()
        code = await _wait(agent, cfg, args, signals)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
        if discovery is not None:
            await discovery.stop()
        if http is not None:
            await http.stop()
        await rpc.stop()
        await agent.shutdown()
    return code


def _dump_metrics(agent: Agent) -> None:
    """SIGUSR1: the in-memory metrics to stderr in go-metrics' dump format, as Go's agent."""
    if agent.sinks is not None:
        sys.stderr.write(agent.sinks.inmem.go_dump())
        sys.stderr.flush()


async def _wait(
    agent: Agent, cfg: AgentConfig, args: Sequence[str], signals: asyncio.Queue[int]
) -> int:
    while True:
        sig_task: asyncio.Future[Any] = asyncio.ensure_future(signals.get())
        end_task: asyncio.Future[Any] = asyncio.ensure_future(agent.shutdown_event.wait())
        done, _ = await asyncio.wait({sig_task, end_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sig_task, end_task):
            if task not in done:
                task.cancel()
        if end_task in done:
            return agent.exit_code
        sig = sig_task.result()
        if sig == signal.SIGHUP:
            print("==> Caught signal: hangup", flush=True)
            try:
                new_cfg = load_config(args)
                await agent.reload(new_cfg)
                cfg = new_cfg
            except (ConfigError, FlagError, AgentError, ValueError) as exc:
                log.error("agent: failed to reload configuration: %s", exc)
            continue
        name = "interrupt" if sig == signal.SIGINT else "terminated"
        print(f"==> Caught signal: {name}", flush=True)
        graceful = (sig == signal.SIGINT and not cfg.skip_leave_on_interrupt) or (
            sig == signal.SIGTERM and cfg.leave_on_terminate
        )
        if not graceful:
            return 1
        print("Gracefully shutting down agent...", flush=True)
        leave = asyncio.ensure_future(agent.leave())
        second = asyncio.ensure_future(signals.get())
        # FIRST_COMPLETED: the leave's end, a second signal or the limit, whichever is first
        # (waiting for both tasks would always take the full limit)
        done, _ = await asyncio.wait(
            {leave, second}, timeout=GRACEFUL_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        second.cancel()
        if leave in done and leave.exception() is None:
            return 0
        if leave in done:
            print(f"Error: {leave.exception()}", file=sys.stderr)
        leave.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await leave
        return 1


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes a new loop of kind ``loop`` (``"uvloop"`` or ``"asyncio"``) for
    ``asyncio.Runner``: None is asyncio's default loop, as ``asyncio.run`` makes."""
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if loop != "asyncio":
        raise ValueError(f"unknown event loop {loop!r}")
    return None


def start(cfg: AgentConfig, args: Sequence[str], loop: str = "asyncio") -> int:
    """Run the agent configured by ``cfg`` (read from ``args``, which a SIGHUP reads again)
    on a new event loop of kind ``loop``; the exit status."""
    broker = _setup_logging(cfg)
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            return runner.run(run(cfg, args, broker))
    except KeyboardInterrupt:  # pragma: no cover - signals are handled in the loop
        return 1
    finally:
        MemberlistDriver.line_sink = None
        broker.open_gate()  # a start that failed before the banner still shows its lines
