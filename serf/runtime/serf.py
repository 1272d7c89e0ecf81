"""The async facade of serf: :class:`Serf`, over the sans-IO :class:`serf.core.serf.SerfCore`.

How this works. A :class:`Serf` runs its :class:`~serf.core.serf.SerfCore` on a plain
:class:`~serf.runtime.driver.MemberlistDriver` (one owner task, one timer, the transport)
and hands the driver one callback, :meth:`Serf._on_effect`, for the serf layer's effects
(composition: the driver knows nothing of serf): member, user-event and query events go to
the subscribers of :meth:`Serf.events`; acks and responses of a query we started go to that
query's :class:`QueryResponse`; snapshot lines are appended to the snapshot file (the only
file IO, here and not in the core); a changed keyring is written to the keyring file; a lost
name conflict shuts the node down. :class:`Serf` turns each API call into one core input and
waits for its ``RequestCompleted`` (:meth:`Serf._complete`, the one path every request
takes, :class:`KeyManager`'s and :meth:`Serf.query`'s included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar, overload

from serf.address import Address
from serf.config import MemberlistConfig, SerfConfig, lan
from serf.core import io as sio
from serf.core.filters import compile_go
from serf.core.serf import ReconnectDelegate, SerfCore, SerfMergeDelegate
from serf.core.state import SerfState
from serf.memberlist.delegates import CompositeDelegate
from serf.memberlist.io import RequestCompleted
from serf.metrics import Metrics
from serf.runtime.advertise import advertise_address
from serf.runtime.arguments import (
    check_create_arguments,
    check_transport_matches_bind,
    is_ip,
    payload_bytes,
    query_filter_tags,
)
from serf.runtime.driver import MemberlistDriver
from serf.runtime.query_response import QueryAck, QueryResponse, QueryResponseItem
from serf.runtime.subscription import DEFAULT_MAXSIZE, Subscription
from serf.transport.base import AddressLike, AddressResolver, DnsResolver, Transport
from serf.transport.select import transport_for
from serf.wire.keyring import Keyring
from serf.wire.messages import Coordinate

if TYPE_CHECKING:  # imported on use: a node without a snapshot or keyring file never loads them
    from serf.core.snapshot import SnapshotState

__all__ = [
    "Serf",
    "SerfError",
    "KeyManagerError",
    "Query",
    "QueryAck",
    "QueryResponseItem",
    "QueryResponse",
    "KeyManager",
    "Event",
    "SerfStartup",
]

log = logging.getLogger(__name__)


class SerfError(Exception):
    """An operation of the serf layer failed; the text is serf's (Go's where it has one)."""


class KeyManagerError(SerfError):
    """A key operation failed on some members.

    ``summary`` is Go's text (``"1/3 nodes reported failure"``); ``str()`` adds what each
    failing node said and which nodes did not answer; ``response`` holds every answer.
    """

    def __init__(self, message: str, response: sio.KeyResponse) -> None:
        details = [f"{node}: {text}" for node, text in sorted(response.messages.items())]
        if response.not_answered:
            details.append("no answer from " + ", ".join(response.not_answered))
        super().__init__("; ".join([message, *details]))
        self.summary = message
        self.response = response


class Query:
    """A query delivered to us; answer it once with :meth:`respond` before its deadline."""

    def __init__(self, serf: Serf, handle: sio.QueryHandle) -> None:
        self._serf = serf
        self.handle = handle

    @property
    def name(self) -> str:
        """The query's name."""
        return self.handle.name

    @property
    def payload(self) -> bytes:
        """The query's payload."""
        return self.handle.payload

    @property
    def ltime(self) -> int:
        """The query's Lamport time."""
        return self.handle.ltime

    @property
    def source_node(self) -> str:
        """The node that asked."""
        return self.handle.source_node

    async def respond(self, payload: bytes) -> None:
        """Send our response (SerfError: already sent, past the deadline, too large)."""
        data = payload_bytes(payload)
        await self._serf._request(lambda rid: sio.RespondRequest(rid, self.handle, data))

    def __repr__(self) -> str:
        return f"Query(name={self.name!r}, ltime={self.ltime}, from={self.source_node!r})"


