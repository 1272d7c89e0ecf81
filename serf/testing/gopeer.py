"""A real Go serf agent as a test peer (installed with ``go install``, run as a subprocess).

How this works: :func:`install_go_serf` runs ``GOBIN=<cache> go install
github.com/hashicorp/serf/cmd/serf@<GO_SERF_VERSION>`` once (the binary is cached under
``$SERF_GO_CACHE`` or ``~/.cache/pyserf``). :class:`GoSerfAgent` starts ``serf agent`` bound to
a loopback address with its RPC on another loopback port, logs to a file (``-log-level=debug``),
and talks to it through the CLI: ``serf members -format=json``, ``serf join``, ``serf leave``.
Everything here is blocking (subprocess); async tests call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "PYSERF_COMMAND",
    "GO_SERF_MODULE",
    "GO_SERF_VERSION",
    "GoMember",
    "GoSerfAgent",
    "GoSerfError",
    "free_port",
    "go_available",
    "go_build_or_skip",
    "go_or_skip",
    "go_required",
    "go_serf_or_skip",
    "install_go_serf",
    "skip_or_fail_without_go",
]

GO_SERF_MODULE = "github.com/hashicorp/serf/cmd/serf"
GO_SERF_VERSION = "v0.11.0"
"""The pinned reference release (newest tag of ``go list -m -versions github.com/hashicorp/serf``
when this was written)."""


PYSERF_COMMAND = (sys.executable, "-P", "-m", "serf.cli.main")
"""Our ``serf`` command (the installed package), for :class:`GoSerfAgent`'s ``command``."""


class GoSerfError(RuntimeError):
    """The Go toolchain or the Go agent failed; the message carries its output."""


def go_available() -> bool:
    """True when a ``go`` binary is on PATH."""
    return shutil.which("go") is not None


