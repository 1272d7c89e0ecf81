"""The agent RPC msgpack dialect (reference section 4.6), kept apart from the gossip dialect.

Go's agent and client use ``MsgpackHandle{WriteExt: true}``: strings are new-spec ``str``
(fixstr, str8, str16, str32) and ``[]byte`` fields are ``bin``. A request or response is a header
map followed, for some commands, by a body map, with no length prefix between objects, so the
reader here is incremental: feed it what the socket gave, take whole objects out.

Go strings are bytes: a name, tag or payload need not be UTF-8. Both directions use
``surrogateescape``, so such bytes decode to a ``str`` (each stray byte as one surrogate
code point, as the gossip codecs and ``os.fsdecode`` keep them) and encode back to the same
bytes. Old-style clients (msgpack 0.x, older asyncserf) send strings as raw ``str``-family
bytes of any content; new-style ones may send ``bin``: both are accepted where a string is
expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from serf.wire.errors import DecodeError, EncodeError

__all__ = ["encode_rpc", "RpcDecoder", "MAX_RPC_BUFFER"]

#: Bound on what one RPC connection may buffer while an object is incomplete.
MAX_RPC_BUFFER = 64 * 1024 * 1024


#: value types that :func:`_sorted` returns as they are (no container inside)
_FLAT = frozenset((str, bytes, int, float, bool, type(None)))


def _sorted(value: Any) -> Any:
    """``value`` with every map's keys in sorted order (Go writes struct fields so), at any
    depth; strings, bytes and numbers are taken as they are without a call each."""
    if isinstance(value, dict):
        return {
            k: v if type(v) in _FLAT else _sorted(v)
            # (keys of a dict are distinct: sorting the pairs never compares two values)
            for k, v in sorted(value.items())
        }
    if isinstance(value, list | tuple):
        return [v if type(v) in _FLAT else _sorted(v) for v in value]
    return value


def encode_rpc(obj: Any) -> bytes:
    """One RPC object: str as str, bytes as bin, map keys sorted like Go's struct fields."""
    try:
        packed: bytes = msgpack.packb(
            _sorted(obj), use_bin_type=True, unicode_errors="surrogateescape"
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode RPC value: {exc}") from None
    return packed


class RpcDecoder:
    """Incremental reader of consecutive RPC msgpack objects (str -> str, bin -> bytes)."""

    def __init__(self, max_buffer_size: int = MAX_RPC_BUFFER) -> None:
        self._unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            max_buffer_size=max_buffer_size,
            unicode_errors="surrogateescape",
        )

    def feed(self, data: bytes) -> None:
        """Add bytes read from the connection (DecodeError when over the buffer bound)."""
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            raise DecodeError("RPC message exceeds the buffer limit") from None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        """The next whole object; StopIteration when more bytes are needed."""
        try:
            return next(self._unpacker)
        except StopIteration:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
            raise DecodeError(f"malformed RPC message: {exc}") from None
