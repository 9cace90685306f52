"""The ``ferry`` entry point builds only the part of the command tree a command line reaches
(``ferry.cli.main``): every command and group must behave there exactly as in the whole tree."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click.testing
import pytest
import typer

from ferry.cli.main import GROUPS, build_app

WHOLE: Any = typer.main.get_command(build_app())
FIRST_WORDS = sorted(WHOLE.commands)


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        out += _walk(sub, (*path, name))
    return out


def _help(root: Any, path: tuple[str, ...]) -> str:
    result = click.testing.CliRunner().invoke(root, [*path, "--help"], prog_name="ferry")
    assert result.exit_code == 0, result.output
    return result.output


def test_every_first_word_gets_a_part_of_its_own() -> None:
    for word in FIRST_WORDS:
        part: Any = typer.main.get_command(build_app(word))
        assert word in part.commands
        assert len(part.commands) < len(WHOLE.commands), word


@pytest.mark.parametrize("word", FIRST_WORDS)
def test_each_command_is_the_same_in_its_part_as_in_the_whole_tree(word: str) -> None:
    part: Any = typer.main.get_command(build_app(word))
    for path in _walk(WHOLE.commands[word], (word,)):
        assert _help(part, path) == _help(WHOLE, path), " ".join(path)


def test_what_is_no_command_gets_the_whole_tree() -> None:
    for first in (None, "--help", "-H", "rnu", "Lab"):
        assert len(typer.main.get_command(build_app(first)).commands) == len(FIRST_WORDS)  # type: ignore[attr-defined]


def test_the_groups_are_the_whole_trees_groups() -> None:
    groups = {name for name, c in WHOLE.commands.items() if hasattr(c, "commands")}
    assert groups == set(GROUPS)


def test_global_options_work_before_and_inside_a_part(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.cli import common

    seen: list[str | None] = []
    monkeypatch.setattr(common, "set_host", seen.append)
    runner = click.testing.CliRunner()
    part: Any = typer.main.get_command(build_app("lab"))
    assert runner.invoke(part, ["-H", "unix:///x", "lab", "--help"]).exit_code == 0
    assert seen == ["unix:///x"]


PART_IN_A_FRESH_PROCESS = """
import json, sys, click.testing, typer
from ferry.cli.main import build_app
word = sys.argv[1]
part = typer.main.get_command(build_app(word))
def walk(command, path):
    out = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        out += walk(sub, path + [name])
    return out
helps = {}
for path in walk(part.commands[word], [word]):
    result = click.testing.CliRunner().invoke(part, [*path, "--help"], prog_name="ferry")
    helps[" ".join(path)] = result.output
print(json.dumps(helps))
"""


@pytest.mark.parametrize("word", sorted(GROUPS))
def test_a_group_is_whole_in_a_process_that_imported_nothing_else(word: str) -> None:
    # in one process the whole tree, built first, could fill a group that a part alone lacks
    out = subprocess.run(
        [sys.executable, "-c", PART_IN_A_FRESH_PROCESS, word],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    helps = json.loads(out.stdout)
    expected = {" ".join(p): _help(WHOLE, p) for p in _walk(WHOLE.commands[word], (word,))}
    assert helps == expected
