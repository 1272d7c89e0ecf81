"""The deployment recipes in deploy/ and docs/deploy.md: they parse, they load, they agree.

Docker is not needed: the Dockerfile is checked the way ``docker build`` reads it (line
continuations, comments, instructions, JSON forms, build stages) and against the build context
(the repository root, minus ``deploy/Dockerfile.dockerignore``).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from serf.agent.config import load_config, parse_flags

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "deploy.md"

KNOWN_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
JSON_FORM = {"CMD", "ENTRYPOINT", "SHELL", "VOLUME", "RUN", "HEALTHCHECK"}


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) as ``docker build`` reads them."""
    out: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue  # blank lines and comments (parser directives included) between lines
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        word, _, args = joined.partition(" ")
        out.append((start, word.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return out


def _flags_and_args(args: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(args)
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.removeprefix("**/"))
        for pat in patterns
    )


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[int, str, str]]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


def test_dockerfile_syntax(dockerfile: list[tuple[int, str, str]]) -> None:
    assert dockerfile, "empty Dockerfile"
    assert dockerfile[0][1] == "FROM", f"line {dockerfile[0][0]}: the first instruction is not FROM"
    for number, word, args in dockerfile:
        assert word in KNOWN_INSTRUCTIONS, f"line {number}: unknown instruction {word}"
        assert args, f"line {number}: {word} without arguments"
        if word in JSON_FORM and args.lstrip("-").startswith("["):
            form = json.loads(args)
            assert isinstance(form, list) and all(isinstance(x, str) for x in form), number
        if word == "HEALTHCHECK":
            _, words = _flags_and_args(args.split(" CMD ", 1)[0] + " ")
            body = args.split(" CMD ", 1)[1]
            assert words == [] and json.loads(body)


def test_dockerfile_copy_sources_exist_and_are_not_ignored(
    dockerfile: list[tuple[int, str, str]],
) -> None:
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages: list[str] = []
    copies = 0
    for number, word, args in dockerfile:
        if word == "FROM":
            words = args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(words[2])
            continue
        if word not in ("COPY", "ADD"):
            continue
        flags, words = _flags_and_args(args)
        assert len(words) >= 2, f"line {number}: {word} needs a source and a destination"
        if "from" in flags:
            assert flags["from"] in stages, f"line {number}: unknown stage {flags['from']}"
            continue
        for source in words[:-1]:
            matches = list(ROOT.glob(source))
            assert matches, f"line {number}: {source} is not in the build context"
            assert not _ignored(source, ignore), f"line {number}: {source} is dockerignored"
            copies += 1
    assert copies >= 2 and stages


def test_dockerfile_runs_our_agent_with_gossip_ports_exposed(
    dockerfile: list[tuple[int, str, str]],
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    by_word = {word: args for _, word, args in dockerfile}  # the last of each wins, as Docker
    entry = json.loads(by_word["ENTRYPOINT"])
    assert entry[0] in pyproject["project"]["scripts"] and entry[1] == "agent"
    parse_flags(entry[2:])  # the flags are the agent's
    exposed = set(by_word["EXPOSE"].split())
    assert {"7946/udp", "7946/tcp"} <= exposed and not any("7373" in p for p in exposed)
    assert by_word["USER"] != "root"
    assert "pip wheel" in " ".join(a for _, w, a in dockerfile if w == "RUN")


def test_example_config_loads() -> None:
    cfg = load_config(["-config-file", str(DEPLOY / "serf.json"), "-node", "web-1"])
    assert cfg.bind == "0.0.0.0:7946" and cfg.rpc_addr == "127.0.0.1:7373"
    assert cfg.snapshot_path and cfg.keyring_file and cfg.retry_join


def test_systemd_unit_parses_and_runs_the_agent() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "serf.service").read_text(encoding="utf-8"))
    assert unit.sections() == ["Unit", "Service", "Install"]
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == "serf" and argv[1] == "agent"
    parse_flags(argv[2:])
    assert unit["Service"]["StateDirectory"] == "serf"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _code_blocks(markdown: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", markdown, flags=re.S | re.M)


def test_docs_show_the_files_as_they_are() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert (DEPLOY / "serf.json").read_text() in _code_blocks(text, "json")
    assert (DEPLOY / "serf.service").read_text() in _code_blocks(text, "ini")
    assert "docs/deploy.md" in (ROOT / "README.md").read_text(encoding="utf-8")
