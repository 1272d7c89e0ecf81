"""``serf event``, ``query``, ``reachability``, ``monitor``: Go serf's flags, output, exit codes.

How this works: ``event`` sends one user event; ``query`` starts a query and prints its acks
and responses as they arrive, then a summary (text) or ``{"Acks", "Responses"}`` (json);
``reachability`` sends the internal ``_serf_ping`` query with acks and compares who acked with
the live members; ``monitor`` streams events and log lines until Ctrl-C (exit 0) or until the
agent goes away (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from typing import Any

from serf.agent.config import ConfigError, unmarshal_tags
from serf.cli.common import (
    CommandError,
    command,
    format_json,
    out,
    parse_or_exit,
    rpc_flagset,
    run_command,
)
from serf.cli.gojson import Struct
from serf.cli.rpc_client import QueryRecord, RPCClient, RPCError, Subscription
from serf.telemetry import go_quote

__all__ = ["event", "monitor", "query", "reachability"]

_TOO_MANY_ACKS = (
    "This could mean Serf is detecting false-failures due to a misconfiguration or network issue."
)
_TOO_FEW_ACKS = (
    "This could mean Serf gossip packets are being lost due to a misconfiguration or network issue."
)
_DUPLICATES = (
    "Duplicate responses means there is a misconfiguration. Verify that node names are unique."
)
_TROUBLESHOOTING = """
Troubleshooting tips:
* Ensure that the bind addr:port is accessible by all other nodes
* If an advertise address is set, ensure it routes to the bind address
* Check that no nodes are behind a NAT
* If nodes are behind firewalls or iptables, check that Serf traffic is permitted (UDP and TCP)
* Verify networking equipment is functional"""


def _name_and_payload(rest: list[str], what: str, usage: str) -> tuple[str, bytes | None]:
    if not rest:
        raise CommandError(
            f"A{'n' if what == 'event' else ''} {what} name must be specified.", help=usage
        )
    if len(rest) > 2:
        raise CommandError(
            "Too many command line arguments. Only a name and payload must be specified.",
            help=usage,
        )
    # argv holds the bytes the shell passed (surrogate-escaped): send them as they were
    return rest[0], (os.fsencode(rest[1]) if len(rest) == 2 else None)


@command
def event(args: Sequence[str]) -> int:
    """Send a custom event through the Serf cluster."""
    fs = rpc_flagset(
        "event",
        "serf event [options] name payload",
        "Sends a user event to every member of the Serf cluster.",
    )
    fs.boolean(
        "coalesce",
        True,
        help="Let the members coalesce this event: of events with\n"
        "the same name in a short span only the last is run\n"
        "(-coalesce=false to turn off).",
    )
    values, rest = parse_or_exit(fs, args)
    name, payload = _name_and_payload(rest, "event", fs.usage())

    async def body(client: RPCClient) -> int:
        try:
            await client.user_event(name, payload or b"", values["coalesce"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error sending event: {exc}") from None
        out(f"Event '{name}' dispatched! Coalescing enabled: {str(values['coalesce']).lower()}")
        return 0

    return run_command(values, body)


@command
def query(args: Sequence[str]) -> int:
    """Send a query to the Serf cluster."""
    fs = rpc_flagset(
        "query",
        "serf query [options] name payload",
        "Asks the members of the Serf cluster a question and prints their acks\n"
        "and responses as they arrive.",
    )
    fs.repeated("node", help="Ask only this node (repeatable).")
    fs.repeated("tag", help="key=regexp: ask only members whose tag matches\n(repeatable).")
    fs.duration("timeout", 0.0, help="How long to wait for responses (default: the\nagent's.)")
    fs.boolean("no-ack", help="Do not ask for acks.")
    fs.string("format", "text", help="Output format: text or json.")
    fs.integer("relay-factor", 0, help="Also relay each response through this many other\nmembers.")
    values, rest = parse_or_exit(fs, args)
    try:
        tags = unmarshal_tags(values["tag"])
    except ConfigError as exc:
        raise CommandError(f"Error: {exc}") from None
    name, payload = _name_and_payload(rest, "query", fs.usage())
    relay = values["relay-factor"]
    if not 0 <= relay <= 255:
        raise CommandError("Relay factor must be between 0 and 255")
    fmt = values["format"]
    no_ack = values["no-ack"]

    async def body(client: RPCClient) -> int:
        if fmt not in ("text", "json"):
            raise CommandError(f"Invalid format: {fmt}")
        try:
            records = await client.query(
                name,
                payload,
                filter_nodes=values["node"],
                filter_tags=tags,
                request_ack=not no_ack,
                relay_factor=relay,
                timeout=values["timeout"],
            )
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error sending query: {exc}") from None
        acks: list[str] = []
        responses: dict[str, str] = {}
        num_resp = 0
        if fmt == "text":
            out(f"Query '{name}' dispatched")
        async for rec in records:
            if rec.type == "ack":
                acks.append(rec.from_)
                if fmt == "text":
                    out(f"Ack from '{rec.from_}'")
            elif rec.type == "response":
                num_resp += 1
                data = rec.payload or b""
                responses[rec.from_] = data.decode("utf-8", "surrogateescape")
                if fmt == "text":
                    shown = data[:-1] if data.endswith(b"\n") else data
                    out(f"Response from '{rec.from_}': {shown.decode('utf-8', 'surrogateescape')}")
        if fmt == "json":
            # Go's struct {Acks []string; Responses map[string]string}: a map, so by name
            out(format_json(Struct(Acks=acks or None, Responses=responses)))
        else:
            if not no_ack:
                out(f"Total Acks: {len(acks)}")
            out(f"Total Responses: {num_resp}")
        return 0

    return run_command(values, body, catch_interrupt=True)


@command
def reachability(args: Sequence[str]) -> int:
    """Test network reachability."""
    fs = rpc_flagset(
        "reachability",
        "serf reachability [options]",
        "Checks that every live member can be reached: sends a ping query\n"
        "to all and compares who acked with the live members.",
    )
    fs.boolean("verbose", help="Print every ack and the timing.")
    values, _ = parse_or_exit(fs, args)
    verbose = values["verbose"]

    async def body(client: RPCClient) -> int:
        try:
            members = await client.members()
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error getting members: {exc}") from None
        live = [m.name for m in members if m.status == "alive"]
        out(f"Total members: {len(members)}, live members: {len(live)}")
        try:
            records: Subscription[QueryRecord] = await client.query(
                "_serf_ping", None, request_ack=True
            )
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error sending query: {exc}") from None
        out("Starting reachability test...")
        start = last = time.monotonic()
        acked: list[str] = []
        dups = False
        async for rec in records:
            if rec.type != "ack":
                continue
            if verbose:
                out(f"\tAck from '{rec.from_}'")
            if rec.from_ in acked:
                dups = True
                out(f"Duplicate response from '{rec.from_}'")
            acked.append(rec.from_)
            last = time.monotonic()
        if verbose:
            total, to_last = time.monotonic() - start, last - start
            out(f"Query time: {total:0.2f} sec, time to last response: {to_last:0.2f} sec")
        status = 0
        if dups:
            out(_DUPLICATES)
            status = 1
        if len(acked) == len(live):
            out("Successfully contacted all live nodes")
        elif len(acked) > len(live):
            out("Received more acks than live nodes! Acks from non-live nodes:")
            for name in sorted(set(acked) - set(live)):
                out(f"\t{name}")
            out(_TOO_MANY_ACKS)
            out(_TROUBLESHOOTING)
            return 1
        else:
            out("Received less acks than live nodes! Missing acks from:")
            for name in sorted(set(live) - set(acked)):
                out(f"\t{name}")
            out(_TOO_FEW_ACKS)
            out(_TROUBLESHOOTING)
            return 1
        return status

    return run_command(values, body, catch_interrupt=True, interrupted="Test interrupted")


def _go_value(value: Any, nested: bool = False) -> str:
    """``%#v`` of a stream record's value as Go's CLI decodes it: msgpack fixints (0..127 and
    negatives) become int64 (decimal), wider unsigned ints uint64 (hex), nested maps
    ``map[interface {}]interface {}`` with sorted keys, nested bytes ``[]uint8``."""
    if isinstance(value, bytes | bytearray):
        return ("[]uint8{" if nested else "[]byte{") + ", ".join(f"0x{b:x}" for b in value) + "}"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"0x{value:x}" if value > 127 else str(value)
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(_go_value(v, True) for v in value) + "}"
    if isinstance(value, dict):
        items = sorted((_go_value(k, True), _go_value(v, True)) for k, v in value.items())
        return "map[interface {}]interface {}{" + ", ".join(f"{k}:{v}" for k, v in items) + "}"
    if value is None:
        return "interface {}(nil)" if nested else "<nil>"
    return repr(value)


@command
def monitor(args: Sequence[str]) -> int:
    """Stream logs from a Serf agent."""
    fs = rpc_flagset(
        "monitor",
        "serf monitor [options]",
        "Streams the log lines and events of a running Serf agent until\ninterrupted.",
    )
    fs.string("log-level", "INFO", help="The lowest level of log lines to show.")
    values, _ = parse_or_exit(fs, args)

    async def body(client: RPCClient) -> int:
        try:
            events = await client.stream("*")
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error starting stream: {exc}") from None
        try:
            logs = await client.monitor(values["log-level"])
        except (RPCError, ConnectionError) as exc:
            raise CommandError(f"Error starting monitor: {exc}") from None

        async def pump_logs() -> None:
            async for line in logs:
                out(line)

        async def pump_events() -> None:
            async for rec in events:
                out("Event Info:")
                for key, val in rec.items():
                    out(f"\t{key}: {_go_value(val)}")

        tasks = [asyncio.create_task(pump_logs()), asyncio.create_task(pump_events())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
        out("")
        out(
            "Remote side ended the monitor! This usually means that the\n"
            "remote side has exited or crashed."
        )
        return 1

    return run_command(values, body, interrupt_status=0, catch_interrupt=True)
