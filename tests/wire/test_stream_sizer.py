"""Which stream sizer a codec gets, and that choosing it imports nothing.

An agent speaking the go codec once imported the pure lpe twin at its first stream (a
push/pull: its join), only to test ``isinstance`` against it: ~90 ms of compiling inside the
join of every fresh agent when no bytecode cache exists, which made 31 agents joining one
seed at once 2-3x slower than Go's (docs/performance.md, "Go serf side by side").
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from serf import _speedups
from serf.wire.stream_sizer import GoStreamSizer, LpeStreamSizer, sizer_for


@pytest.mark.parametrize("twin", sorted(_speedups.twins("lpe")))
def test_each_lpe_twin_gets_the_lpe_sizer(twin: str) -> None:
    codec = _speedups.twins("lpe")[twin].LpeCodec()
    assert isinstance(sizer_for(codec, 1 << 20), LpeStreamSizer)


@pytest.mark.parametrize("twin", sorted(_speedups.twins("go")))
def test_each_go_twin_gets_the_go_sizer(twin: str) -> None:
    codec = _speedups.twins("go")[twin].GoCodec()
    assert isinstance(sizer_for(codec, 1 << 20), GoStreamSizer)


def test_a_go_stream_reader_imports_no_lpe_twin() -> None:
    code = textwrap.dedent(
        """
        import sys
        from serf.wire.framing import PacketFramer, StreamReader
        from serf.wire.stream_sizer import GoStreamSizer
        reader = StreamReader(PacketFramer("go"), listener=True)
        assert isinstance(reader._sizer, GoStreamSizer), reader._sizer
        print(sorted(m for m in ("serf.wire.lpe", "serf._fast.lpe") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