Event: TypeAlias = (
    sio.MemberJoined
    | sio.MemberLeft
    | sio.MemberFailed
    | sio.MemberUpdated
    | sio.MemberReaped
    | sio.UserEventReceived
    | Query
)
"""What :meth:`Serf.subscribe` and :meth:`Serf.events` yield."""

E1 = TypeVar("E1", bound=Event)
E2 = TypeVar("E2", bound=Event)


#: feeds one request (made from its request id) to a node; its ``RequestCompleted``
RequestRunner: TypeAlias = Callable[[Callable[[int], Any]], Awaitable[RequestCompleted]]


class KeyManager:
    """Cluster-wide key rotation through the ``_serf_*-key`` internal queries.

    ``run`` feeds a request to the node and waits for its completion (:meth:`Serf._complete`):
    the key manager knows nothing else of the node.
    """

    def __init__(self, run: RequestRunner) -> None:
        self._run = run

    async def _op(self, op: str, key: str | bytes, relay_factor: int) -> sio.KeyResponse:
        """Run one key query; KeyManagerError (with the response) when members failed."""
        import base64  # on use (memory per agent: docs/performance.md)

        raw = base64.b64decode(key, validate=True) if isinstance(key, str) else bytes(key)
        done = await self._run(lambda rid: sio.KeyRequest(rid, op, raw, relay_factor))
        result = done.result if isinstance(done.result, sio.KeyResponse) else sio.KeyResponse()
        if done.error:
            raise KeyManagerError(done.error, result)
        return result

    async def install_key(self, key: str | bytes, relay_factor: int = 0) -> sio.KeyResponse:
        """Install ``key`` (base64 or raw) on every member."""
        return await self._op("install", key, relay_factor)

    async def use_key(self, key: str | bytes, relay_factor: int = 0) -> sio.KeyResponse:
        """Make ``key`` the primary on every member."""
        return await self._op("use", key, relay_factor)

    async def remove_key(self, key: str | bytes, relay_factor: int = 0) -> sio.KeyResponse:
        """Remove ``key`` from every member."""
        return await self._op("remove", key, relay_factor)

    async def list_keys(self, relay_factor: int = 0) -> sio.KeyResponse:
        """Every member's keys: ``keys`` maps base64 key -> number of members holding it."""
        return await self._op("list", b"", relay_factor)


def _ip_literal(text: str) -> Address | None:
    """``text`` as an address when it is ``ip:port`` / ``[ipv6]:port``, else None."""
    try:
        addr = Address.parse(text)
    except ValueError:
        return None
    return addr if is_ip(addr.host) else None


