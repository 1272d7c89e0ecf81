"""Ten pyserf hosts on a bad network for two minutes: every link loses 15% of packets and
delays each by 50 ms +- 10 ms. No healthy node may be seen failed for longer than one
suspicion timeout (Lifeguard and refutation must bring it back), and every user event sent
meanwhile reaches every node."""

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
DURATION = 120.0
EVENT_EVERY = 2.0
POLL_EVERY = 0.5


def test_lossy_delayed_links_for_two_minutes(agents: Callable[..., BedAgent]) -> None:
    with NetBed(N, family="ipv4", seed=15) as bed:
        cluster = [agents(h, f"node{h.index}") for h in bed.hosts]
        for agent in cluster:
            join = [] if agent is cluster[0] else [f"-join={bed.hosts[0].hostport(SERF_PORT)}"]
            agent.start(*join)
        all_alive = dict.fromkeys((a.name for a in cluster), "alive")
        # bound: one push/pull interval for a node the join gossip missed, plus dissemination
        wait_until(
            lambda: all(a.members() == all_alive for a in cluster),
            bounds.convergence_bound(N),
            "ten alive in every view",
            bed=bed,
        )

        bed.set_faults(loss=0.15, delay=0.050, jitter=0.010)
        down_since: dict[tuple[str, str], float] = {}  # (viewer, member) -> first seen not alive
        longest: dict[tuple[str, str], float] = {}
        sent: list[str] = []
        start = time.monotonic()
        next_event = start
        while (now := time.monotonic()) - start < DURATION:
            bed.check()
            if now >= next_event:
                name = f"ev-{len(sent)}"
                cluster[len(sent) % N].user_event(name, name.encode())
                sent.append(name)
                next_event += EVENT_EVERY
            for viewer in cluster:
                view = viewer.members()
                if not view:  # the RPC itself is on the host's loopback: no loss there
                    raise AssertionError(f"{viewer.name} stopped answering:\n{viewer.log_tail()}")
                for member, status in view.items():
                    key = (viewer.name, member)
                    if status != "alive":
                        down_since.setdefault(key, now)
                        longest[key] = max(longest.get(key, 0.0), now - down_since[key])
                    else:
                        down_since.pop(key, None)
            time.sleep(POLL_EVERY)  # the sampling period of the views, not a synchronisation
        bed.clear_faults()

        # bound: a node wrongly declared failed hears of it and refutes with a higher
        # incarnation within one suspicion timeout (the Lifeguard maximum for ten nodes,
        # stretched by the load allowance); longer means refutation or Lifeguard is broken
        allowed = bounds.LOAD_FACTOR * bounds.suspicion_timeouts(N)[1]
        worst = {k: round(v, 1) for k, v in longest.items() if v > allowed}
        assert not worst, f"healthy nodes seen failed longer than {allowed:.0f} s: {worst}"
        assert all(a.running for a in cluster)

        # every event reaches every node: its broadcast, or serf's push/pull of recent events
        # (bound: the convergence bound, now on clean links)
        for agent in cluster:
            wait_until(
                lambda: set(sent) <= {e for e, _ in agent.events()},  # noqa: B023
                bounds.convergence_bound(N),
                f"{agent.name} got all {len(sent)} events",
                bed=bed,
            )
        print(
            f"lossy run: {len(sent)} events, {bed.router.counts['lost']} packets lost, "
            f"{len(longest)} (viewer, member) pairs ever not alive, "
            f"longest {max(longest.values(), default=0.0):.1f} s"
        )
