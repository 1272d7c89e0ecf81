"""The public API is typed for users: ``from serf import Serf`` is the real class.

mypy --strict runs on ``tests/typecheck/user_app.py`` (a user's file, written as the README
writes one) against the installed package, and must report exactly the lines marked
``# expect-error: <code>`` there, and nothing in the README's and docs' examples.
``dir(serf)`` and ``help(serf)`` show the classes.
"""

from __future__ import annotations

import ast
import os
import pydoc
import re
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import serf

USER_APP = Path(__file__).parent / "typecheck" / "user_app.py"
_MARK = re.compile(r"#\s*expect-error:\s*([\w-]+)")
_ERROR = re.compile(r"^(?P<file>.+?):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


def _expected() -> set[tuple[int, str]]:
    lines = USER_APP.read_text(encoding="utf-8").splitlines()
    return {(n, m.group(1)) for n, text in enumerate(lines, 1) if (m := _MARK.search(text))}


def _mypy_errors(targets: list[Path], tmp_path: Path) -> tuple[dict[Path, set[Any]], str]:
    """mypy --strict on ``targets`` against the installed serf: each one's (line, code)s."""
    pytest.importorskip("mypy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYPY")}
    root = str(Path(serf.__file__).resolve().parent.parent)
    if root not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        env["MYPYPATH"] = root  # an editable install: mypy does not follow import hooks
    cache = str(tmp_path / "cache")
    args = ["--strict", "--follow-imports=silent", "--no-error-summary", "--show-error-codes"]
    args += ["--cache-dir", cache, "--config-file", os.devnull, *map(str, targets)]
    out = subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    found: dict[Path, set[Any]] = {target.resolve(): set() for target in targets}
    for line in out.stdout.splitlines():
        if (m := _ERROR.match(line)) and (path := Path(m["file"]).resolve()) in found:
            found[path].add((int(m["line"]), m["code"]))
    return found, out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_strict_rejects_the_marked_lines_of_a_user_file_and_accepts_the_examples(
    tmp_path: Path,
) -> None:
    from .test_readme import kit_doc_example, readme_example

    examples = [tmp_path / "readme_example.py", tmp_path / "kit_doc_example.py"]
    examples[0].write_text(readme_example(), encoding="utf-8")
    examples[1].write_text(kit_doc_example(), encoding="utf-8")
    found, output = _mypy_errors([USER_APP, *examples], tmp_path)
    assert len(_expected()) == 2
    assert found[USER_APP.resolve()] == _expected(), output
    for example in examples:
        assert found[example.resolve()] == set(), output


def test_dir_and_help_list_the_public_classes() -> None:
    assert {"Serf", "SerfConfig", "MemberStatus", "UserEvent"} <= set(dir(serf))
    text = pydoc.render_doc(serf, renderer=pydoc.plaintext)
    assert "class Serf" in text
    assert "class SerfConfig" in text


def test_the_type_checker_sees_the_names_the_lazy_loader_returns() -> None:
    tree = ast.parse(Path(serf.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    seen = {
        alias.asname or alias.name: (imp.module, alias.name)
        for imp in block.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    }
    assert seen == serf._LAZY
    assert set(serf.__all__) == {"__version__", *serf._LAZY}
    for name in serf.__all__:
        assert getattr(serf, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        serf.Nope  # type: ignore[attr-defined]  # noqa: B018
