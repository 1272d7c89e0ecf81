"""``serf members``, ``join``, ``leave``, ``force-leave``: Go serf's flags, output, exit codes.

How this works: each function parses Go-style flags, connects over RPC (see
:mod:`serf.cli.common`) and prints what Go's command prints: ``members`` as columnized text
(``name  ip:port  status  k=v,...``) or ``{"members": [...]}`` JSON, ``join`` the number of
nodes contacted, ``leave`` "Graceful leave complete". Errors are one line on stderr, status 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serf.agent.config import ConfigError, unmarshal_tags
from serf.agent.rpc_client import RPCClient, RPCError
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

__all__ = ["force_leave", "join", "leave", "members"]


@command
def members(args: Sequence[str]) -> int:
    """Lists the members of a Serf cluster."""
    fs = rpc_flagset("members")
    fs.boolean("detailed", help="detailed output")
    fs.string("role", help="role filter")
    fs.string("status", help="status filter")
    fs.string("format", "text", help="output format")
    fs.repeated("tag", help="tag filter")
    fs.string("name", help="name filter")
    values, _ = parse_or_exit(fs, args)
    tag_pairs = list(values["tag"])
    if values["role"]:
        # Go prints this on stdout; on stderr it cannot break -format=json (deliberate)
        err("Deprecation warning: 'Role' has been replaced with 'Tags'")
        tag_pairs.append(f"role={values['role']}")
    try:
        tags = unmarshal_tags(tag_pairs)
    except ConfigError as exc:
        raise CommandError(f"Error: {exc}") from None
    fmt = values["format"]
    if fmt not in ("text", "json"):
        raise CommandError(f'Encoding error: Invalid output format "{fmt}"')

    async def body(client: RPCClient) -> int:
        try:
            found = await client.members_filtered(tags, values["status"], values["name"])
        except RPCError as exc:
            raise CommandError(f"Error retrieving members: {exc}") from None
        except ConnectionError as exc:
            raise CommandError(f"Error retrieving members: {exc}") from None
        if fmt == "json":
            rows: list[dict[str, Any]] | None = [
                {
                    "name": m.name,
                    "addr": m.hostport,
                    "port": m.port,
                    "tags": m.tags,
                    "status": m.status,
                    "protocol": {
                        "max": m.delegate_max,
                        "min": m.delegate_min,
                        "version": m.delegate_cur,
                    },
                }
                for m in found
            ]
            out(format_json({"members": rows or None}))
            return 0
        lines = []
        for m in found:
            tag_text = ",".join(f"{k}={v}" for k, v in sorted(m.tags.items()))
            line = f"{m.name}|{m.hostport}|{m.status}|{tag_text}"
            if values["detailed"]:
                line += (
                    f"|Protocol Version: {m.delegate_cur}"
                    f"|Available Protocol Range: [{m.delegate_min}, {m.delegate_max}]"
                )
            lines.append(line)
        out(columnize(lines).strip())
        return 0

    return run_command(values, body)


@command
def join(args: Sequence[str]) -> int:
    """Tell Serf agent to join cluster."""
    fs = rpc_flagset("join")
    fs.boolean("replay", help="replay past user events")
    values, addrs = parse_or_exit(fs, args)
    if not addrs:
        raise CommandError("At least one address to join must be specified.")

    async def body(client: RPCClient) -> int:
        try:
            n = await client.join(addrs, values["replay"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error joining the cluster: {exc}") from None
        out(f"Successfully joined cluster by contacting {n} nodes.")
        return 0

    return run_command(values, body)


@command
def leave(args: Sequence[str]) -> int:
    """Gracefully leaves the Serf cluster and shuts down."""
    fs = rpc_flagset("leave")
    values, _ = parse_or_exit(fs, args)

    async def body(client: RPCClient) -> int:
        try:
            await client.leave()
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error leaving: {exc}") from None
        out("Graceful leave complete")
        return 0

    return run_command(values, body)


@command
def force_leave(args: Sequence[str]) -> int:
    """Forces a member of the cluster to enter the "left" state."""
    fs = rpc_flagset("force-leave")
    fs.boolean("prune", help="Remove agent forcibly from list of members")
    values, nodes = parse_or_exit(fs, args)
    if len(nodes) != 1:
        raise CommandError("A node name must be specified to force leave.")

    async def body(client: RPCClient) -> int:
        try:
            await client.force_leave(nodes[0], values["prune"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error force leaving: {exc}") from None
        return 0

    return run_command(values, body)
