"""Errors raised by the wire layer."""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "WireError"]


class WireError(Exception):
    """Base class of every error the wire layer raises."""


class DecodeError(WireError, ValueError):
    """Bytes from the network could not be decoded: malformed, truncated, or over a limit."""


class EncodeError(WireError, ValueError):
    """A message could not be encoded (a value out of range for its wire type, too large)."""
