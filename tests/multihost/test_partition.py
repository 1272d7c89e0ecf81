"""Ten pyserf hosts split 5|5 for 60 s: each side sees the other failed; after the heal, serf's
reconnect (no manual join) brings every member back alive in every view within a bound derived
from the reconnect interval."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from serf.testing import bounds
from serf.testing.bedagent import SERF_PORT, BedAgent, wait_until
from serf.testing.netbed import NetBed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.netns,
]

N = 10
PARTITION_SECONDS = 60.0


def test_partition_heals_by_reconnect(agents: Callable[..., BedAgent]) -> None:
    with NetBed(N, family="ipv4") as bed:
        cluster = [agents(h, f"node{h.index}") for h in bed.hosts]
        for agent in cluster:
            join = [] if agent is cluster[0] else [f"-join={bed.hosts[0].hostport(SERF_PORT)}"]
            agent.start(*join)
        names = [a.name for a in cluster]
        all_alive = dict.fromkeys(names, "alive")
        # bound: one push/pull interval for a node the join gossip missed, plus dissemination
        wait_until(
            lambda: all(a.members() == all_alive for a in cluster),
            bounds.convergence_bound(N),
            "ten alive in every view",
            bed=bed,
        )

        left, right = cluster[:5], cluster[5:]
        bed.partition(range(0, 5), range(5, 10))
        cut_at = time.monotonic()

        def split_seen() -> bool:
            for side, other in ((left, right), (right, left)):
                for agent in side:
                    view = agent.members()
                    if any(view.get(a.name) != "alive" for a in side):
                        return False
                    if any(view.get(a.name) != "failed" for a in other):
                        return False
            return True

        # bound: the failure detector's (probe round + probe timeout + max suspicion timeout
        # + dissemination), well inside the 60 s partition
        split_in = wait_until(
            split_seen,
            bounds.failure_detection_bound(N),
            "each side sees the other failed",
            bed=bed,
        )
        # the partition lasts its full 60 s (the fault's duration, not a synchronisation)
        time.sleep(max(0.0, PARTITION_SECONDS - (time.monotonic() - cut_at)))
        assert split_seen(), "the split views changed while partitioned"

        bed.heal()
        # bound: two reconnect intervals (the first cross push/pull makes each side refute the
        # death reported of it, the second carries the refutations across) + dissemination
        healed_in = wait_until(
            lambda: all(a.members() == all_alive for a in cluster),
            bounds.partition_heal_bound(N),
            "all ten alive in every view again, with no manual join",
            bed=bed,
        )
        print(f"split seen after {split_in:.1f} s, healed {healed_in:.1f} s after the heal")
