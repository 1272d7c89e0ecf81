"""Vivaldi network coordinates, following Go serf's ``coordinate`` package.

How this works (reference section 3.11): every node keeps a point in an 8-dimensional
Euclidean space plus a non-Euclidean ``height`` (the access-link latency) and an
``adjustment`` (a small per-node correction). The estimated RTT between two nodes is
``||v1 - v2|| + h1 + h2``, plus ``a1 + a2`` when that keeps it positive. Each time a probe
to a peer completes, ``CoordinateClient.update`` runs:

1. a per-peer median filter over the last ``latency_filter_size`` RTT samples;
2. a Vivaldi step: the local error estimate is blended with how wrong the prediction was,
   and a spring force ``cc * weight * (rtt - dist)`` pushes us away from (or pulls us
   toward) the peer; the height moves with it, never below ``height_min``;
3. the adjustment is half the mean of the last ``adjustment_window_size`` samples of
   ``rtt - raw distance``;
4. a weak gravity force ``-(dist_to_origin / gravity_rho)**2`` pulls toward the origin so
   the whole constellation does not drift;
5. a coordinate that became NaN/Inf is reset to the origin and counted in ``resets``.

As in Go, the distance used inside an update is truncated to whole nanoseconds (Go passes
it through ``time.Duration``). The random direction used when two nodes coincide comes
from the injected ``random.Random`` instead of a global generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from serf.wire.messages import Coordinate

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MAX_RTT",
    "RandomSource",
    "CoordinateCache",
    "CoordinateClient",
    "VivaldiConfig",
    "distance",
    "is_valid",
    "new_coordinate",
]

#: The largest RTT (seconds) ``update`` accepts, as Go's ``maxRTT``.
MAX_RTT = 10.0
_ZERO_THRESHOLD = 1.0e-6
_NS_PER_SECOND = 1_000_000_000
_INT64_MAX = (1 << 63) - 1


class RandomSource(Protocol):
    """What the client needs of its injected ``random.Random``: ``random()`` in [0, 1)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class VivaldiConfig:
    """Tuning of the Vivaldi client; the defaults are Go's ``coordinate.DefaultConfig()``."""

    dimensionality: int = 8
    vivaldi_error_max: float = 1.5
    vivaldi_ce: float = 0.25
    vivaldi_cc: float = 0.25
    adjustment_window_size: int = 20
    height_min: float = 10e-6
    latency_filter_size: int = 3
    gravity_rho: float = 150.0

    def __post_init__(self) -> None:
        if self.dimensionality <= 0:
            raise ValueError(f"VivaldiConfig.dimensionality must be > 0, got {self.dimensionality}")
        if self.latency_filter_size <= 0:
            raise ValueError(
                f"VivaldiConfig.latency_filter_size must be > 0, got {self.latency_filter_size}"
            )
        if self.adjustment_window_size < 0:
            raise ValueError(
                "VivaldiConfig.adjustment_window_size must be >= 0, "
                f"got {self.adjustment_window_size}"
            )
        if not self.gravity_rho > 0:
            raise ValueError(f"VivaldiConfig.gravity_rho must be > 0, got {self.gravity_rho}")


def new_coordinate(config: VivaldiConfig) -> Coordinate:
    """The origin: a zero vector, maximal error, no adjustment, minimal height."""
    return Coordinate(
        vec=[0.0] * config.dimensionality,
        error=config.vivaldi_error_max,
        adjustment=0.0,
        height=config.height_min,
    )


def _clone(coord: Coordinate) -> Coordinate:
    return Coordinate(
        vec=list(coord.vec or ()),
        error=coord.error,
        adjustment=coord.adjustment,
        height=coord.height,
    )


def _vec(coord: Coordinate) -> list[float]:
    return coord.vec if coord.vec is not None else []


def is_valid(coord: Coordinate) -> bool:
    """True if every component of ``coord`` is a finite float (no NaN, no Inf)."""
    return all(math.isfinite(x) for x in _vec(coord)) and all(
        math.isfinite(x) for x in (coord.error, coord.adjustment, coord.height)
    )


