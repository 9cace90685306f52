"""How ``ferry run`` and ``ferry exec`` split their words: an unknown option before the image
(or container) is refused by name, every word after it belongs to the command."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ferry.cli.main import build_app

app = build_app()

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "unknown"),
    [
        (["run", "--rm", "--device", "/dev/null", "tools", "true"], "--device"),
        (["run", "--no-such-flag", "tools"], "--no-such-flag"),
        (["exec", "--no-such-flag", "box", "true"], "--no-such-flag"),
    ],
)
def test_an_unknown_option_is_refused_by_name_not_taken_as_the_image(
    args: list[str], unknown: str
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"No such option: {unknown}" in result.output
    assert "invalid image name" not in result.output


def test_the_words_after_the_image_are_the_commands_options_included() -> None:
    run = COMMANDS["run"].make_context("run", ["--rm", "tools", "ls", "-la", "--device", "x"])
    assert run.params["image"] == "tools"
    assert run.params["command"] == ["ls", "-la", "--device", "x"]
    exec_ = COMMANDS["exec"].make_context("exec", ["-u", "1", "box", "sh", "-c", "id -u"])
    assert exec_.params["container"] == "box"
    assert exec_.params["command"] == ["sh", "-c", "id -u"]


def test_a_missing_image_is_still_a_usage_error() -> None:
    with pytest.raises(Exception, match="Missing parameter: image"):
        COMMANDS["run"].make_context("run", ["--rm"])
