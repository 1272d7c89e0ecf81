"""Shared pieces of the RPC client subcommands: flags, connecting, Go's output helpers.

How this works: each subcommand builds a :class:`~serf.agent.flags.FlagSet` with
:func:`rpc_flagset` (adds ``-rpc-addr``, default ``$SERF_RPC_ADDR`` or ``127.0.0.1:7373``,
and ``-rpc-auth``, default ``$SERF_RPC_AUTH``), parses with :func:`parse_or_exit` (a bad flag
is one line on stderr and exit status 1, as Go's ``flag.ContinueOnError`` + ``return 1``), and
runs its async body through :func:`run_command`, which connects (``Error connecting to Serf
agent: ...`` on failure), runs, closes, and turns Ctrl-C into the command's chosen status.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from serf.agent.flags import FlagError, FlagSet, HelpRequested
from serf.cli.gojson import marshal_indent
from serf.cli.rpc_client import DEFAULT_RPC_ADDR, RPCClient, RPCConnectionError, RPCError

__all__ = [
    "CommandError",
    "ShowHelp",
    "columnize",
    "err",
    "format_json",
    "out",
    "parse_or_exit",
    "rpc_flagset",
    "run_command",
    "stderr_line",
]


class CommandError(Exception):
    """Ends a command: print ``message`` (if any) and then ``help`` on stdout, exit ``status``.

    Go's commands print errors with ``Ui.Error`` on a ``BasicUi`` without an error writer,
    which is stdout; a usage error is the message, a blank line and the command's help.
    """

    def __init__(self, message: str = "", status: int = 1, help: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.help = help

    def report(self) -> int:
        """Print the message (and help) as Go does; the exit status."""
        if self.message:
            err(self.message)
        if self.help:
            if self.message:
                err("")
            err(self.help)
        return self.status


class ShowHelp(Exception):
    """``-h``: the command's help on stderr, exit 0 (Go's cli library writes help there)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _write(stream: Any, text: str | bytes) -> None:
    # raw bytes as Go writes them: a str's lone surrogates are the bytes they escape
    if isinstance(text, str):
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode("utf-8", "replace")
    else:
        data = text
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (a test's capture): no raw bytes possible
        stream.write(data.decode("utf-8", "replace") + "\n")
    else:
        buffer.write(data + b"\n")
        buffer.flush()


def out(text: str | bytes = "") -> None:
    """A line on stdout (Go's Ui.Output / Ui.Info); bytes are written as they are."""
    _write(sys.stdout, text)


def err(text: str | bytes = "") -> None:
    """An error line: on stdout, as Go's Ui.Error on serf's BasicUi."""
    _write(sys.stdout, text)


def stderr_line(text: str) -> None:
    """A line on stderr (Go's flag package errors and the cli library's help go there)."""
    _write(sys.stderr, text)


def rpc_flagset(name: str, synopsis: str = "", description: str = "") -> FlagSet:
    """A FlagSet with ``-rpc-addr`` and ``-rpc-auth`` (defaults from the environment)."""
    fs = FlagSet(name, synopsis, description)
    fs.string(
        "rpc-addr",
        os.environ.get("SERF_RPC_ADDR") or DEFAULT_RPC_ADDR,
        "RPC address of the Serf agent",
    )
    fs.string("rpc-auth", os.environ.get("SERF_RPC_AUTH", ""), "RPC auth token of the Serf agent")
    return fs


def parse_or_exit(fs: FlagSet, args: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Parse ``args``; on a bad flag, raise CommandError with Go's one-line message."""
    try:
        return fs.parse(args)
    except HelpRequested as exc:
        raise ShowHelp(str(exc)) from None
    except FlagError as exc:
        # as Go's flag.ContinueOnError: the error on stderr, the usage on stdout, exit 1
        stderr_line(str(exc))
        raise CommandError(help=fs.usage()) from None


def columnize(rows: Sequence[str]) -> str:
    """Go's columnize.SimpleFormat: ``|``-separated cells padded to columns, glue two spaces."""
    table = [[cell.strip() for cell in row.split("|")] for row in rows]
    widths: dict[int, int] = {}
    for cells in table:
        for i, cell in enumerate(cells):
            widths[i] = max(widths.get(i, 0), len(cell))
    lines = []
    for cells in table:
        parts = [
            cell if i == len(cells) - 1 else cell.ljust(widths[i]) + "  "
            for i, cell in enumerate(cells)
        ]
        lines.append("".join(parts))
    return "\n".join(lines)


def format_json(data: Any) -> str:
    """Go's json.MarshalIndent(data, "", "  "): dicts as Go maps, :class:`Struct` as structs."""
    return marshal_indent(data).strip()


def run_command(
    values: dict[str, Any],
    body: Callable[[RPCClient], Awaitable[int]],
    *,
    interrupt_status: int = 1,
    catch_interrupt: bool = False,
    interrupted: str = "",
) -> int:
    """Connect with the parsed ``-rpc-addr``/``-rpc-auth``, run ``body``, close; exit status.

    Ctrl-C (SIGINT) ends the command with ``interrupt_status``, after the line ``interrupted``
    if one is given. ``catch_interrupt``: SIGINT ends it even when the CLI was started with
    SIGINT ignored (``serf monitor &`` from a script), as Go's monitor, query and reachability
    ask for it with ``signal.Notify``, which takes an ignored signal back."""

    async def main() -> int:
        try:
            client = await RPCClient.connect(values["rpc-addr"], values["rpc-auth"])
        except (RPCConnectionError, RPCError, OSError) as exc:
            raise CommandError(f"Error connecting to Serf agent: {exc}") from None
        try:
            return await body(client)
        finally:
            await client.close()

    ignored = (
        catch_interrupt
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    )
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return asyncio.run(main())
    except CommandError as exc:
        return exc.report()
    except KeyboardInterrupt:
        if interrupted:
            out(interrupted)
        return interrupt_status
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def command(fn: Callable[[Sequence[str]], int]) -> Callable[[Sequence[str]], int]:
    """Wrap a subcommand so CommandError raised while parsing becomes its exit status."""

    def wrapper(args: Sequence[str]) -> int:
        try:
            return fn(args)
        except ShowHelp as exc:
            stderr_line(exc.text + "\n")
            return 0
        except CommandError as exc:
            return exc.report()

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
