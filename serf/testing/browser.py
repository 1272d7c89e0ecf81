"""Headless Chromium for tests of the agent's status page, driven over the DevTools protocol.

How this works: :class:`HeadlessChromium` starts the ``chromium`` binary (Debian's package)
with ``--remote-debugging-port=0`` in a fresh profile directory, reads the port Chromium
chose from that directory's ``DevToolsActivePort`` file, and opens the first page's DevTools
WebSocket with aiohttp (the ``http`` extra). Through it a test navigates, evaluates
JavaScript (:meth:`~HeadlessChromium.evaluate`, :meth:`~HeadlessChromium.wait_for`) and
captures PNG screenshots. Every wait is bounded; :meth:`~HeadlessChromium.close` kills the
browser's whole process group (its renderer and helper processes write to the profile
directory until they die, so the directory is removed only after they are gone).
:func:`png_colours` counts the distinct colours of a PNG (a blank page has one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

__all__ = [
    "BrowserError",
    "HeadlessChromium",
    "chromium_path",
    "group_alive",
    "png_colours",
    "png_pixels",
]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(Exception):
    """Chromium did not start, a DevTools call failed, or a wait ran out."""


def chromium_path() -> str | None:
    """The Chromium (or Chrome) binary on ``PATH``, or None."""
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class HeadlessChromium:
    """One headless browser with one page; use ``async with HeadlessChromium() as b``."""

    def __init__(self, width: int = 1280, height: int = 860, start_timeout: float = 30.0) -> None:
        self.width = width
        self.height = height
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._session: Any = None
        self._ws: Any = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> HeadlessChromium:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start Chromium and attach to its page (BrowserError when it cannot)."""
        import aiohttp

        binary = chromium_path()
        if binary is None:
            raise BrowserError("no chromium on PATH (Debian: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="pyserf-chromium-")
        profile = Path(self._profile.name)
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        port_file = profile / "DevToolsActivePort"
        loop = asyncio.get_running_loop()
        end = loop.time() + self.start_timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited with status {self._proc.returncode}")
            if loop.time() > end:
                raise BrowserError("chromium did not open its DevTools port in time")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        page = None
        while page is None:
            async with self._session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                if loop.time() > end:
                    raise BrowserError("chromium opened no page")
                await asyncio.sleep(0.1)
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call("Runtime.enable")

    async def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (BrowserError on an error or a timeout)."""
        if self._ws is None:
            raise BrowserError("the browser is not started")
        msg_id = next(self._ids)
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))

        async def answer() -> dict[str, Any]:
            while True:
                msg = await self._ws.receive()
                if msg.type.name != "TEXT":
                    raise BrowserError(f"DevTools connection ended ({msg.type.name})")
                data = json.loads(msg.data)
                if data.get("id") == msg_id:
                    if "error" in data:
                        raise BrowserError(f"{method}: {data['error']}")
                    result: dict[str, Any] = data.get("result", {})
                    return result

        try:
            return await asyncio.wait_for(answer(), timeout)
        except TimeoutError:
            raise BrowserError(f"{method}: no answer in {timeout} s") from None

    async def goto(self, url: str) -> None:
        """Navigate the page to ``url`` and wait until its document has loaded."""
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", timeout=30.0)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (BrowserError when it throws)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float, interval: float = 0.25) -> Any:
        """Poll ``expression`` until it is truthy; its value (BrowserError after ``timeout``)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            with contextlib.suppress(BrowserError):
                value = await self.evaluate(expression)
                if value:
                    return value
            if loop.time() > end:
                raise BrowserError(f"timed out after {timeout} s waiting for {expression!r}")
            await asyncio.sleep(interval)

    async def screenshot(self) -> bytes:
        """The visible page as PNG bytes."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        """Close the connection and kill the browser (idempotent)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._proc is not None:
            pgid = self._proc.pid  # start_new_session: the browser leads its own group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            loop = asyncio.get_running_loop()
            end = loop.time() + 10
            while group_alive(pgid) and loop.time() < end:
                await asyncio.sleep(0.05)
            self._proc = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None


def group_alive(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are still running (zombies excluded), from /proc."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(entry))
    return alive


class _Masks(dict[int, int]):
    """Per row length: the repeated byte mask (``0x7f...`` or ``0x80...``)."""

    def __init__(self, byte: int) -> None:
        super().__init__()
        self.byte = byte

    def __missing__(self, n: int) -> int:
        value = int.from_bytes(bytes([self.byte]) * n, "big")
        self[n] = value
        return value


_LOW7 = _Masks(0x7F)
_HIGH1 = _Masks(0x80)


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    """PNG scanline filters undone (types 0-4); one bytes object per row."""
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        if kind == 0:
            rows.append(bytes(line))
            prev = line
            continue
        if kind == 2:  # up: bytewise sum with the row above, all lanes at once
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            low, high = _LOW7[stride], _HIGH1[stride]
            line = bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big"))
            rows.append(bytes(line))
            prev = line
            continue
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = prev[i - bpp] if i >= bpp else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
            elif kind != 0:
                raise ValueError(f"bad PNG filter type {kind}")
        rows.append(bytes(line))
        prev = line
    return rows


def png_colours(data: bytes, step: int = 2) -> int:
    """How many distinct RGB colours an 8-bit RGB/RGBA PNG holds (every ``step``-th pixel of
    every ``step``-th row). ValueError for anything else."""
    return len(png_pixels(data, step))


def png_pixels(data: bytes, step: int = 2) -> set[bytes]:
    """The distinct RGB colours (3 bytes each) of an 8-bit RGB/RGBA PNG, sampled as
    :func:`png_colours` does. ValueError for another kind of PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos = 8
    idat = bytearray()
    width = height = 0
    bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour})")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if not bpp:
        raise ValueError("PNG without a header")
    rows = _unfilter(zlib.decompress(bytes(idat)), width, height, bpp)
    seen: set[bytes] = set()
    for row in rows[::step]:
        for x in range(0, width, step):
            seen.add(row[x * bpp : x * bpp + 3])
    return seen
