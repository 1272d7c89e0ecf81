"""An asyncio client for the serf agent's RPC protocol (reference sections 4.5 and 4.6).

How this works: :meth:`RPCClient.connect` opens the TCP connection, performs the
``handshake`` (version 1) and, when a key is given, ``auth``, before anything else (the server
would otherwise leave a request body unread). Requests are a header map ``{Command, Seq}``
plus an optional body; responses are a header ``{Error, Seq}`` plus, for commands that return
one, a body. One reader task decodes objects with :class:`serf.wire.rpc.RpcDecoder` and
dispatches on ``Seq``: a plain request waits on a future; ``stream``, ``monitor`` and
``query`` register a :class:`Subscription`, whose first header answers the request and whose
later headers each carry one record, queued for ``async for``. An object that is not a
response header where one is expected (the body of a record for a stream we already stopped)
is dropped. Errors: :class:`RPCError` carries the agent's ``Error`` text;
:class:`ConnectionError` (:class:`RPCConnectionError`) when the agent cannot be reached or the
connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from serf.address import bytes_to_ip
from serf.core.vivaldi import distance
from serf.runtime.feed import Feed
from serf.wire.errors import DecodeError
from serf.wire.messages import Coordinate
from serf.wire.rpc import RpcDecoder, encode_rpc

__all__ = [
    "DEFAULT_RPC_ADDR",
    "KeyResponse",
    "Member",
    "QueryRecord",
    "RPCClient",
    "RPCConnectionError",
    "RPCError",
    "Subscription",
    "coordinate_distance",
    "split_addr",
]

DEFAULT_RPC_ADDR = "127.0.0.1:7373"
IPC_VERSION = 1
#: header-only errors: the server sends no body after these
_NO_BODY_ERRORS = frozenset(
    {
        "Authentication required",
        "Handshake required",
        "Unsupported command",
        "Unsupported IPC version",
        "Handshake already performed",
    }
)

T = TypeVar("T")


class RPCError(Exception):
    """The agent answered with an error; ``error`` is its text verbatim."""

    def __init__(self, error: str, body: Any = None) -> None:
        super().__init__(error)
        self.error = error
        #: the response body the agent sent with the error (e.g. join's Num), if any
        self.body = body
        #: for the key commands: the per-node messages and counts sent with the error
        self.keys: KeyResponse | None = None


class RPCConnectionError(ConnectionError):
    """The agent is unreachable, or the connection was closed."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member as the RPC reports it."""

    name: str
    addr: str
    port: int
    tags: dict[str, str]
    status: str
    protocol_min: int = 0
    protocol_max: int = 0
    protocol_cur: int = 0
    delegate_min: int = 0
    delegate_max: int = 0
    delegate_cur: int = 0

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Member:
        """Decode an RPC ``Member`` map (Addr is 4 or 16 raw bytes)."""
        raw = m.get("Addr") or b""
        try:  # Go prints IPv4-mapped addresses (a 0.0.0.0-bound Go agent sends them) as IPv4
            addr = bytes_to_ip(bytes(raw)) if raw else ""
        except ValueError:
            addr = ""
        return cls(
            name=str(m.get("Name", "")),
            addr=addr,
            port=int(m.get("Port", 0)),
            tags=dict(m.get("Tags") or {}),
            status=str(m.get("Status", "")),
            protocol_min=int(m.get("ProtocolMin", 0)),
            protocol_max=int(m.get("ProtocolMax", 0)),
            protocol_cur=int(m.get("ProtocolCur", 0)),
            delegate_min=int(m.get("DelegateMin", 0)),
            delegate_max=int(m.get("DelegateMax", 0)),
            delegate_cur=int(m.get("DelegateCur", 0)),
        )

    @property
    def hostport(self) -> str:
        """``ip:port`` as Go's net.TCPAddr prints it (IPv6 in brackets)."""
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One record of a query stream: ``ack``, ``response`` or ``done``."""

    type: str
    from_: str = ""
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class KeyResponse:
    """The body of install-key/use-key/remove-key/list-keys."""

    messages: dict[str, str] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    num_nodes: int = 0
    num_err: int = 0
    num_resp: int = 0


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) as (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr}: missing port in address")
    return host.strip("[]"), int(port)


def coordinate_distance(a: Coordinate, b: Coordinate) -> float:
    """Estimated RTT between two coordinates, in seconds."""
    return distance(a, b)


class Subscription(Feed[T]):
    """Records of a ``stream``, ``monitor`` or ``query`` request; ``async for`` over them."""

    def __init__(self, client: RPCClient, seq: int, kind: str) -> None:
        super().__init__()
        self._client = client
        self.seq = seq
        self.kind = kind

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        item = await super().__anext__()
        if isinstance(item, QueryRecord) and (item.type == "done" or not item.from_):
            # a query ends with "done"; an empty From also ends it, as in Go's CLI
            self._client._subs.pop(self.seq, None)
            self.end()
            raise StopAsyncIteration
        return item

    async def stop(self) -> None:
        """Send ``stop`` for this stream/monitor (a query ends only with ``done``)."""
        self._client._subs.pop(self.seq, None)
        self.end()
        if self.kind != "query" and not self._client.closed:
            with contextlib.suppress(RPCConnectionError):
                await self._client.stop(self.seq)


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    has_body: bool
    header: dict[str, Any] | None = None


class RPCClient:
    """One RPC connection to a serf agent. Create with ``await RPCClient.connect(addr)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[int, Subscription[Any]] = {}
        self._expect_body: tuple[int, str] | None = None  # (seq, "pending"|"record")
        self._closed = False
        self._close_reason = "connection closed"
        self._write_lock = asyncio.Lock()
        self._task = asyncio.create_task(self._read_loop(), name="serf-rpc-client")

    @classmethod
    async def connect(
        cls,
        addr: str = DEFAULT_RPC_ADDR,
        auth_key: str = "",
        *,
        timeout: float = 10.0,
        sock: socket.socket | None = None,
    ) -> RPCClient:
        """Connect, handshake and (with a key) authenticate; RPCConnectionError if unreachable.

        ``sock``, an already connected TCP socket (e.g. one opened inside another network
        namespace), is used instead of dialling ``addr``.
        """
        try:
            host, port = split_addr(addr)
        except ValueError as exc:
            raise RPCConnectionError(str(exc)) from None
        try:
            opening = (
                asyncio.open_connection(sock=sock)
                if sock is not None
                else asyncio.open_connection(host, port)
            )
            reader, writer = await asyncio.wait_for(opening, timeout)
        except TimeoutError:
            raise RPCConnectionError(f"dial tcp {addr}: i/o timeout") from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise RPCConnectionError(f"dial tcp {addr}: connect: {reason.lower()}") from None
        client = cls(reader, writer)
        try:
            await asyncio.wait_for(client._call("handshake", {"Version": IPC_VERSION}), timeout)
            if auth_key:
                await asyncio.wait_for(client._call("auth", {"AuthKey": auth_key}), timeout)
        except BaseException:
            await client.close()
            raise
        return client

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._closed

    async def close(self) -> None:
        """Close the connection; pending calls fail, subscriptions end."""
        self._shutdown("client closed")
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            self._writer.close()
            await self._writer.wait_closed()

    async def __aenter__(self) -> RPCClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing ---------------------------------------------------------------------

    def _shutdown(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(RPCConnectionError(reason))
        self._pending.clear()
        for sub in self._subs.values():
            sub.end()
        self._subs.clear()

    async def _read_loop(self) -> None:
        decoder = RpcDecoder()
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                decoder.feed(data)
                for obj in decoder:
                    self._dispatch(obj)
        except (OSError, DecodeError):
            # as Go's client: a read that fails for any reason (a reset as well as an EOF, or
            # bytes that do not decode) closes the client, and every waiting call gets
            # "client closed"; which of a reset or an EOF a hang-up gives is a race
            pass
        finally:
            self._shutdown("client closed")  # Go's RPC client's words (clientClosed)

    def _dispatch(self, obj: Any) -> None:
        if self._expect_body is not None:
            seq, what = self._expect_body
            self._expect_body = None
            if what == "pending":
                pending = self._pending.pop(seq, None)
                if pending is not None and not pending.future.done():
                    pending.future.set_result((pending.header, obj))
            else:
                sub = self._subs.get(seq)
                if sub is not None:
                    sub.push(self._record(sub, obj))
            return
        if not (isinstance(obj, dict) and "Seq" in obj and "Error" in obj and len(obj) == 2):
            return  # an orphan body (e.g. a record of a stream already stopped)
        seq, error = int(obj["Seq"]), str(obj["Error"] or "")
        pending = self._pending.get(seq)
        if pending is not None:
            if pending.has_body and error not in _NO_BODY_ERRORS:
                pending.header = obj
                self._expect_body = (seq, "pending")
                return
            self._pending.pop(seq)
            if not pending.future.done():
                pending.future.set_result((obj, None))
            return
        if seq in self._subs:
            self._expect_body = (seq, "record")

    @staticmethod
    def _record(sub: Subscription[Any], body: Any) -> Any:
        if sub.kind == "monitor":
            return str(body.get("Log", "")) if isinstance(body, dict) else ""
        if sub.kind == "query":
            return QueryRecord(
                type=str(body.get("Type", "")),
                from_=str(body.get("From") or ""),
                payload=body.get("Payload"),
            )
        return body

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send(self, command: str, seq: int, body: Mapping[str, Any] | None) -> None:
        if self._closed:
            raise RPCConnectionError(self._close_reason)
        data = encode_rpc({"Command": command, "Seq": seq})
        if body is not None:
            data += encode_rpc(dict(body))
        async with self._write_lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except OSError as exc:
                self._shutdown(f"connection error: {exc}")
                raise RPCConnectionError(self._close_reason) from None

    async def _call(
        self, command: str, body: Mapping[str, Any] | None = None, *, has_body: bool = False
    ) -> Any:
        """Send one request; its response body (or None); RPCError on an Error header."""
        seq = self._next_seq()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[seq] = _Pending(fut, has_body)
        try:
            await self._send(command, seq, body)
            header, resp = await fut
        finally:
            self._pending.pop(seq, None)
        if header.get("Error"):
            raise RPCError(str(header["Error"]), resp)
        return resp

    async def _subscribe(self, command: str, body: Mapping[str, Any], kind: str) -> Any:
        seq = self._next_seq()
        sub: Subscription[Any] = Subscription(self, seq, kind)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[seq] = _Pending(fut, False)
        self._subs[seq] = sub  # before sending: records may follow the header at once
        try:
            await self._send(command, seq, body)
            header, _ = await fut
        except BaseException:
            self._subs.pop(seq, None)
            self._pending.pop(seq, None)
            raise
        if header.get("Error"):
            self._subs.pop(seq, None)
            raise RPCError(str(header["Error"]))
        return sub

    # -- commands -----------------------------------------------------------------------

    async def members(self) -> list[Member]:
        """Every member the agent knows."""
        body = await self._call("members", has_body=True)
        return [Member.from_wire(m) for m in (body or {}).get("Members") or []]

    async def members_filtered(
        self, tags: Mapping[str, str] | None = None, status: str = "", name: str = ""
    ) -> list[Member]:
        """Members whose tags/status/name match the (anchored) regular expressions."""
        req = {"Tags": dict(tags or {}), "Status": status, "Name": name}
        body = await self._call("members-filtered", req, has_body=True)
        return [Member.from_wire(m) for m in (body or {}).get("Members") or []]

    async def join(self, addrs: Sequence[str], replay: bool = False) -> int:
        """Join the cluster through ``addrs``; the number of nodes contacted."""
        body = await self._call("join", {"Existing": list(addrs), "Replay": replay}, has_body=True)
        return int((body or {}).get("Num", 0))

    async def leave(self) -> None:
        """Graceful leave; the agent then shuts down."""
        await self._call("leave")

    async def force_leave(self, node: str, prune: bool = False) -> None:
        """Force a failed member into ``left`` (``prune``: also forget it at once)."""
        await self._call("force-leave", {"Node": node, "Prune": prune})

    async def user_event(self, name: str, payload: bytes = b"", coalesce: bool = True) -> None:
        """Fire a user event."""
        await self._call("event", {"Name": name, "Payload": bytes(payload), "Coalesce": coalesce})

    async def update_tags(
        self, tags: Mapping[str, str] | None = None, delete: Sequence[str] = ()
    ) -> None:
        """Set and delete tags of the agent."""
        await self._call("tags", {"Tags": dict(tags or {}), "DeleteTags": list(delete)})

    async def stats(self) -> dict[str, dict[str, str]]:
        """The agent's stats sections."""
        body = await self._call("stats", has_body=True)
        return {str(k): dict(v or {}) for k, v in (body or {}).items()}

    async def metrics(self) -> dict[str, str]:
        """The agent's in-memory metrics, key -> go-metrics text (a pyserf agent only: Go's
        answers ``Unsupported command`` and closes the connection)."""
        body = await self._call("metrics", has_body=True)
        return {str(k): str(v) for k, v in (body or {}).items()}

    async def get_coordinate(self, node: str) -> Coordinate | None:
        """The agent's cached coordinate of ``node``, or None."""
        body = await self._call("get-coordinate", {"Node": node}, has_body=True) or {}
        if not body.get("Ok"):
            return None
        c = body.get("Coord") or {}
        return Coordinate(
            vec=[float(x) for x in c.get("Vec") or []],
            error=float(c.get("Error", 0.0)),
            adjustment=float(c.get("Adjustment", 0.0)),
            height=float(c.get("Height", 0.0)),
        )

    async def stream(self, event_filter: str = "*") -> Subscription[dict[str, Any]]:
        """Subscribe to events (``"*"``, ``"member-join,user:deploy"``...); records are maps."""
        sub: Subscription[dict[str, Any]] = await self._subscribe(
            "stream", {"Type": event_filter}, "stream"
        )
        return sub

    async def monitor(self, log_level: str = "INFO") -> Subscription[str]:
        """Subscribe to the agent's log lines at ``log_level`` or above."""
        sub: Subscription[str] = await self._subscribe(
            "monitor", {"LogLevel": log_level}, "monitor"
        )
        return sub

    async def stop(self, seq: int) -> None:
        """Stop the stream or monitor registered under ``seq``."""
        self._subs.pop(seq, None)
        await self._call("stop", {"Stop": seq})

    async def query(
        self,
        name: str,
        payload: bytes | None = None,
        *,
        filter_nodes: Sequence[str] = (),
        filter_tags: Mapping[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float = 0.0,
    ) -> Subscription[QueryRecord]:
        """Start a query; iterate ack/response records until ``done`` (iteration then ends)."""
        req: dict[str, Any] = {
            "FilterNodes": list(filter_nodes),
            "FilterTags": dict(filter_tags or {}),
            "RequestAck": request_ack,
            "RelayFactor": relay_factor,
            "Timeout": int(timeout * 1e9),
            "Name": name,
        }
        if payload is not None:  # leave it out for _serf_ping (a nil payload)
            req["Payload"] = bytes(payload)
        sub: Subscription[QueryRecord] = await self._subscribe("query", req, "query")
        return sub

    async def respond(self, query_id: int, payload: bytes) -> None:
        """Answer a query received on a stream of this connection."""
        await self._call("respond", {"ID": query_id, "Payload": bytes(payload)})

    async def _key_call(self, command: str, key: str | None) -> KeyResponse:
        try:
            body = await self._call(command, None if key is None else {"Key": key}, has_body=True)
        except RPCError as exc:
            exc.keys = _key_response(exc.body)
            raise
        return _key_response(body)

    async def install_key(self, key: str) -> KeyResponse:
        """Install a base64 key on every member (RPCError.keys has the per-node failures)."""
        return await self._key_call("install-key", key)

    async def use_key(self, key: str) -> KeyResponse:
        """Make a base64 key primary on every member."""
        return await self._key_call("use-key", key)

    async def remove_key(self, key: str) -> KeyResponse:
        """Remove a base64 key from every member."""
        return await self._key_call("remove-key", key)

    async def list_keys(self) -> KeyResponse:
        """Keys installed across the cluster, each with the number of nodes holding it."""
        return await self._key_call("list-keys", None)


def _key_response(body: Any) -> KeyResponse:
    if not isinstance(body, dict):
        return KeyResponse()
    return KeyResponse(
        messages={str(k): str(v) for k, v in (body.get("Messages") or {}).items()},
        keys={str(k): int(v) for k, v in (body.get("Keys") or {}).items()},
        num_nodes=int(body.get("NumNodes", 0)),
        num_err=int(body.get("NumErr", 0)),
        num_resp=int(body.get("NumResp", 0)),
    )
