"""Network coordinates (reference 3.11): our Vivaldi client and the coordinates we heard.

:class:`Coordinates` is the memberlist core's ``PingDelegate``: every ack we send carries our
coordinate (after a ping-version byte), and every completed ping updates our coordinate from
the peer's and caches the peer's.
"""

from __future__ import annotations

from serf.core.services import Services
from serf.core.vivaldi import CoordinateCache, CoordinateClient, distance
from serf.memberlist.state import Node
from serf.telemetry import COUNTER, ERR, SAMPLE, TRACE, MetricSample
from serf.wire.errors import DecodeError

__all__ = ["PING_VERSION", "Coordinates"]

PING_VERSION = 1
_COORDINATE_REJECTED = MetricSample(COUNTER, ("serf", "coordinate", "rejected"), 1.0)


class Coordinates:
    """Our coordinate and the cache of others' (``client`` is None when disabled)."""

    def __init__(self, services: Services) -> None:
        self._s = services
        self.client: CoordinateClient | None = None
        self.cache = CoordinateCache()
        if not services.config.disable_coordinates:
            self.client = CoordinateClient(None, services.rng)
            # as Go's Create: the cache holds our own coordinate from the start
            self.cache.set(services.name, self.client.get_coordinate())

    def forget(self, name: str) -> None:
        """A member was erased: forget its coordinate."""
        if self.client is not None:
            self.client.forget_node(name)
        self.cache.remove(name)

    def ack_payload(self) -> bytes:
        """What our acks carry: the ping version and our coordinate."""
        if self.client is None:
            return b""
        return bytes([PING_VERSION]) + self._s.codec.encode_coordinate(self.client.get_coordinate())

    def notify_ping_complete(self, node: Node, rtt: float, payload: bytes) -> None:
        """A ping of ``node`` completed in ``rtt`` seconds; ``payload`` is its ack payload."""
        s = self._s
        if not payload or self.client is None:
            return
        if payload[0] != PING_VERSION:
            s.stats_counters["ping_version_ignored"] += 1
            s.log(ERR, f"Unsupported ping version: {payload[0]}")
            return
        try:
            coord = s.codec.decode_coordinate(payload[1:])
        except DecodeError as exc:  # bad coordinate from the network
            s.stats_counters["coordinate_rejected"] += 1
            s.log(ERR, f"Failed to decode coordinate from ping: {exc}")
            return
        before = self.client.get_coordinate()
        try:
            after = self.client.update(node.name, coord, rtt)
        except ValueError as exc:  # rejected by Vivaldi (incompatible, invalid, bad RTT)
            s.stats_counters["coordinate_rejected"] += 1
            s.emit(_COORDINATE_REJECTED)
            s.log(TRACE, f"Rejected coordinate from {node.name}: {exc}")
            return
        # as Go: how far our own coordinate moved, in milliseconds
        moved = distance(before, after) * 1000.0
        s.emit(MetricSample(SAMPLE, ("serf", "coordinate", "adjustment-ms"), moved))
        self.cache.set(node.name, coord)
        self.cache.set(s.name, self.client.get_coordinate())
