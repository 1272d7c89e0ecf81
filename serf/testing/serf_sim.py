"""Run serf cores in the memberlist simulator.

How this works: :class:`SerfSimulation` subclasses :class:`serf.testing.sim.Simulation` and
boots a :class:`serf.core.serf.SerfCore` per node instead of a bare memberlist core (the
simulator only needs ``handle``, ``next_deadline``, ``stream_reader`` and ``state``, which the serf
core provides or forwards). Serf effects are collected per node in :attr:`SerfSimulation.events`
as ``(virtual time, effect)``; memberlist effects go to the simulator's own handling. A node
whose core reports :class:`~serf.core.io.ShutdownRequired` is taken down (as a driver would).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from serf.config import SerfConfig
from serf.core import io as sio
from serf.core.serf import SerfCore
from serf.core.snapshot import SnapshotState
from serf.memberlist import io as mio
from serf.telemetry import LogLine, MetricSample
from serf.testing.sim import LinkModel, SimNode, Simulation, sim_config

__all__ = ["SerfSimulation", "serf_sim_config"]

_ML_EFFECTS = (
    mio.SendPacket,
    mio.OpenStream,
    mio.StreamRespond,
    mio.RequestCompleted,
    mio.Dropped,
    LogLine,
    MetricSample,
)


def serf_sim_config(name: str, **changes: Any) -> SerfConfig:
    """A serf config on the simulator's memberlist config (compression off)."""
    ml_changes = changes.pop("memberlist_changes", {})
    return SerfConfig(name, memberlist=sim_config(name, **ml_changes), **changes)


class SerfSimulation(Simulation):
    """A seeded simulation of serf nodes (see the module comment)."""

    def __init__(self, seed: int, *, default_link: LinkModel | None = None) -> None:
        super().__init__(seed, default_link=default_link)
        self.serf_configs: dict[str, SerfConfig] = {}
        self.snapshots: dict[str, SnapshotState | None] = {}
        self.events: dict[str, list[tuple[float, Any]]] = {}
        self.serf_completed: dict[int, mio.RequestCompleted] = {}
        self.core_kwargs: dict[str, dict[str, Any]] = {}
        self.on_serf_effect: list[Callable[[float, str, Any], None]] = []

    def add_serf(
        self,
        name: str,
        config: SerfConfig | None = None,
        *,
        join: Iterable[str] = (),
        snapshot: SnapshotState | None = None,
        start: bool = True,
        **core_kwargs: Any,
    ) -> SimNode:
        """Add (and start) a serf node, joining through the nodes named in ``join``."""
        cfg = config if config is not None else serf_sim_config(name)
        self.serf_configs[name] = cfg
        self.snapshots[name] = snapshot
        self.events.setdefault(name, [])
        self.core_kwargs[name] = core_kwargs
        assert cfg.memberlist is not None
        node = self.add_node(name, cfg.memberlist, keyring=core_kwargs.pop("keyring", None),
                             start=start)  # fmt: skip
        if start and join:
            self.serf_join(name, tuple(self.nodes[j].address for j in join))
        return node

    def _boot(self, node: SimNode) -> None:
        cfg = self.serf_configs.get(node.name)
        if cfg is None:
            super()._boot(node)
            return
        seed = self.rng.getrandbits(64)
        rng = random.Random(seed)
        core = SerfCore(
            cfg,
            rng=rng,
            token_bytes=rng.randbytes,
            keyring=node.keyring,
            advertise=node.address,
            snapshot=self.snapshots.get(node.name),
            **self.core_kwargs.get(node.name, {}),
        )
        node.core = core  # type: ignore[assignment]
        node.up = True
        node.generation += 1
        node.armed = None
        node.stalled_until = -1.0
        node.backlog = []
        node.open_streams = {}
        self._record(node, "start")
        for hook in self.on_boot:
            hook(node)
        self._feed(node, mio.Start())

    def serf(self, name: str) -> SerfCore:
        """The serf core of ``name``."""
        core: SerfCore = self.nodes[name].core  # type: ignore[assignment]
        return core

    def request(self, name: str, make: Callable[[int], Any]) -> int:
        """Feed a serf request built by ``make(request_id)``; returns the id."""
        self._request_seq += 1
        rid = self._request_seq
        self._feed(self.nodes[name], make(rid))
        return rid

    def serf_join(self, name: str, addresses: tuple[Any, ...], ignore_old: bool = False) -> int:
        """Feed a SerfJoinRequest."""
        return self.request(name, lambda rid: sio.SerfJoinRequest(rid, addresses, ignore_old))

    def user_event(self, name: str, event: str, payload: bytes, coalesce: bool = False) -> int:
        """Feed a UserEventRequest."""
        return self.request(name, lambda rid: sio.UserEventRequest(rid, event, payload, coalesce))

    def of_type(self, name: str, kind: type) -> list[Any]:
        """The effects of type ``kind`` that node ``name`` produced, in order."""
        return [e for _, e in self.events.get(name, []) if isinstance(e, kind)]

    def _effects(self, node: SimNode, effects: list[Any]) -> None:
        ml: list[mio.Effect] = []
        shutdown = False
        for eff in effects:
            if isinstance(eff, _ML_EFFECTS):
                ml.append(eff)
                if isinstance(eff, mio.RequestCompleted):
                    self.serf_completed[eff.request_id] = eff
            else:
                self.events.setdefault(node.name, []).append((self.now, eff))
                for hook in self.on_serf_effect:
                    hook(self.now, node.name, eff)
                if isinstance(eff, sio.ShutdownRequired):
                    shutdown = True
        if ml:
            super()._effects(node, ml)
        if shutdown:
            self.crash(node.name)
            self._record(node, "shutdown (name conflict)")
