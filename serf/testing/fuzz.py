"""A small seeded mutation fuzzer for the adversarial suite.

How this works: a target is a callable taking bytes; :func:`fuzz` feeds it seeds (valid
encodings) and mutations of them (bit flips, byte edits, truncations, splices, inserted
"interesting" bytes, random tails) and checks that every call either returns or raises one
of the allowed exception classes. It runs ``cases`` inputs, or, when the environment sets
``SERF_FUZZ_SECONDS``, for that many seconds instead. The run is reproducible from its
seed; a failure names the seed, the case number and the input.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence

__all__ = ["FuzzFailure", "fuzz", "fuzz_budget", "mutate"]

_INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF, 0xFE, 0xFF)


class FuzzFailure(AssertionError):
    """A target raised something it must not have."""


def fuzz_budget() -> float | None:
    """Seconds per target from ``SERF_FUZZ_SECONDS`` (None: run the fixed case count)."""
    raw = os.environ.get("SERF_FUZZ_SECONDS", "").strip()
    return float(raw) if raw else None


def mutate(rng: random.Random, data: bytes, seeds: Sequence[bytes]) -> bytes:
    """One mutation of ``data`` (a few edits stacked)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.choice(_INTERESTING)
        elif op == 2:
            buf[pos:pos] = bytes([rng.choice(_INTERESTING)]) * rng.randint(1, 4)
        elif op == 3 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 4:
            del buf[pos:]
        elif op == 5 and seeds:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        elif op == 6:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif buf:
            i = rng.randrange(len(buf))
            buf[i] = (buf[i] + rng.choice((1, -1, 0x40, 0x80))) & 0xFF
    return bytes(buf)


def fuzz(
    target: Callable[[bytes], object],
    seeds: Sequence[bytes],
    *,
    allowed: tuple[type[BaseException], ...],
    cases: int = 500,
    seed: int = 0,
) -> int:
    """Run ``target`` on seeds and mutations; the number of inputs tried.

    Raises :class:`FuzzFailure` when the target raises anything outside ``allowed``.
    """
    rng = random.Random(seed)
    budget = fuzz_budget()
    end = time.monotonic() + budget if budget is not None else None
    inputs: list[bytes] = list(seeds)
    count = 0
    while True:
        if end is None:
            if count >= cases:
                return count
        elif count % 64 == 0 and time.monotonic() > end:
            return count
        if count < len(inputs):
            data = inputs[count]
        elif rng.random() < 0.1:
            data = rng.randbytes(rng.randint(0, 64))
        else:
            data = mutate(rng, rng.choice(inputs or [b""]), seeds)
        try:
            target(data)
        except allowed:
            pass
        except Exception as exc:
            raise FuzzFailure(
                f"seed {seed} case {count}: {type(exc).__name__}: {exc} on input {data!r}"
            ) from exc
        count += 1
