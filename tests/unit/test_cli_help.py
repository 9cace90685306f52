"""Every ferry command renders its --help (brackets in help texts, such as [/udp], used to
crash rich's markup parser)."""

from __future__ import annotations

from typing import Any

import click.testing
import pytest
import typer
from typer.testing import CliRunner

from ferry.cli.main import build_app

app = build_app()


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if hasattr(group, "commands"):
        for name, command in sorted(group.commands.items()):
            out += _commands(command, (*path, name))
    return out


# built once: typer makes the whole click tree anew on each call (a quarter second here)
CLICK = typer.main.get_command(app)
COMMANDS = _commands(CLICK)


def test_the_walk_finds_the_commands_users_reach_for() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"run", "exec", "service update", "volume create", "network create"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "ferry" for c in COMMANDS])
def test_help_renders(command: tuple[str, ...]) -> None:
    result = click.testing.CliRunner().invoke(CLICK, [*command, "--help"], prog_name="ferry")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def _options(command: tuple[str, ...]) -> list[str]:
    node: Any = CLICK
    for name in command:
        node = node.commands[name]
    return [o for p in node.params for o in (*p.opts, *getattr(p, "secondary_opts", []))]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "ferry" for c in COMMANDS])
def test_no_flag_doubles_its_negation(command: tuple[str, ...]) -> None:
    # a boolean named no_x, declared without its own name, becomes --no-x/--no-no-x in typer
    doubled = [o for o in _options(command) if o.startswith("--no-no-")]
    assert doubled == [], f"ferry {' '.join(command)} offers {doubled}"


def test_image_pull_and_push_are_also_image_verbs() -> None:
    # `docker image pull` and `docker image push` exist beside `docker pull` and `docker push`
    for verb in ("pull", "push"):
        result = CliRunner().invoke(app, ["image", verb, "--help"])
        assert result.exit_code == 0, result.output
