"""The cores and the simulator need none of the compiled or optional dependencies.

Pyodide (WebAssembly) cannot load uvloop, aioquic or (without its own build) compiled msgpack
and cryptography, and has no ``ssl`` socket layer. This test runs, in a child interpreter
where importing any of those fails, a 30-node simulated cluster to convergence and a crash
detection on the pure twins, and checks the same figures as this interpreter computes for the
same seed. Encryption (cryptography), the go codec (msgpack) and regex filters (google-re2) are
then imported on first use only. This is the import-level half of the WebAssembly claim;
tests/wasm/test_pyodide.py runs the cores and the simulator inside Pyodide itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

BLOCKED = ("msgpack", "cryptography", "uvloop", "aioquic", "ssl", "_ssl", "zeroconf", "re2")

SIMULATION = textwrap.dedent(
    """
    import json
    from serf.memberlist.state import NodeState
    from serf.testing.sim import Simulation

    sim = Simulation(1234)
    sim.add_node("n0")
    for i in range(1, 30):
        sim.add_node(f"n{i}", join=["n0"])
    converged = sim.run_until_converged(lambda s: s.all_alive(), timeout=120.0)
    sim.crash("n7")
    detected = sim.run_until_converged(
        lambda s: all(n.state_of("n7") is NodeState.DEAD for n in s.live_nodes()),
        timeout=120.0,
    )
    print(json.dumps({"converged": converged, "detected": detected, "now": sim.now}))
    """
)

BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, sys
    BLOCKED = {BLOCKED!r}
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked for this test: " + name)
            return None
    sys.meta_path.insert(0, Blocker())
    """
)


def _run(code: str) -> dict[str, float]:
    env = {**os.environ, "SERF_NO_EXTENSIONS": "1"}
    env.pop("SERF_REQUIRE_EXTENSIONS", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_cores_and_simulator_run_without_optional_dependencies() -> None:
    blocked = _run(BLOCKER + SIMULATION + "\nassert not {m for m in BLOCKED if m in sys.modules}\n")
    plain = _run(SIMULATION)
    assert blocked["converged"] is not None and blocked["detected"] is not None
    assert blocked == plain  # same seed, same run, with or without the optional modules
