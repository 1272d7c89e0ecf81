"""The agent's RPC (IPC) server: Go serf's protocol, reference section 4.5, dialect 4.6.

How this works: :class:`RpcServer` listens on plain TCP. Each client gets one
:class:`_Conn` with its own reader task; the reader decodes consecutive msgpack objects with
:class:`~serf.wire.rpc.RpcDecoder` (bounded buffer), takes a header ``{Command, Seq}`` and, for
commands that have one, the next object as the body, and runs the command inline (Go handles
one request at a time per client too). Everything written to a client goes through
:meth:`_Conn.send`, which holds a write lock and bounds ``drain`` with a timeout: a client
that stops reading is disconnected instead of holding memory or other clients back.
``stream`` and ``monitor`` subscriptions each own a 512-entry queue and a writer task; the
agent's event pump and the log broker only ``put_nowait`` into it (a full queue drops the
record, as Go does). ``query`` runs in its own task per request, forwarding acks and responses
and ending with ``done``. Queries delivered to a ``stream`` get per-connection IDs kept until
their deadline, for ``respond``.

Go quirks kept: ``Handshake required`` closes; a failed handshake does not; an unauthorised
command gets ``Authentication required`` and its body is *not* consumed, so the body is read
as the next header; since a body has no ``Command``/``Seq`` keys the previous ones stay in
effect (Go decodes into the same struct), giving a second ``Authentication required`` with
the same Seq. A bad ``members-filtered`` regex or an undecodable body closes without a
reply; ``Unsupported command`` replies, then closes.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serf.address import Address
from serf.core import io as sio
from serf.core.delivery import member_event_type
from serf.core.filters import GoRegexp, compile_anchored
from serf.runtime.driver import log_line
from serf.runtime.serf import KeyManagerError, Query, QueryAck, QueryResponseItem, SerfError
from serf.telemetry import LEVEL_NAMES, TRACE, go_quote
from serf.wire.errors import DecodeError, EncodeError
from serf.wire.rpc import RpcDecoder, encode_rpc

if TYPE_CHECKING:
    from serf.agent.agent import Agent
    from serf.agent.handler_spec import EventFilter
    from serf.runtime.serf import Event
    from serf.wire.messages import Coordinate

__all__ = [
    "COMMANDS",
    "Command",
    "RpcServer",
    "member_to_wire",
    "coordinate_to_wire",
    "IPC_VERSION",
]

log = logging.getLogger("serf.agent.ipc")
agent_log = logging.getLogger("serf.agent")

_IPC_ACCEPT = ("agent", "ipc", "accept")
_IPC_COMMAND = ("agent", "ipc", "command")

IPC_VERSION = 1
#: per-subscription record buffer (Go: 512)
STREAM_BUFFER = 512
#: how long one write may wait for a slow reader before the client is dropped
WRITE_TIMEOUT = 10.0
#: the most a client may buffer in an incomplete object
MAX_CLIENT_BUFFER = 4 * 1024 * 1024
#: pending stream query IDs kept per connection (oldest dropped first)
MAX_PENDING_QUERIES = 4096

HANDSHAKE_REQUIRED = "Handshake required"
UNSUPPORTED_VERSION = "Unsupported IPC version"
DUPLICATE_HANDSHAKE = "Handshake already performed"
AUTH_REQUIRED = "Authentication required"
INVALID_AUTH = "Invalid authentication token"
UNSUPPORTED_COMMAND = "Unsupported command"
INVALID_FILTER = "Invalid event filter"
STREAM_EXISTS = "Stream with given sequence exists"
MONITOR_EXISTS = "Monitor already exists"
NO_PENDING_QUERY = "No pending queries matching ID"
RESPOND_PREFIX = "failed to respond to key query: "
INTERNAL_PREFIX = "_serf_"

_LEVELS = {name: level for level, name in LEVEL_NAMES.items()}


class _Close(Exception):
    """End this client's connection (after whatever was already sent)."""


