"""List-keys answers in virtual time: one too big for the response limit is cut to the keys that
fit and says so; an answer that does not decode is counted as a failure with Go's message."""

from __future__ import annotations

import base64
from typing import Any

from serf.core import io as sio
from serf.memberlist import io as mio
from serf.testing.serf_sim import SerfSimulation, serf_sim_config
from serf.wire.keyring import Keyring

KEYS = [bytes([i]) * 32 for i in range(1, 41)]  # 40 keys: ~1.8 KB of base64, over 1024 B


def _cluster(**changes: Any) -> SerfSimulation:
    sim = SerfSimulation(5)
    for i in range(3):
        name = f"n{i}"
        sim.add_serf(name, serf_sim_config(name, **changes), join=["n0"] if i else (),
                     keyring=Keyring(KEYS))  # fmt: skip
    sim.run_for(5.0)
    return sim


def _list(sim: SerfSimulation) -> mio.RequestCompleted:
    rid = sim.request("n0", lambda r: sio.KeyRequest(r, "list"))
    sim.run_for(10.0)
    return sim.serf_completed[rid]


def test_a_key_list_over_the_response_limit_is_truncated_and_says_so() -> None:
    done = _list(_cluster())
    resp = done.result
    assert isinstance(resp, sio.KeyResponse) and done.error is None
    assert (resp.num_nodes, resp.num_resp, resp.num_err) == (3, 3, 0)
    texts = set(resp.messages.values())
    assert len(resp.messages) == 3 and len(texts) == 1
    (text,) = texts
    assert text.startswith("truncated key list response, showing first ")
    shown = int(text.split()[-4])
    assert 0 < shown < len(KEYS) and text.endswith(f"of {len(KEYS)} keys")
    first = [base64.b64encode(k).decode() for k in KEYS[:shown]]
    assert resp.keys == dict.fromkeys(first, 3)
    assert resp.primary_keys == {first[0]: 3}


def test_a_key_list_under_the_limit_is_whole() -> None:
    done = _list(_cluster(query_response_size_limit=4096))
    resp = done.result
    assert isinstance(resp, sio.KeyResponse) and done.error is None
    assert resp.messages == {}
    assert resp.keys == {base64.b64encode(k).decode(): 3 for k in KEYS}
