"""The README's library example, run exactly as written (two nodes on loopback), and the
test-kit example of docs/testing.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
TESTING_DOC = README.parent / "docs" / "testing.md"


def _first_python_block(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, f"no python block under {heading!r} in {path.name}"
    return match.group(1)


def readme_example() -> str:
    """The first ``python`` block of the README's "The library" section."""
    return _first_python_block(README, "## The library")


def kit_doc_example() -> str:
    """The first ``python`` block of docs/testing.md's "Test kit" section."""
    return _first_python_block(TESTING_DOC, "## Test kit")


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


def test_the_kit_doc_example_of_docs_testing_md_passes() -> None:
    namespace: dict[str, object] = {"__name__": "kit_example"}
    exec(compile(kit_doc_example(), str(TESTING_DOC), "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()