def _read_keyring_file(path: str) -> Keyring:
    """The keyring this library (or Go serf) wrote to ``path``; ValueError naming the file."""
    from serf.core.keyring_file import parse_keyring

    try:
        return Keyring(parse_keyring(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ValueError(f"keyring_file {path!r}: {exc}") from None


def _open_snapshot(path: str, mode: str) -> Any:
    """The snapshot as text whose names keep any bytes (Go strings): lines split on ``\n``
    only, bytes that are not UTF-8 read and written back as surrogate escapes."""
    return open(path, mode, encoding="utf-8", errors="surrogateescape", newline="\n")


def _complete_lines(fh: Any, chunk_size: int = 1 << 20) -> Iterator[str]:
    """The complete lines of a text file, without their ``\n``, read a chunk at a time."""
    rest = ""
    while chunk := fh.read(chunk_size):
        pieces = (rest + chunk).split("\n")
        rest = pieces.pop()  # no newline yet: incomplete (ignored if the file ends so)
        yield from pieces


def _read_snapshot(path: str, rejoin_after_leave: bool) -> SnapshotState:
    """Replay the snapshot file line by line (never whole in memory); log skipped lines."""
    from serf.core.snapshot import replay_lines

    with _open_snapshot(path, "r") as fh:
        state = replay_lines(_complete_lines(fh), rejoin_after_leave)
        state.size = os.fstat(fh.fileno()).st_size  # where the recorder resumes, as Go
    for warning in state.warnings:
        log.warning("serf: %s", warning)
    if state.warnings_dropped:
        log.warning("serf: %d more snapshot lines skipped", state.warnings_dropped)
    return state


@dataclass
class _Files:
    """The snapshot and keyring files (the only file IO of a serf node)."""

    snapshot_path: str = ""
    keyring_path: str = ""
    snapshot: Any = None

    def open(self) -> None:
        if self.snapshot_path:
            Path(self.snapshot_path).parent.mkdir(parents=True, exist_ok=True)
            self.snapshot = _open_snapshot(self.snapshot_path, "a")

    def append(self, lines: Iterable[str]) -> None:
        if self.snapshot is None:
            return
        for line in lines:
            self.snapshot.write(line if line.endswith("\n") else line + "\n")
        self.snapshot.flush()

    def rewrite(self, text: str) -> None:
        """Compaction: write ``text`` to ``<path>.compact``, fsync, rename over the snapshot."""
        if self.snapshot is None:
            return
        tmp = self.snapshot_path + ".compact"
        with _open_snapshot(tmp, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        self.snapshot.close()
        os.replace(tmp, self.snapshot_path)
        self.snapshot = _open_snapshot(self.snapshot_path, "a")

    def write_keyring(self, keys: Sequence[bytes]) -> None:
        if not self.keyring_path:
            return
        path = Path(self.keyring_path)
        tmp = path.with_name(path.name + ".tmp")
        # created 0600 before a key is written (the mode applies only to a new file, so a
        # leftover temp file is removed first)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        from serf.core.keyring_file import format_keyring

        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(format_keyring(list(keys)))
        os.replace(tmp, path)

    def close(self) -> None:
        if self.snapshot is not None:
            with contextlib.suppress(OSError):
                self.snapshot.flush()
                os.fsync(self.snapshot.fileno())
            self.snapshot.close()
            self.snapshot = None


@dataclass(frozen=True, slots=True)
class _Given:
    """What :meth:`Serf.create` was given besides the config (see its docstring)."""

    transport: Transport | None
    keyring: Keyring | None
    resolver: AddressResolver | None
    merge_delegate: SerfMergeDelegate | None
    reconnect_delegate: ReconnectDelegate | None
    memberlist_delegate: CompositeDelegate | None
    rng: random.Random | None
    metrics: Metrics | None


class Serf:
    """One serf node: membership, user events, queries, tags, keys, coordinates.

    Make one with :meth:`create`; see the README for a tour.
    """

    # what a runtime other than asyncio replaces (serf.runtime.trio_serf.TrioSerf): the
    # feeds' classes, the clock, the default transport, the driver and how it starts
    _subscription_type: ClassVar[type[Subscription[Any]]] = Subscription
    _query_response_type: ClassVar[type[QueryResponse]] = QueryResponse

    def __init__(self) -> None:
        self._core: SerfCore | None = None
        self._driver: MemberlistDriver | None = None
        self._subscribers: list[Subscription[Any]] = []
        self._queries: dict[int, QueryResponse] = {}
        self._files = _Files()
        self._resolver: AddressResolver = DnsResolver()
        self._shutdown_task: asyncio.Task[None] | None = None
        self._closed = False
        self._shut_down = asyncio.Event()
        self.leave_on_exit = False
        """Leave gracefully (then shut down) when an ``async with`` block on this node ends."""
        self.key_manager = KeyManager(self._complete)
        self._effects: dict[type, Callable[[Any], None]] = {
            sio.MemberJoined: self._publish,
            sio.MemberLeft: self._publish,
            sio.MemberFailed: self._publish,
            sio.MemberUpdated: self._publish,
            sio.MemberReaped: self._publish,
            sio.UserEventReceived: self._publish,
            sio.QueryReceived: self._query_received,
            sio.QueryAckReceived: self._query_ack,
            sio.QueryResponseReceived: self._query_response,
            sio.QueryFinished: self._query_finished,
            sio.SnapshotLines: lambda e: self._files.append(e.lines),
            sio.SnapshotCompact: lambda e: self._files.rewrite(e.text),
            sio.KeyringChanged: lambda e: self._files.write_keyring(e.keys),
            sio.ShutdownRequired: self._shutdown_required,
        }

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        config: SerfConfig,
        *,
        transport: Transport | None = None,
        keyring: Keyring | None = None,
        resolver: AddressResolver | None = None,
        merge_delegate: SerfMergeDelegate | None = None,
        reconnect_delegate: ReconnectDelegate | None = None,
        memberlist_delegate: CompositeDelegate | None = None,
        rng: random.Random | None = None,
        leave_on_exit: bool = False,
        metrics: Metrics | None = None,
    ) -> SerfStartup:
        """Start a node: bind the transport, restore the snapshot, rejoin known members.

        Await it (``node = await Serf.create(cfg)``) or use it as a context manager
        (``async with Serf.create(cfg) as node:``), which shuts the node down at the end of
        the block, after leaving gracefully when ``leave_on_exit`` is set. When it returns,
        :meth:`members` already holds this node.

        ``transport``: an unstarted :class:`~serf.transport.base.Transport` that the node
        starts and, at shutdown, closes (default: the one ``memberlist.transport`` names, on
        ``memberlist.bind_addr:bind_port``). ``keyring``: the encryption keys (default: read
        from ``keyring_file`` when it exists).
        ``resolver``: turns join names into addresses. ``merge_delegate`` may veto joins,
        ``reconnect_delegate`` sets per-member reconnect timeouts. ``memberlist_delegate``:
        a :class:`~serf.memberlist.delegates.CompositeDelegate` of memberlist hooks (events,
        alive/merge vetoes, conflicts, completed pings) called after serf's own; its
        ``delegate`` part is serf's and cannot be replaced. ``metrics``: where the go-metrics
        samples of the cores go (:class:`serf.metrics.Metrics` with its sinks; None: nowhere).
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

        async def start() -> Serf:
            node = cls()
            try:
                await node._start(config, given)
            except BaseException:
                await node._abort_start()
                raise
            node.leave_on_exit = leave_on_exit
            return node

        return SerfStartup(start)

    async def _start(self, config: SerfConfig, given: _Given) -> None:
        transport, keyring = given.transport, given.keyring
        check_create_arguments(config, transport, keyring)
        ml = config.memberlist or lan(config.node_name)
        if config.memberlist is None:
            config = replace(config, memberlist=ml)
        if transport is None:
            transport = self._default_transport(ml)
        if given.resolver is not None:
            self._resolver = given.resolver
        if keyring is None and config.keyring_file and os.path.exists(config.keyring_file):
            keyring = _read_keyring_file(config.keyring_file)
        snapshot: SnapshotState | None = None
        if config.snapshot_path and os.path.exists(config.snapshot_path):
            snapshot = _read_snapshot(config.snapshot_path, config.rejoin_after_leave)
        self._files = _Files(config.snapshot_path, config.keyring_file)
        driver = self._new_driver(transport, ml.tcp_timeout)
        self._driver = driver
        driver.metrics = given.metrics
        await self._start_transport(driver)
        check_transport_matches_bind(ml, transport.local_address)
        bound = transport.local_address
        # an AdvertiseError here closes the transport like any failed start (_abort_start)
        advertise = advertise_address(bound.host, bound.port, ml.advertise_addr, ml.advertise_port)
        core = SerfCore(
            config,
            rng=given.rng or random.Random(),
            token_bytes=os.urandom,  # secrets.token_bytes is os.urandom (without hmac)
            keyring=keyring,
            advertise=advertise,
            snapshot=snapshot,
            merge_delegate=given.merge_delegate,
            reconnect_delegate=given.reconnect_delegate,
            memberlist_delegate=given.memberlist_delegate,
        )
        self._core, self._driver = core, driver
        self._files.open()
        driver.attach(core)
        await driver.start()
        if core.rejoin_addresses:
            driver._spawn(self._rejoin(core.rejoin_addresses))

    def _default_transport(self, ml: MemberlistConfig) -> Transport:
        """The transport ``memberlist.transport`` names (no ``transport=`` given)."""
        return transport_for(ml)

    def _new_driver(self, transport: Transport, stream_timeout: float) -> MemberlistDriver:
        """The driver that runs the core, with this node's serf-layer effects."""
        return MemberlistDriver(transport, stream_timeout=stream_timeout, on_effect=self._on_effect)

    async def _start_transport(self, driver: MemberlistDriver) -> None:
        await driver.start_transport()

    def _clock(self) -> float:
        """The driver's clock (what a query's ``deadline`` is on)."""
        return asyncio.get_running_loop().time()

    async def _abort_start(self) -> None:
        """Undo a failed start: close the transport (both sockets) and the files."""
        self._closed = True
        try:
            if self._driver is not None:
                await self._driver.stop(shutdown_input=False)
        finally:
            self._files.close()
            self._shut_down.set()

    async def _rejoin(self, known: Sequence[tuple[str, Address]]) -> None:
        """Auto-rejoin from the snapshot: try the known members one at a time (random order)."""
        order = list(known)
        random.shuffle(order)
        for name, addr in order:
            if name == self.local_member.name:
                continue
            with contextlib.suppress(SerfError, OSError):
                if await self.join([addr]) > 0:
                    log.info("rejoined the cluster through %s (%s)", name, addr)
                    return
        log.warning("could not rejoin any previously known member")

    async def shutdown(self) -> None:
        """Stop without leaving (others will see this node fail). Idempotent; returns when
        the node is shut down (as :meth:`wait_closed`)."""
        if self._closed:
            await self._shut_down.wait()
            return
        self._closed = True
        try:
            if self._driver is not None:
                await self._driver.stop()
        finally:
            self._files.close()
            for sub in self._subscribers:
                sub.end()
            for resp in self._queries.values():
                resp.end()
            self._queries.clear()
            self._shut_down.set()

    @property
    def closed(self) -> bool:
        """True once the node is shutting down or shut down (by :meth:`shutdown`, the end of
        an ``async with`` block, or a lost name conflict); requests then raise SerfError."""
        return self._closed

    async def wait_closed(self) -> None:
        """Wait until the node is shut down, whatever shut it down (Go's ``ShutdownCh``)."""
        await self._shut_down.wait()

    @property
    def state(self) -> SerfState:
        """``ALIVE``, ``LEAVING``, ``LEFT`` (after :meth:`leave`) or ``SHUTDOWN``."""
        if self._closed or self._core is None:
            return SerfState.SHUTDOWN
        return self._core.serf_state

    async def __aenter__(self) -> Serf:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Leave first when :attr:`leave_on_exit` is set (and the node is alive), then shut
        down."""
        try:
            if self.leave_on_exit and self.state is SerfState.ALIVE:
                try:
                    await self.leave()
                except SerfError as err:
                    log.warning("leave on exit failed: %s", err)
        finally:
            await self.shutdown()

    # -- requests --------------------------------------------------------------------------

    @property
    def core(self) -> SerfCore:
        """The sans-IO core (read its state; feed it only through this object)."""
        if self._core is None:
            raise SerfError("serf is not started")
        return self._core

    async def _complete(self, make: Callable[[int], Any]) -> RequestCompleted:
        """Feed ``make(request_id)`` and wait for its ``RequestCompleted`` (SerfError when
        the node is shut down, before or meanwhile)."""
        if self._driver is None or self._closed:
            raise SerfError("serf is shut down")
        try:
            return await self._driver.request(make)
        except RuntimeError as exc:
            raise SerfError(str(exc)) from None

    async def _request(self, make: Callable[[int], Any]) -> RequestCompleted:
        """:meth:`_complete`, with a completion error raised as SerfError."""
        done = await self._complete(make)
        if done.error:
            raise SerfError(done.error)
        return done

    async def _resolve(self, addresses: Iterable[str | AddressLike]) -> tuple[Address, ...]:
        if isinstance(addresses, str | Address):
            addresses = [addresses]
        out: list[Address] = []
        for item in addresses:
            if not isinstance(item, str):
                if not (hasattr(item, "host") and hasattr(item, "port")):
                    raise TypeError(
                        "join addresses must be 'host:port' strings or have .host and .port,"
                        f" got {type(item).__name__}"
                    )
                addr = Address(str(item.host), int(item.port))
                if is_ip(addr.host):
                    out.append(addr)
                else:  # a name: resolved as the string form would be
                    out.extend(await self._resolver.resolve(str(addr)))
            else:  # Go accepts "name/ip:port"; an IP literal needs no resolver
                target = item.rsplit("/", 1)[-1]
                literal = _ip_literal(target)
                if literal is not None:
                    out.append(literal)
                else:
                    out.extend(await self._resolver.resolve(target))
        return tuple(out)

    async def join(self, addresses: Iterable[str | AddressLike], ignore_old: bool = False) -> int:
        """Join through ``addresses`` (``"host:port"`` or ``"name/host:port"`` strings, or
        any object with ``.host`` and ``.port``); the number reached (SerfError if none could
        be)."""
        addrs = await self._resolve(addresses)
        done = await self._request(lambda rid: sio.SerfJoinRequest(rid, addrs, ignore_old))
        return int(done.result or 0)

    async def leave(self) -> None:
        """Leave gracefully: broadcast the intent, wait for it, then stop gossiping."""
        await self._request(lambda rid: sio.SerfLeaveRequest(rid))

    async def force_leave(self, node: str, prune: bool = False) -> None:
        """Mark a failed member as left (``prune``: forget it at once)."""
        await self._request(lambda rid: sio.ForceLeaveRequest(rid, node, prune))

    async def user_event(self, name: str, payload: bytes = b"", coalesce: bool = True) -> None:
        """Send a user event to every member (SerfError over the size limits, TypeError when
        ``payload`` is not bytes)."""
        data = payload_bytes(payload)
        await self._request(lambda rid: sio.UserEventRequest(rid, name, data, coalesce))

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
        """Ask the members a question; iterate the result for acks and responses.

        ``filter_nodes``: only these nodes answer. ``filter_tags``: only nodes whose tag
        matches the regular expression (RE2/Go syntax, unanchored) answer. ``timeout``: 0 is
        Go's default (:attr:`SerfConfig.query_timeout_mult` gossip rounds scaled by the
        cluster size). ValueError for a negative timeout, a relay factor outside [0, 255]
        or a pattern that does not compile; TypeError when ``payload`` is not bytes.
        """
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
        started: list[QueryResponse] = []

        def start(rid: int) -> sio.QueryRequest:
            # registered before the core sees the request, so no answer can miss it
            response = self._new_query_response(rid, filter_nodes, tags, timeout)
            self._queries[rid] = response
            started.append(response)
            return sio.QueryRequest(
                rid,
                name,
                data,
                tuple(filter_nodes),
                tags,
                request_ack,
                relay_factor,
                float(timeout),
            )

        try:
            await self._request(start)
        except SerfError:
            for response in started:
                self._queries.pop(response.request_id, None)
            raise
        return started[0]

    def _new_query_response(
        self,
        rid: int,
        filter_nodes: Sequence[str],
        filter_tags: tuple[tuple[str, str], ...],
        timeout: float,
    ) -> QueryResponse:
        """The response object of query ``rid`` (its deadline on this runtime's clock)."""
        return self._query_response_type(
            rid,
            deadline=self._clock() + (timeout or self.default_query_timeout()),
            asked=self._query_targets(filter_nodes, filter_tags),
            on_close=self._forget_query,
        )

    async def set_tags(self, tags: dict[str, str]) -> None:
        """Replace our tags and gossip them (SerfError when they encode over 512 bytes)."""
        await self._request(lambda rid: sio.SetTagsRequest(rid, dict(tags)))

    # -- reading ---------------------------------------------------------------------------

    def members(self, status: sio.MemberStatus | str | None = None) -> list[sio.SerfMember]:
        """Every known member, this node included; with ``status`` (a :class:`MemberStatus`
        or its name, e.g. ``MemberStatus.ALIVE`` or ``"alive"``) only the members in it."""
        found = self.core.members()
        if status is None:
            return found
        if isinstance(status, str):
            try:
                status = sio.MemberStatus[status.upper()]
            except KeyError:
                names = ", ".join(s.name.lower() for s in sio.MemberStatus)
                raise ValueError(f"status must be one of {names}, got {status!r}") from None
        return [m for m in found if m.status is status]

    @property
    def local_member(self) -> sio.SerfMember:
        """This node as a member."""
        return self.core.local_member()

    @property
    def metrics(self) -> Metrics | None:
        """The :class:`~serf.metrics.Metrics` given to :meth:`create` (None: not recorded)."""
        return self._driver.metrics if self._driver is not None else None

    def stats(self) -> dict[str, str]:
        """Go serf's Stats() map."""
        return self.core.stats()

    def get_coordinate(self) -> Coordinate | None:
        """Our network coordinate (None when coordinates are disabled)."""
        return self.core.get_coordinate()

    def get_cached_coordinate(self, name: str) -> Coordinate | None:
        """The last coordinate we learned for ``name`` (None if none)."""
        return self.core.cached_coordinate(name)

    def estimated_rtt(self, name: str) -> float | None:
        """The round-trip time to ``name`` in seconds that the network coordinates predict
        (None when coordinates are off or we have none for ``name`` yet)."""
        ours = self.get_coordinate()
        theirs = self.get_cached_coordinate(name)
        if ours is None or theirs is None:
            return None
        return ours.distance_to(theirs)

    def num_nodes(self) -> int:
        """How many members we know, in any status (Go's ``NumNodes``)."""
        return len(self.core.members())

    def default_query_timeout(self) -> float:
        """The timeout (seconds) of a query sent with ``timeout=0``: Go's
        ``DefaultQueryTimeout``, gossip interval x ``query_timeout_mult`` x
        ``ceil(log10(N + 1))`` for N alive members."""
        return self.core.default_query_timeout()

    def _query_targets(
        self, filter_nodes: Sequence[str], filter_tags: tuple[tuple[str, str], ...]
    ) -> frozenset[str]:
        """The alive members a query with these filters is for, in our view."""
        patterns = [(tag, compile_go(pattern)) for tag, pattern in filter_tags]
        return frozenset(
            m.name
            for m in self.core.members()
            if m.status is sio.MemberStatus.ALIVE
            and (not filter_nodes or m.name in filter_nodes)
            and all(rx.search(m.tags.get(tag, "")) for tag, rx in patterns)
        )

    def _forget_query(self, response: QueryResponse) -> None:
        self._queries.pop(response.request_id, None)

    @overload
    def subscribe(
        self, *, kinds: tuple[type[E1]], maxsize: int = DEFAULT_MAXSIZE
    ) -> Subscription[E1]: ...

    @overload
    def subscribe(
        self, *, kinds: tuple[type[E1], type[E2]], maxsize: int = DEFAULT_MAXSIZE
    ) -> Subscription[E1 | E2]: ...

    @overload
    def subscribe(
        self, *, kinds: Iterable[type[Event]] = (), maxsize: int = DEFAULT_MAXSIZE
    ) -> Subscription[Event]: ...

    def subscribe(
        self, *, kinds: Iterable[type[Any]] = (), maxsize: int = DEFAULT_MAXSIZE
    ) -> Subscription[Any]:
        """Receive this node's events from now on (registered before this returns).

        ``kinds``: the event classes to keep (e.g. ``(UserEvent, Query)``; empty keeps
        member events, user events and queries). ``maxsize``: unread events held before the
        oldest is dropped (counted in ``dropped``, the first drop logged). Iterate it with
        ``async for``; :meth:`Subscription.close` or the end of its ``with`` block ends it,
        and so does this node's shutdown (after the buffered events). On a closed node it
        ends at once.
        """
        sub: Subscription[Any] = self._subscription_type(
            kinds=kinds, maxsize=maxsize, on_close=self._unsubscribe, name=self._name()
        )
        if self._closed:
            sub.end()
        else:
            self._subscribers.append(sub)
        return sub

    def events(self, maxsize: int = DEFAULT_MAXSIZE) -> Subscription[Event]:
        """Every event from now on: :meth:`subscribe` with no ``kinds``."""
        return self.subscribe(maxsize=maxsize)

    def _unsubscribe(self, sub: Subscription[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(sub)

    def _name(self) -> str:
        return self._core.name if self._core is not None else ""

    # -- effects of the serf layer (the driver's on_effect, on the owner task) -------------

    def _publish(self, event: Event) -> None:
        for sub in self._subscribers:
            sub.push(event)

    def _on_effect(self, effect: Any) -> bool:
        """Carry out a serf-layer effect (the driver's ``on_effect``); False for one that is
        not the serf layer's."""
        handler = self._effects.get(type(effect))
        if handler is None:
            return False
        handler(effect)
        return True

    def _query_received(self, effect: sio.QueryReceived) -> None:
        self._publish(Query(self, effect.query))

    def _query_ack(self, effect: sio.QueryAckReceived) -> None:
        resp = self._queries.get(effect.request_id)
        if resp is not None:
            resp.push(QueryAck(effect.from_))

    def _query_response(self, effect: sio.QueryResponseReceived) -> None:
        resp = self._queries.get(effect.request_id)
        if resp is not None:
            resp.push(QueryResponseItem(effect.from_, effect.payload))

    def _query_finished(self, effect: sio.QueryFinished) -> None:
        resp = self._queries.pop(effect.request_id, None)
        if resp is not None:
            resp.end()

    def _shutdown_required(self, effect: sio.ShutdownRequired) -> None:
        log.error("shutting down: %s", effect.reason)
        if self._shutdown_task is None and self._driver is not None:
            self._shutdown_task = asyncio.get_running_loop().create_task(self.shutdown())


class SerfStartup:
    """What :meth:`Serf.create` returns: await it for the node, or ``async with`` it to have
    the node shut down (after leaving, with ``leave_on_exit``) when the block ends."""

    def __init__(self, start: Callable[[], Coroutine[Any, Any, Serf]]) -> None:
        self._start = start
        self._node: Serf | None = None

    def __await__(self) -> Generator[Any, None, Serf]:
        return self._start().__await__()

    async def __aenter__(self) -> Serf:
        self._node = await self._start()
        return self._node

    async def __aexit__(self, *exc: object) -> None:
        if self._node is not None:
            await self._node.__aexit__(*exc)
