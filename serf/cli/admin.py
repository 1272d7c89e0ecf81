"""``serf keys``, ``tags``, ``info``, ``rtt``: Go serf's flags, output and exit codes.

How this works: ``keys`` runs exactly one of ``-install``/``-use``/``-remove``/``-list``
through the keyring RPCs and prints Go's ``==> `` progress lines (exit 1 with the per-node
failures if any node fails or does not answer); ``tags`` sets and deletes the agent's tags;
``info`` prints the ``stats`` sections (grouped ``key = value`` text, or JSON), with ``-metrics``
also a ``metrics`` section (pyserf's ``metrics`` RPC); ``rtt`` reads two
cached Vivaldi coordinates and prints their estimated distance.
"""

from __future__ import annotations

from collections.abc import Sequence

from serf.agent.config import ConfigError, unmarshal_tags
from serf.cli.common import (
    CommandError,
    columnize,
    command,
    err,
    format_json,
    out,
    parse_or_exit,
    rpc_flagset,
    run_command,
)
from serf.cli.rpc_client import KeyResponse, RPCClient, RPCError, coordinate_distance

__all__ = ["info", "keys", "rtt", "tags"]


def _failures(exc: RPCError) -> None:
    resp = exc.keys or KeyResponse()
    if resp.messages:
        err(columnize([f"failed: | {node} | {msg}" for node, msg in resp.messages.items()]))


@command
def keys(args: Sequence[str]) -> int:
    """Manipulate the internal encryption keyring used by Serf."""
    fs = rpc_flagset(
        "keys",
        "serf keys [options]...",
        "Manages the encryption keyring of every member of the cluster: one of\n"
        "-install, -use, -remove or -list per call. Keys are base64 (16, 24 or\n"
        "32 bytes). The agents must run with encryption enabled.",
    )
    fs.string("install", help="Install this key on every member.")
    fs.string("use", help="Make this installed key the primary on every\nmember.")
    fs.string("remove", help="Remove this key from every member (not the\nprimary).")
    fs.boolean("list", help="List the keys installed, with how many members\nhold each.")
    values, _ = parse_or_exit(fs, args)
    chosen = [f for f in ("install", "use", "remove") if values[f]]
    if values["list"]:
        chosen.append("list")
    if len(chosen) > 1:
        raise CommandError("Only one of -install, -use, -remove, or -list allowed")
    if not chosen:
        raise CommandError(help=fs.usage())
    action = chosen[0]

    async def body(client: RPCClient) -> int:
        if action == "list":
            out("==> Asking all members for installed keys...")
            try:
                resp = await client.list_keys()
            except RPCError as exc:
                _failures(exc)
                err("")
                raise CommandError(f"Failed to gather member keys: {exc}") from None
            out("==> Keys gathered, listing cluster keys...")
            out("")
            out(columnize([f"{k} | [{n}/{resp.num_nodes}]" for k, n in resp.keys.items()]))
            return 0
        key = values[action]
        start, done, fail = {
            "install": (
                "Installing key on all members...",
                "Successfully installed key!",
                "Error installing key",
            ),
            "use": (
                "Changing primary key on all members...",
                "Successfully changed primary key!",
                "Error changing primary key",
            ),
            "remove": (
                "Removing key on all members...",
                "Successfully removed key!",
                "Error removing key",
            ),
        }[action]
        out(f"==> {start}")
        call = {
            "install": client.install_key,
            "use": client.use_key,
            "remove": client.remove_key,
        }[action]
        try:
            await call(key)
        except RPCError as exc:
            _failures(exc)
            err("")
            raise CommandError(f"{fail}: {exc}") from None
        out(f"==> {done}")
        return 0

    return run_command(values, body)


@command
def tags(args: Sequence[str]) -> int:
    """Modify tags of a running Serf agent."""
    fs = rpc_flagset(
        "tags",
        "serf tags [options]",
        "Sets or deletes tags of a running Serf agent; the cluster learns of the\n"
        "change at once. Tags given on the command line of the agent are\n"
        "overridden; with -tags-file the change is also saved there.",
    )
    fs.repeated("set", help="key=value: set this tag (repeatable).")
    fs.repeated("delete", help="Delete this tag (repeatable).")
    values, _ = parse_or_exit(fs, args)
    if not values["set"] and not values["delete"]:
        out(fs.usage())  # as Go: the help on stdout, exit 1
        raise CommandError()
    try:
        new_tags = unmarshal_tags(values["set"])
    except ConfigError as exc:
        raise CommandError(f"Error: {exc}") from None

    async def body(client: RPCClient) -> int:
        try:
            await client.update_tags(new_tags, values["delete"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error setting tags: {exc}") from None
        out("Successfully updated agent tags")
        return 0

    return run_command(values, body)


@command
def info(args: Sequence[str]) -> int:
    """Provides debugging information for operators."""
    fs = rpc_flagset(
        "info",
        "serf info [options]",
        "Prints what a running Serf agent reports about itself, for operators\n"
        "(agent, runtime, serf and tags sections).",
    )
    fs.string("format", "text", help="Output format: text or json.")
    fs.boolean(
        "metrics",
        help="Add a 'metrics' section: the agent's in-memory metrics\n"
        "(a pyserf agent; Go's dumps them to stderr on SIGUSR1).",
    )
    values, _ = parse_or_exit(fs, args)
    fmt = values["format"]

    async def body(client: RPCClient) -> int:
        try:
            stats = await client.stats()
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error querying agent: {exc}") from None
        if values["metrics"]:
            try:
                stats["metrics"] = await client.metrics()
            except (RPCError, ConnectionError) as exc:
                raise CommandError(f"Error querying agent metrics: {exc}") from None
        if fmt == "json":
            out(format_json(stats))
        elif fmt == "text":
            lines = []
            for section in sorted(stats):
                lines.append(f"{section}:")
                lines += [f"\t{k} = {v}" for k, v in sorted(stats[section].items())]
            out("\n".join(lines).strip())
        else:
            raise CommandError(f'Encoding error: Invalid output format "{fmt}"')
        return 0

    return run_command(values, body)


@command
def rtt(args: Sequence[str]) -> int:
    """Estimates network round trip time between nodes."""
    fs = rpc_flagset(
        "rtt",
        "serf rtt [options] node1 [node2]",
        "Estimates the round trip time between two nodes from their network\n"
        "coordinates; with one node, between it and the agent's own node.",
    )
    values, nodes = parse_or_exit(fs, args)

    async def body(client: RPCClient) -> int:
        if len(nodes) == 1:
            try:
                stats = await client.stats()
            except (RPCError, ConnectionError) as exc:
                raise CommandError(f"Error querying agent: {exc}") from None
            nodes.append(stats.get("agent", {}).get("name", ""))
        elif len(nodes) != 2:
            raise CommandError("One or two node names must be specified", help=fs.usage())
        coords = []
        for node in nodes:
            try:
                coord = await client.get_coordinate(node)
            except (RPCError, ConnectionError) as exc:
                raise CommandError(f"Error getting coordinates: {exc}") from None
            if coord is None:
                raise CommandError(f'Could not find a coordinate for node "{node}"')
            coords.append(coord)
        # Go: a time.Duration (whole nanoseconds), then Seconds()*1000
        ns = int(coordinate_distance(coords[0], coords[1]) * 1e9)
        out(f"Estimated {nodes[0]} <-> {nodes[1]} rtt: {ns / 1e6:.3f} ms")
        return 0

    return run_command(values, body)
