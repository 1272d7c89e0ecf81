"""The codec interface and the registry that picks a codec by name.

A codec turns message dataclasses (:mod:`serf.wire.messages`) into ``[type byte][body]`` and
back. The framing (compound, CRC, label, compression, encryption) is shared by every codec and
lives in :mod:`serf.wire.framing`; a codec only encodes bodies. A user may bring a codec of their
own (the role Go serf's TransformDelegate plays in the Rust port) by implementing
:class:`Codec` and passing it wherever a codec name is accepted, or by registering it under a
name with :func:`register_codec`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from serf.wire.messages import (
    Coordinate,
    Filter,
    MemberlistMessage,
    Message,
    SerfMessage,
)

__all__ = ["Codec", "get_codec", "register_codec", "available_codecs"]


@runtime_checkable
class Codec(Protocol):
    """Encodes and decodes message bodies. Every ``decode*`` raises only ``DecodeError``."""

    name: str

    def encode(self, message: Message) -> bytes:
        """``[type byte][body]`` of a memberlist or serf message (packet form for UserMsg)."""
        ...

    def decode(self, buffer: bytes) -> MemberlistMessage:
        """A memberlist message from ``[type byte][body]`` (packet form for type 8)."""
        ...

    def encode_stream(self, message: MemberlistMessage) -> bytes:
        """Like :meth:`encode`, but a UserMsg gets the stream form (with a length header)."""
        ...

    def decode_stream(self, buffer: bytes) -> MemberlistMessage:
        """Like :meth:`decode`, but type 8 is read in its stream form."""
        ...

    def decode_serf(self, buffer: bytes) -> SerfMessage:
        """A serf message from a memberlist user-message payload ``[serf type][body]``."""
        ...

    def encode_tags(self, tags: dict[str, str]) -> bytes:
        """Node meta carrying serf tags."""
        ...

    def decode_tags(self, meta: bytes) -> dict[str, str]:
        """Tags from node meta (legacy meta without the magic byte is ``{"role": meta}``)."""
        ...

    def encode_filter(self, flt: Filter) -> bytes:
        """One entry of ``MessageQuery.filters``: ``[filter type][body]``."""
        ...

    def decode_filter(self, buffer: bytes) -> Filter:
        """One entry of ``MessageQuery.filters``."""
        ...

    def encode_coordinate(self, coord: Coordinate) -> bytes:
        """A Vivaldi coordinate body (without the ping-version byte)."""
        ...

    def decode_coordinate(self, buffer: bytes) -> Coordinate:
        """A Vivaldi coordinate body."""
        ...


_FACTORIES: dict[str, Callable[[], Codec]] = {}
_INSTANCES: dict[str, Codec] = {}


def register_codec(name: str, factory: Callable[[], Codec]) -> None:
    """Make ``get_codec(name)`` return ``factory()`` (created once, on first use)."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def available_codecs() -> list[str]:
    """The names :func:`get_codec` accepts."""
    _register_builtins()
    return sorted(_FACTORIES)


def get_codec(name: str | Codec = "lpe") -> Codec:
    """The codec called ``name`` ("lpe", the default, or "go"); a Codec is returned as is."""
    if not isinstance(name, str):
        return name
    _register_builtins()
    try:
        return _INSTANCES[name]
    except KeyError:
        pass
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown codec {name!r}; available: {', '.join(sorted(_FACTORIES))}"
        ) from None
    codec = _INSTANCES[name] = factory()
    return codec


def _register_builtins() -> None:
    if "lpe" in _FACTORIES and "go" in _FACTORIES:
        return
    _FACTORIES.setdefault("go", _go_codec)
    _FACTORIES.setdefault("lpe", _lpe_codec)


def _go_codec() -> Codec:
    # the compiled or pure twin, imported on first use only
    from serf import _speedups

    codec: Codec = _speedups.load("go").GoCodec()
    return codec


def _lpe_codec() -> Codec:
    # the compiled or pure twin, as serf._speedups chose (imported on first use only)
    from serf import _speedups

    codec: Codec = _speedups.lpe.LpeCodec()
    return codec
