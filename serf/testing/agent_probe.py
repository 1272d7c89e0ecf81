"""What a running ``serf agent`` process imported, and its resident memory.

How this works: :func:`probe_agent` starts our ``serf agent`` as a subprocess through
:class:`~serf.testing.gopeer.GoSerfAgent` (loopback ports, the flags given, nothing else),
waits until its RPC answers, reads its RSS from ``/proc/<pid>/status`` and asks it for its
``sys.modules``: the command runs through a small wrapper around ``serf.cli.main`` that
writes the module names to a file once a trigger file appears. Only the modules loaded after
the interpreter started count (and not those imported but not run,
:class:`serf.agent.run.DeferredModule`): what the interpreter and its startup hooks brought (a
``coverage`` process-start hook imports ``tempfile``, say) is not the agent's doing. The
wrapper adds a thread and a few lines to the process; nothing else differs from
``python -m serf.cli.main agent``.
Linux only (``/proc``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from serf.testing.gopeer import GoSerfAgent

__all__ = ["AgentProbe", "Memory", "memory_mib", "probe_agent", "rss_mib"]

_WRAPPER = """
import sys
STARTUP = frozenset(sys.modules)  # the interpreter's and its startup hooks' (coverage's, say)
import os, threading, time
trigger, out = os.environ["SERF_PROBE_TRIGGER"], os.environ["SERF_PROBE_OUT"]
def dump():
    end = time.monotonic() + 300
    while not os.path.exists(trigger) and time.monotonic() < end:
        time.sleep(0.05)
    with open(out + ".tmp", "w") as f:
        # a module imported but not run (serf.agent.run.DeferredModule) is not loaded
        loaded = [n for n, m in list(sys.modules.items()) if type(m).__name__ != "DeferredModule"]
        f.write("\\n".join(sorted(set(loaded) - STARTUP)))
    os.rename(out + ".tmp", out)
if sys.argv[1:2] == ["agent"]:
    threading.Thread(target=dump, daemon=True).start()
from serf.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True, slots=True)
class AgentProbe:
    """What :func:`probe_agent` saw: the modules the agent loaded after the interpreter's
    start-up, and its resident memory (MiB)."""

    modules: frozenset[str]
    rss_mib: float


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (``VmRSS``)."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    if match is None:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return int(match.group(1)) / 1024


@dataclass(frozen=True, slots=True)
class Memory:
    """A process's memory in MiB: resident (RSS), proportional (PSS: each page shared with
    other processes counted as its share), unique (USS: pages no other process maps) and
    anonymous (its heap and stacks, not backed by a file: what no other agent can share;
    ``rss - anon`` is the mapped files, the executable and its libraries)."""

    rss: float
    pss: float
    uss: float
    anon: float


def memory_mib(pid: int) -> Memory:
    """RSS, PSS and USS of process ``pid`` in MiB, from ``/proc/<pid>/smaps_rollup``.

    USS is ``Private_Clean + Private_Dirty``: what ending the process would give back. PSS
    depends on what else runs on the host (a page shared with one other process counts half).
    """
    fields = dict(
        (m.group(1), int(m.group(2)))
        for m in re.finditer(
            r"^(\w+):\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M
        )
    )
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return Memory(
        fields["Rss"] / 1024, fields["Pss"] / 1024, uss / 1024, fields["Anonymous"] / 1024
    )


def probe_agent(
    extra_args: Sequence[str] = (),
    *,
    settle: float = 0.0,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> AgentProbe:
    """Start ``serf agent`` (loopback bind and RPC ports, ``extra_args``, ``env`` added to
    its environment), wait for its RPC, then ``settle`` seconds; return its modules and RSS.
    The agent is killed afterwards."""
    with tempfile.TemporaryDirectory(prefix="serf-probe-") as tmp:
        wrapper = Path(tmp) / "serf_probe.py"
        wrapper.write_text(_WRAPPER)
        trigger = Path(tmp) / "trigger"
        out = Path(tmp) / "modules.txt"
        added = {"SERF_PROBE_TRIGGER": str(trigger), "SERF_PROBE_OUT": str(out), **(env or {})}
        saved = {k: os.environ.get(k) for k in added}
        os.environ.update(added)
        agent = GoSerfAgent(
            name="probe1",
            command=(sys.executable, "-P", str(wrapper)),
            profile=None,
            extra_args=tuple(extra_args),
        )
        try:
            agent.start(timeout=timeout, probe_timeout=min(10.0, timeout))
            time.sleep(settle)
            assert agent.proc is not None
            rss = rss_mib(agent.proc.pid)
            trigger.touch()
            end = time.monotonic() + timeout
            while not out.exists():
                if time.monotonic() > end or agent.proc.poll() is not None:
                    raise RuntimeError(f"the agent did not list its modules:\n{agent.log_text()}")
                time.sleep(0.05)
            modules = frozenset(out.read_text().split())
        finally:
            agent.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return AgentProbe(modules, rss)
