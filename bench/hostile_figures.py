"""Before/after figures for issue 9 (hostile input): regex freeze, query-flood memory, the
trickled stream's CPU, and snapshot load time, memory and size.

Run: ``python bench/hostile_figures.py [--base /path/to/old/checkout] [--quick]``. Each
measurement runs in a child interpreter (pure twins, SERF_NO_EXTENSIONS=1, so both trees run
the same Python) against this tree and, with ``--base``, against an older checkout of the
repository: the baseline, measured in the same run on the same machine. Not part of CI.

- regex: seconds to match ``(.*.*)*Z`` against a tag value of n characters through the query
  filter code (the old tree's backtracking ``re`` doubles per character, so it is measured up
  to a bound and extrapolated to the 21 characters of the issue; RE2 is measured directly);
- query flood: RSS growth of a serf core after 40,000 inbound queries with Timeout = 2**62 ns;
- trickled stream: CPU seconds to read a 1.3 MB push/pull arriving in 1,460-byte reads;
- snapshot: a flapping-member snapshot file of ``--snapshot-mb`` MB: CPU seconds and peak RSS
  of starting a node on it, and the file's size once the node has started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, random, resource, sys, time
which = sys.argv[1]
arg = sys.argv[2] if len(sys.argv) > 2 else ""

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

out = {}
if which == "regex":
    from serf.core.filters import matches
    from serf.wire.messages import FilterTag
    for n in [int(x) for x in arg.split(",")]:
        t = time.process_time()
        matches([FilterTag("env", "(.*.*)*Z")], "n", {"env": "x" * n})
        out[str(n)] = time.process_time() - t
elif which == "queries":
    from serf.address import Address
    from serf.config import SerfConfig
    from serf.core.serf import SerfCore
    from serf.memberlist import io as mio
    from serf.testing.sim import sim_config
    from serf.wire.messages import MessageQuery, UserMsg
    cfg = SerfConfig("a", memberlist=sim_config("a"))
    rng = random.Random(1)
    core = SerfCore(cfg, rng=rng, token_bytes=rng.randbytes, advertise=Address("10.0.0.1", 7946))
    core.handle(mio.Start(), 0.0)
    before = rss_mb()
    for i in range(1, 40_001):
        core.query_clock.witness(i)
        msg = MessageQuery(i, i, b"\x0a\x00\x00\x02", 7946, "x", None, 0, 0, 2**62, "q", b"")
        data = core.framer.encode_message(UserMsg(core.codec.encode(msg)), crc=False)
        core.handle(mio.PacketReceived(data, Address("10.0.0.2", 7946)), 0.0)
    out["rss_growth_mb"] = rss_mb() - before
    out["entries"] = len(core.queries.in_queries)
    out["timers"] = core.services.live_timers()
elif which == "trickle":
    from serf.wire import get_codec
    from serf.wire.framing import PacketFramer
    from serf.wire.messages import PushNodeState, PushPull
    codec = get_codec("go")
    states = [PushNodeState(f"node-{i:06d}", bytes([10, 0, i // 256 % 256, i % 256]), 7946,
                            b"\xff\x81\xa4role\xa3web", i, 0, bytes([1, 5, 2, 2, 5, 4]))
              for i in range(int(arg))]
    node = PacketFramer(codec, compression=False)
    data = node.encode_stream_message(PushPull(False, states, b""), dialer=True)
    reader = node.stream_reader(listener=True)
    t = time.process_time()
    got = None
    for pos in range(0, len(data), 1460):
        got = reader.feed(data[pos:pos + 1460]) or got
    out["cpu_s"] = time.process_time() - t
    out["bytes"] = len(data)
    out["complete"] = got is not None
elif which == "snapshot":
    import asyncio, dataclasses
    from serf.config import SerfConfig, local
    from serf.runtime.serf import Serf
    path = arg
    size_before = os.path.getsize(path)
    async def main():
        ml = dataclasses.replace(local("snap"), bind_addr="127.0.0.1", bind_port=0)
        t = time.process_time()
        node = await Serf.create(SerfConfig("snap", memberlist=ml, snapshot_path=path))
        started = time.process_time() - t
        await asyncio.sleep(1.0)
        size_after = os.path.getsize(path)
        await node.shutdown()
        return started, size_after
    started, size_after = asyncio.run(main())
    out.update(start_cpu_s=started, peak_rss_mb=peak_mb(), size_before=size_before,
               size_after=size_after)
print(json.dumps(out))
"""


def child(tree: Path, which: str, arg: str = "", timeout: float = 900) -> dict[str, object]:
    env = {**os.environ, "SERF_NO_EXTENSIONS": "1", "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, which, arg],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_snapshot(path: Path, megabytes: int) -> None:
    line = b"alive: flapper 10.0.0.2:7946\nnot-alive: flapper\n"
    with path.open("wb") as fh:
        fh.write(b"alive: keeper 10.0.0.3:7946\n")
        chunk = line * 10_000
        for _ in range(megabytes * 1024 * 1024 // len(chunk)):
            fh.write(chunk)
        fh.write(b"clock: 5\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="an older checkout to measure as the baseline")
    ap.add_argument("--quick", action="store_true", help="smaller inputs")
    ap.add_argument("--snapshot-mb", type=int, default=60)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = [("now", here)] + ([("base", args.base.resolve())] if args.base else [])
    nodes = 2_000 if args.quick else 10_000
    mb = 10 if args.quick else args.snapshot_mb
    for label, tree in trees:
        print(f"== {label}: {tree}", flush=True)
        lengths = "10,12,14" if label == "base" else "21,1000,100000"
        regex = child(tree, "regex", lengths)
        print(f"regex (.*.*)*Z, CPU s by tag length: {regex}")
        if label == "base" and "error" not in regex:
            last = max(regex, key=int)
            per_char = (regex[last] / regex[str(int(last) - 2)]) ** 0.5  # type: ignore[operator]
            print(f"  extrapolated to 21 chars: {regex[last] * per_char ** (21 - int(last)):.1f} s")
        print(f"query flood (40,000 x Timeout 2**62): {child(tree, 'queries')}")
        trickle = child(tree, "trickle", str(nodes))
        print(f"trickled push/pull ({nodes} nodes, 1460-byte reads): {trickle}")
        with tempfile.TemporaryDirectory() as tmp:
            snap = Path(tmp) / "snapshot"
            write_snapshot(snap, mb)
            print(f"snapshot ({mb} MB of flapping lines): {child(tree, 'snapshot', str(snap))}")


if __name__ == "__main__":
    main()
