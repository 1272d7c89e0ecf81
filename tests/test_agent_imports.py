"""A default ``serf agent`` imports only what its configuration uses (issue 14 item 1).

Each module an agent imports costs resident memory in every agent process (docs/performance.md,
"Memory per agent"). This starts a real agent with default flags (loopback ports only) and
reads its ``sys.modules``: the optional transports, mDNS, encryption, the HTTP API, the RPC
client and the other CLI subcommands must be absent; the RPC server and the cores, which the
default agent does use, must be there (so that a probe that saw nothing cannot pass).
"""

from __future__ import annotations

import sys

import pytest

from serf.testing.agent_probe import probe_agent

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
}

#: what a default agent does use: the probe saw a running agent
USED = ("serf.agent.rpc_server", "serf.agent.agent", "serf.core.serf", "serf.memberlist.core")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_default_agent_imports_only_what_it_uses() -> None:
    probe = probe_agent()
    missing = [m for m in USED if m not in probe.modules]
    assert not missing, f"the probe did not see a running agent: {missing}"
    loaded = {
        m: why
        for m, why in NOT_USED.items()
        if any(x == m or x.startswith(m + ".") for x in probe.modules)
    }
    assert not loaded, f"a default agent imported modules it does not use: {loaded}"
