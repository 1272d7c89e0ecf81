"""How far a gossiped query (and a user event) gets in a small cluster with no packet loss.

Go serf disseminates both through transmit-limited queues: the sender and every node that
sees the message for the first time put it on their queue, and each sends it to
``retransmit_limit = RetransmitMult * ceil(log10(N + 1))`` gossip targets (4 for N = 5 or 6
on LAN), three fresh random peers per gossip round, plus any ping or ack it rides on. So a
node misses a query exactly when none of those transmissions picked it: a property of the
protocol (Go behaves the same; about 0.5 % of queries miss a node at N = 5 and 2 % at N = 6,
see docs/agent.md), not a lost packet. Queries have no anti-entropy; user events also ride
push/pull, which catches up a node that gossip missed.

These tests pin that down: every node that receives a query sends it exactly the retransmit
limit times, a node receives a query if and only if some packet carrying it was addressed to
it, and nobody receives one twice. A node that misses a query is one nobody sent it to.
At N = 8 (limit 4) about 5 % of queries miss a node (4.7 % of 4000 simulated; real agents, Go's
and ours: docs/agent.md): every receiver sends to 3.55 distinct peers on average, as Go's rule
(3 fresh gossip targets, then 1 more of 7) gives 3 + 4/7.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from serf.core import io as sio
from serf.memberlist import io as mio
from serf.memberlist.broadcast import retransmit_limit
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.testing.sim import SimNode


def _cluster(n: int, seed: int, mult: int) -> SerfSimulation:
    sim = SerfSimulation(seed)
    for i in range(n):
        name = f"n{i}"
        cfg = serf_sim_config(name, memberlist_changes={"retransmit_mult": mult})
        sim.add_serf(name, cfg, join=["n0"] if i else ())
    done = sim.run_until_converged(
        lambda s: all(len(s.serf(x).members()) == n for x in s.nodes), 30.0
    )
    assert done is not None
    sim.run_for(2.0)  # the join intents' gossip has died down
    return sim


def _run(n: int, seed: int, mult: int, count: int) -> tuple[int, int]:
    """``count`` queries from random nodes 0.3 s apart; checks the reach invariants and
    returns (queries that missed a node, (query, node) pairs missed)."""
    sim = _cluster(n, seed, mult)
    names = sorted(sim.nodes)
    by_address = {sim.nodes[x].address: x for x in names}
    tags = [f"qreach-{seed:03d}-{k:04d}".encode() for k in range(count)]
    sent: dict[bytes, Counter[str]] = {t: Counter() for t in tags}  # sender -> packets
    targeted: dict[bytes, set[str]] = {t: set() for t in tags}

    def watch(now: float, node: SimNode, eff: Any) -> None:
        if isinstance(eff, mio.SendPacket) and b"qreach-" in eff.data:
            for t in tags:
                if t in eff.data:
                    sent[t][node.name] += 1
                    targeted[t].add(by_address[eff.dest])

    sim.observers.append(watch)
    sources = {}
    for t in tags:
        src = names[sim.rng.randrange(n)]
        sources[t] = src
        name = t.decode()
        sim.request(src, lambda r, q=name: sio.QueryRequest(r, q, b""))
        sim.run_for(0.3)
    sim.run_for(10.0)  # well past every query's retransmissions
    got: dict[str, Counter[str]] = {
        x: Counter(e.query.name for e in sim.of_type(x, sio.QueryReceived)) for x in names
    }
    limit = retransmit_limit(mult, n)
    missed_queries = missed_pairs = 0
    for t in tags:
        q = t.decode()
        receivers = {x for x in names if got[x][q]}
        assert all(got[x][q] == 1 for x in receivers), q  # each sees it once
        assert receivers == targeted[t] | {sources[t]}, q  # reached iff sent to
        assert dict(sent[t]) == dict.fromkeys(receivers, limit), q  # all relay, limit times
        missed = n - len(receivers)
        missed_pairs += missed
        missed_queries += missed > 0
    return missed_queries, missed_pairs


@pytest.mark.parametrize("n", [5, 6, 8])
def test_every_receiver_relays_a_query_retransmit_limit_times_and_only_untargeted_nodes_miss(
    n: int,
) -> None:
    missed = [_run(n, seed, 4, 40) for seed in range(4)]
    # not an assertion on a rate: the invariants above hold for every query; this is what
    # the seeds give (Go's protocol, not a bug), for the record on failure
    print(f"n={n}: queries missing a node per seed: {missed}")


def test_a_retransmit_limit_of_two_rounds_reaches_every_node() -> None:
    """Mult 8 (limit 8: three rounds of gossip from every receiver) leaves no node out."""
    for seed in range(3):
        assert _run(6, seed, 8, 30) == (0, 0)