def distance(a: Coordinate, b: Coordinate) -> float:
    """Estimated RTT in seconds: ``||va - vb|| + ha + hb``, plus ``aa + ab`` if still > 0
    (:meth:`Coordinate.distance_to`).

    Raises ValueError if the two vectors have different lengths.
    """
    return a.distance_to(b)


def _as_go_duration_seconds(seconds: float) -> float:
    """``time.Duration(seconds * 1e9).Seconds()``: truncated toward zero to whole nanoseconds."""
    ns = seconds * _NS_PER_SECOND
    if not math.isfinite(ns) or abs(ns) > _INT64_MAX:
        return seconds  # Go's conversion is undefined here; keep the float (the result resets)
    d = int(ns)
    whole = abs(d) // _NS_PER_SECOND * (1 if d >= 0 else -1)
    return whole + (d - whole * _NS_PER_SECOND) / 1e9


class CoordinateClient:
    """One node's Vivaldi state: its coordinate, per-peer latency filters, adjustments."""

    def __init__(self, config: VivaldiConfig | None, rng: RandomSource) -> None:
        """``config`` None means the defaults; ``rng`` supplies the random direction used
        when our coordinate coincides with a peer's."""
        self.config = config if config is not None else VivaldiConfig()
        self._rng = rng
        self._coord = new_coordinate(self.config)
        self._origin = new_coordinate(self.config)
        self._adjustment_index = 0
        self._adjustment_samples = [0.0] * self.config.adjustment_window_size
        self._latency_samples: dict[str, list[float]] = {}
        self.resets = 0

    # -- accessors ------------------------------------------------------------------------

    def get_coordinate(self) -> Coordinate:
        """A copy of our current coordinate."""
        return _clone(self._coord)

    def set_coordinate(self, coord: Coordinate) -> None:
        """Replace our coordinate (for example one restored from disk); checked like a peer's."""
        self._check(coord)
        self._coord = _clone(coord)

    def forget_node(self, node: str) -> None:
        """Drop the latency filter samples kept for ``node`` (it was reaped)."""
        self._latency_samples.pop(node, None)

    def distance_to(self, other: Coordinate) -> float:
        """Estimated RTT in seconds from us to ``other``."""
        return distance(self._coord, other)

    def stats(self) -> dict[str, int]:
        """Counters, as Go's ``ClientStats``: ``{"resets": n}``."""
        return {"resets": self.resets}

    # -- update ---------------------------------------------------------------------------

    def _check(self, other: Coordinate) -> None:
        if len(_vec(other)) != len(_vec(self._coord)):
            raise ValueError(
                f"dimensions aren't compatible: {len(_vec(other))} != {len(_vec(self._coord))}"
            )
        if not is_valid(other):
            raise ValueError("coordinate is invalid")

    def update(self, node: str, other: Coordinate, rtt_seconds: float) -> Coordinate:
        """Fold one RTT observation to ``node`` (at coordinate ``other``) into ours.

        Returns a copy of our new coordinate. Raises ValueError for an RTT that is not a
        finite number in ``[0, 10]`` seconds, a dimension mismatch, or a NaN/Inf peer
        coordinate; nothing changes then.
        """
        self._check(other)
        # Go measures the RTT as a time.Duration: whole nanoseconds.
        rtt = _as_go_duration_seconds(rtt_seconds) if math.isfinite(rtt_seconds) else math.nan
        if not (0.0 <= rtt <= MAX_RTT):  # also rejects NaN
            raise ValueError(
                f"round trip time not in valid range, duration {rtt_seconds!r}s is not a "
                f"positive value less than {MAX_RTT}s"
            )
        rtt = self._latency_filter(node, rtt)
        self._update_vivaldi(other, rtt)
        self._update_adjustment(other, rtt)
        self._update_gravity()
        if not is_valid(self._coord):
            self.resets += 1
            self._coord = new_coordinate(self.config)
        return _clone(self._coord)

    def _latency_filter(self, node: str, rtt: float) -> float:
        samples = self._latency_samples.setdefault(node, [])
        samples.append(rtt)
        if len(samples) > self.config.latency_filter_size:
            del samples[0]
        ordered = sorted(samples)
        return ordered[len(ordered) // 2]

    def _update_vivaldi(self, other: Coordinate, rtt: float) -> None:
        cfg = self.config
        dist = _as_go_duration_seconds(distance(self._coord, other))
        rtt = max(rtt, _ZERO_THRESHOLD)
        wrongness = abs(dist - rtt) / rtt
        total_error = max(self._coord.error + other.error, _ZERO_THRESHOLD)
        weight = self._coord.error / total_error
        error = cfg.vivaldi_ce * weight * wrongness + self._coord.error * (
            1.0 - cfg.vivaldi_ce * weight
        )
        self._coord.error = min(error, cfg.vivaldi_error_max)
        force = cfg.vivaldi_cc * weight * (rtt - dist)
        self._apply_force(force, other)

    def _update_adjustment(self, other: Coordinate, rtt: float) -> None:
        window = self.config.adjustment_window_size
        if window == 0:
            return
        # The existing adjustments are left out on purpose: raw distance, as in Go.
        self._adjustment_samples[self._adjustment_index] = rtt - self._coord.raw_distance_to(other)
        self._adjustment_index = (self._adjustment_index + 1) % window
        self._coord.adjustment = sum(self._adjustment_samples) / (2.0 * window)

    def _update_gravity(self) -> None:
        dist = _as_go_duration_seconds(distance(self._origin, self._coord))
        ratio = dist / self.config.gravity_rho
        force = -(ratio * ratio)
        self._apply_force(force, self._origin)

    def _apply_force(self, force: float, other: Coordinate) -> None:
        unit, magnitude = self._unit_vector_at(_vec(self._coord), _vec(other))
        coord = self._coord
        coord.vec = [x + u * force for x, u in zip(_vec(coord), unit, strict=True)]
        if magnitude > _ZERO_THRESHOLD:
            height = (coord.height + other.height) * force / magnitude + coord.height
            coord.height = max(height, self.config.height_min)

    def _unit_vector_at(self, v1: list[float], v2: list[float]) -> tuple[list[float], float]:
        """Unit vector from ``v2`` toward ``v1`` and the distance between them.

        When the two coincide, a random direction (magnitude reported as 0).
        """
        diff = [a - b for a, b in zip(v1, v2, strict=True)]
        mag = math.sqrt(sum(x * x for x in diff))
        if mag > _ZERO_THRESHOLD:
            return [x / mag for x in diff], mag
        diff = [self._rng.random() - 0.5 for _ in diff]
        mag = math.sqrt(sum(x * x for x in diff))
        if mag > _ZERO_THRESHOLD:
            return [x / mag for x in diff], 0.0
        # Go's last resort, exceedingly rare: the first axis.
        unit = [0.0] * len(diff)
        unit[0] = 1.0
        return unit, 0.0


class CoordinateCache:
    """Latest known coordinate per node name (serf's ``coordCache``)."""

    __slots__ = ("_coords",)

    def __init__(self) -> None:
        self._coords: dict[str, Coordinate] = {}

    def get(self, node: str) -> Coordinate | None:
        """A copy of the cached coordinate of ``node``, or None."""
        coord = self._coords.get(node)
        return _clone(coord) if coord is not None else None

    def set(self, node: str, coord: Coordinate) -> None:
        """Cache (a copy of) ``coord`` for ``node``."""
        self._coords[node] = _clone(coord)

    def remove(self, node: str) -> None:
        """Forget ``node`` (no error if unknown)."""
        self._coords.pop(node, None)

    def __contains__(self, node: object) -> bool:
        return node in self._coords

    def __len__(self) -> int:
        return len(self._coords)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._coords))
