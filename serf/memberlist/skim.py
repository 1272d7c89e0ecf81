"""Skimming a compound packet for gossip that changes nothing (pure-Python twin).

How this works
--------------
Gossip repeats every alive message about ``retransmit_mult * log(N)`` times to every node, so
nearly every part of a compound packet in a large cluster is an ``lpe`` alive about a member
the receiver already knows at that incarnation and address: :meth:`StateTable.ignores_alive
<serf.memberlist.state.StateTable.ignores_alive>` holds, and :meth:`handle_alive
<serf.memberlist.state.StateTable.handle_alive>` would change nothing. :func:`split_unknown`
is :func:`serf.wire.framing.split_compound` that leaves those parts out before anything is
decoded into message objects (the compiled twin, ``serf/_fast/skim.pyx``, never copies them
either).

A part is left out only when the answer at the time the receiver would have handled it is
sure to be the same as now, before any part of the packet is handled. The table changes in
between only by the parts before it, and only an alive about the same name (the one message
that moves a member's address) or a nested compound or compress part (which may hold one)
could turn "ignored" into "not ignored": suspect and dead messages only raise an incarnation,
which keeps an ignored alive ignored; entries are forgotten only by the probe timer. So a
part is kept (decoded and handled as before) when an earlier kept alive names the same node,
or when a nested compound or compress part came before it.

A part is read with the ``lpe`` codec's rules (docs/wire.md), and left out only when the
codec would decode it without error into an :class:`~serf.wire.messages.Alive` with a 4- or
16-byte address: a part the codec refuses is kept, to be refused and counted as before.
The caller uses this only with the ``lpe`` codec, no Alive delegate and no ``cidrs_allowed``
(those read every alive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from serf.wire.errors import DecodeError
from serf.wire.framing import COMPOUND_MSG, COMPRESS_MSG, split_compound
from serf.wire.lpe import _uvarint
from serf.wire.messages import MessageType

__all__ = ["alive_fields", "split_unknown"]

_ALIVE = int(MessageType.ALIVE)
_U32_MAX = 0xFFFF_FFFF
_U16_MAX = 0xFFFF


class _Entry(Protocol):
    """What :func:`split_unknown` reads of a member entry (a state table ``Node``)."""

    incarnation: int
    addr: bytes
    port: int


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:
        return buf[pos], pos + 1
    return _uvarint(buf, pos, end)


def alive_fields(part: bytes) -> tuple[int, str, bytes | None, int] | None:
    """``(incarnation, node, addr, port)`` of an ``lpe`` alive message that the codec decodes
    without error, else None (not an alive, or one the codec refuses)."""
    try:
        end = len(part)
        if end < 2 or part[0] != _ALIVE or part[1] == 0:
            return None
        body, pos = _uvarint(part, 2, end)
        if body != end - pos:
            return None
        incarnation, pos = _length(part, pos, end)
        if incarnation > _U32_MAX:
            return None
        n, pos = _length(part, pos, end)
        if pos + n > end:
            return None
        node = part[pos : pos + n].decode("utf-8", "surrogateescape")
        pos += n
        addr: bytes | None = None
        n, pos = _length(part, pos, end)
        if n:
            if pos + n - 1 > end:
                return None
            addr = part[pos : pos + n - 1]
            pos += n - 1
        port, pos = _length(part, pos, end)
        if port > _U16_MAX:
            return None
        for _ in range(2):  # meta, vsn: optional bytes, read only to check them
            n, pos = _length(part, pos, end)
            if n:
                pos += n - 1
                if pos > end:
                    return None
    except DecodeError:
        return None
    return incarnation, node, addr, port


def split_unknown(
    nodes: Mapping[str, _Entry], local_name: str, buf: Any
) -> tuple[list[bytes], int, int]:
    """``split_compound(buf)`` without the alive parts that change nothing (module comment):
    ``(parts, truncated, skipped)``. ``nodes`` is the receiver's member table by name and
    ``local_name`` the receiver's own name (first, for ``functools.partial``). Raises
    :class:`DecodeError` as :func:`~serf.wire.framing.split_compound` does."""
    parts, truncated = split_compound(buf)
    kept: list[bytes] = []
    touched: set[str] = set()
    trusted = True
    skipped = 0
    for part in parts:
        kind = part[0] if part else -1
        if kind in (COMPOUND_MSG, COMPRESS_MSG):
            trusted = False
        elif kind == _ALIVE:
            fields = alive_fields(part)
            if fields is not None:
                incarnation, name, addr, port = fields
                if trusted and name not in touched:
                    node = nodes.get(name)
                    if (
                        node is not None
                        and addr is not None
                        and len(addr) in (4, 16)
                        and incarnation <= node.incarnation
                        and port == node.port
                        and node.addr == addr
                        and name != local_name
                    ):
                        skipped += 1
                        continue
                touched.add(name)
        kept.append(part)
    return kept, truncated, skipped
