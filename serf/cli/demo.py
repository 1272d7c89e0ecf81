"""``serf demo``: a local demo cluster of ``serf agent`` subprocesses on loopback.

How this works: :func:`demo` picks free ports, starts ``-n`` agents (default 3) as
``python -m serf.cli.main agent`` subprocesses in their own sessions (so Ctrl-C reaches only
this process), each with the ``local`` profile and every agent after the first joining the
first. It prints each node's gossip and RPC address, polls the first agent over RPC until it
sees every node alive, prints the member list, then waits: for ``-duration`` seconds, or until
Ctrl-C (SIGINT/SIGTERM). Stopping sends SIGINT to every agent (a graceful leave), waits up to
10 s, and kills any straggler. Agent output goes to a temporary directory named on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from serf.agent.children import reset_signals
from serf.agent.flags import FlagError, FlagSet, parse_duration
from serf.cli.rpc_client import RPCClient

__all__ = ["demo"]


def _free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no free TCP+UDP port on 127.0.0.1")


async def _converged(rpc_addr: str, n: int, timeout: float) -> list[str]:
    """Poll ``rpc_addr`` until ``n`` members are alive; the member lines (last seen)."""
    end = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < end:
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            async with await RPCClient.connect(rpc_addr, timeout=2.0) as client:
                members = await asyncio.wait_for(client.members(), 2.0)
                lines = [f"{m.name}  {m.hostport}  {m.status}" for m in members]
                if sum(m.status == "alive" for m in members) >= n:
                    return lines
        await asyncio.sleep(0.3)
    return lines


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGINT)
    end = time.monotonic() + 10.0
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, end - time.monotonic()))
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def demo(args: Sequence[str]) -> int:
    """``serf demo [-n N] [-duration S]``: the exit status."""
    flags = FlagSet("demo")
    flags.integer("n", 3, "number of agents")
    flags.string("duration", "0", "run this long (seconds or 1m30s), then stop (0: until Ctrl-C)")
    try:
        values, rest = flags.parse(list(args))
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    n = int(values["n"])
    try:
        duration = float(values["duration"])
    except ValueError:
        try:
            duration = parse_duration(values["duration"])
        except FlagError as exc:
            print(f"Error: -duration: {exc}", file=sys.stderr)
            return 1
    if rest or n < 1:
        print("usage: serf demo [-n N] [-duration S]", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="serf-demo-"))
    procs: list[subprocess.Popen[bytes]] = []
    stop = {"flag": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        first_bind = ""
        rpc_addrs: list[str] = []
        for i in range(n):
            port, rpc_port = _free_port(), _free_port()
            bind, rpc_addr = f"127.0.0.1:{port}", f"127.0.0.1:{rpc_port}"
            cmd = [sys.executable, "-P", "-m", "serf.cli.main", "agent", f"-node=demo{i}"]
            cmd += [f"-bind={bind}", f"-rpc-addr={rpc_addr}", "-profile=local"]
            if first_bind:
                cmd.append(f"-retry-join={first_bind}")
                cmd.append("-retry-interval=1s")
            first_bind = first_bind or bind
            log = open(workdir / f"demo{i}.log", "wb")  # noqa: SIM115 - the child keeps it
            procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=reset_signals,  # not our ignored SIGQUIT (`serf demo &`)
                )
            )
            log.close()
            rpc_addrs.append(rpc_addr)
            print(f"demo{i}: gossip {bind}  rpc {rpc_addr}  (serf members -rpc-addr={rpc_addr})")
        print(f"logs: {workdir}", flush=True)
        lines = asyncio.run(_converged(rpc_addrs[0], n, 30.0))
        if len(lines) < n:
            print("the cluster did not converge within 30 s", file=sys.stderr)
        print("members:")
        for line in lines:
            print(f"    {line}")
        print(
            "running; press Ctrl-C to stop"
            if duration <= 0
            else f"running for {duration:g} s; Ctrl-C stops early",
            flush=True,
        )
        end = time.monotonic() + duration if duration > 0 else None
        while not stop["flag"] and (end is None or time.monotonic() < end):
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        return 0
    finally:
        print("stopping the demo agents...", flush=True)
        _stop_all(procs)
        for s, handler in old.items():
            signal.signal(s, handler)
        print("stopped.", flush=True)
