"""Memory of agents at rest: pyserf's ``serf agent`` with default flags against Go serf's.

Run::

    python bench/bench_agent_memory.py            # the table (a few minutes)
    python bench/bench_agent_memory.py --modules  # also the modules the running agent loaded
    python bench/bench_agent_memory.py --variant before:PYTHONPATH=/tmp/old-tree \\
        --variant uvloop:SERF_EVENT_LOOP=uvloop   # other agents beside ours, same run

Three figures per process, in MiB (:func:`serf.testing.agent_probe.memory_mib`): RSS (every
page it maps and has in memory, shared or not), PSS (each page divided by the number of
processes mapping it), USS (pages only it maps: what ending it gives back) and anonymous
memory (heap and stacks, backed by no file: no other agent can share it, whatever runs on the
host; RSS minus it is the executable and libraries, which agents on one host share).

Steps, each a fresh process (median of ``--runs``):

* ``python -c pass``: the interpreter alone (``-P``, the same flags as the agent);
* ``import asyncio``: the event loop's standard library, and the same with ``ssl`` hidden
  (as a ``serf agent`` without TLS on asyncio's loop imports it, :mod:`serf.agent.run`);
* the agent's modules (``serf.cli.main``, ``serf.agent.runner`` and what they import) with
  asyncio imported that way, the same without deferring the modules asyncio imports and an
  agent at rest does not use (:data:`serf.agent.run.DEFERRED`), and with uvloop (which
  imports ``ssl``);
* agents, ``serf agent`` with default flags (only ``-node``, ``-bind``, ``-rpc-addr`` and
  ``-log-level`` set, loopback ports), one kind at a time: 1 agent (median of ``--runs``),
  then ``--fleet`` agents running at once (median over the agents), then ``--fleet`` agents
  joined into one cluster after ``--events`` user events (100-byte payloads, sent through the
  first agent's RPC by one client for every kind: Go's CLI when installed); each is read once
  every agent of the group answers RPC (and the events went out) and ``--settle`` seconds
  later. Go's heap grows with what its agent has done (its garbage collector keeps what it
  took), so an agent that never joined flatters Go. Kinds: ours (on the loop
  :func:`serf.agent.run.event_loop` picks here; ``SERF_EVENT_LOOP`` chooses), each
  ``--variant`` (ours with extra environment variables) and Go serf v0.11.0's, when Go serf
  is installed or installable (see :mod:`serf.testing.gopeer`).

Agents on one host share the pages of their executable and shared libraries (for Go one
static binary; for pyserf the interpreter, ``libpython``, the C extensions and OpenSSL when
loaded), never their anonymous memory. PSS and USS count a page as shared with any process
on the host that maps the same file, other Python processes or Go agents not started here
included, so they depend on the host; the anonymous column does not.

The agents read serf's bytecode from ``__pycache__``, as an installed pyserf does (pip
compiles it at install time): the bench compiles it first (each ``--variant`` tree on its
``PYTHONPATH`` too), since with ``PYTHONDONTWRITEBYTECODE`` set and no bytecode every agent
would compile its modules from source at start, which leaves ~2.4 MiB more RSS behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from serf.agent.run import event_loop
from serf.testing.agent_probe import Memory, memory_mib, probe_agent
from serf.testing.gopeer import (
    GO_SERF_VERSION,
    PYSERF_COMMAND,
    GoSerfAgent,
    GoSerfError,
    install_go_serf,
)


def compile_bytecode(paths: Sequence[str] = ()) -> None:
    """Write the bytecode of the serf package in use and of ``paths`` (directories holding
    a ``serf`` package), as ``pip install`` does."""
    import compileall

    import serf

    dirs = [Path(serf.__file__).parent, *(Path(p) / "serf" for p in paths)]
    for directory in dirs:
        if directory.is_dir():
            compileall.compile_dir(directory, quiet=1)


def memory_after(code: str) -> Memory:
    """Memory of a fresh ``python -P -c code`` that then waits on stdin."""
    script = code + "\nimport sys; print('ok', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ok", line
    mem = memory_mib(proc.pid)
    proc.stdin.close()
    proc.wait(timeout=10)
    return mem


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``env`` added, restored afterwards (the agents inherit it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fleet_memory(
    count: int,
    command: Sequence[str] | None,
    env: Mapping[str, str],
    settle: float,
    events: int = 0,
    cli: Sequence[str] = (),
) -> list[Memory]:
    """Start ``count`` agents of one kind (``command``: None is Go's), wait for all RPCs and
    ``settle`` seconds, read each one's memory, stop them. With ``events``, the agents join
    the first one and ``events`` user events go out through its RPC (``cli``: the serf command
    line that sends them) before the settling."""
    agents = [GoSerfAgent(name=f"mem{i}", command=command, profile=None) for i in range(count)]
    if events:
        for agent in agents[1:]:
            agent.extra_args = (f"-join={agents[0].bind}",)
    try:
        with environment(env):
            for agent in agents:
                agent.start(timeout=120.0, probe_timeout=20.0)
        for i in range(events):
            subprocess.run(
                [*cli, "event", f"-rpc-addr={agents[0].rpc_addr}", f"mem-event-{i}", "x" * 100],
                check=True,
                capture_output=True,
                timeout=60,
            )
        time.sleep(settle)
        pids = [agent.proc.pid for agent in agents if agent.proc is not None]
        return [memory_mib(pid) for pid in pids]
    finally:
        for agent in agents:
            agent.stop()


def median(values: Sequence[Memory]) -> Memory:
    """The median of each figure."""
    return Memory(
        statistics.median(m.rss for m in values),
        statistics.median(m.pss for m in values),
        statistics.median(m.uss for m in values),
        statistics.median(m.anon for m in values),
    )


_HIDDEN = "from serf.agent.run import import_asyncio; import_asyncio(hide_ssl=True)"
STEPS = (
    ("python -c pass", "pass"),
    ("import asyncio", "import asyncio"),
    ("import asyncio with ssl hidden", "import sys; sys.modules['ssl'] = None; import asyncio"),
    ("the agent's modules, ssl hidden", f"{_HIDDEN}; import serf.cli.main, serf.agent.runner"),
    (
        "the same, nothing deferred",
        "from serf.agent import run; run.DEFERRED.clear(); run.import_asyncio(hide_ssl=True); "
        "import serf.cli.main, serf.agent.runner",
    ),
    ("the agent's modules and uvloop", "import uvloop, serf.cli.main, serf.agent.runner"),
)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``label:KEY=VALUE,KEY=VALUE`` -> (label, env)."""
    label, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return label, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--fleet", type=int, default=16, help="agents of each kind at once")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE,...",
        help="also our agent with these environment variables (repeatable)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=20,
        help="also the fleet joined into one cluster after this many user events (0: not)",
    )
    parser.add_argument("--modules", action="store_true", help="print the agent's modules")
    args = parser.parse_args()
    try:
        go_bin: Path | None = install_go_serf()
    except (GoSerfError, subprocess.TimeoutExpired) as exc:
        print(f"Go serf not measured: {exc}", file=sys.stderr)
        go_bin = None
    variants = [parse_variant(v) for v in args.variant]
    compile_bytecode(
        [p for _, env in variants for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    rows: dict[str, Memory] = {}
    for what, code in STEPS:
        rows[what] = median([memory_after(code) for _ in range(args.runs)])
    kinds: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
        (f"pyserf ({event_loop()})", PYSERF_COMMAND, {})
    ]
    kinds += [(label, PYSERF_COMMAND, env) for label, env in variants]
    if go_bin is not None:
        kinds.append((f"Go serf {GO_SERF_VERSION}", (str(go_bin),), {}))
    go_rows: dict[str, Memory] = {}
    agent_rows: list[tuple[str, str, Memory]] = []
    cli = (str(go_bin),) if go_bin is not None else PYSERF_COMMAND  # one RPC client for all
    groups = [(1, 0), (args.fleet, 0)] + ([(args.fleet, args.events)] if args.events else [])
    for count, events in groups:
        group = f"{count}, joined, {events} events" if events else str(count)
        for label, command, env in kinds:
            runs = args.runs if count == 1 else 1
            samples = [
                m
                for _ in range(runs)
                for m in fleet_memory(count, command, env, args.settle, events, cli)
            ]
            mem = median(samples)
            agent_rows.append((label, group, mem))
            if command is not None and command[0] == str(go_bin):
                go_rows[group] = mem
    probe = probe_agent(settle=args.settle)
    print(f"Python {sys.version.split()[0]}, {len(probe.modules)} modules in the running agent")
    print("| step | agents at once | RSS | PSS | USS | anonymous (MiB per agent, median) |")
    print("|---|---|---|---|---|---|")
    for what, mem in rows.items():
        print(f"| `{what}` | 1 | {mem.rss:.1f} | {mem.pss:.1f} | {mem.uss:.1f} | {mem.anon:.1f} |")
    for label, group, mem in agent_rows:
        go = go_rows.get(group)
        cells = [
            f"{value:.1f} ({value / base:.2f}x)" if go else f"{value:.1f}"
            for value, base in zip(
                (mem.rss, mem.pss, mem.uss, mem.anon),
                (go.rss, go.pss, go.uss, go.anon) if go else (1.0,) * 4,
                strict=True,
            )
        ]
        print(f"| {label} agent | {group} | {' | '.join(cells)} |")
    if args.modules:
        print(" ".join(sorted(probe.modules)))


if __name__ == "__main__":
    main()