def _str(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "surrogateescape")  # Go strings are bytes
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Close(f"expected a string, got {type(value).__name__}")
    return value


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(x, int) and 0 <= x < 256 for x in value):
        return bytes(value)
    raise _Close(f"expected bytes, got {type(value).__name__}")


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Close(f"expected an integer, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Close(f"expected a boolean, got {type(value).__name__}")
    return value


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Close("expected an array")
    return [_str(v) for v in value]


def _str_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Close("expected a map")
    return {_str(k): _str(v) for k, v in value.items()}


def member_to_wire(m: sio.SerfMember) -> dict[str, Any]:
    """The RPC form of a member (Go's ``client.Member``)."""
    return {
        "Name": m.name,
        "Addr": bytes(m.addr),
        "Port": m.port,
        "Tags": dict(m.tags),
        "Status": str(m.status),
        "ProtocolMin": m.protocol_min,
        "ProtocolMax": m.protocol_max,
        "ProtocolCur": m.protocol_cur,
        "DelegateMin": m.delegate_min,
        "DelegateMax": m.delegate_max,
        "DelegateCur": m.delegate_cur,
    }


def coordinate_to_wire(coord: Coordinate) -> dict[str, Any]:
    """The RPC form of a network coordinate (Go's ``coordinate.Coordinate``)."""
    return {
        "Adjustment": float(coord.adjustment),
        "Error": float(coord.error),
        "Height": float(coord.height),
        "Vec": [float(x) for x in coord.vec or []],
    }


def _event_record(event: Event, filters: list[EventFilter], conn: _Conn) -> dict[str, Any] | None:
    """The stream record for ``event`` if one of ``filters`` matches it, else None."""
    from serf.agent.handler_spec import event_info  # loaded with the first stream

    kind = member_event_type(event)
    info = event_info(event, kind, members=False)
    if info is None:
        return None
    for f in filters:  # (a loop, not any() over a generator: one record per event)
        if f.matches(info):
            break
    else:
        return None
    if kind is not None:
        members = getattr(event, "members", ())
        return {"Event": kind, "Members": [member_to_wire(m) for m in members]}
    if isinstance(event, sio.UserEventReceived):
        return {
            "Event": "user",
            "LTime": event.ltime,
            "Name": event.name,
            "Payload": bytes(event.payload),
            "Coalesce": event.coalesce,
        }
    assert isinstance(event, Query)
    qid = conn.register_query(event)
    return {
        "Event": "query",
        "ID": qid,
        "LTime": event.ltime,
        "Name": event.name,
        "Payload": bytes(event.payload),
    }


class _Subscription:
    """A stream or monitor: a bounded queue of (header+record) bytes and its writer task;
    a record goes straight to the socket when nothing is queued or being written."""

    def __init__(self, conn: _Conn, seq: int, kind: str) -> None:
        self.conn = conn
        self.seq = seq
        self.kind = kind
        self.header = encode_rpc({"Seq": seq, "Error": ""})  # the same before every record
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(STREAM_BUFFER)
        self.task: asyncio.Task[None] | None = None
        self.running = False  # the writer task runs (not yet started, or stopped)
        self.dropped = 0
        self.filters: list[EventFilter] = []  # a stream's event filters
        self.level = 0  # a monitor's lowest level

    def push(self, record: Mapping[str, Any]) -> None:
        """Queue one record without waiting; dropped (and counted) when the queue is full."""
        try:
            data = self.header + encode_rpc(record if type(record) is dict else dict(record))
        except EncodeError:
            return
        # Nothing queued and nothing being written: straight to the socket, as the writer
        # task would (without its two loop wake-ups per record: a third of an agent's CPU
        # per user event with a stream subscriber). Otherwise the queue keeps the order.
        if self.running and not self.queue.qsize() and self.conn.write_now(data):
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.kind == "stream":  # never log from a monitor: it would feed itself
                log.warning("agent.ipc: Dropping event to %s", self.conn.peer)

    def start(self) -> None:
        """Start the writer task."""
        self.task = asyncio.create_task(self._run(), name=f"serf-rpc-{self.kind}")
        self.running = True

    async def _run(self) -> None:
        with contextlib.suppress(_Close):  # the connection is gone: nothing more to send
            while True:
                data = await self.queue.get()
                await self.conn.send_raw(data)

    def stop(self) -> None:
        """Stop the writer task (queued records are discarded)."""
        self.running = False
        if self.task is not None:
            self.task.cancel()


class _Conn:
    """One RPC client connection."""

    def __init__(
        self, server: RpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.agent = server.agent
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.decoder = RpcDecoder(MAX_CLIENT_BUFFER)
        self.version = 0
        self.did_auth = False
        self.closed = False
        self.write_lock = asyncio.Lock()
        self.streams: dict[int, _Subscription] = {}
        self.monitor: _Subscription | None = None
        self.query_tasks: set[asyncio.Task[None]] = set()
        self.query_ids = itertools.count(1)
        self.pending: dict[int, Query] = {}
        self.command = ""
        self.seq = 0

    # -- output --------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> None:
        """Write bytes; a write that cannot drain within WRITE_TIMEOUT drops the client."""
        if self.closed:
            raise _Close("closed")
        async with self.write_lock:
            try:
                self.writer.write(data)
                # all of it went to the socket: nothing to drain (wait_for would run drain
                # as a task of its own, two loop wake-ups for nothing)
                if self._buffered():
                    await asyncio.wait_for(self.writer.drain(), WRITE_TIMEOUT)
            except (OSError, TimeoutError, RuntimeError) as exc:
                self.abort(f"write failed: {exc!r}")
                raise _Close("write failed") from None

    def _buffered(self) -> bool:
        """True unless the transport is open with an empty write buffer."""
        transport = self.writer.transport
        return transport.is_closing() or transport.get_write_buffer_size() > 0

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` at once if nothing else is being written and the socket took all
        that was written before; False (nothing written) otherwise, for ``send_raw``."""
        if self.closed or self.write_lock.locked() or self._buffered():
            return False
        try:
            self.writer.write(data)
        except (OSError, RuntimeError):
            return False
        return True

    async def send(
        self, seq: int, error: str = "", body: Any = None, has_body: bool = False
    ) -> None:
        """A response header, and the body when ``has_body``."""
        data = encode_rpc({"Seq": seq, "Error": error})
        if has_body:
            data += encode_rpc(body)
        await self.send_raw(data)

    def abort(self, reason: str) -> None:
        """Close at once (no more writes)."""
        if not self.closed:
            log.log(TRACE, "agent.ipc: closing client %s: %s", self.peer, reason)
        self.closed = True
        transport = self.writer.transport
        with contextlib.suppress(Exception):
            transport.abort()

    # -- input ---------------------------------------------------------------------------

    async def next_obj(self) -> Any:
        """The next msgpack object from the client (_Close at EOF or on garbage)."""
        while True:
            try:
                return next(self.decoder)
            except StopIteration:
                pass
            except DecodeError as exc:
                raise _Close(str(exc)) from None
            data = await self.reader.read(65536)
            if not data:
                raise _Close("client closed the connection")
            try:
                self.decoder.feed(data)
            except DecodeError as exc:
                raise _Close(str(exc)) from None

    async def body(self) -> dict[str, Any]:
        """The request body (a map); anything else closes the connection."""
        obj = await self.next_obj()
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise _Close("request body is not a map")
        return {str(k): v for k, v in obj.items()}

    async def run(self) -> None:
        """Serve requests until the client goes away or a fatal error."""
        try:
            while not self.closed:
                header = await self.next_obj()
                if not isinstance(header, dict):
                    raise _Close("request header is not a map")
                # Go decodes every header into the same struct: keys left out keep old values
                if "Command" in header:
                    self.command = _str(header["Command"])
                if "Seq" in header:
                    self.seq = _int(header["Seq"])
                await self.handle(self.command, self.seq)
        except _Close as exc:
            log.log(TRACE, "agent.ipc: client %s: %s", self.peer, exc)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost only this connection
            log.exception("agent.ipc: error serving %s", self.peer)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Deregister everything of this connection and close it."""
        self.abort("done")
        for sub in self.streams.values():
            sub.stop()
            self.server.event_subs.discard(sub)
        self.streams.clear()
        if self.monitor is not None:
            self.monitor.stop()
            self.server.unwatch_logs(self.monitor)
            self.monitor = None
        for task in self.query_tasks:
            task.cancel()
        self.pending.clear()

    async def handle(self, command: str, seq: int) -> None:
        """One request (Go's ``handleRequest``)."""
        self.server.count(_IPC_COMMAND)
        if command != "handshake" and self.version == 0:
            await self.send(seq, HANDSHAKE_REQUIRED)
            raise _Close(HANDSHAKE_REQUIRED)
        if self.server.auth_key and not self.did_auth and command not in ("auth", "handshake"):
            log.warning("agent.ipc: Client sending commands before auth")
            await self.send(seq, AUTH_REQUIRED)
            return  # the body, if any, is left unread (Go's quirk)
        known = COMMANDS.get(command)
        if known is None:
            await self.send(seq, UNSUPPORTED_COMMAND)
            raise _Close(f"unsupported command {command!r}")
        body = await self.body() if known.has_body else {}
        await known.handler(self, seq, body)

    # -- query IDs for respond --------------------------------------------------------

    def register_query(self, query: Query) -> int:
        """A fresh per-connection ID for ``query``, answerable until its deadline.

        No timer per query: expired entries leave from the front as new ones arrive, and
        at most ``MAX_PENDING_QUERIES`` are kept (the oldest dropped first).
        """
        qid = next(self.query_ids)
        now = asyncio.get_running_loop().time()
        if query.handle.deadline <= now:
            return qid  # past its deadline: an ID, but never registered (as Go)
        pending = self.pending
        for _ in range(2):
            oldest = next(iter(pending), None)
            if oldest is None or pending[oldest].handle.deadline > now:
                break
            del pending[oldest]
        pending[qid] = query
        if len(pending) > MAX_PENDING_QUERIES:
            del pending[next(iter(pending))]
        return qid


# -- command handlers ---------------------------------------------------------------------

Handler = Callable[["_Conn", int, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Command:
    """One RPC command: its handler and whether its request carries a body."""

    handler: Handler
    has_body: bool


#: every RPC command by name, filled by :func:`_command` where each handler is defined (so
#: the handler table and the has-a-body list cannot disagree)
COMMANDS: dict[str, Command] = {}


def _command(name: str, *, body: bool) -> Callable[[Handler], Handler]:
    """Register the decorated handler as the RPC command ``name`` (``body``: its request
    has a body, which is read before the handler runs)."""

    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"RPC command {name!r} registered twice")
        COMMANDS[name] = Command(handler, body)
        return handler

    return register


@_command("handshake", body=True)
async def _handshake(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    version = _int(body.get("Version"))
    if version != IPC_VERSION:
        await c.send(seq, UNSUPPORTED_VERSION)
    elif c.version != 0:
        await c.send(seq, DUPLICATE_HANDSHAKE)
    else:
        c.version = version
        await c.send(seq)


@_command("auth", body=True)
async def _auth(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    if _str(body.get("AuthKey")) == c.server.auth_key:
        c.did_auth = True
        await c.send(seq)
    else:
        await c.send(seq, INVALID_AUTH)


@_command("members", body=False)
async def _members(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    members = [member_to_wire(m) for m in c.agent.serf.members()]
    await c.send(seq, body={"Members": members}, has_body=True)


def _anchored(pattern: str) -> GoRegexp:
    try:
        return compile_anchored(pattern)  # RE2, as Go: linear time whatever the pattern
    except ValueError as exc:
        raise _Close(str(exc)) from None


@_command("members-filtered", body=True)
async def _members_filtered(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    tags = {k: _anchored(v) for k, v in _str_map(body.get("Tags")).items()}
    status_text, name_text = _str(body.get("Status")), _str(body.get("Name"))
    status = _anchored(status_text) if status_text else None
    name = _anchored(name_text) if name_text else None
    out = []
    for m in c.agent.serf.members():
        if name is not None and not name.search(m.name):
            continue
        if status is not None and not status.search(str(m.status)):
            continue
        if any(not rx.search(m.tags.get(k, "")) for k, rx in tags.items()):
            continue
        out.append(member_to_wire(m))
    await c.send(seq, body={"Members": out}, has_body=True)


@_command("join", body=True)
async def _join(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    addrs = _str_list(body.get("Existing"))
    replay = _bool(body.get("Replay"))
    num, error = 0, ""
    try:
        num = await c.agent.join(addrs, replay)
    except (SerfError, OSError, ValueError) as exc:
        error = str(exc)
    await c.send(seq, error, {"Num": num}, has_body=True)


@_command("leave", body=False)
async def _leave(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    log.info("agent.ipc: Graceful leave triggered")
    error = ""
    try:
        await c.agent.leave()
    except SerfError as exc:
        error = str(exc)
        log.error("agent.ipc: leave failed: %s", exc)
    with contextlib.suppress(_Close):
        await c.send(seq, error)
    c.server.request_shutdown()
    raise _Close("leave")


@_command("force-leave", body=True)
async def _force_leave(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    error = ""
    node, prune = _str(body.get("Node")), _bool(body.get("Prune"))
    agent_log.info("agent: Force leaving node%s: %s", " (prune)" if prune else "", node)
    try:
        await c.agent.serf.force_leave(node, prune)
    except SerfError as exc:
        error = str(exc)
        what = "failed to remove node (prune)" if prune else "failed to remove node"
        agent_log.warning("agent: %s: %s", what, error)
    await c.send(seq, error)


@_command("event", body=True)
async def _event(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    error = ""
    try:
        payload = _bytes(body.get("Payload")) or b""
        name, coalesce = _str(body.get("Name")), _bool(body.get("Coalesce"))
        log_line(  # one per event sent: through the agent's line sink
            agent_log,
            logging.DEBUG,
            f"agent: Requesting user event send: {name}. "
            f"Coalesced: {'true' if coalesce else 'false'}. Payload: {go_quote(payload)}",
        )
        await c.agent.serf.user_event(name, payload, coalesce)
    except SerfError as exc:
        error = str(exc)
    await c.send(seq, error)


@_command("tags", body=True)
async def _tags(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    error = ""
    try:
        await c.agent.set_tags(_str_map(body.get("Tags")), _str_list(body.get("DeleteTags")))
    except (SerfError, OSError) as exc:
        error = str(exc)
    await c.send(seq, error)


@_command("stream", body=True)
async def _stream(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    from serf.agent.handler_spec import parse_event_filter  # on the first stream

    filters = parse_event_filter(_str(body.get("Type")))
    if not all(f.valid() for f in filters):
        await c.send(seq, INVALID_FILTER)
        return
    if seq in c.streams:
        await c.send(seq, STREAM_EXISTS)
        return
    await c.send(seq)
    sub = _Subscription(c, seq, "stream")
    sub.filters = filters
    c.streams[seq] = sub
    sub.start()
    c.server.event_subs.add(sub)


@_command("monitor", body=True)
async def _monitor(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    level_text = _str(body.get("LogLevel"))
    level = _LEVELS.get(level_text.upper())
    if level is None:
        await c.send(seq, f"Unknown log level: {level_text.upper()}")
        return
    if c.monitor is not None:
        await c.send(seq, MONITOR_EXISTS)
        return
    await c.send(seq)
    sub = _Subscription(c, seq, "monitor")
    sub.level = level
    for line in c.agent.broker.replay(level):
        sub.push({"Log": line})
    c.monitor = sub
    sub.start()
    c.server.watch_logs(sub)


@_command("stop", body=True)
async def _stop(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    target = _int(body.get("Stop"))
    sub = c.streams.pop(target, None)
    if sub is not None:
        sub.stop()
        c.server.event_subs.discard(sub)
    if c.monitor is not None and c.monitor.seq == target:
        c.monitor.stop()
        c.server.unwatch_logs(c.monitor)
        c.monitor = None
    await c.send(seq)


@_command("query", body=True)
async def _query(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    name = _str(body.get("Name"))
    payload = _bytes(body.get("Payload"))
    if name.startswith(INTERNAL_PREFIX) and (
        name != INTERNAL_PREFIX + "ping" or payload is not None
    ):
        await c.send(seq, f"Queries cannot contain the '{INTERNAL_PREFIX}' prefix")
        return
    relay = _int(body.get("RelayFactor"))
    agent_log.debug("agent: Requesting query send: %s. Payload: %s", name, go_quote(payload or b""))
    try:
        resp = await c.agent.serf.query(
            name,
            payload or b"",
            filter_nodes=_str_list(body.get("FilterNodes")),
            filter_tags=_str_map(body.get("FilterTags")),
            request_ack=_bool(body.get("RequestAck")),
            relay_factor=max(0, min(255, relay)),
            timeout=_int(body.get("Timeout")) / 1e9,
        )
    except SerfError as exc:
        await c.send(seq, str(exc))
        return
    await c.send(seq)

    async def forward() -> None:
        with contextlib.suppress(_Close):
            async for item in resp:
                rec: dict[str, Any]
                if isinstance(item, QueryAck):
                    rec = {"Type": "ack", "From": item.from_, "Payload": None}
                elif isinstance(item, QueryResponseItem):
                    rec = {"Type": "response", "From": item.from_, "Payload": bytes(item.payload)}
                else:
                    continue
                await c.send(seq, body=rec, has_body=True)
            await c.send(seq, body={"Type": "done", "From": "", "Payload": None}, has_body=True)

    task = asyncio.create_task(forward(), name="serf-rpc-query")
    c.query_tasks.add(task)
    task.add_done_callback(c.query_tasks.discard)


@_command("respond", body=True)
async def _respond(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    qid = _int(body.get("ID"))
    payload = _bytes(body.get("Payload")) or b""
    query = c.pending.pop(qid, None)
    if query is None or query.handle.deadline <= asyncio.get_running_loop().time():
        await c.send(seq, NO_PENDING_QUERY)  # as Go, which forgets it at its deadline
        return
    error = ""
    try:
        await query.respond(payload)
    except SerfError as exc:
        error = RESPOND_PREFIX + str(exc)
    await c.send(seq, error)


async def _key_op(c: _Conn, seq: int, body: dict[str, Any], op: str) -> None:
    serf = c.agent.serf
    key_text = _str(body.get("Key")) if op != "list" else ""
    error = ""
    result = sio.KeyResponse()
    import base64  # on use: a node without keys never loads base64 (memory per agent)

    try:
        raw = base64.b64decode(key_text, validate=True) if op != "list" else b""
        km = serf.key_manager
        run = {"install": km.install_key, "use": km.use_key, "remove": km.remove_key}
        result = await (km.list_keys() if op == "list" else run[op](raw))
    except KeyManagerError as exc:  # Go sends the body with the error
        result, error = exc.response, exc.summary
    except (binascii.Error, ValueError):
        error = f"illegal base64 data at input byte {_bad_base64_offset(key_text)}"
    except (SerfError, RuntimeError) as exc:
        error = str(exc)
    out: dict[str, Any] = {
        "Messages": dict(result.messages),
        "Keys": dict(result.keys) if op == "list" else None,
        "NumNodes": result.num_nodes,
        "NumErr": result.num_err,
        "NumResp": result.num_resp,
    }
    await c.send(seq, error, out, has_body=True)


def _bad_base64_offset(text: str) -> int:
    """Where Go's ``base64.StdEncoding`` reports a decoding error (close approximation)."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch == "=":
            return i if len(text) % 4 or i < len(text) - 2 else len(text)
        if ch not in alphabet:
            return i
    return len(text) - len(text) % 4


@_command("install-key", body=True)
async def _install_key(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    log.info("agent: Initiating key installation")
    await _key_op(c, seq, body, "install")


@_command("use-key", body=True)
async def _use_key(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    log.info("agent: Initiating primary key change")
    await _key_op(c, seq, body, "use")


@_command("remove-key", body=True)
async def _remove_key(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    log.info("agent: Initiating key removal")
    await _key_op(c, seq, body, "remove")


@_command("list-keys", body=False)
async def _list_keys(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    log.info("agent: Initiating key listing")
    await _key_op(c, seq, body, "list")


@_command("stats", body=False)
async def _stats(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    await c.send(seq, body=c.agent.stats(), has_body=True)


@_command("metrics", body=False)
async def _metrics(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    # pyserf's own command (Go's agent answers "Unsupported command"): the in-memory metrics
    # as go-metrics text, key -> value, for `serf info -metrics`
    sinks = c.agent.sinks
    await c.send(seq, body=sinks.inmem.go_section() if sinks is not None else {}, has_body=True)


@_command("get-coordinate", body=True)
async def _get_coordinate(c: _Conn, seq: int, body: dict[str, Any]) -> None:
    node = _str(body.get("Node"))
    serf = c.agent.serf
    coord = serf.get_cached_coordinate(node)
    if coord is None:
        out: dict[str, Any] = {
            "Coord": {"Adjustment": 0.0, "Error": 0.0, "Height": 0.0, "Vec": None},
            "Ok": False,
        }
    else:
        out = {"Coord": coordinate_to_wire(coord), "Ok": True}
    await c.send(seq, body=out, has_body=True)


class RpcServer:
    """The RPC listener of one agent."""

    def __init__(self, agent: Agent, addr: str, auth_key: str = "") -> None:
        self.agent = agent
        self.addr = addr
        self.auth_key = auth_key
        self.event_subs: set[_Subscription] = set()
        self.log_subs: set[_Subscription] = set()
        self.conns: set[_Conn] = set()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound: Address | None = None

    async def start(self) -> Address:
        """Listen; the bound address (port 0 picks a free port)."""
        addr = Address.parse(self.addr, default_port=7373)
        self._server = await asyncio.start_server(self._accept, addr.host, addr.port)
        sock = self._server.sockets[0].getsockname()
        self.bound = Address(addr.host, int(sock[1]))
        self.agent.listeners.append(self._on_event)
        return self.bound

    def _on_event(self, event: Event) -> None:
        for sub in list(self.event_subs):
            record = _event_record(event, sub.filters, sub.conn)
            if record is not None:
                sub.push(record)

    def watch_logs(self, sub: _Subscription) -> None:
        """Push every new log line to ``sub`` (a ``monitor``). The server is one of the
        broker's monitors only while it has one: the broker formats no line for nobody."""
        if not self.log_subs:
            self.agent.broker.monitors.append(self._on_log)
        self.log_subs.add(sub)

    def unwatch_logs(self, sub: _Subscription) -> None:
        """Stop pushing log lines to ``sub``."""
        self.log_subs.discard(sub)
        if not self.log_subs:
            with contextlib.suppress(ValueError):
                self.agent.broker.monitors.remove(self._on_log)

    def _on_log(self, line: str, level: int) -> None:
        for sub in list(self.log_subs):
            if level >= sub.level:
                sub.push({"Log": line})

    def count(self, key: tuple[str, ...]) -> None:
        """Go's agent counters (``agent.ipc.accept``, ``agent.ipc.command``)."""
        sinks = getattr(self.agent, "sinks", None)
        if sinks is not None:
            sinks.metrics.incr_counter(key)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(self, reader, writer)
        self.conns.add(conn)
        log.info("agent.ipc: Accepted client: %s", conn.peer)
        self.count(_IPC_ACCEPT)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)

    def request_shutdown(self) -> None:
        """After ``leave``: shut the agent down (in the background)."""
        task = asyncio.create_task(self.agent.shutdown(), name="serf-agent-shutdown")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop listening and drop every client."""
        with contextlib.suppress(ValueError):
            self.agent.listeners.remove(self._on_event)
        with contextlib.suppress(ValueError):
            self.agent.broker.monitors.remove(self._on_log)
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns):
            conn.cleanup()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
