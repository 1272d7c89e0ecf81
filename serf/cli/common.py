"""Shared pieces of the RPC client subcommands: flags, connecting, Go's output helpers.

How this works: each subcommand builds a :class:`~serf.cli.flags.FlagSet` with
:func:`rpc_flagset` (adds ``-rpc-addr``, default ``$SERF_RPC_ADDR`` or ``127.0.0.1:7373``,
and ``-rpc-auth``, default ``$SERF_RPC_AUTH``), parses with :func:`parse_or_exit` (a bad flag
is one line on stderr and exit status 1, as Go's ``flag.ContinueOnError`` + ``return 1``), and
runs its async body through :func:`run_command`, which connects (``Error connecting to Serf
agent: ...`` on failure), runs, closes, and turns Ctrl-C into the command's chosen status.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from serf.agent.rpc_client import DEFAULT_RPC_ADDR, RPCClient, RPCConnectionError, RPCError
from serf.cli.flags import FlagError, FlagSet, HelpRequested

__all__ = [
    "CommandError",
    "columnize",
    "err",
    "format_json",
    "out",
    "parse_or_exit",
    "rpc_flagset",
    "run_command",
]


class CommandError(Exception):
    """Ends a command: print ``message`` (if any) on stderr and exit with ``status``."""

    def __init__(self, message: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def out(text: str = "") -> None:
    """A line on stdout (Go's Ui.Output / Ui.Info)."""
    print(text, flush=True)


def err(text: str = "") -> None:
    """A line on stderr (Go's Ui.Error)."""
    print(text, file=sys.stderr, flush=True)


def rpc_flagset(name: str) -> FlagSet:
    """A FlagSet with ``-rpc-addr`` and ``-rpc-auth`` (defaults from the environment)."""
    fs = FlagSet(name)
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
        raise CommandError(str(exc)) from None
    except FlagError as exc:
        raise CommandError(f"{fs.name}: {exc}") from None


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
    """Go's json.MarshalIndent(data, "", "  "), trimmed."""
    return json.dumps(data, indent=2, ensure_ascii=False).strip()


def run_command(
    values: dict[str, Any],
    body: Callable[[RPCClient], Awaitable[int]],
    *,
    interrupt_status: int = 1,
) -> int:
    """Connect with the parsed ``-rpc-addr``/``-rpc-auth``, run ``body``, close; exit status."""

    async def main() -> int:
        try:
            client = await RPCClient.connect(values["rpc-addr"], values["rpc-auth"])
        except (RPCConnectionError, RPCError, OSError) as exc:
            raise CommandError(f"Error connecting to Serf agent: {exc}") from None
        try:
            return await body(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except CommandError as exc:
        if exc.message:
            err(exc.message)
        return exc.status
    except KeyboardInterrupt:
        return interrupt_status


def command(fn: Callable[[Sequence[str]], int]) -> Callable[[Sequence[str]], int]:
    """Wrap a subcommand so CommandError raised while parsing becomes its exit status."""

    def wrapper(args: Sequence[str]) -> int:
        try:
            return fn(args)
        except CommandError as exc:
            if exc.message:
                err(exc.message)
            return exc.status

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
