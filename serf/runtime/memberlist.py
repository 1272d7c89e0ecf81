"""The public async API of memberlist: :class:`Memberlist`.

How this works: :meth:`Memberlist.create` builds a transport (a :class:`NetTransport` on
``config.bind_addr:bind_port`` unless one is given), starts it, works out the address to
advertise, builds the sans-IO :class:`~serf.memberlist.core.MemberlistCore` (codec, label,
compression and encryption come from the config; the keyring from ``keyring`` or
``config.secret_key``) and hands both to a :class:`~serf.runtime.driver.MemberlistDriver`,
which owns the core from then on. Every method here turns into an input for the core
(``JoinRequest``, ``LeaveRequest``, ``SendReliable``, ...) and, where the caller needs an
answer, waits for the matching ``RequestCompleted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from serf.address import Address, AddressLike
from serf.config import MemberlistConfig
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.io import (
    JoinRequest,
    LeaveRequest,
    SendBestEffort,
    SendReliable,
    UpdateNodeRequest,
)
from serf.memberlist.state import Node
from serf.runtime.advertise import advertise_address
from serf.runtime.driver import DriverStats, EventSubscription, MemberlistDriver
from serf.transport.base import AddressResolver, DnsResolver, Transport
from serf.wire.keyring import Keyring

__all__ = ["JoinError", "Memberlist"]

log = logging.getLogger(__name__)


class JoinError(ConnectionError):
    """No address given to :meth:`Memberlist.join` could be joined; ``errors`` says why."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("failed to join any node: " + "; ".join(self.errors))


class Memberlist:
    """A running memberlist node. Build it with :meth:`create`; end it with :meth:`shutdown`."""

    def __init__(self, config: MemberlistConfig, driver: MemberlistDriver, core: Any) -> None:
        """Use :meth:`create`."""
        self.config = config
        self._driver = driver
        self._core = core
        self._resolver: AddressResolver = DnsResolver(default_port=config.bind_port or 7946)
        self._left = False

    @classmethod
    async def create(
        cls,
        config: MemberlistConfig,
        *,
        transport: Transport | None = None,
        keyring: Keyring | None = None,
        delegate: CompositeDelegate | None = None,
        resolver: AddressResolver | None = None,
        rng: random.Random | None = None,
    ) -> Memberlist:
        """Bind, start and return a node that is alive on its own (call :meth:`join` next).

        ``transport`` defaults to the one ``config.transport`` names (see
        :func:`~serf.transport.select.transport_for`) on ``config.bind_addr:config.bind_port``.
        ``keyring`` holds the encryption keys (the core adds ``config.secret_key`` as
        primary; encryption is off when neither is given).
        ``resolver`` turns the names given to :meth:`join` into addresses (default: DNS);
        ``rng`` seeds the core.
        """
        from serf.memberlist.core import MemberlistCore
        from serf.transport.select import transport_for

        if transport is None:
            transport = transport_for(config)
        driver = MemberlistDriver(transport, stream_timeout=config.tcp_timeout)
        await driver.start_transport()
        try:
            bound = transport.local_address
            advertise = advertise_address(
                bound.host, bound.port, config.advertise_addr, config.advertise_port
            )
            core = MemberlistCore(
                config,
                rng=rng if rng is not None else random.Random(secrets.randbits(64)),
                token_bytes=secrets.token_bytes,
                keyring=keyring,
                delegate=delegate,
                advertise=advertise,
            )
            driver.attach(core)
            await driver.start()
        except BaseException:
            await driver.stop(shutdown_input=False)
            raise
        node = cls(config, driver, core)
        if resolver is not None:
            node._resolver = resolver
        return node

    # -- views ---------------------------------------------------------------------------

    @property
    def local_node(self) -> Node:
        """This node as the cluster sees it."""
        node: Node = self._core.local_node
        return node

    @property
    def address(self) -> Address:
        """The address this node advertises."""
        node = self.local_node
        return Address(_ip_text(node.addr), node.port)

    def members(self) -> list[Node]:
        """The members this node believes alive (suspect ones included), itself too."""
        return list(self._core.members())

    def all_members(self) -> list[Node]:
        """Every entry of the state table: alive, suspect, dead and left (not yet reaped)."""
        return list(self._core.state.members())

    def num_members(self) -> int:
        """``len(members())`` without building the list."""
        return int(self._core.num_members())

    @property
    def health_score(self) -> int:
        """Lifeguard's awareness score (0 is healthy)."""
        return int(self._core.health_score)

    @property
    def stats(self) -> DriverStats:
        """The driver's counters (inputs, effects, drops, errors)."""
        return self._driver.stats

    @property
    def core(self) -> Any:
        """The sans-IO core (for inspection; feed it only through this object)."""
        return self._core

    # -- actions -------------------------------------------------------------------------

    async def _resolve(self, target: str | AddressLike) -> list[Address]:
        if not isinstance(target, str):
            return [Address.of(target)]
        found = await self._resolver.resolve(target)
        return [Address.of(a) for a in found]

    async def join(self, addresses: Sequence[str | AddressLike]) -> int:
        """Push/pull with every address; returns how many worked.

        Names go through the resolver. Raises :class:`JoinError` (listing every error) only
        when none worked.
        """
        resolved: list[Address] = []
        errors: list[str] = []
        for target in addresses:
            try:
                for addr in await self._resolve(target):
                    if addr not in resolved:
                        resolved.append(addr)
            except (OSError, LookupError, ValueError) as exc:
                errors.append(f"failed to resolve {target}: {exc}")
        if not resolved:
            raise JoinError(errors or ["no addresses given"])
        done = await self._driver.request(lambda rid: JoinRequest(rid, tuple(resolved)))
        joined = int(done.result or 0)
        if joined == 0:
            raise JoinError(errors + list(done.errors or ([done.error] if done.error else [])))
        for err in (*errors, *done.errors):
            log.debug("join: %s", err)
        return joined

    async def leave(self, timeout: float = 5.0) -> None:
        """Broadcast our leave and wait (up to ``timeout``) until it went out."""
        if self._left:
            return
        self._left = True
        done = await asyncio.wait_for(
            self._driver.request(lambda rid: LeaveRequest(rid, timeout)), timeout + 1.0
        )
        if done.error:
            raise TimeoutError(done.error)

    async def update_node(self, timeout: float = 5.0) -> None:
        """Re-read the node meta from the delegate and gossip it."""
        done = await asyncio.wait_for(
            self._driver.request(lambda rid: UpdateNodeRequest(rid, timeout)), timeout + 1.0
        )
        if done.error:
            raise TimeoutError(done.error)

    async def shutdown(self) -> None:
        """Stop without leaving: the others will find us dead. Idempotent."""
        await self._driver.stop()

    async def send_reliable(self, addr: AddressLike, payload: bytes) -> None:
        """Send a user message over a stream; raises ConnectionError if it did not go out."""
        errors = await self._driver.submit_and_wait_streams(
            SendReliable(Address.of(addr), bytes(payload))
        )
        if errors:
            raise ConnectionError("; ".join(errors))

    def send_best_effort(self, addr: AddressLike, payload: bytes) -> None:
        """Send a user message in one packet (fire and forget)."""
        self._driver.submit_nowait(SendBestEffort(Address.of(addr), bytes(payload)))

    def events(self) -> EventSubscription:
        """A new async iterator of NodeJoined / NodeLeft / NodeUpdated (own bounded queue).

        It sees events from the moment of this call; it ends at shutdown or on ``close()``.
        """
        return self._driver.subscribe()

    async def __aenter__(self) -> Memberlist:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.shutdown()


def _ip_text(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.decode("ascii", "replace")
