"""Go-style command-line flags (the ``flag`` package's rules), shared by the CLI and the agent.

How this works: a :class:`FlagSet` knows its flags by name, each a string, integer, boolean,
duration or repeatable (append) flag. ``parse`` walks the arguments as Go's ``flag.Parse``
does: one or two leading dashes, ``-name=value`` or ``-name value`` (booleans only take the
``=`` form: ``-flag`` means true, ``-flag=false`` false), and it stops at the first argument
that is not a flag, or after ``--``. What is left is returned as the positional arguments.
Errors raise :class:`FlagError` with Go's texts (``flag provided but not defined: -foo``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlagError", "FlagSet", "HelpRequested", "parse_duration", "format_duration"]


class FlagError(ValueError):
    """A bad command line; the message is one line naming the problem."""


class HelpRequested(FlagError):
    """``-h`` or ``-help`` was given."""


_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration string (``"30s"``, ``"1m30s"``, ``"500ms"``, ``"-2h"``, ``"0"``) in seconds.

    Raises ValueError with Go's message (``time: invalid duration "x"``) when malformed.
    """
    orig = text
    sign = 1.0
    if text[:1] in ("-", "+"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            if re.match(r"\d", text[pos:]) and not re.match(r"[\d.]+[a-zµμ]", text[pos:]):
                raise ValueError(f'time: missing unit in duration "{orig}"')
            raise ValueError(f'time: invalid duration "{orig}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Seconds as a Go duration string (``30s``, ``1m30s``, ``500ms``, ``0s``)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        ms = seconds * 1000
        return f"{sign}{ms:g}ms" if ms >= 1 else f"{sign}{seconds * 1e6:g}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    out += f"{secs:g}s"
    return sign + out


@dataclass
class _Flag:
    name: str
    kind: str  # "str", "int", "bool", "duration", "list"
    default: Any
    help: str
    into: str = ""


def _placeholder(flg: _Flag) -> str:
    if flg.kind == "bool":
        return ""
    if flg.kind == "duration":
        return f"={format_duration(flg.default)}"
    if flg.kind == "int":
        return f"={flg.default}"
    if flg.kind == "str" and flg.default:
        return f"={flg.default}"
    return "=<value>"


def _flag_help(flg: _Flag) -> list[str]:
    """One flag's lines: ``-name=default`` in a 26-wide column, then its help, then a blank."""
    head = f"  -{flg.name}{_placeholder(flg)}"
    text = flg.help.splitlines() or [""]
    if len(head) >= 28:
        lines = [head] + [" " * 28 + line for line in text]
    else:
        lines = [head.ljust(28) + text[0]] + [" " * 28 + line for line in text[1:]]
    return [line.rstrip() for line in lines] + [""]


@dataclass
class FlagSet:
    """A set of Go-style flags for one (sub)command; ``parse`` returns values and positionals."""

    name: str
    synopsis: str = ""
    """The ``Usage:`` line of the help text (``serf members [options]``)."""
    description: str = ""
    """What the command does, for the help text (one paragraph or more)."""
    _flags: dict[str, _Flag] = field(default_factory=dict)

    def string(self, name: str, default: str = "", help: str = "") -> None:
        """A string flag."""
        self._flags[name] = _Flag(name, "str", default, help)

    def integer(self, name: str, default: int = 0, help: str = "") -> None:
        """An integer flag (Go's strconv.ParseInt with base 0)."""
        self._flags[name] = _Flag(name, "int", default, help)

    def boolean(self, name: str, default: bool = False, help: str = "") -> None:
        """A boolean flag: ``-name`` or ``-name=true|false``."""
        self._flags[name] = _Flag(name, "bool", default, help)

    def duration(self, name: str, default: float = 0.0, help: str = "") -> None:
        """A Go duration flag, value in seconds."""
        self._flags[name] = _Flag(name, "duration", default, help)

    def repeated(self, name: str, help: str = "", into: str = "") -> None:
        """A repeatable flag; every occurrence is appended to a list (``into`` shares one)."""
        self._flags[name] = _Flag(name, "list", None, help, into or name)

    def usage(self) -> str:
        """The help text in Go serf's layout: ``Usage:`` line, description, ``Options:``."""
        lines = [f"Usage: {self.synopsis or 'serf ' + self.name + ' [options]'}", ""]
        if self.description:
            lines += [f"  {line}".rstrip() for line in self.description.strip().splitlines()]
            lines.append("")
        if self._flags:
            lines += ["Options:", ""]
            for flg in sorted(self._flags.values(), key=lambda f: f.name):
                lines += _flag_help(flg)
        return "\n".join(lines).rstrip()

    def _convert(self, flg: _Flag, raw: str) -> Any:
        try:
            if flg.kind == "int":
                return int(raw, 0)
            if flg.kind == "duration":
                return parse_duration(raw)
        except ValueError as exc:
            raise FlagError(f'invalid value "{raw}" for flag -{flg.name}: {exc}') from None
        return raw

    def parse(
        self, args: Sequence[str], *, seen: set[str] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """Parse ``args``: (values by flag name, remaining positional arguments).

        ``seen`` (when given) collects the names of the flags set explicitly.
        """
        values: dict[str, Any] = {
            (f.into or f.name): ([] if f.kind == "list" else f.default)
            for f in self._flags.values()
        }
        rest = list(args)
        while rest:
            arg = rest[0]
            if len(arg) < 2 or arg[0] != "-":
                break
            if arg == "--":
                rest.pop(0)
                break
            rest.pop(0)
            body = arg[2:] if arg.startswith("--") else arg[1:]
            if not body or body[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, has_value, raw = body.partition("=")
            if name in ("h", "help") and name not in self._flags:
                raise HelpRequested(self.usage())
            flg = self._flags.get(name)
            if flg is None:
                raise FlagError(f"flag provided but not defined: -{name}")
            if flg.kind == "bool":
                if has_value:
                    low = raw.lower()
                    if low in ("1", "t", "true"):
                        values[name] = True
                    elif low in ("0", "f", "false"):
                        values[name] = False
                    else:
                        raise FlagError(f'invalid boolean value "{raw}" for -{name}: parse error')
                else:
                    values[name] = True
            else:
                if not has_value:
                    if not rest:
                        raise FlagError(f"flag needs an argument: -{name}")
                    raw = rest.pop(0)
                if flg.kind == "list":
                    values[flg.into].append(raw)
                else:
                    values[name] = self._convert(flg, raw)
            if seen is not None:
                seen.add(name)
        return values, rest
