"""The agent's status page and JSON API (``serf agent -http-addr=127.0.0.1:7380``).

How this works. An asyncio server speaks HTTP/1.1 through :mod:`h11` (the parser is h11's,
not ours); each connection serves GET requests one after another:

* ``/v1/members`` - every member with status, tags, address and Vivaldi coordinate;
* ``/v1/stats`` - the agent's ``stats`` sections plus ``metrics`` (the in-memory sink);
* ``/v1/events`` - the most recent member events, user events and queries (up to 100);
* ``/metrics`` - Prometheus' text format, when prometheus-client is installed;
* ``/ui`` - one self-contained HTML page (no CDN) polling the JSON above once a second.

When the agent has an RPC auth key, every request must carry it: the ``X-Serf-Auth`` header,
or ``?token=`` on the URL (so a browser can open ``/ui?token=...``; the page forwards it).
Requests are bounded: 16 KiB of headers, no bodies, 10 s to send a request; anything else
gets a 4xx and the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import urllib.parse
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any

import h11

from serf.address import Address, bytes_to_ip
from serf.core import io as sio

if TYPE_CHECKING:
    from serf.agent.agent import Agent
    from serf.runtime.serf import Event

__all__ = ["StatusServer", "member_json"]

log = logging.getLogger("serf.agent.http")

_MAX_HEADERS = 16 * 1024
_REQUEST_TIMEOUT = 10.0
_RECENT_EVENTS = 100
_MAX_CONNECTIONS = 64


def member_json(m: sio.SerfMember, coordinate: Any) -> dict[str, Any]:
    """One member for ``/v1/members``."""
    coord = None
    if coordinate is not None:
        coord = {
            "Vec": list(coordinate.vec or []),
            "Error": coordinate.error,
            "Adjustment": coordinate.adjustment,
            "Height": coordinate.height,
        }
    return {
        "Name": m.name,
        "Addr": bytes_to_ip(m.addr),
        "Port": m.port,
        "Tags": dict(m.tags),
        "Status": str(m.status),
        "Coord": coord,
    }


def _describe(event: Event) -> dict[str, Any] | None:
    from serf.agent.agent import member_event_type
    from serf.runtime.serf import Query

    kind = member_event_type(event)
    now = time.time()
    if kind is not None:
        names = [m.name for m in getattr(event, "members", ())]
        return {"Time": now, "Type": kind, "Name": ", ".join(names)}
    if isinstance(event, sio.UserEventReceived):
        return {"Time": now, "Type": "user", "Name": event.name, "LTime": event.ltime}
    if isinstance(event, Query):
        return {"Time": now, "Type": "query", "Name": event.name, "LTime": event.ltime}
    return None


class StatusServer:
    """Serves the status page and JSON API of ``agent`` on ``address`` (see the module)."""

    def __init__(self, agent: Agent, address: Address, auth: str = "") -> None:
        self.agent = agent
        self.address = address
        self.auth = auth
        self.bound: Address | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_EVENTS)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._page = resources.files("serf.agent").joinpath("status.html").read_bytes()

    async def start(self) -> Address:
        """Listen; returns the bound address."""
        self.agent.listeners.append(self._on_event)
        self._server = await asyncio.start_server(
            self._accept, self.address.host, self.address.port
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.bound = Address(host, port)
        return self.bound

    async def stop(self) -> None:
        """Close the listener and every connection."""
        with contextlib.suppress(ValueError):
            self.agent.listeners.remove(self._on_event)
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_event(self, event: Event) -> None:
        item = _describe(event)
        if item is not None:
            self.recent.append(item)

    # -- connections -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._conns) >= _MAX_CONNECTIONS:
            writer.close()
            return
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, TimeoutError, h11.ProtocolError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADERS)
        while True:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                request = await self._next_request(conn, reader)
            if request is None:
                return
            status, ctype, body = self._route(request)
            headers = [
                ("Content-Type", ctype),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE or status >= 400:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> h11.Request | None:
        request: h11.Request | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(8192)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                raise h11.RemoteProtocolError("request bodies are not accepted")
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    # -- routes ----------------------------------------------------------------------------

    def _route(self, request: h11.Request) -> tuple[int, str, bytes]:
        if request.method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        target = urllib.parse.urlsplit(request.target.decode("ascii", "replace"))
        if self.auth and not self._authorized(request, target.query):
            return 403, "text/plain", b"missing or wrong RPC auth key\n"
        path = target.path
        if path in ("/", "/ui", "/ui/"):
            return 200, "text/html; charset=utf-8", self._page
        if path == "/v1/members":
            return self._json(self._members())
        if path == "/v1/stats":
            return self._json(self._stats())
        if path == "/v1/events":
            return self._json(list(self.recent))
        if path == "/metrics":
            sinks = self.agent.sinks
            if sinks is None or sinks.prometheus is None:
                return 404, "text/plain", b"Prometheus needs pip install 'pyserf[prometheus]'\n"
            body: bytes = sinks.prometheus.exposition()
            return 200, "text/plain; version=0.0.4; charset=utf-8", body
        return 404, "text/plain", b"not found\n"

    def _authorized(self, request: h11.Request, query: str) -> bool:
        given = ""
        for name, value in request.headers:
            if name == b"x-serf-auth":
                given = value.decode("utf-8", "replace")
        if not given:
            given = urllib.parse.parse_qs(query).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.auth.encode())

    @staticmethod
    def _json(data: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(data, sort_keys=True).encode()

    def _members(self) -> dict[str, Any]:
        serf = self.agent._serf()
        me = serf.local_member.name
        out = []
        for m in serf.members():
            coord = serf.get_coordinate() if m.name == me else serf.get_cached_coordinate(m.name)
            out.append(member_json(m, coord))
        return {"Self": me, "Members": sorted(out, key=lambda x: x["Name"])}

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.agent.stats())
        sinks = self.agent.sinks
        stats["metrics"] = sinks.inmem.snapshot() if sinks is not None else {}
        return stats
