"""serf on trio: :class:`TrioSerf`, the :class:`serf.Serf` API driven by trio.

How this works. :class:`TrioSerf` is :class:`serf.Serf` (same methods, same cores, same
effect handling: events, queries, key rotation, snapshot and keyring files) over
:class:`TrioSerfDriver` (the serf layer's effects on the trio memberlist driver) and a
:class:`~serf.transport.trio_net.TrioNetTransport` (UDP + TCP, or TLS streams with
``memberlist.transport="tls"``). It overrides only what waits or starts tasks:

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
import os
import random
import secrets
from collections.abc import Generator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from serf.config import SerfConfig, lan
from serf.core import io as sio
from serf.core.serf import ReconnectDelegate, SerfCore, SerfMergeDelegate
from serf.core.snapshot import SnapshotState
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.io import RequestCompleted
from serf.metrics import Metrics
from serf.runtime.advertise import advertise_address
from serf.runtime.arguments import (
    check_create_arguments,
    check_transport_matches_bind,
    payload_bytes,
    query_filter_tags,
)
from serf.runtime.query_response import QueryResponse
from serf.runtime.serf import (
    Serf,
    SerfDriver,
    SerfError,
    _Files,
    _read_keyring_file,
    _read_snapshot,
)
from serf.runtime.subscription import DEFAULT_MAXSIZE, Subscription
from serf.runtime.trio_driver import TrioMemberlistDriver
from serf.runtime.trio_sync import Flag, TrioQueue
from serf.transport.base import Address, AddressResolver, Transport
from serf.transport.trio_net import TrioNetTransport
from serf.wire.keyring import Keyring

try:
    import trio
except ImportError as exc:  # trio is the trio extra
    from serf._extras import missing_extra

    raise missing_extra("trio", "trio", "the trio runtime") from exc

__all__ = ["TrioSerf", "TrioSerfDriver", "TrioSerfStartup", "trio_transport_for"]

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


class TrioSerfDriver(SerfDriver, TrioMemberlistDriver):
    """The serf layer's effects (:class:`~serf.runtime.serf.SerfDriver`) on the trio
    memberlist driver."""


class _TrioSubscription(Subscription[Any]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ready = Flag()  # type: ignore[assignment]


class _TrioQueryResponse(QueryResponse):
    def __init__(self, request_id: int, **kwargs: Any) -> None:
        super().__init__(request_id, **kwargs)
        self._queue = TrioQueue()  # type: ignore[assignment]


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
        options = dict(
            transport=transport,
            keyring=keyring,
            resolver=resolver,
            merge_delegate=merge_delegate,
            reconnect_delegate=reconnect_delegate,
            memberlist_delegate=memberlist_delegate,
            rng=rng,
            metrics=metrics,
        )

        async def start(into: trio.Nursery) -> TrioSerf:
            node = cls()
            node._nursery = into
            try:
                await node._start(config, **options)  # type: ignore[arg-type]
            except BaseException:
                with trio.CancelScope(shield=True):
                    await node._abort_start()
                raise
            node.leave_on_exit = leave_on_exit
            return node

        return TrioSerfStartup(start, nursery)

    async def _start(
        self,
        config: SerfConfig,
        *,
        transport: Transport | None = None,
        keyring: Keyring | None = None,
        resolver: AddressResolver | None = None,
        merge_delegate: SerfMergeDelegate | None = None,
        reconnect_delegate: ReconnectDelegate | None = None,
        memberlist_delegate: CompositeDelegate | None = None,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        # Serf._start with the trio driver and transport
        check_create_arguments(config, transport, keyring)
        ml = config.memberlist or lan(config.node_name)
        if config.memberlist is None:
            config = replace(config, memberlist=ml)
        if transport is None:
            transport = trio_transport_for(ml)
        if resolver is not None:
            self._resolver = resolver
        if keyring is None and config.keyring_file and os.path.exists(config.keyring_file):
            keyring = _read_keyring_file(config.keyring_file)
        snapshot: SnapshotState | None = None
        if config.snapshot_path and os.path.exists(config.snapshot_path):
            snapshot = _read_snapshot(config.snapshot_path, config.rejoin_after_leave)
        self._files = _Files(config.snapshot_path, config.keyring_file)
        driver = TrioSerfDriver(transport, self, stream_timeout=ml.tcp_timeout)
        self._driver = driver
        driver.metrics = metrics
        await driver.start_transport(self._nursery)
        check_transport_matches_bind(ml, transport.local_address)
        bound = transport.local_address
        advertise = advertise_address(bound.host, bound.port, ml.advertise_addr, ml.advertise_port)
        core = SerfCore(
            config,
            rng=rng or random.Random(),
            token_bytes=secrets.token_bytes,
            keyring=keyring,
            advertise=advertise,
            snapshot=snapshot,
            merge_delegate=merge_delegate,
            reconnect_delegate=reconnect_delegate,
            memberlist_delegate=memberlist_delegate,
        )
        self._core = core
        self._files.open()
        driver.attach(core)
        await driver.start()
        if core.rejoin_addresses:
            driver._spawn(self._rejoin(core.rejoin_addresses))

    async def query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        filter_nodes: Sequence[str] = (),
        filter_tags: dict[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float = 0.0,
    ) -> QueryResponse:
        """:meth:`serf.Serf.query` on trio (``deadline`` is on trio's clock)."""
        data = payload_bytes(payload)
        tags = query_filter_tags(filter_tags)
        if isinstance(filter_nodes, str):
            raise TypeError("filter_nodes must be a sequence of node names, not a str")
        if not isinstance(timeout, int | float) or not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds (0: the default), got {timeout!r}")
        if isinstance(relay_factor, bool) or not isinstance(relay_factor, int):
            raise ValueError(f"relay_factor must be an integer, got {relay_factor!r}")
        if not 0 <= relay_factor <= 255:
            raise ValueError(f"relay_factor must be in [0, 255], got {relay_factor}")
        driver = self._driver
        if driver is None or self._closed:
            raise SerfError("serf is shut down")
        rid = driver.new_request_id()
        response = _TrioQueryResponse(
            rid,
            deadline=trio.current_time() + (timeout or self.default_query_timeout()),
            asked=self._query_targets(filter_nodes, tags),
            on_close=self._forget_query,
        )
        self._queries[rid] = response
        request = sio.QueryRequest(
            rid, name, data, tuple(filter_nodes), tags, request_ack, relay_factor, float(timeout)
        )
        effects = await driver.submit(request)  # type: ignore[arg-type]
        for effect in effects:
            if isinstance(effect, RequestCompleted) and effect.request_id == rid and effect.error:
                self._queries.pop(rid, None)
                raise SerfError(effect.error)
        return response

    def subscribe(
        self, *, kinds: Iterable[type[Any]] = (), maxsize: int = DEFAULT_MAXSIZE
    ) -> Subscription[Any]:
        """:meth:`serf.Serf.subscribe` on trio."""
        sub = _TrioSubscription(
            kinds=kinds, maxsize=maxsize, on_close=self._unsubscribe, name=self._name()
        )
        if self._closed:
            sub.end()
        else:
            self._subscribers.append(sub)
        return sub

    def _on_effect(self, effect: Any) -> bool:
        if isinstance(effect, sio.ShutdownRequired):
            log.error("shutting down: %s", effect.reason)
            if not self._closed and self._nursery is not None:
                self._nursery.start_soon(self.shutdown)
            return True
        return super()._on_effect(effect)


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
