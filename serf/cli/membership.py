"""``serf members``, ``join``, ``leave``, ``force-leave``: Go serf's flags, output, exit codes.

How this works: each function parses Go-style flags, connects over RPC (see
:mod:`serf.cli.common`) and prints what Go's command prints: ``members`` as columnized text
(``name  ip:port  status  k=v,...``) or ``{"members": [...]}`` JSON, ``join`` the number of
nodes contacted, ``leave`` "Graceful leave complete". Errors are one line on stderr, status 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from serf.agent.config import ConfigError, unmarshal_tags
from serf.cli.common import (
    CommandError,
    columnize,
    command,
    format_json,
    out,
    parse_or_exit,
    rpc_flagset,
    run_command,
    stderr_line,
)
from serf.cli.gojson import Struct
from serf.cli.rpc_client import RPCClient, RPCError

__all__ = ["force_leave", "join", "leave", "members"]


@command
def members(args: Sequence[str]) -> int:
    """Lists the members of a Serf cluster."""
    fs = rpc_flagset(
        "members", "serf members [options]", "Lists the members the Serf agent knows of."
    )
    fs.boolean("detailed", help="Also show protocol versions (text format only).")
    fs.string("role", help="Deprecated: the same as -tag role=<value>.")
    fs.string("status", help="Only members whose status matches this regexp\n(anchored).")
    fs.string("format", "text", help="Output format: text or json.")
    fs.repeated("tag", help="key=regexp: only members whose tag matches (anchored).\nRepeatable.")
    fs.string("name", help="Only members whose name matches this regexp\n(anchored).")
    values, _ = parse_or_exit(fs, args)
    tag_pairs = list(values["tag"])
    if values["role"]:
        # Go prints this on stdout; on stderr it cannot break -format=json (deliberate)
        stderr_line("Deprecation warning: 'Role' has been replaced with 'Tags'")
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
            # Go's Member struct: fields in this order; tags and protocol are maps (sorted)
            rows: list[Struct] | None = [
                Struct(
                    name=m.name,
                    addr=m.hostport,
                    port=m.port,
                    tags=m.tags,
                    status=m.status,
                    protocol={
                        "max": m.delegate_max,
                        "min": m.delegate_min,
                        "version": m.delegate_cur,
                    },
                )
                for m in found
            ]
            out(format_json(Struct(members=rows or None)))
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
    fs = rpc_flagset(
        "join",
        "serf join [options] address ...",
        "Tells a running Serf agent to join the cluster of the given addresses\n"
        "(one or more, host:port, port 7946 when omitted).",
    )
    fs.boolean("replay", help="Replay the user events the cluster still holds.")
    values, addrs = parse_or_exit(fs, args)
    if not addrs:
        raise CommandError("At least one address to join must be specified.", help=fs.usage())

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
    fs = rpc_flagset(
        "leave",
        "serf leave",
        "Makes a running Serf agent leave the cluster gracefully and shut down.",
    )
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
    fs = rpc_flagset(
        "force-leave",
        "serf force-leave [options] name",
        'Marks a failed member as "left", so the cluster stops trying to reconnect\n'
        "to it. A member that is still alive rejoins.",
    )
    fs.boolean("prune", help="Also forget the member at once (no left-member\nretention).")
    values, nodes = parse_or_exit(fs, args)
    if len(nodes) != 1:
        raise CommandError("A node name must be specified to force leave.", help=fs.usage())

    async def body(client: RPCClient) -> int:
        try:
            await client.force_leave(nodes[0], values["prune"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error force leaving: {exc}") from None
        return 0

    return run_command(values, body)
