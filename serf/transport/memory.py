"""In-process network: `MemoryNetwork` hands out `MemoryTransport` instances.

How this works: a `MemoryNetwork` is a dict from `Address` to the transport bound there. No
socket is ever created; addresses such as ``Address("10.0.0.1", 7946)`` exist only in that
dict. It runs on the running asyncio loop (so the simulator can drive it with a virtual-time
loop later).

* Packets: `MemoryTransport.send_packet` asks the network's `PacketFate` ``(src, dst, data)``
  for a list of delays in seconds: ``[]`` drops the packet, ``[0.0]`` (the default) delivers it
  once, ``[0.0, 0.05]`` delivers it twice. Each delivery is scheduled with ``call_soon`` /
  ``call_later`` (never synchronously, like UDP) and is dropped if nobody is bound at the
  destination by then.
* Streams: `MemoryTransport.open_stream` raises ConnectionRefusedError when nobody listens,
  else connects two `_Pipe` objects crosswise. Each pipe is one direction of a TCP connection:
  a byte buffer, an EOF flag and a high-water mark for `drain`. ``write_eof`` / ``close`` on
  one side make ``read`` on the other return ``b""`` once the buffer is empty, as with TCP.
  Link models do not apply to streams (yet).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable

from serf.transport.base import (
    DEFAULT_STREAM_TIMEOUT,
    MAX_PACKET_SIZE,
    Address,
    AddressLike,
    Stream,
    TransportBase,
)

__all__ = ["MemoryNetwork", "PacketFate", "MemoryStream", "MemoryTransport", "deliver_once"]

log = logging.getLogger(__name__)

PacketFate = Callable[[Address, Address, bytes], list[float]]
"""``(src, dst, data) -> delays``: ``[]`` drops, one entry delivers once, two duplicate."""

_PIPE_HIGH_WATER = 256 * 1024
_EPHEMERAL_FIRST = 49_152


def deliver_once(src: Address, dst: Address, data: bytes) -> list[float]:
    """The default link model: every packet arrives once, at once."""
    return [0.0]


class _Pipe:
    """One direction of a stream: writer appends, reader consumes, EOF after the buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False  # the writer is done
        self.reader_closed = False  # the reader went away: writes are discarded
        self.reset = False  # data was discarded unread (TCP would answer with a RST)
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self.reader_closed:
            self.reset = True  # the peer is gone: discarded, and drain reports the reset
            return
        if self.eof:
            raise RuntimeError("cannot write after write_eof() or close()")
        self.buffer += data
        self._readable.set()
        if len(self.buffer) >= _PIPE_HIGH_WATER:
            self._writable.clear()

    def feed_eof(self) -> None:
        self.eof = True
        self._readable.set()

    def close_reader(self) -> None:
        self.reader_closed = True
        if self.buffer:
            self.reset = True
        self.buffer.clear()
        self._writable.set()

    def _consumed(self) -> None:
        if not self.buffer and not self.eof:
            self._readable.clear()
        if len(self.buffer) < _PIPE_HIGH_WATER:
            self._writable.set()

    async def wait_readable(self) -> None:
        await self._readable.wait()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def take(self, n: int) -> bytes:
        if n < 0 or n >= len(self.buffer):
            out = bytes(self.buffer)
            self.buffer.clear()
        else:
            out = bytes(self.buffer[:n])
            del self.buffer[:n]
        self._consumed()
        return out


