"""The README's library example, run exactly as written: two nodes on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    """The first ``python`` block of the README's "The library" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The library") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "no python block in the README's library section"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.integration
def test_the_readme_example_runs_and_shows_its_event_and_query(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-P", "-X", "dev", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "reached 1"
    assert lines[1] == "[('db-1', 'alive'), ('web-1', 'alive')]"
    assert sorted(lines[2:4]) == ["db-1 got event deploy b'v42'", "db-1 got query uptime"]
    assert lines[4:] == ["responses {'db-1': b'up 3 days'}"]
    assert "Warning" not in out.stderr, out.stderr
