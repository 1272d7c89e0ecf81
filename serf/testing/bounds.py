"""Wall-clock bounds for real-process cluster tests, derived from the protocol's timers.

How this works: each function adds up the worst case of the timers involved (memberlist's
probe, suspicion and gossip, serf's push/pull and reconnect) for a cluster of ``n`` nodes and
multiplies by :data:`LOAD_FACTOR`, a fixed allowance for processes competing for a small,
shared CI machine (the protocol's own timers stretch there too: Lifeguard lengthens probe
timeouts when a node is slow to answer). Tests wait *up to* these bounds and never assert how
fast something happened. The defaults are the agent's: memberlist LAN and serf's defaults.
"""

from __future__ import annotations

import math

from serf.config import MemberlistConfig, SerfConfig, lan

__all__ = [
    "LOAD_FACTOR",
    "convergence_bound",
    "dissemination_time",
    "failure_detection_bound",
    "partition_heal_bound",
    "suspicion_timeouts",
]

LOAD_FACTOR = 1.5
"""Allowance for scheduling on a loaded machine, applied once to each bound."""


def _ml(config: MemberlistConfig | None) -> MemberlistConfig:
    return config if config is not None else lan("bound")


def dissemination_time(n: int, config: MemberlistConfig | None = None) -> float:
    """Seconds for a broadcast to use up its retransmits: ``retransmit_mult *
    ceil(log10(n + 1))`` gossip rounds of ``gossip_interval`` (memberlist's limit)."""
    ml = _ml(config)
    return ml.retransmit_mult * math.ceil(math.log10(n + 1)) * ml.gossip_interval


def suspicion_timeouts(n: int, config: MemberlistConfig | None = None) -> tuple[float, float]:
    """Lifeguard's ``(min, max)`` suspicion timeouts for ``n`` nodes: min = ``suspicion_mult *
    max(1, log10(n)) * probe_interval``, max = ``suspicion_max_timeout_mult * min``."""
    ml = _ml(config)
    low = ml.suspicion_mult * max(1.0, math.log10(max(1, n))) * ml.probe_interval
    return low, ml.suspicion_max_timeout_mult * low


def failure_detection_bound(n: int, config: MemberlistConfig | None = None) -> float:
    """Crash to every live node seeing the node failed: some node probes it within one
    probe round (``(n - 1) * probe_interval``), the probe times out (``probe_timeout``, up to
    ``awareness_max_multiplier`` times when the prober is itself degraded), the suspicion
    runs for at most the max suspicion timeout, and the dead message disseminates."""
    ml = _ml(config)
    probe = (n - 1) * ml.probe_interval + ml.probe_timeout * ml.awareness_max_multiplier
    return LOAD_FACTOR * (probe + suspicion_timeouts(n, ml)[1] + dissemination_time(n, ml))


def convergence_bound(n: int, config: MemberlistConfig | None = None) -> float:
    """Every node knowing every alive node after each joined one seed: a node missed by the
    join's gossip learns the rest at its next push/pull (``push_pull_interval``; memberlist
    scales it only above 32 nodes), then its own alive message disseminates."""
    ml = _ml(config)
    scale = max(1.0, math.ceil(math.log2(n) - math.log2(32)) + 1.0) if n > 32 else 1.0
    return LOAD_FACTOR * (ml.push_pull_interval * scale + dissemination_time(n, ml))


def partition_heal_bound(
    n: int,
    config: MemberlistConfig | None = None,
    serf: SerfConfig | None = None,
) -> float:
    """From heal to all alive in every view with no manual join: serf's reconnect (every
    ``reconnect_interval``, each node tries a random failed member; with half the cluster
    failed the try is certain) makes a push/pull across. The first exchange makes the nodes
    on both sides refute the death others reported of them, with a higher incarnation; the
    refutations cross at the next reconnect (or push/pull) round, so two reconnect intervals,
    plus dissemination on each side."""
    ml = _ml(config)
    reconnect = (
        serf.reconnect_interval if serf is not None else SerfConfig("bound").reconnect_interval
    )
    return LOAD_FACTOR * (2 * reconnect + 2 * dissemination_time(n, ml) + ml.probe_interval)