class MemoryStream:
    """One end of an in-memory stream; behaves like `serf.transport.net.NetStream`."""

    def __init__(
        self,
        incoming: _Pipe,
        outgoing: _Pipe,
        local: Address,
        remote: Address,
        timeout: float | None,
    ) -> None:
        self._in = incoming
        self._out = outgoing
        self._local = local
        self._remote = remote
        self.timeout = timeout
        self._closed = False

    @property
    def remote_address(self) -> Address:
        """The peer's address."""
        return self._remote

    @property
    def local_address(self) -> Address:
        """This end's address."""
        return self._local

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    async def read(self, n: int = -1, *, timeout: float | None = None) -> bytes:
        """Up to ``n`` bytes (``b""`` at EOF); ``n = -1`` reads until EOF."""
        if n == 0:
            return b""
        pipe = self._in
        async with asyncio.timeout(self._timeout(timeout)):
            if n > 0:
                while not pipe.buffer and not pipe.eof:
                    await pipe.wait_readable()
                return pipe.take(n)
            out = bytearray()
            while True:
                out += pipe.take(-1)  # keeps the writer flowing past the high-water mark
                if pipe.eof and not pipe.buffer:
                    return bytes(out)
                await pipe.wait_readable()

    async def readexactly(self, n: int, *, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or `asyncio.IncompleteReadError` if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        pipe = self._in
        async with asyncio.timeout(self._timeout(timeout)):
            if len(pipe.buffer) >= n:
                return pipe.take(n)
            out = bytearray()
            while len(out) < n:
                out += pipe.take(n - len(out))
                if len(out) >= n:
                    break
                if pipe.eof and not pipe.buffer:
                    raise asyncio.IncompleteReadError(bytes(out), n)
                await pipe.wait_readable()
            return bytes(out)

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the peer. RuntimeError after write_eof/close."""
        self._out.feed(bytes(data))

    async def drain(self, *, timeout: float | None = None) -> None:
        """Wait until the peer has consumed enough; ConnectionResetError if it discarded data."""
        if self._out.reset:
            raise ConnectionResetError("connection reset by peer")
        async with asyncio.timeout(self._timeout(timeout)):
            await self._out.wait_writable()
        if self._out.reset:
            raise ConnectionResetError("connection closed by peer")

    def write_eof(self) -> None:
        """Half close: the peer reads EOF once it has read what was written."""
        if not self._out.eof:
            self._out.feed_eof()

    async def close(self) -> None:
        """Close both directions. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.write_eof()
        self._in.close_reader()
        self._in.feed_eof()
        await asyncio.sleep(0)


class MemoryNetwork:
    """An in-memory network of `MemoryTransport` nodes with a per-link packet model.

    ``link_model`` decides the fate of every packet (see `PacketFate`); assign
    ``network.link_model`` at any time to change it. ``dropped`` counts packets that were
    dropped by the model or found nobody bound at the destination.
    """

    def __init__(self, link_model: PacketFate = deliver_once) -> None:
        self.link_model: PacketFate = link_model
        self.dropped = 0
        self._bound: dict[Address, MemoryTransport] = {}
        self._next_ephemeral: dict[str, int] = {}

    def transport(
        self,
        bind: AddressLike,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
    ) -> MemoryTransport:
        """A new, unstarted transport that will bind ``bind`` (port 0: pick a free port)."""
        return MemoryTransport(
            self, bind, max_packet_size=max_packet_size, stream_timeout=stream_timeout
        )

    def is_bound(self, addr: AddressLike) -> bool:
        """Whether some started transport holds ``addr``."""
        return Address.of(addr) in self._bound

    def _ephemeral(self, host: str) -> Address:
        port = self._next_ephemeral.get(host, _EPHEMERAL_FIRST)
        for _ in range(65_536 - _EPHEMERAL_FIRST):
            candidate = Address(host, port)
            port = port + 1 if port < 65_535 else _EPHEMERAL_FIRST
            if candidate not in self._bound:
                self._next_ephemeral[host] = port
                return candidate
        raise OSError(errno.EADDRINUSE, f"no free port on {host}")

    def _bind(self, transport: MemoryTransport, addr: Address) -> Address:
        if addr.port == 0:
            addr = self._ephemeral(addr.host)
        if addr in self._bound:
            raise OSError(errno.EADDRINUSE, f"address already in use: {addr}")
        self._bound[addr] = transport
        return addr

    def _unbind(self, transport: MemoryTransport, addr: Address) -> None:
        if self._bound.get(addr) is transport:
            del self._bound[addr]

    def _send(self, src: Address, dst: Address, data: bytes) -> None:
        delays = self.link_model(src, dst, data)
        if not delays:
            self.dropped += 1
            return
        loop = asyncio.get_running_loop()
        for delay in delays:
            if delay <= 0:
                loop.call_soon(self._deliver, src, dst, data)
            else:
                loop.call_later(delay, self._deliver, src, dst, data)

    def _deliver(self, src: Address, dst: Address, data: bytes) -> None:
        target = self._bound.get(dst)
        if target is None:
            self.dropped += 1
            return
        target._packet_received(data, src)

    def _connect(self, src: MemoryTransport, dst: Address, timeout: float | None) -> MemoryStream:
        target = self._bound.get(dst)
        if target is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"connection refused: {dst}")
        local = self._ephemeral(src.local_address.host)
        a_to_b, b_to_a = _Pipe(), _Pipe()
        client = MemoryStream(b_to_a, a_to_b, local, dst, timeout)
        server = MemoryStream(a_to_b, b_to_a, dst, local, target._stream_timeout)
        target._accept(server)
        return client


class MemoryTransport(TransportBase):
    """A `Transport` on a `MemoryNetwork` (see the module comment). Make it with
    `MemoryNetwork.transport`."""

    def __init__(
        self,
        network: MemoryNetwork,
        bind: AddressLike,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, stream_timeout=stream_timeout)
        self._network = network
        self._bind_addr = Address.of(bind)

    async def start(self) -> None:
        """Bind the address on the network (OSError EADDRINUSE if it is taken)."""
        if self._started:
            raise RuntimeError("MemoryTransport already started")
        self._loop = asyncio.get_running_loop()
        self._local = self._network._bind(self, self._bind_addr)
        self._started = True

    def send_packet(self, addr: AddressLike, data: bytes) -> None:
        """Hand one packet to the network's link model: fire and forget."""
        self._check_packet_size(data)
        if self._local is None or self._closed:
            raise RuntimeError("MemoryTransport is not running")
        try:
            self._network._send(self._local, Address.of(addr), bytes(data))
        except Exception as exc:
            self._stats.errors += 1
            log.debug("memory send to %s failed: %r", addr, exc)
            return
        self._stats.packets_sent += 1

    async def open_stream(self, addr: AddressLike, timeout: float | None = None) -> Stream:
        """Connect to ``addr``. ConnectionRefusedError if nobody listens there."""
        if self._closed or not self._started:
            raise RuntimeError("MemoryTransport is not running")
        await asyncio.sleep(0)  # connecting is never synchronous, as with TCP
        stream = self._network._connect(self, Address.of(addr), self._stream_timeout)
        self._stats.streams_opened += 1
        return stream

    async def close(self) -> None:
        """Unbind, stop delivery and cancel running stream handlers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._local is not None:
            self._network._unbind(self, self._local)
        await self._cancel_tasks()

    # -- internals -------------------------------------------------------------------------

    def _packet_received(self, data: bytes, src: Address) -> None:
        self._deliver_packet(data, src)

    def _accept(self, stream: MemoryStream) -> None:
        self._stats.streams_accepted += 1
        assert self._loop is not None
        task = self._loop.create_task(self._serve(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, stream: MemoryStream) -> None:
        await self._run_stream_handler(stream)
