"""serf on trio: :class:`TrioSerf`, the :class:`serf.Serf` API driven by trio.

How this works. :class:`TrioSerf` is :class:`serf.Serf` (same methods, same cores, same
effect handling: events, queries, key rotation, snapshot and keyring files) over the trio
memberlist driver (:class:`~serf.runtime.trio_driver.TrioMemberlistDriver`, handed the
serf layer's effects as the asyncio one is) and a
:class:`~serf.transport.trio_net.TrioNetTransport` (UDP + TCP, or TLS streams with
``memberlist.transport="tls"``). It replaces only the hooks :class:`serf.Serf` has for what
waits or starts tasks (the feeds' wake flag, the clock, the transport, the driver):

* trio is structured: a node lives inside a nursery. ``async with TrioSerf.create(cfg) as
  node:`` opens one for the node and shuts the node down when the block ends;
  ``await TrioSerf.create(cfg, nursery=nursery)`` runs it in the caller's nursery (call
  :meth:`shutdown` before that nursery can end);
* subscriptions and query responses wait on trio (:mod:`serf.runtime.trio_sync`);
* a lost name conflict shuts the node down from a task in the node's nursery.

Nodes on trio and on asyncio speak the same wire and join the same clusters. QUIC
(aioquic is asyncio-only) and the memory transport (the virtual-time asyncio loop) do not
run on trio: ``transport="quic"`` is refused at start with a message saying so.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Generator
from typing import Any, cast

from serf.config import MemberlistConfig, SerfConfig
from serf.core import io as sio
from serf.core.serf import ReconnectDelegate, SerfMergeDelegate
from serf.memberlist.delegates import CompositeDelegate
from serf.metrics import Metrics
from serf.runtime.driver import MemberlistDriver
from serf.runtime.query_response import QueryResponse
from serf.runtime.serf import Serf, _Given
from serf.runtime.subscription import Subscription
from serf.runtime.trio_driver import TrioMemberlistDriver
from serf.runtime.trio_sync import Flag
from serf.transport.base import Address, AddressResolver, Transport
from serf.transport.trio_net import TrioNetTransport
from serf.wire.keyring import Keyring

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    from serf._extras import missing_extra

    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["TrioSerf", "TrioSerfStartup", "trio_transport_for"]

log = logging.getLogger("serf.runtime.serf")


def trio_transport_for(config: Any) -> Transport:
    """The unstarted trio transport for a :class:`~serf.config.MemberlistConfig`
    (``transport`` ``"net"`` or ``"tls"``); ValueError for ``"quic"``."""
    if config.transport == "quic":
        raise ValueError(
            "memberlist.transport='quic' does not run on trio (aioquic is asyncio-only): "
            "use 'net' or 'tls', or run this node on asyncio"
        )
    tls = config.tls if config.transport == "tls" else None
    bind = Address(config.bind_addr, config.bind_port)
    transport: Any = TrioNetTransport(bind, stream_timeout=config.tcp_timeout, tls=tls)
    return transport  # type: ignore[no-any-return]


class _TrioSubscription(Subscription[Any]):
    _flag_type = Flag


class _TrioQueryResponse(QueryResponse):
    _flag_type = Flag


class TrioSerf(Serf):
    """One serf node on trio: the :class:`serf.Serf` API (see the module comment)."""

    def __init__(self) -> None:
        super().__init__()
        self._shut_down = Flag()  # type: ignore[assignment]
        self._nursery: trio.Nursery | None = None

    @classmethod
    def create(  # type: ignore[override]
        cls,
        config: SerfConfig,
        *,
        nursery: trio.Nursery | None = None,
        transport: Transport | None = None,
        keyring: Keyring | None = None,
        resolver: AddressResolver | None = None,
        merge_delegate: SerfMergeDelegate | None = None,
        reconnect_delegate: ReconnectDelegate | None = None,
        memberlist_delegate: CompositeDelegate | None = None,
        rng: random.Random | None = None,
        leave_on_exit: bool = False,
        metrics: Metrics | None = None,
    ) -> TrioSerfStartup:
        """Start a node as :meth:`serf.Serf.create` does, on trio.

        ``async with TrioSerf.create(cfg) as node:`` runs the node in a nursery of its own
        and shuts it down (after leaving, with ``leave_on_exit``) when the block ends;
        ``node = await TrioSerf.create(cfg, nursery=nursery)`` runs it in ``nursery``.
        ``transport`` must be a trio transport (default: a
        :class:`~serf.transport.trio_net.TrioNetTransport` for ``memberlist.transport``
        ``"net"`` or ``"tls"``). The other arguments are :meth:`serf.Serf.create`'s.
        """
        given = _Given(
            transport,
            keyring,
            resolver,
            merge_delegate,
            reconnect_delegate,
            memberlist_delegate,
            rng,
            metrics,
        )

        async def start(into: trio.Nursery) -> TrioSerf:
            node = cls()
            node._nursery = into
            try:
                await node._start(config, given)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await node._abort_start()
                raise
            node.leave_on_exit = leave_on_exit
            return node

        return TrioSerfStartup(start, nursery)

    # -- what differs from asyncio (the hooks of serf.Serf) -----------------------------

    _subscription_type = _TrioSubscription
    _query_response_type = _TrioQueryResponse

    def _default_transport(self, ml: MemberlistConfig) -> Transport:
        return trio_transport_for(ml)

    def _new_driver(self, transport: Transport, stream_timeout: float) -> MemberlistDriver:
        return TrioMemberlistDriver(
            transport, stream_timeout=stream_timeout, on_effect=self._on_effect
        )

    async def _start_transport(self, driver: MemberlistDriver) -> None:
        await cast(TrioMemberlistDriver, driver).start_transport(self._nursery)

    def _clock(self) -> float:
        return trio.current_time()

    def _shutdown_required(self, effect: sio.ShutdownRequired) -> None:
        log.error("shutting down: %s", effect.reason)
        if not self._closed and self._nursery is not None:
            self._nursery.start_soon(self.shutdown)


class TrioSerfStartup:
    """What :meth:`TrioSerf.create` returns: ``async with`` it (a nursery of its own) or,
    when a nursery was given, await it."""

    def __init__(self, start: Any, nursery: trio.Nursery | None) -> None:
        self._start = start
        self._given = nursery
        self._own: Any = None
        self._node: TrioSerf | None = None

    def __await__(self) -> Generator[Any, None, TrioSerf]:
        if self._given is None:
            raise TypeError(
                "await TrioSerf.create(...) needs nursery=; or use 'async with "
                "TrioSerf.create(...) as node'"
            )
        return self._start(self._given).__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> TrioSerf:
        nursery = self._given
        if nursery is None:
            self._own = trio.open_nursery()
            nursery = await self._own.__aenter__()
        try:
            self._node = await self._start(nursery)
        except BaseException as exc:
            if self._own is not None:
                with contextlib.suppress(BaseException):
                    await self._own.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self._node

    async def __aexit__(self, *exc: Any) -> bool | None:
        own, self._own = self._own, None
        try:
            if self._node is not None:
                await self._node.__aexit__(*exc)
        except BaseException as err:
            if own is None:
                raise
            # the nursery sees the shutdown's failure (cancels, waits), then it propagates
            if not await own.__aexit__(type(err), err, err.__traceback__):
                raise
            return True
        if own is None:
            return None
        return bool(await own.__aexit__(*exc))
