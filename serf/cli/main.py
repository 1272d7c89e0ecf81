"""Entry point of the ``serf`` command: a small dispatcher over Go serf's subcommands.

How this works: ``COMMANDS`` maps each subcommand name to a function taking the remaining
arguments and returning the exit status. ``version`` (also ``-v``/``--version``) and
``keygen`` live here; the RPC client commands live in :mod:`serf.cli.membership`,
:mod:`serf.cli.events` and :mod:`serf.cli.admin`. ``agent`` dispatches to
``serf.agent.run.main(args)`` when that module exists, else says it is not available yet.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
from collections.abc import Callable, Sequence

from serf import __version__

__all__ = ["main", "PROTOCOL_MIN", "PROTOCOL_MAX"]

#: serf protocol range this build speaks (Go serf: ProtocolVersionMin..Max).
PROTOCOL_MIN = 2
PROTOCOL_MAX = 5

#: the Go serf release whose protocol, RPC and CLI output this build reproduces
GO_SERF_COMPATIBLE = "0.11.0"

_HELP_FLAGS = ("-h", "-help", "--help")


def out(text: str) -> None:
    """serf.cli.common's ``out``, imported on use (it brings the RPC client, which ``serf
    agent`` does not need)."""
    from serf.cli.common import out as write

    write(text)


def stderr_line(text: str) -> None:
    """serf.cli.common's ``stderr_line``, imported on use (see :func:`out`)."""
    from serf.cli.common import stderr_line as write

    write(text)


def _version(args: Sequence[str]) -> int:
    # Go's form (the version, then the protocol line), with pyserf's own version beside it
    out(f"{GO_SERF_COMPATIBLE} (pyserf {__version__})")
    out(f"Agent Protocol: {PROTOCOL_MAX} (Understands back to: {PROTOCOL_MIN})")
    return 0


_KEYGEN_HELP = """Usage: serf keygen

  Prints a new random 32-byte key (AES-256), base64-encoded, in the form
  the agent's -encrypt flag and the keys command take."""


def _keygen(args: Sequence[str]) -> int:
    # as Go: arguments are ignored (os.urandom is what secrets.token_bytes reads; secrets
    # would import hmac and hashlib into every command; base64 is imported here, as the agent
    # does without it)
    import base64

    print(base64.b64encode(os.urandom(32)).decode())
    return 0


def _agent(args: Sequence[str]) -> int:
    if importlib.util.find_spec("serf.agent.run") is None:
        print("agent: not available yet", file=sys.stderr)
        return 1
    run = importlib.import_module("serf.agent.run")
    status: int = run.main(list(args))
    return status


def _lazy(module: str, name: str) -> Callable[[Sequence[str]], int]:
    """``module.name``, imported when the subcommand runs: ``serf agent`` then never loads the
    RPC client and the other commands (memory per agent, docs/performance.md)."""

    def command(args: Sequence[str]) -> int:
        status: int = getattr(importlib.import_module(module), name)(args)
        return status

    command.__name__ = command.__qualname__ = name
    return command


_ADMIN, _EVENTS, _MEMBERSHIP = "serf.cli.admin", "serf.cli.events", "serf.cli.membership"

COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "agent": (_agent, "Runs a Serf agent"),
    "demo": (_lazy("serf.cli.demo", "demo"), "Runs a local demo cluster of agents on loopback"),
    "event": (_lazy(_EVENTS, "event"), "Send a custom event through the Serf cluster"),
    "force-leave": (
        _lazy(_MEMBERSHIP, "force_leave"),
        'Forces a member of the cluster to enter the "left" state',
    ),
    "info": (_lazy(_ADMIN, "info"), "Provides debugging information for operators"),
    "join": (_lazy(_MEMBERSHIP, "join"), "Tell Serf agent to join cluster"),
    "keygen": (_keygen, "Generates a new encryption key"),
    "keys": (_lazy(_ADMIN, "keys"), "Manipulate the internal encryption keyring used by Serf"),
    "leave": (_lazy(_MEMBERSHIP, "leave"), "Gracefully leaves the Serf cluster and shuts down"),
    "members": (_lazy(_MEMBERSHIP, "members"), "Lists the members of a Serf cluster"),
    "monitor": (_lazy(_EVENTS, "monitor"), "Stream logs from a Serf agent"),
    "query": (_lazy(_EVENTS, "query"), "Send a query to the Serf cluster"),
    "reachability": (_lazy(_EVENTS, "reachability"), "Test network reachability"),
    "rtt": (_lazy(_ADMIN, "rtt"), "Estimates network round trip time between nodes"),
    "tags": (_lazy(_ADMIN, "tags"), "Modify tags of a running Serf agent"),
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
