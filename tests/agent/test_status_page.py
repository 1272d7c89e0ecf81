"""The status page: its JSON, its auth rule, and /ui in a real browser (headless Chromium)
showing a 5-node cluster, then a SIGKILLed node as failed, with a screenshot that is not
blank."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest

from serf.address import Address
from serf.agent.http import StatusServer
from serf.testing.agents import cluster, run
from serf.testing.gopeer import free_port

pytestmark = pytest.mark.integration


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_json_routes_and_the_auth_key() -> None:
    async def body() -> None:
        async with cluster(2, rpc_auth="sekret") as (a, _b):
            server = StatusServer(a.agent, Address("127.0.0.1", 0), "sekret")
            bound = await server.start()
            base = f"http://{bound}"
            try:
                code, _ = await asyncio.to_thread(_get, f"{base}/v1/members")
                assert code == 403
                code, _ = await asyncio.to_thread(_get, f"{base}/ui?token=wrong")
                assert code == 403
                code, raw = await asyncio.to_thread(
                    _get, f"{base}/v1/members", {"X-Serf-Auth": "sekret"}
                )
                assert code == 200
                members = json.loads(raw)
                assert members["Self"] == "n0"
                assert [m["Status"] for m in members["Members"]] == ["alive", "alive"]
                assert len(members["Members"][0]["Coord"]["Vec"]) == 8
                code, raw = await asyncio.to_thread(_get, f"{base}/v1/stats?token=sekret")
                assert code == 200
                stats = json.loads(raw)
                assert stats["agent"]["name"] == "n0"
                assert stats["metrics"]["serf-agent.serf.member.join"]["sum"] >= 2
                code, page = await asyncio.to_thread(_get, f"{base}/ui?token=sekret")
                assert code == 200 and b"<canvas" in page and b"http" not in page.split(b"<body")[1]
                code, _ = await asyncio.to_thread(_get, f"{base}/nope?token=sekret")
                assert code == 404
            finally:
                await server.stop()

    run(body())


# -- the browser test ------------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("SERF_REQUIRE_BROWSER"):
        pytest.fail("headless Chromium is required (apt-get install -y chromium)")
    pytest.skip("headless Chromium not installed (apt-get install -y chromium)")


def _browser(chromium: str, url: str, *extra: str) -> str:
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--hide-scrollbars", "--virtual-time-budget=3000", *extra, url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return out.stdout


def _png_colours(path: Path) -> int:
    """How many distinct RGB(A) byte values the PNG's pixel rows hold (1 for a blank page)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, channels = 8, b"", 0, 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", chunk[:4])[0]
            channels = {2: 3, 6: 4}.get(chunk[9], 4)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    # unfiltered first bytes of each row are enough to tell a blank page from a drawn one
    seen = {raw[i + 1 : i + 1 + channels] for i in range(0, len(raw), stride)}
    seen |= {raw[i : i + channels] for i in range(1, min(len(raw), 200_000), channels * 7)}
    return len(seen)


@pytest.mark.slow
def test_ui_shows_a_killed_node_failed_in_a_browser(tmp_path: Path) -> None:
    chromium = _chromium()
    http_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    seed = ""
    try:
        for i in range(5):
            port, rpc = free_port(), free_port()
            cmd = [
                sys.executable, "-P", "-m", "serf.cli.main", "agent", f"-node=n{i}",
                f"-bind=127.0.0.1:{port}", f"-rpc-addr=127.0.0.1:{rpc}", "-profile=local",
                "-tag", f"role={'web' if i % 2 else 'db'}",
            ]  # fmt: skip
            if i == 0:
                cmd.append(f"-http-addr=127.0.0.1:{http_port}")
                seed = f"127.0.0.1:{port}"
            else:
                cmd += [f"-retry-join={seed}", "-retry-interval=1s"]
            log = (tmp_path / f"n{i}.log").open("wb")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{http_port}"

        def members() -> dict[str, str]:
            try:
                code, raw = _get(f"{base}/v1/members")
            except OSError:
                return {}
            if code != 200:
                return {}
            data: dict[str, Any] = json.loads(raw)
            return {m["Name"]: m["Status"] for m in data["Members"]}

        deadline = time.monotonic() + 60
        while list(members().values()) != ["alive"] * 5:
            assert time.monotonic() < deadline, f"cluster did not form: {members()}"
            time.sleep(0.5)
        dom = _browser(chromium, f"{base}/ui", "--dump-dom")
        assert dom.count('data-status="alive"') == 5, dom[:2000]

        procs[4].send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 90
        while 'data-name="n4" data-status="failed"' not in dom:
            assert time.monotonic() < deadline, "the page never showed n4 failed"
            dom = _browser(chromium, f"{base}/ui", "--dump-dom")
        assert dom.count('data-status="alive"') == 4

        shot = tmp_path / "status.png"
        _browser(chromium, f"{base}/ui", f"--screenshot={shot}", "--window-size=1280,900")
        assert shot.exists() and shot.stat().st_size > 10_000
        assert _png_colours(shot) > 5, "the screenshot is blank"
        if os.environ.get("SERF_SAVE_SCREENSHOT"):
            shutil.copy(shot, os.environ["SERF_SAVE_SCREENSHOT"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
