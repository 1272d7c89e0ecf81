"""The cores, the pure twins and the simulator run in WebAssembly (Pyodide under node).

``run_pyodide.mjs`` copies the working tree's pure-Python ``serf`` into Pyodide's in-memory
file system (no pip, no micropip, ``fetch`` cut; as root, in a network namespace with no
interface up) and runs ``scenario.py`` there: a 50-node memberlist cluster on a lossy virtual
network to convergence and a crash detection, and a 10-node serf cluster through a user event
and a failure. A fresh CPython interpreter runs the
same scenario with the same seed meanwhile; every figure (virtual times, event and packet counts,
per-metric sample counts, trace digests) must be equal.

Needs node and ``npm ci --prefix tests/wasm`` (the pinned ``pyodide`` npm package); without
them the test is skipped, or fails when ``SERF_REQUIRE_WASM=1`` (as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SEED = 20261207
NODES = 50


def _require(reason: str) -> None:
    if os.environ.get("SERF_REQUIRE_WASM", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"SERF_REQUIRE_WASM=1 but {reason}")
    pytest.skip(reason)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _require("node is not installed")
    assert node is not None
    if not (HERE / "node_modules" / "pyodide" / "pyodide.asm.wasm").is_file():
        _require("the pyodide npm package is missing: npm ci --prefix tests/wasm")
    return node


def _offline() -> list[str]:
    """A prefix that runs a command in a network namespace of its own (no interface up), as
    root where ``unshare`` works; else nothing (the runner's cut ``fetch`` still applies)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    return [unshare, "--net"] if probe.returncode == 0 else []


@pytest.mark.slow
@pytest.mark.integration
def test_simulated_clusters_in_pyodide_match_cpython_for_the_same_seed() -> None:
    node = _node()
    offline = _offline()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERF_")}
    with subprocess.Popen(
        [*offline, node, str(HERE / "run_pyodide.mjs"), str(SEED), str(NODES)],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            # meanwhile, CPython in a fresh interpreter: this test process may already hold
            # modules (aioquic, ssl, ...) that other tests imported, and the scenario checks
            # that the cores load none of them
            here = subprocess.run(
                [sys.executable, str(HERE / "scenario.py"), str(SEED), str(NODES)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            out, err = proc.communicate(timeout=300)
        finally:
            proc.kill()
    assert here.returncode == 0, here.stderr[-3000:]
    local = json.loads(here.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, err[-3000:]
    wasm = json.loads(out.strip().splitlines()[-1])

    runtime, inside = wasm["runtime"], wasm["pyodide"]
    assert runtime["platform"] == "emscripten" and runtime["twins"] == "pure"
    assert inside["serf_file"] == "/home/pyodide/src/serf/__init__.py"  # the copied tree
    assert {"msgpack", "cryptography", "re2", "uvloop"} <= set(inside["missing_optional"])
    assert runtime["optional_loaded"] == [] and local["runtime"]["optional_loaded"] == []
    assert inside["network_attempts"] == []
    if offline:
        assert inside["interfaces"] == [], inside["interfaces"]  # not even loopback is up

    figures = wasm["figures"]
    ml, serf = figures["memberlist"], figures["serf"]
    assert ml["nodes"] == NODES
    assert ml["converged_s"] is not None and ml["detected_s"] is not None
    assert ml["packets_lost"] > 0  # the lossy network was exercised
    assert ml["metric_counts"]["memberlist.msg.dead"] > 0
    assert serf["user_event_s"] is not None and serf["failed_s"] is not None
    assert serf["metric_counts"]["serf.events.deploy"] == serf["nodes"]
    assert figures == local["figures"]
