"""The agent's HTTP API and status page (``-http-addr``): JSON shapes against the RPC answers,
auth on and off, ``/metrics``, config and extra errors, and ``/ui`` in headless Chromium
watching a 5-node cluster while a node is SIGKILLed. Agents are real subprocesses on
loopback; every wait is bounded."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serf._extras import MissingExtraError
from serf.agent.config import ConfigError, load_config
from serf.agent.http_api import HttpApi, http_address
from serf.testing.agents import SERF, AgentProc, wait_for
from serf.testing.agents import cluster as agents_cluster
from serf.testing.agents import run as agents_run
from serf.testing.browser import (
    BrowserError,
    HeadlessChromium,
    chromium_path,
    group_alive,
    png_colours,
    png_pixels,
)
from serf.testing.gopeer import free_port

AUTH_KEY = "s3cret-key"
#: the page's colour of a failed member (status_page.html, --failed)
FAILED_RGB = bytes((0xD6, 0x45, 0x45))
RPC_MEMBER_KEYS = {
    "Name", "Addr", "Port", "Tags", "Status", "ProtocolMin", "ProtocolMax", "ProtocolCur",
    "DelegateMin", "DelegateMax", "DelegateCur",
}  # fmt: skip


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class HttpAgent(AgentProc):
    """One ``serf agent`` subprocess with its HTTP API on (and RPC auth with ``auth``)."""

    def __init__(self, name: str, workdir: Path, *extra: str, auth: str = "") -> None:
        super().__init__(name, workdir, *extra)
        self.http_port = free_port()
        self.auth = auth

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def launch(self, *more: str) -> None:
        args = [f"-http-addr=127.0.0.1:{self.http_port}"]
        if self.auth:
            conf = self.dir / "auth.json"
            conf.write_text(json.dumps({"rpc_auth": self.auth}), encoding="utf-8")
            args.append(f"-config-file={conf}")
        super().launch(*args, *more)

    def ready(self) -> None:
        """Wait until the HTTP API answers."""

        def up() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return http_get(f"{self.url}/ui")[0] == 200
            except OSError:
                return False

        wait_for(up, what=f"{self.name} HTTP API")

    def get_json(self, path: str, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {key if key is not None else self.auth}"}
        status, _, body = http_get(self.url + path, headers if (key or self.auth) else None)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def statuses(self) -> dict[str, str]:
        try:
            members = self.get_json("/v1/members")["Members"]
        except (OSError, AssertionError):
            return {}
        return {m["Name"]: m["Status"] for m in members}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SERF_RPC_AUTH=self.auth)
        return subprocess.run(
            [*SERF, args[0], f"-rpc-addr=127.0.0.1:{self.rpc_port}", *args[1:]],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=env,
        )


def start_cluster(agents: list[HttpAgent]) -> None:
    """Start ``agents[0]``, then the others joining it; wait until all see all alive."""
    first = agents[0]
    first.launch()
    first.ready()
    for a in agents[1:]:
        a.launch(f"-join={first.bind}")
    for a in agents[1:]:
        a.ready()
    names = {a.name for a in agents}
    for a in agents:
        wait_for(
            lambda a=a: {n for n, s in a.statuses().items() if s == "alive"} == names,
            what=f"{a.name} to see every member alive",
        )


# -- units (in process) ---------------------------------------------------------------------


def test_an_address_without_a_host_binds_loopback() -> None:
    assert str(http_address(":7380")) == "127.0.0.1:7380"
    assert str(http_address("7381")) == "127.0.0.1:7381"
    assert str(http_address("127.0.0.2")) == "127.0.0.2:7380"
    assert str(http_address("0.0.0.0:80")) == "0.0.0.0:80"
    assert str(http_address("[::1]:7380")) == "[::1]:7380"
    with pytest.raises(ValueError, match="Invalid HTTP address"):
        http_address("127.0.0.1:x")


def test_a_bad_http_addr_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="Invalid HTTP address 'host:port:x'"):
        load_config(["-http-addr=host:port:x"])
    assert load_config(["-http-addr=:7380"]).http_addr == ":7380"
    assert load_config([]).http_addr == ""


def test_without_prometheus_metrics_is_404_saying_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # not installed

    async def scenario() -> tuple[int, str]:
        import aiohttp

        async with agents_cluster(1, http_addr="127.0.0.1:0") as nodes:
            assert nodes[0].agent.sinks is not None
            assert nodes[0].agent.sinks.prometheus is None
            api = HttpApi(nodes[0].agent, "127.0.0.1:0")
            bound = await api.start()
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://{bound}/metrics") as resp,
                ):
                    return resp.status, await resp.text()
            finally:
                await api.stop()

    status, text = agents_run(scenario(), timeout=60)
    assert status == 404
    assert "pyserf[prometheus]" in text and "-prometheus-addr" in text


def test_without_aiohttp_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import raises ImportError
    api = HttpApi(None, "127.0.0.1:0")  # type: ignore[arg-type]  # fails before using it
    with pytest.raises(MissingExtraError, match=r"pip install 'pyserf\[http\]'"):
        asyncio.run(api.start())


# -- API against real agents ----------------------------------------------------------------


#: the tests sharing ``pair`` stay on one xdist worker (--dist loadgroup), one pair per run
ON_THE_PAIR = pytest.mark.xdist_group("http_api_pair")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpAgent, HttpAgent]]:
    """Two joined agents: ``open`` without an auth key, ``locked`` with one."""
    work = tmp_path_factory.mktemp("http")
    opened = HttpAgent("open", work, "-tag", "role=web", "-tag", "dc=east")
    locked = HttpAgent("locked", work, "-tag", "role=db", auth=AUTH_KEY)
    try:
        start_cluster([opened, locked])
        yield opened, locked
    finally:
        for a in (opened, locked):
            a.stop()


@ON_THE_PAIR
@pytest.mark.slow
@pytest.mark.integration
def test_members_and_stats_are_the_rpc_bodies(pair: tuple[HttpAgent, HttpAgent]) -> None:
    opened, _ = pair
    members = opened.get_json("/v1/members")["Members"]
    rpc = json.loads(opened.cli("members", "-format=json").stdout)["members"]
    assert {m["Name"] for m in members} == {m["name"] for m in rpc} == {"open", "locked"}
    by_name = {m["Name"]: m for m in members}
    for m in rpc:
        got = by_name[m["name"]]
        assert f"{got['Addr']}:{got['Port']}" == m["addr"]
        assert got["Status"] == m["status"] and got["Tags"] == m["tags"]
    assert by_name["open"]["Tags"] == {"role": "web", "dc": "east"}
    assert set(by_name["open"]) == RPC_MEMBER_KEYS  # Go's client.Member
    stats = opened.get_json("/v1/stats")
    info = json.loads(opened.cli("info", "-format=json").stdout)
    assert set(stats) == set(info) == {"agent", "runtime", "serf", "tags", "event_handlers"}
    assert stats["agent"] == info["agent"] == {"name": "open"}
    assert stats["tags"] == info["tags"]
    assert stats["serf"]["members"] == "2"


@ON_THE_PAIR
@pytest.mark.slow
@pytest.mark.integration
def test_coordinates_events_and_queries(pair: tuple[HttpAgent, HttpAgent]) -> None:
    opened, locked = pair
    coords = wait_for(
        lambda: (
            (c := opened.get_json("/v1/coordinates")["Coordinates"]).keys() == {"open", "locked"}
            and c
        ),
        what="both coordinates",
    )
    for coord in coords.values():
        assert len(coord["Vec"]) == 8 and set(coord) == {"Vec", "Error", "Adjustment", "Height"}

    def joined() -> dict[str, Any] | None:  # delivered after the agent's 3 s coalescing
        got: dict[str, Any] = opened.get_json("/v1/events")
        ok = any(e["Event"] == "member-join" and "locked" in e["Members"] for e in got["Events"])
        return got if ok else None

    first = wait_for(joined, what="the member-join event of 'locked'")
    assert locked.cli("event", "-coalesce=false", "deploy", "v1.2").returncode == 0
    assert locked.cli("query", "-timeout=1s", "uptime", "now").returncode == 0

    def seen() -> list[dict[str, Any]]:
        events = opened.get_json(f"/v1/events?index={first['Index']}")["Events"]
        kinds = {e["Event"] for e in events}
        return events if {"user", "query"} <= kinds else []

    events = wait_for(seen, what="the user event and the query")
    user = next(e for e in events if e["Event"] == "user")
    query = next(e for e in events if e["Event"] == "query")
    assert (user["Name"], user["Payload"], user["Coalesce"]) == ("deploy", "v1.2", False)
    assert (query["Name"], query["Payload"], query["Source"]) == ("uptime", "now", "locked")
    assert all(e["Index"] > first["Index"] for e in events)
    status, _, body = http_get(f"{opened.url}/v1/events?index=x")
    assert status == 400 and b"index" in body


@ON_THE_PAIR
@pytest.mark.slow
@pytest.mark.integration
def test_the_auth_key_is_required_when_the_agent_has_one(
    pair: tuple[HttpAgent, HttpAgent],
) -> None:
    opened, locked = pair
    for path in ("/v1/members", "/v1/stats", "/v1/coordinates", "/v1/events", "/metrics"):
        status, headers, body = http_get(locked.url + path)
        assert status == 401, path
        assert "auth key" in json.loads(body)["error"]
        assert "Bearer" in headers["WWW-Authenticate"]
        assert http_get(locked.url + path, {"Authorization": "Bearer wrong"})[0] == 401
    basic = base64.b64encode(f"anyone:{AUTH_KEY}".encode()).decode()
    for headers in (
        {"Authorization": f"Bearer {AUTH_KEY}"},
        {"X-Serf-Auth-Key": AUTH_KEY},
        {"X-Serf-Auth": AUTH_KEY},
        {"Authorization": f"Basic {basic}"},
    ):
        status, _, body = http_get(f"{locked.url}/v1/members", headers)
        assert status == 200 and len(json.loads(body)["Members"]) == 2
    # the page itself holds no data: it loads, then asks for the key
    status, headers, _ = http_get(f"{locked.url}/ui")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert http_get(f"{opened.url}/v1/members")[0] == 200  # no key, none needed


@ON_THE_PAIR
@pytest.mark.slow
@pytest.mark.integration
def test_metrics_and_the_page_are_served(pair: tuple[HttpAgent, HttpAgent]) -> None:
    opened, _ = pair
    # prometheus-client is installed ([test]): the page's agent records into a registry
    status, headers, body = http_get(f"{opened.url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"# TYPE serf_agent_" in body
    inmem = opened.get_json("/v1/metrics")["Metrics"]
    assert any(name.startswith("serf-agent.") for name in inmem)
    status, headers, page = http_get(f"{opened.url}/ui")
    assert status == 200 and b"<svg" in page and b"/v1/members" in page
    # self-contained: nothing loaded from elsewhere, and the policy forbids it
    for marker in (b"src=", b"href=", b"@import", b"//cdn", b"https:"):
        assert marker not in page, marker
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, headers, _ = http_get(f"{opened.url}/nope")
    assert status == 404


# -- the page in a browser --------------------------------------------------------------------


def _need_chromium() -> None:
    if chromium_path() is None:
        if os.environ.get("SERF_REQUIRE_BROWSER", "").strip() not in ("", "0"):
            pytest.fail("SERF_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")


@pytest.mark.integration
def test_browser_close_leaves_no_process_and_no_profile() -> None:
    """close() ends every process of the browser (renderer and helpers too) before it removes
    the profile directory: once a helper still writing there made the removal fail in CI
    ("Directory not empty: 'Default'")."""
    _need_chromium()

    async def main() -> Path:
        browser = HeadlessChromium()
        await browser.start()
        assert browser._proc is not None and browser._profile is not None
        pgid, profile = browser._proc.pid, Path(browser._profile.name)
        await browser.goto("data:text/html,<p>hi</p>")
        assert len(group_alive(pgid)) > 1  # the browser runs helper processes
        await browser.close()
        assert group_alive(pgid) == []  # at once, not eventually
        return profile

    profile = asyncio.run(asyncio.wait_for(main(), 60))
    assert not profile.exists()


_ROW_STATUS = "document.querySelector('#members tr[data-node=\"{0}\"]')?.dataset.status"


@pytest.mark.slow
@pytest.mark.integration
def test_the_page_shows_a_killed_node_failed(tmp_path: Path) -> None:
    _need_chromium()
    roles = ["web", "web", "db", "cache", "batch"]
    agents = [
        HttpAgent(f"node{i}", tmp_path, "-tag", f"role={roles[i]}", "-tag", f"dc=dc{i % 2 + 1}")
        for i in range(5)
    ]
    try:
        start_cluster(agents)
        # sent through the page's own agent: the page shows what that agent saw, and gossip
        # may take its time to bring another node's event (this is not a dissemination test)
        assert agents[0].cli("event", "-coalesce=false", "deploy", "v42").returncode == 0
        assert agents[0].cli("query", "-timeout=1s", "health").returncode == 0
        asyncio.run(asyncio.wait_for(_watch_a_failure(agents, tmp_path), 180))
    except (AssertionError, BrowserError, TimeoutError) as exc:
        logs = "\n".join(f"--- {a.name}\n{a.log.read_text()[-3000:]}" for a in agents)
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        for a in agents:
            a.stop()


async def _watch_a_failure(agents: list[HttpAgent], tmp_path: Path) -> None:
    async with HeadlessChromium(width=1280, height=860) as browser:
        try:
            await _watch_in(browser, agents, tmp_path)
        except BrowserError as exc:  # say what the page showed
            with contextlib.suppress(BrowserError):
                exc.add_note("page: " + str(await browser.evaluate("document.body.innerText")))
            raise


async def _watch_in(browser: HeadlessChromium, agents: list[HttpAgent], tmp_path: Path) -> None:
    victim = agents[-1]
    await browser.goto(f"{agents[0].url}/ui")
    all_alive = " && ".join(f"{_ROW_STATUS.format(a.name)} === 'alive'" for a in agents)
    await browser.wait_for(all_alive, timeout=30)
    # every member plotted, and the user event and query listed
    await browser.wait_for("document.querySelectorAll('#plot circle').length === 5", 60)
    await browser.wait_for(
        "['user', 'query'].every(k => document.querySelector(`tr[data-event=${k}]`))", 30
    )
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    await browser.wait_for(f"{_ROW_STATUS.format(victim.name)} === 'failed'", timeout=60)
    await browser.wait_for(
        f"document.querySelector('#plot g[data-node=\"{victim.name}\"]')"
        "?.dataset.status === 'failed'",
        timeout=10,
    )
    await browser.wait_for("!!document.querySelector('tr[data-event=\"member-failed\"]')", 30)
    text = await browser.evaluate("document.body.innerText")
    assert "failed" in text and "deploy" in text
    png = await browser.screenshot()
    shot = tmp_path / "status-page.png"
    shot.write_bytes(png)
    extra = os.environ.get("SERF_STATUS_PAGE_SCREENSHOT")
    if extra:  # e.g. docs/status-page.png
        Path(extra).write_bytes(png)
    colours = png_pixels(png)
    assert len(colours) >= 16  # not blank: text, badges, tags, the plot
    assert FAILED_RGB in colours  # the failed badge and dot are painted


def test_png_colours_of_a_blank_and_a_busy_image() -> None:
    import struct
    import zlib

    def png(rows: list[bytes], width: int) -> bytes:
        def chunk(kind: bytes, body: bytes) -> bytes:
            crc = zlib.crc32(kind + body)
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
        raw = b"".join(rows)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))

    white = [b"\x00" + b"\xff" * 12] * 4
    assert png_colours(png(white, 4), step=1) == 1
    # filter 1 (sub): each byte adds the one 3 to its left
    busy = [b"\x01" + bytes([10, 20, 30] * 4)] * 4
    assert png_colours(png(busy, 4), step=1) == 4
    # filter 2 (up) adds the row above, byte by byte, modulo 256
    up = [b"\x00" + bytes([250, 0, 7] * 4), b"\x02" + bytes([10, 1, 0] * 4)]
    assert png_pixels(png(up, 4), step=1) == {bytes([250, 0, 7]), bytes([4, 1, 7])}
    with pytest.raises(ValueError, match="not a PNG"):
        png_colours(b"GIF89a")
