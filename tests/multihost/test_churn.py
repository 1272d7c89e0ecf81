"""Churn on six pyserf hosts with -snapshot while user events flow: hosts are SIGKILLed and
restarted (once before the cluster noticed, once after it saw the host failed) with no -join;
each rejoins from its snapshot, and no handler ever runs for the same event twice (a restarted
agent must not replay the events its snapshot says it has seen, nor take them again from a
peer's push/pull). Every event reaches every host that stayed up, and every event sent after a
restarted host is back reaches it too."""

from __future__ import annotations

import signal
import threading
from collections import Counter
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

N = 6
MAX_EVENTS = 400
EVENT_EVERY = 0.25


class EventFlow:
    """Sends user events ``ev-<k>`` from the stable agents on a thread, until stopped
    (bounded by MAX_EVENTS). ``marks`` records how many had been sent at named moments."""

    def __init__(self, senders: list[BedAgent]) -> None:
        self.senders = senders
        self.sent: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-flow")

    def _run(self) -> None:
        for k in range(MAX_EVENTS):
            if self._stop.wait(EVENT_EVERY):
                return
            name = f"ev-{k}"
            try:
                self.senders[k % len(self.senders)].user_event(name, name.encode())
            except BaseException as exc:  # reported by stop()
                self.errors.append(exc)
                return
            self.sent.append(name)

    def __enter__(self) -> EventFlow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self.errors, self.errors


def test_churn_with_snapshots_never_delivers_twice(agents: Callable[..., BedAgent]) -> None:
    with NetBed(N, family="ipv4") as bed:
        cluster = [
            agents(
                h,
                f"node{h.index}",
                args=[f"-snapshot={{dir}}/node{h.index}.snap"],
            )
            for h in bed.hosts
        ]
        for agent in cluster:
            agent.args = [a.replace("{dir}", str(agent.dir)) for a in agent.args]
            join = [] if agent is cluster[0] else [f"-join={bed.hosts[0].hostport(SERF_PORT)}"]
            agent.start(*join)
        names = [a.name for a in cluster]
        all_alive = dict.fromkeys(names, "alive")

        def converged() -> bool:
            return all(a.members() == all_alive for a in cluster)

        # bound: one push/pull interval for a node the join gossip missed, plus dissemination
        wait_until(converged, bounds.convergence_bound(N), "six alive in every view", bed=bed)

        stable, churned = cluster[:2], cluster[2:]
        back_at: dict[str, int] = {}  # name -> events sent when it was back in every view
        with EventFlow(stable) as flow:
            for round_, victim in enumerate(churned[:2]):
                victim.kill(signal.SIGKILL)
                if round_ == 1:
                    failed = all_alive | {victim.name: "failed"}
                    others = [a for a in cluster if a is not victim]
                    # bound: probe round + probe timeout + max suspicion + dissemination
                    wait_until(
                        lambda: all(a.members() == failed for a in others),  # noqa: B023
                        bounds.failure_detection_bound(N),
                        f"{victim.name} failed in every other view",
                        bed=bed,
                    )
                victim.start()  # no -join: it rejoins the members its snapshot recorded
                # bound: the rejoin's push/pull, then (worst case) one push/pull interval
                # for a view the refutation gossip missed
                wait_until(
                    converged,
                    bounds.convergence_bound(N),
                    f"{victim.name} rejoined from its snapshot",
                    bed=bed,
                )
                back_at[victim.name] = len(flow.sent)
            # a few more events after the last restart
            wait_until(
                lambda: len(flow.sent) >= back_at[churned[1].name] + 8,
                30 * EVENT_EVERY + 10,
                "more events flowed",
                bed=bed,
            )
        sent = list(flow.sent)
        assert len(sent) < MAX_EVENTS, "the flow ran out before the churn ended"

        def has(agent: BedAgent, wanted: list[str]) -> bool:
            return set(wanted) <= {e for e, _ in agent.events()}

        # bound: a broadcast's retransmits, or serf's push/pull of recent events for a node
        # the gossip missed: the convergence bound
        for agent in cluster:
            wanted = sent if agent.name not in back_at else sent[back_at[agent.name] :]
            wait_until(
                lambda: has(agent, wanted),  # noqa: B023
                bounds.convergence_bound(N),
                f"{agent.name} got every event it should have",
                bed=bed,
            )
        for agent in cluster:
            counts = Counter(e for e, _ in agent.events())
            twice = {e: c for e, c in counts.items() if c > 1}
            assert not twice, f"{agent.name} ran its handler twice for {twice}"
            assert agent.starts == (2 if agent.name in back_at else 1)
