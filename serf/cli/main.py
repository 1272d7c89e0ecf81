"""Entry point of the ``serf`` command: a small dispatcher over Go serf's subcommands.

How this works: ``COMMANDS`` maps each subcommand name to a function taking the remaining
arguments and returning the exit status. ``version`` (also ``-v``/``--version``) and
``keygen`` live here; the RPC client commands live in :mod:`serf.cli.membership`,
:mod:`serf.cli.events` and :mod:`serf.cli.admin`. ``agent`` dispatches to
``serf.agent.run.main(args)`` when that module exists, else says it is not available yet.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import importlib.util
import io
import secrets
import sys
from collections.abc import Callable, Sequence

from serf import __version__
from serf.cli import admin, demo, events, membership
from serf.cli.common import out, stderr_line

__all__ = ["main", "PROTOCOL_MIN", "PROTOCOL_MAX"]

#: serf protocol range this build speaks (Go serf: ProtocolVersionMin..Max).
PROTOCOL_MIN = 2
PROTOCOL_MAX = 5

#: the Go serf release whose protocol, RPC and CLI output this build reproduces
GO_SERF_COMPATIBLE = "0.11.0"

_HELP_FLAGS = ("-h", "-help", "--help")


def _version(args: Sequence[str]) -> int:
    # Go's form (the version, then the protocol line), with pyserf's own version beside it
    out(f"{GO_SERF_COMPATIBLE} (pyserf {__version__})")
    out(f"Agent Protocol: {PROTOCOL_MAX} (Understands back to: {PROTOCOL_MIN})")
    return 0


_KEYGEN_HELP = """Usage: serf keygen

  Prints a new random 32-byte key (AES-256), base64-encoded, in the form
  the agent's -encrypt flag and the keys command take."""


def _keygen(args: Sequence[str]) -> int:
    # as Go: arguments are ignored
    print(base64.b64encode(secrets.token_bytes(32)).decode())
    return 0


def _agent(args: Sequence[str]) -> int:
    if importlib.util.find_spec("serf.agent.run") is None:
        print("agent: not available yet", file=sys.stderr)
        return 1
    run = importlib.import_module("serf.agent.run")
    status: int = run.main(list(args))
    return status


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "agent": (_agent, "Runs a Serf agent"),
    "demo": (demo.demo, "Runs a local demo cluster of agents on loopback"),
    "event": (events.event, "Send a custom event through the Serf cluster"),
    "force-leave": (
        membership.force_leave,
        'Forces a member of the cluster to enter the "left" state',
    ),
    "info": (admin.info, "Provides debugging information for operators"),
    "join": (membership.join, "Tell Serf agent to join cluster"),
    "keygen": (_keygen, "Generates a new encryption key"),
    "keys": (admin.keys, "Manipulate the internal encryption keyring used by Serf"),
    "leave": (membership.leave, "Gracefully leaves the Serf cluster and shuts down"),
    "members": (membership.members, "Lists the members of a Serf cluster"),
    "monitor": (events.monitor, "Stream logs from a Serf agent"),
    "query": (events.query, "Send a query to the Serf cluster"),
    "reachability": (events.reachability, "Test network reachability"),
    "rtt": (admin.rtt, "Estimates network round trip time between nodes"),
    "tags": (admin.tags, "Modify tags of a running Serf agent"),
    "version": (_version, "Prints the Serf version"),
}


def _usage() -> str:
    lines = ["Usage: serf [--version] [--help] <command> [<args>]", "", "Available commands are:"]
    width = max(len(name) for name in COMMANDS) + 4
    lines += [f"    {name:<{width}}{text}" for name, (_, text) in sorted(COMMANDS.items())]
    return "\n".join(lines) + "\n"


def _help_of(name: str) -> str:
    """A subcommand's help text (what its ``-h`` prints)."""
    if name == "version":
        return ""
    if name == "keygen":
        return _KEYGEN_HELP
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        COMMANDS[name][0](["-h"])
    return captured.getvalue().rstrip("\n")


def _pass_bytes_through() -> None:
    """Names, tags and payloads are bytes (Go strings): print them as they came, as Go does.

    Text from the agent holds bytes that are not UTF-8 as surrogate escapes (as argv does);
    writing with ``surrogateescape`` puts the original bytes back on the terminal.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status.

    As Go's serf (its cli library): ``-v``/``--version`` anywhere means ``version``; ``-h``,
    ``-help`` or ``--help`` anywhere before ``--`` prints the help on stderr and exits 0 (the
    command's help after a command name, else the command list); no command or an unknown one
    prints the command list on stderr and exits 127.
    """
    _pass_bytes_through()
    args = list(sys.argv[1:] if argv is None else argv)
    if "-v" in args or "--version" in args or args[:1] == ["-version"]:
        return _version([])
    before_dashes = args[: args.index("--")] if "--" in args else args
    wants_help = any(arg in _HELP_FLAGS for arg in before_dashes)
    name = next((arg for arg in args if arg and not arg.startswith("-")), None)
    if wants_help and name is None:
        stderr_line(_usage())
        return 0
    entry = COMMANDS.get(name or "")
    if name is None or entry is None:
        stderr_line(_usage())
        return 127
    if wants_help:
        stderr_line(_help_of(name) + "\n")
        return 0
    return entry[0](args[args.index(name) + 1 :])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
