"""Creating a node fails cleanly, and bad arguments get clear errors (issue #10, item 4)."""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest

import serf.runtime.serf as serf_module
from serf import (
    Address,
    KeyManagerError,
    Keyring,
    Query,
    Serf,
    SerfConfig,
    local,
    loopback,
)
from serf.testing import eventually, run_virtual
from serf.transport.memory import MemoryNetwork

from .conftest import run

KEY = bytes(range(16))


def _free_port() -> int:
    """A port that is free for UDP and TCP on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
    return port


def _bindable(port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


@pytest.fixture
def no_resource_warnings() -> Iterator[None]:
    # garbage an earlier test in this worker left is collected first: its warnings (CI once:
    # an unclosed StreamWriter's "loop is closed") are not this test's leaks
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


def _net_config(name: str, port: int) -> SerfConfig:
    return SerfConfig(node_name=name, memberlist=loopback(name, bind_port=port))


# -- creation -----------------------------------------------------------------------------


def test_a_host_name_as_bind_addr_is_refused_before_anything_binds() -> None:
    with pytest.raises(ValueError, match=r"bind_addr must be an IP address.*'localhost'"):
        local("a", bind_addr="localhost")


def test_a_create_that_fails_after_binding_closes_both_sockets(
    monkeypatch: pytest.MonkeyPatch, no_resource_warnings: None
) -> None:
    port = _free_port()

    def broken_core(*args: object, **kwargs: object) -> None:
        raise RuntimeError("core construction failed")

    monkeypatch.setattr(serf_module, "SerfCore", broken_core)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="core construction failed"):
            await Serf.create(_net_config("a", port))
        assert _bindable(port)

    run(main(), 30)


@pytest.mark.parametrize("holder", ["UDP", "TCP"])
def test_an_address_in_use_names_the_address_and_the_protocol(
    holder: str, no_resource_warnings: None
) -> None:
    port = _free_port()
    kind = socket.SOCK_DGRAM if holder == "UDP" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as held:
        held.bind(("127.0.0.1", port))
        if holder == "TCP":
            held.listen()

        async def main() -> None:
            with pytest.raises(OSError) as info:
                await Serf.create(_net_config("a", port))
            assert info.value.errno == errno.EADDRINUSE
            assert f"{holder} 127.0.0.1:{port}" in str(info.value)

        run(main(), 30)
    assert _bindable(port)


def test_arguments_of_the_wrong_kind_are_type_errors() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"keyring must be a serf\.Keyring"):
            await Serf.create(_net_config("a", 0), keyring="nope")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="config must be a SerfConfig"):
            await Serf.create(local("a"))  # type: ignore[arg-type]

    run(main(), 30)


def test_a_transport_that_disagrees_with_the_configured_bind_address_is_an_error() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        where = Address("10.0.0.1", 7946)
        with pytest.raises(ValueError, match=r"transport= is bound to 10\.0\.0\.1:7946"):
            await Serf.create(_net_config("a", 0), transport=net.transport(where))
        assert not net.is_bound(where)
        # defaults defer to the transport; a matching address is fine
        cfg = SerfConfig(node_name="b", memberlist=local("b", bind_addr="10.0.0.1"))
        async with Serf.create(cfg, transport=net.transport(where)) as node:
            assert node.local_member.port == 7946

    run(main(), 30)


# -- requests ------------------------------------------------------------------------------


def _memory_config(name: str) -> SerfConfig:
    return SerfConfig(node_name=name, memberlist=local(name, retransmit_mult=4))


def test_bad_request_arguments_get_clear_errors() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        transport = net.transport(Address("10.0.0.1", 7946))
        async with Serf.create(_memory_config("a"), transport=transport) as node:
            with pytest.raises(TypeError, match=r"payload must be bytes, got str \(encode"):
                await node.user_event("deploy", "v1")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="payload must be bytes"):
                await node.query("q", "x")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="timeout must be >= 0"):
                await node.query("q", timeout=-1)
            with pytest.raises(ValueError, match=r"relay_factor must be in \[0, 255\]"):
                await node.query("q", relay_factor=256)
            with pytest.raises(ValueError, match=r"filter_tags\['role'\]: invalid regular"):
                await node.query("q", filter_tags={"role": "web("})
            with pytest.raises(TypeError, match="filter_nodes"):
                await node.query("q", filter_nodes="a")
            events = node.subscribe(kinds=(Query,))
            await node.query("q", timeout=0.5)
            query = await asyncio.wait_for(anext(events), 10)
            assert isinstance(query, Query)
            with pytest.raises(TypeError, match="payload must be bytes"):
                await query.respond("up")  # type: ignore[arg-type]

    run_virtual(main())


def test_key_manager_error_names_each_failing_node_and_those_that_did_not_answer() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        nodes = []
        for i in range(3):
            cfg = replace(_memory_config(f"n{i}"), memberlist=local(f"n{i}", retransmit_mult=4))
            transport = net.transport(Address(f"10.0.0.{i + 1}", 7946))
            nodes.append(await Serf.create(cfg, transport=transport, keyring=Keyring([KEY])))
        try:
            for node in nodes[1:]:
                await node.join(["10.0.0.1:7946"])
            await eventually(lambda: all(len(n.members("alive")) == 3 for n in nodes), 10)
            await nodes[2].shutdown()  # gone without a word: the others still list it alive
            with pytest.raises(KeyManagerError) as info:
                await nodes[0].key_manager.remove_key(KEY)
            err = info.value
            assert err.summary == "2/3 nodes reported failure"
            assert err.response.not_answered == ["n2"]
            text = str(err)
            assert text.startswith("2/3 nodes reported failure; n0: ")
            assert "; n1: " in text and "primary key" in text
            assert text.endswith("no answer from n2")
        finally:
            for node in nodes:
                await node.shutdown()

    run_virtual(main())
