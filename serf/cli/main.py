"""Entry point of the ``serf`` command: a small dispatcher over Go serf's subcommands.

How this works: ``COMMANDS`` maps each subcommand name to a function taking the remaining
arguments and returning the exit status. ``version`` (also ``-v``/``--version``) and
``keygen`` live here; the RPC client commands live in :mod:`serf.cli.membership`,
:mod:`serf.cli.events` and :mod:`serf.cli.admin`. ``agent`` dispatches to
``serf.agent.run.main(args)`` when that module exists, else says it is not available yet.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
import secrets
import sys
from collections.abc import Callable, Sequence

from serf import __version__
from serf.cli import admin, demo, events, membership

__all__ = ["main", "PROTOCOL_MIN", "PROTOCOL_MAX"]

#: serf protocol range this build speaks (Go serf: ProtocolVersionMin..Max).
PROTOCOL_MIN = 2
PROTOCOL_MAX = 5


def _version(args: Sequence[str]) -> int:
    print(f"Serf v{__version__} (pyserf)")
    print(f"Agent Protocol: {PROTOCOL_MAX} (Understands back to: {PROTOCOL_MIN})")
    return 0


def _keygen(args: Sequence[str]) -> int:
    if args:
        print(f"keygen takes no arguments, got: {' '.join(args)}", file=sys.stderr)
        return 1
    # as Go serf: 32 random bytes (AES-256), standard base64
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
    lines = ["usage: serf [--version] [--help] <command> [<args>]", "", "Available commands are:"]
    lines += [f"    {name:<14}{text}" for name, (_, text) in sorted(COMMANDS.items())]
    return "\n".join(lines)


def _pass_bytes_through() -> None:
    """Names, tags and payloads are bytes (Go strings): print them as they came, as Go does.

    Text from the agent holds bytes that are not UTF-8 as surrogate escapes (as argv does);
    writing with ``surrogateescape`` puts the original bytes back on the terminal.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    _pass_bytes_through()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        print(_usage(), file=sys.stderr if not args else sys.stdout)
        return 1 if not args else 0
    if args[0] in ("-v", "-version", "--version"):
        args[0] = "version"
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"serf: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 1
    return entry[0](args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