def go_required() -> bool:
    """True when ``SERF_REQUIRE_GO`` is set: a missing Go toolchain is then a failure."""
    return os.environ.get("SERF_REQUIRE_GO", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail_without_go(reason: str) -> NoReturn:
    """Skip the current test for ``reason`` (Go missing or unusable), or fail it when
    ``SERF_REQUIRE_GO`` is set."""
    import pytest

    if go_required():
        pytest.fail(f"SERF_REQUIRE_GO=1 but {reason}")
    pytest.skip(reason)


def go_or_skip() -> str:
    """The ``go`` binary, for a test: skipped without Go, failed with ``SERF_REQUIRE_GO=1``."""
    go = shutil.which("go")
    if go is None:
        skip_or_fail_without_go("go is not installed")
    return go


def go_build_or_skip(package_dir: Path, output: Path, *, offline: bool = False) -> Path:
    """``go build -o output`` in ``package_dir``; a failed build (no module proxy, say)
    skips the test with Go's message, or fails it with ``SERF_REQUIRE_GO=1``."""
    env = dict(os.environ)
    if offline:
        env.update(GOPROXY="off", GOFLAGS="")
    proc = subprocess.run(
        [go_or_skip(), "build", "-o", str(output), "."],
        cwd=package_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        skip_or_fail_without_go(f"go build in {package_dir} failed: {proc.stderr.strip()[-400:]}")
    return output


def go_serf_or_skip() -> Path:
    """The installed Go serf binary, for a test: skipped without Go or when it cannot be
    installed (no module proxy), failed in both cases with ``SERF_REQUIRE_GO=1``."""
    go_or_skip()
    try:
        return install_go_serf()
    except (GoSerfError, subprocess.TimeoutExpired) as exc:
        skip_or_fail_without_go(f"Go serf {GO_SERF_VERSION} cannot be installed: {exc}")


def _cache_dir() -> Path:
    root = os.environ.get("SERF_GO_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "pyserf"
    )
    return Path(root) / f"gobin-{GO_SERF_VERSION}"


def install_go_serf(timeout: float = 900.0) -> Path:
    """The path of the pinned Go ``serf`` binary, installing it first if it is not cached."""
    target = _cache_dir()
    binary = target / "serf"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go")
    if go is None:
        raise GoSerfError("the go toolchain is not installed")
    target.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(target))
    proc = subprocess.run(
        [go, "install", f"{GO_SERF_MODULE}@{GO_SERF_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0 or not binary.is_file():
        raise GoSerfError(f"go install failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return binary


_PORT_FLOOR = 10000
# ports a test cannot choose: the README's library example binds 17946 and 17947 as written,
# and the tests run it verbatim beside the others
RESERVED_PORTS = frozenset({17946, 17947})
_next_port_offset = [0]


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (32768 unless configured)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free for both TCP and UDP on ``host`` right now.

    Ports come from below the kernel's ephemeral range (which outgoing connections draw from,
    so a port picked there can be taken by any client socket before the agent binds it), in a
    slice of its own per pytest-xdist worker, walked in order: two workers or two calls of one
    process never hand out the same port while the slice lasts.
    """
    top = max(_ephemeral_floor(), _PORT_FLOOR + 1000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % 8 if worker.isdigit() else 0
    width = (top - _PORT_FLOOR) // 8
    start = _PORT_FLOOR + index * width
    for _ in range(width):
        offset = (os.getpid() * 7 + _next_port_offset[0]) % width
        _next_port_offset[0] += 1
        port = start + offset
        if port in RESERVED_PORTS:
            continue
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            try:
                tcp.bind((host, port))
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise GoSerfError(f"no free TCP+UDP port on {host}")


@dataclass(frozen=True, slots=True)
class GoMember:
    """One row of ``serf members -format=json``."""

    name: str
    addr: str
    port: int
    status: str
    tags: dict[str, str]


class GoSerfAgent:
    """One ``serf agent`` subprocess on loopback. Use as a context manager or call stop().

    Go's by default; with ``command=PYSERF_COMMAND`` ours, with the same flags and CLI calls.
    A stopped agent may be started again (same ports, same log file, appended).
    """

    def __init__(
        self,
        *,
        name: str = "go1",
        host: str = "127.0.0.1",
        port: int | None = None,
        rpc_port: int | None = None,
        encrypt: bytes | None = None,
        profile: str | None = "local",
        extra_args: tuple[str, ...] = (),
        binary: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        # ``command`` runs another serf with the same flags instead (pyserf: PYSERF_COMMAND)
        self.command = list(command) if command else [str(binary or install_go_serf())]
        self.binary = Path(self.command[0])
        self.name = name
        self.host = host
        self.port = port or free_port(host)
        self.rpc_port = rpc_port or free_port(host)
        self.encrypt = encrypt
        self.profile = profile
        self.extra_args = extra_args
        self._dir = Path(tempfile.mkdtemp(prefix="gopeer-"))
        self.log_path = self._dir / "agent.log"
        self._log: Any = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bind(self) -> str:
        """``host:port`` of its gossip (UDP + TCP)."""
        return f"{self.host}:{self.port}"

    @property
    def rpc_addr(self) -> str:
        """``host:port`` of its RPC listener."""
        return f"{self.host}:{self.rpc_port}"

    def start(
        self, timeout: float = 20.0, probe_timeout: float = 2.0, *, probe: bool = True
    ) -> None:
        """Start the agent and wait until its RPC answers (each probe: a CLI ``members``).

        With ``probe=False`` it returns once the RPC port accepts connections, without running
        the CLI (a CLI process per agent is a burden when a benchmark starts a hundred).
        """
        args = [
            *self.command,
            "agent",
            f"-node={self.name}",
            f"-bind={self.bind}",
            f"-rpc-addr={self.rpc_addr}",
            "-log-level=debug",
        ]
        if self.profile:
            args.append(f"-profile={self.profile}")
        if self.encrypt is not None:
            args.append(f"-encrypt={base64.b64encode(self.encrypt).decode()}")
        args.extend(self.extra_args)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        # first a cheap TCP connect until the RPC port listens, then CLI probes, each allowed
        # the time left: on a loaded machine a CLI start alone can take longer than
        # probe_timeout, and killing each probe just before it answers would never succeed
        while not self._rpc_listens():
            if self.proc.poll() is not None:
                raise GoSerfError(f"serf agent exited early:\n{self.log_text()[-4000:]}")
            if time.monotonic() > end:
                self.stop()
                raise GoSerfError(f"serf agent RPC {self.rpc_addr} not listening")
            time.sleep(0.05)
        while probe:
            if self.proc.poll() is not None:
                raise GoSerfError(f"serf agent exited early:\n{self.log_text()[-4000:]}")
            try:
                self.members(timeout=max(probe_timeout, end - time.monotonic()))
                return
            except GoSerfError:
                if time.monotonic() > end:
                    self.stop()
                    raise
                time.sleep(0.1)

    def _rpc_listens(self) -> bool:
        try:
            with socket.create_connection((self.host, self.rpc_port), timeout=1.0):
                return True
        except OSError:
            return False

    def _cli(self, *args: str, timeout: float = 5.0) -> str:
        try:
            proc = subprocess.run(
                [*self.command, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GoSerfError(f"serf {args[0]} timed out") from exc
        if proc.returncode != 0:
            raise GoSerfError(f"serf {args[0]} failed: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def members(self, timeout: float = 5.0) -> list[GoMember]:
        """``serf members -format=json``, parsed."""
        out = self._cli("members", f"-rpc-addr={self.rpc_addr}", "-format=json", timeout=timeout)
        return [
            GoMember(m["name"], m["addr"], int(m["port"]), m["status"], dict(m.get("tags") or {}))
            for m in json.loads(out)["members"]
        ]

    def status_of(self, name: str) -> str | None:
        """The status (alive, failed, left, leaving) the agent shows for ``name``, or None."""
        for member in self.members():
            if member.name == name:
                return member.status
        return None

    def join(self, *addresses: str) -> str:
        """``serf join <addresses>``; GoSerfError when it fails."""
        return self._cli("join", f"-rpc-addr={self.rpc_addr}", *addresses, timeout=15.0)

    def kill(self) -> None:
        """SIGKILL the agent (no leave)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        """Kill the agent if it still runs and close its log (the log file stays)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Everything the agent logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> GoSerfAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
