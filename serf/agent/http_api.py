"""The agent's HTTP API and status page (``serf agent -http-addr=127.0.0.1:7380``).

How this works. :class:`HttpApi` runs an aiohttp server (the optional extra
``pip install 'pyserf[http]'``) next to the RPC server, on the agent's event loop:

* ``GET /v1/members`` and ``GET /v1/stats`` - the RPC ``members`` and ``stats`` bodies as
  JSON (a member's ``Addr`` is its IP as text instead of raw bytes);
* ``GET /v1/coordinates`` - every known node's Vivaldi coordinate (the RPC
  ``get-coordinate`` body, per node);
* ``GET /v1/events?index=N`` - the last :data:`EVENT_HISTORY` member events, user events
  and queries this agent saw, newer than ``N``, and the index to ask with next;
* ``GET /v1/metrics`` - the agent's in-memory metrics as JSON;
* ``GET /metrics`` - Prometheus' text format when the agent records into a Prometheus
  registry (``-prometheus-addr``), else 404 saying how to turn it on;
* ``GET /ui`` - one self-contained HTML page (``status_page.html``: inline CSS and
  JavaScript, nothing fetched from elsewhere) that polls the JSON above every second.

When the agent has an RPC auth key, every ``/v1`` path and ``/metrics`` need it: as
``Authorization: Bearer <key>``, as ``X-Serf-Auth-Key: <key>`` (or ``X-Serf-Auth``) or as
the password of HTTP Basic authentication; without it they answer 401 saying so. ``/ui``
itself holds no data and is served to anyone; the page asks for the key when the API
answers 401.

An address without a host (``:7380``, ``7380``) binds loopback, never every interface.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib.resources
import ipaddress
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from serf._extras import missing_extra
from serf.address import Address, bytes_to_ip
from serf.agent.handlers import member_event_type
from serf.agent.rpc_server import coordinate_to_wire, member_to_wire
from serf.core import io as sio
from serf.runtime.serf import Event, Query

if TYPE_CHECKING:
    from aiohttp import web

    from serf.agent.agent import Agent

__all__ = ["HttpApi", "DEFAULT_PORT", "EVENT_HISTORY", "http_address", "status_page_html"]

log = logging.getLogger("serf.agent")

#: the port of an ``-http-addr`` given without one
DEFAULT_PORT = 7380
#: how many recent events ``/v1/events`` keeps
EVENT_HISTORY = 200
#: a user event's or query's payload is shown up to this many bytes
PAYLOAD_PREVIEW = 256

_AUTH_HELP = (
    "this agent requires its RPC auth key: send it as 'Authorization: Bearer <key>', "
    "as 'X-Serf-Auth-Key: <key>' or as the password of HTTP Basic authentication"
)


def http_address(text: str) -> Address:
    """The address to bind for ``-http-addr``: ``host:port``, ``[v6]:port``, ``host``
    (port 7380), ``:port`` or ``port`` (loopback). ValueError names a malformed one."""
    given = text.strip()
    text = given.removeprefix(":") if given[1:].isdigit() or given.isdigit() else given
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    try:
        addr = Address.parse(text, default_port=DEFAULT_PORT)
    except ValueError as exc:
        raise ValueError(f"Invalid HTTP address {given!r}: {exc}") from None
    if not 0 <= addr.port <= 65535:
        raise ValueError(f"Invalid HTTP address {given!r}: port out of range")
    if ":" in addr.host:
        try:
            ipaddress.IPv6Address(addr.host)
        except ValueError:
            raise ValueError(
                f"Invalid HTTP address {given!r}: use host:port or [v6]:port"
            ) from None
    return addr


def status_page_html() -> str:
    """The status page (a package data file)."""
    return (
        importlib.resources.files("serf.agent")
        .joinpath("status_page.html")
        .read_text(encoding="utf-8")
    )


def member_to_json(m: sio.SerfMember) -> dict[str, Any]:
    """A member as ``/v1/members`` shows it: the RPC form with ``Addr`` as text."""
    out = member_to_wire(m)
    out["Addr"] = bytes_to_ip(m.addr)
    return out


def _preview(payload: bytes) -> str:
    text = bytes(payload[:PAYLOAD_PREVIEW]).decode("utf-8", errors="replace")
    return text + ("..." if len(payload) > PAYLOAD_PREVIEW else "")


def event_record(event: Event) -> dict[str, Any] | None:
    """The ``/v1/events`` record of ``event`` (without its index and time); None for an
    event the page does not show."""

    kind = member_event_type(event)
    if kind is not None:
        members = getattr(event, "members", ())
        return {"Event": kind, "Members": [m.name for m in members]}
    if isinstance(event, sio.UserEventReceived):
        return {
            "Event": "user",
            "Name": event.name,
            "LTime": event.ltime,
            "Payload": _preview(event.payload),
            "Coalesce": event.coalesce,
        }
    if isinstance(event, Query):
        return {
            "Event": "query",
            "Name": event.name,
            "LTime": event.ltime,
            "Payload": _preview(event.payload),
            "Source": event.source_node,
        }
    return None


class HttpApi:
    """The HTTP listener of one agent (see the module docstring)."""

    def __init__(self, agent: Agent, addr: str, auth_key: str = "") -> None:
        self.agent = agent
        self.addr = addr
        self.auth_key = auth_key
        #: the bound address once started (port 0 picks a free port)
        self.bound: Address | None = None
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENT_HISTORY)
        self._index = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> Address:
        """Listen; the bound address. MissingExtraError without aiohttp, ValueError for a
        malformed address, OSError when the port cannot be bound."""
        try:
            from aiohttp import web
        except ImportError:
            raise missing_extra("aiohttp", "http", "The HTTP API (-http-addr)") from None
        addr = http_address(self.addr)
        app = web.Application(middlewares=[self._auth_middleware(web)])
        app.router.add_get("/", self._redirect_ui)
        app.router.add_get("/ui", self._ui)
        app.router.add_get("/ui/", self._ui)
        app.router.add_get("/v1/members", self._members)
        app.router.add_get("/v1/stats", self._stats)
        app.router.add_get("/v1/coordinates", self._coordinates)
        app.router.add_get("/v1/events", self._events)
        app.router.add_get("/v1/metrics", self._metrics_json)
        app.router.add_get("/metrics", self._prometheus)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, addr.host, addr.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = int(runner.addresses[0][1])
        self.bound = Address(addr.host, port)
        self.agent.listeners.append(self._on_event)
        log.info("agent: HTTP API and status page on http://%s/ui", self.bound)
        return self.bound

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._on_event in self.agent.listeners:
            self.agent.listeners.remove(self._on_event)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- events --------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        record = event_record(event)
        if record is None:
            return
        self._index += 1
        self.events.append({"Index": self._index, "Time": time.time(), **record})

    # -- auth ----------------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        """Whether a request with ``headers`` carries the auth key (always, without one)."""
        if not self.auth_key:
            return True
        want = self.auth_key.encode()
        given: list[str] = []
        for name in ("X-Serf-Auth-Key", "X-Serf-Auth"):
            if name in headers:
                given.append(headers[name])
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            given.append(decoded.partition(":")[2])
        return any(hmac.compare_digest(g.encode(), want) for g in given)

    def _auth_middleware(self, web: Any) -> Any:
        @web.middleware  # type: ignore[untyped-decorator,unused-ignore]
        async def check(request: web.Request, handler: Any) -> web.StreamResponse:
            public = request.path in ("/", "/ui", "/ui/")
            if public or self.authorized(request.headers):
                response: web.StreamResponse = await handler(request)
                return response
            return web.json_response(
                {"error": _AUTH_HELP},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="serf", Basic realm="serf"'},
            )

        return check

    # -- handlers ------------------------------------------------------------------------

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        from aiohttp import web

        return web.Response(
            text=json.dumps(body, indent=2, sort_keys=False),
            status=status,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _redirect_ui(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        raise web.HTTPFound("/ui")

    async def _ui(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(
            text=status_page_html(),
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                # the page is self-contained: forbid anything from elsewhere
                "Content-Security-Policy": (
                    "default-src 'none'; script-src 'unsafe-inline'; "
                    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"
                ),
            },
        )

    async def _members(self, request: web.Request) -> web.Response:
        members = [member_to_json(m) for m in self.agent.serf.members()]
        return self._json({"Members": members})

    async def _stats(self, request: web.Request) -> web.Response:
        return self._json(self.agent.stats())

    async def _coordinates(self, request: web.Request) -> web.Response:
        serf = self.agent.serf
        coords: dict[str, Any] = {}
        for m in serf.members():
            if m.name == self.agent.node_name:
                coord = serf.get_coordinate()
            else:
                coord = serf.get_cached_coordinate(m.name)
            if coord is not None:
                coords[m.name] = coordinate_to_wire(coord)
        return self._json({"Coordinates": coords})

    async def _events(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("index", "0"))
        except ValueError:
            return self._json({"error": "index must be an integer"}, status=400)
        events = [e for e in self.events if e["Index"] > after]
        return self._json({"Index": self._index, "Events": events})

    async def _metrics_json(self, request: web.Request) -> web.Response:
        sinks = self.agent.sinks
        if sinks is None:
            return self._json({"error": "this agent keeps no in-memory metrics"}, status=404)
        return self._json({"Metrics": sinks.inmem.snapshot()})

    async def _prometheus(self, request: web.Request) -> web.Response:
        from aiohttp import web

        sinks = self.agent.sinks
        prometheus = sinks.prometheus if sinks is not None else None
        if prometheus is None:
            return web.Response(
                text=(
                    "Prometheus metrics are off: install prometheus-client "
                    "(pip install 'pyserf[prometheus]') or start the agent with "
                    "-prometheus-addr\n"
                ),
                status=404,
            )
        data: bytes = prometheus.exposition()
        return web.Response(
            body=data, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )
