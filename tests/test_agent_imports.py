"""A default ``serf agent`` imports only what its configuration uses (issue 14 item 1).

Each module an agent imports costs resident memory in every agent process (docs/performance.md,
"Memory per agent"). This starts a real agent with default flags (loopback ports only) on
asyncio's loop and reads its ``sys.modules``: the optional transports, mDNS, encryption, the
HTTP API, the RPC client, the other CLI subcommands and ``ssl`` must be absent; the RPC server
and the cores, which the default agent does use, must be there (so that a probe that saw nothing
cannot pass). A TLS agent on asyncio's loop has ``ssl`` and joins another TLS agent. The event
loop's choice (``SERF_EVENT_LOOP``; unset: uvloop when installed) is checked whether or not
uvloop is installed here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from serf._extras import MissingExtraError
from serf.agent import run, runner
from serf.testing.agent_probe import probe_agent
from serf.testing.certs import TestCA
from serf.testing.gopeer import PYSERF_COMMAND, GoSerfAgent

ON_ASYNCIO = {run.EVENT_LOOP_ENV: "asyncio"}

#: what a default agent does not use, with the flag or feature that would bring it in
NOT_USED = {
    "aioquic": "-transport=quic",
    "serf.transport.quic": "-transport=quic",
    "zeroconf": "-discover (mDNS)",
    "serf.agent.mdns": "-discover (mDNS)",
    "cryptography": "-encrypt / -keyring-file",
    "aiohttp": "-http-addr",
    "serf.agent.http_api": "-http-addr",
    "serf.cli.rpc_client": "the RPC client subcommands (members, join, ...)",
    "serf.cli.admin": "serf info / keys / rtt / tags",
    "serf.cli.demo": "serf demo",
    "serf.cli.events": "serf event / query / monitor / reachability",
    "serf.cli.membership": "serf members / join / leave / force-leave",
    "serf.transport.memory": "the in-process network of tests and simulations",
    "serf.testing": "the test kit",
    "tempfile": "TLS certificates given as PEM text (and with it shutil, bz2, lzma)",
    "hmac": "secrets (os.urandom is the same source)",
    "trio": "the trio runtime",
    "ssl": "-transport=tls|quic, or uvloop (asyncio imports it unless the agent hides it)",
    "uvloop": "SERF_EVENT_LOOP=uvloop (or unset, with uvloop installed)",
    "json": "-config-file, -tags-file, -keyring-file (the RPC speaks msgpack)",
    "platform": "serf info (stats.runtime: arch and Python version)",
    "serf.transport.tls": "-transport=tls|quic",
    "serf.agent.handlers": "-event-handler (the handler runner)",
    "serf.agent.children": "-event-handler (the handler runner's child processes)",
    "serf.agent.handler_spec": "-event-handler, or an RPC stream (its event filters)",
    "zlib": "nothing: memberlist's CRC-32 is binascii's (the same checksum)",
    "base64": "-encrypt, -keyring-file, the keys commands, serf keygen",
    "serf.core.snapshot": "-snapshot",
    "serf.core.keyring_file": "-keyring-file",
    "unicodedata": "a log line quoting a non-ASCII name (serf.telemetry.go_quote)",
    # imported by asyncio but not run (serf.agent.run.DEFERRED): what would run them
    "subprocess": "-event-handler (a handler's child process)",
    "concurrent.futures": "run_in_executor (resolving a name, not an address)",
    "asyncio.staggered": "create_connection's happy eyeballs",
}

#: what a default agent does use: the probe saw a running agent
USED = ("serf.agent.rpc_server", "serf.agent.agent", "serf.core.serf", "serf.memberlist.core")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_default_agent_imports_only_what_it_uses() -> None:
    probe = probe_agent(env=ON_ASYNCIO)
    missing = [m for m in USED if m not in probe.modules]
    assert not missing, f"the probe did not see a running agent: {missing}"
    loaded = {
        m: why
        for m, why in NOT_USED.items()
        if any(x == m or x.startswith(m + ".") for x in probe.modules)
    }
    assert not loaded, f"a default agent imported modules it does not use: {loaded}"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tls_agent_on_asyncio_has_ssl_and_joins(tmp_path: Path) -> None:
    ca = TestCA()
    files = []
    for name in ("a", "b"):
        ca_file, cert, key = ca.write(tmp_path, name)
        files.append([f"-tls-ca-file={ca_file}", f"-tls-cert-file={cert}", f"-tls-key-file={key}"])
    first = GoSerfAgent(
        name="tls-a", command=PYSERF_COMMAND, profile=None, extra_args=("-transport=tls", *files[0])
    )
    try:
        first.start(timeout=60.0, probe_timeout=10.0)  # the probe's limits: CI runs loaded
        # start_join fails (exit 1, no RPC) unless the TLS handshake and push/pull work
        probe = probe_agent(["-transport=tls", *files[1], f"-join={first.bind}"], env=ON_ASYNCIO)
        assert "ssl" in probe.modules
        # the probe was killed since: its name stays (failed) for the reconnect timeout
        assert {m.name for m in first.members(timeout=60.0)} == {"tls-a", "probe1"}
    finally:
        first.stop()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_agent_runs_on_uvloop_when_installed() -> None:
    probe = probe_agent()  # SERF_EVENT_LOOP unset
    installed = importlib.util.find_spec("uvloop") is not None
    assert ("uvloop" in probe.modules) == installed


def test_event_loop_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    assert run.event_loop({}) == ("uvloop" if installed else "asyncio")
    assert run.event_loop({run.EVENT_LOOP_ENV: "asyncio"}) == "asyncio"
    assert run.event_loop({run.EVENT_LOOP_ENV: ""}) == run.event_loop({})
    with pytest.raises(ValueError, match="expected asyncio or uvloop"):
        run.event_loop({run.EVENT_LOOP_ENV: "trio"})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "uvloop" else real_find_spec(name, *a),
    )
    assert run.event_loop({}) == "asyncio"  # as without pyserf[uvloop]
    with pytest.raises(MissingExtraError, match=r"pyserf\[uvloop\]"):
        run.event_loop({run.EVENT_LOOP_ENV: "uvloop"})


def test_loop_factory() -> None:
    assert runner.loop_factory("asyncio") is None  # asyncio.run's own loop
    with pytest.raises(ValueError, match="unknown event loop"):
        runner.loop_factory("trio")
    if importlib.util.find_spec("uvloop") is None:
        return
    import uvloop

    assert runner.loop_factory("uvloop") is uvloop.new_event_loop


def test_ssl_is_hidden_from_asyncio_only_while_it_loads() -> None:
    """In a fresh interpreter: asyncio loaded with ssl hidden holds ``ssl = None`` and refuses
    TLS; ``import ssl`` afterwards works."""
    code = """
