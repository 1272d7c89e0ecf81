"""LZW benchmark: the compiled twin against the pure one.

Run with pytest-benchmark (the ratios are printed at the end of the module)::

    pytest bench/bench_lzw.py

or on its own, without pytest::

    python bench/bench_lzw.py

Two inputs, each compressed and decompressed on both twins:

* ``packet``: a 1,400-byte gossip-like packet (memberlist's UDP budget): a compound of
  alive/suspect messages with node names, addresses, incarnations and tags, the kind of
  payload ``PacketFramer`` compresses.
* ``1mb``: 1 MiB of such messages with varied names and numbers, long enough to fill the
  12-bit table and reset it a few dozen times.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from types import ModuleType
from typing import Any

import pytest

from serf._speedups import twins

TWINS = twins("lzw")


def gossip_like(size: int, seed: int) -> bytes:
    """Bytes shaped like memberlist gossip: framed messages with names, IPs and counters."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = rng.choice((b"\x02", b"\x03", b"\x04"))
        name = f"node-{rng.randrange(1000):03d}.dc1.example".encode()
        ip = bytes((10, rng.randrange(4), rng.randrange(256), rng.randrange(1, 255)))
        body = (
            kind
            + bytes((len(name),))
            + name
            + ip
            + (7946).to_bytes(2, "big")
            + rng.randrange(1 << 20).to_bytes(4, "big")
            + b"\x83\xa4role\xa3web\xa2dc\xa3dc1\xa3ver\xa51.6.1"
        )
        out += len(body).to_bytes(2, "big") + body
    return bytes(out[:size])


INPUTS = {"packet": gossip_like(1_400, 7946), "1mb": gossip_like(1 << 20, 7373)}
COMPRESSED = {name: TWINS["pure"].compress(data) for name, data in INPUTS.items()}
WORKLOADS = [f"{op} {name}" for op in ("compress", "decompress") for name in INPUTS]


def _call(module: ModuleType, workload: str) -> Callable[[], bytes]:
    op, name = workload.split()
    if op == "compress":
        return partial(module.compress, INPUTS[name])
    return partial(module.decompress, COMPRESSED[name])


_results: dict[tuple[str, str], float] = {}


def _format(timings: dict[tuple[str, str], float], how: str) -> list[str]:
    lines = []
    for workload in WORKLOADS:
        pure = timings.get((workload, "pure"))
        compiled = timings.get((workload, "compiled"))
        if "compiled" not in TWINS:
            lines.append(f"lzw {workload}: compiled twin not built, no ratio")
        elif pure is None or compiled is None:
            lines.append(f"lzw {workload}: no timings (--benchmark-disable?)")
        else:
            lines.append(
                f"lzw {workload}: pure {pure * 1e6:,.1f} us, compiled {compiled * 1e6:,.1f} us "
                f"({how}), compiled/pure = {compiled / pure:.3f} ({pure / compiled:.1f}x faster)"
            )
    return lines


@pytest.fixture(scope="module", autouse=True)
def _report_ratio(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module's benchmarks, print compiled/pure per workload (past the capture)."""
    yield
    lines = _format(_results, "min")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:  # pragma: no cover - plugins disabled
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


@pytest.mark.parametrize("twin", sorted(TWINS))
@pytest.mark.parametrize("workload", WORKLOADS)
def test_lzw(benchmark: Any, workload: str, twin: str) -> None:
    run = _call(TWINS[twin], workload)
    out = benchmark(run)
    op, name = workload.split()
    assert out == (COMPRESSED[name] if op == "compress" else INPUTS[name])
    if benchmark.stats is not None:  # None under --benchmark-disable
        _results[(workload, twin)] = benchmark.stats.stats.min


def _best_of(rounds: int, number: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            run()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def main() -> int:
    """Time every workload on both twins and print the ratios (best of 5)."""
    timings: dict[tuple[str, str], float] = {}
    for twin, module in sorted(TWINS.items()):
        for workload in WORKLOADS:
            number = 200 if "packet" in workload else 2
            timings[(workload, twin)] = _best_of(5, number, _call(module, workload))
    print("\n".join(_format(timings, "best of 5")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
