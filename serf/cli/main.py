"""Entry point of the ``serf`` command: Go serf's subcommands, as they are implemented.

Today: ``version`` (also ``-v``/``--version``) and ``keygen``. The agent and the RPC client
subcommands come with the agent layer.
"""

from __future__ import annotations

import base64
import secrets
import sys
from collections.abc import Callable, Sequence

from serf import __version__

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


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "keygen": (_keygen, "Generates a new encryption key"),
    "version": (_version, "Prints the Serf version"),
}


def _usage() -> str:
    lines = ["usage: serf [--version] [--help] <command> [<args>]", "", "Available commands are:"]
    lines += [f"    {name:<14}{text}" for name, (_, text) in sorted(COMMANDS.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
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