import sys
from serf.agent.run import import_asyncio
assert import_asyncio(hide_ssl=True) is True
assert "ssl" not in sys.modules, "hidden"
import asyncio, asyncio.base_events, asyncio.selector_events, asyncio.sslproto
assert asyncio.base_events.ssl is None and asyncio.sslproto.ssl is None
assert asyncio.selector_events.ssl is None
import ssl  # works again: only asyncio's modules saw it missing
async def main():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.open_connection("127.0.0.1", port, ssl=ssl.create_default_context())
    except RuntimeError as exc:
        print("refused:", exc)
    server.close()
asyncio.run(main())
assert import_asyncio(hide_ssl=True) is False  # already imported: nothing to hide
"""
    done = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "refused: " in done.stdout and "ssl" in done.stdout


def test_deferred_modules_run_when_used() -> None:
    """In a fresh interpreter: the modules asyncio imports that an agent at rest does not use
    are imported but not run (:data:`serf.agent.run.DEFERRED`); using them runs them, and the
    constants asyncio read from them at its import are the ones they define."""
    code = """
import sys, types
from serf.agent import run
run.import_asyncio(hide_ssl=True)
import asyncio
assert {n for n, m in sys.modules.items() if type(m) is run.DeferredModule} == set(run.DEFERRED)
async def main():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.strip() == b"child" and proc.returncode == 0
    assert await asyncio.get_running_loop().run_in_executor(None, sum, (1, 2)) == 3
asyncio.run(main())
import subprocess, concurrent.futures, asyncio.staggered
assert callable(asyncio.staggered.staggered_race)  # the first attribute read runs it
for name, constants in run.DEFERRED.items():
    module = sys.modules[name]
    assert type(module) is types.ModuleType, name  # run, a plain module again
    assert module.__loader__ is module.__spec__.loader and "__serf_loader__" not in vars(module)
    for key, value in constants.items():
        assert getattr(module, key) == value, (name, key)
assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
with concurrent.futures.ThreadPoolExecutor(1) as pool:
    assert pool.submit(sum, (2, 3)).result() == 5
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
