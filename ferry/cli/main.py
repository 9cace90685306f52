"""Entry point of the ``ferry`` command.

Typer turns the whole command tree into click commands on every start, and importing every
command module costs as much again: together about 0.3 s of a 0.5 s start. A command line
whose first word names a command group or a top-level command therefore gets an app that
holds only that group or the module that registers that command, with the same settings and
global options; anything else (``ferry``, ``ferry --help``, ``ferry -H … ps``, a typo) gets
the whole tree. ``tests/unit/test_cli_main.py`` checks that the two agree for every command.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

# top-level commands: the module whose ``register`` adds them
_MODULE_OF_COMMAND = {
    **dict.fromkeys(("info", "version"), "ferry.cli.system"),
    **dict.fromkeys(
        (
            "run",
            "exec",
            "ps",
            "logs",
            "inspect",
            "start",
            "stop",
            "restart",
            "kill",
            "rm",
            "wait",
            "attach",
        ),
        "ferry.cli.containers",
    ),
    **dict.fromkeys(
        ("top", "stats", "cp", "rename", "pause", "unpause", "update", "export", "port", "diff"),
        "ferry.cli.container_verbs",
    ),
    "doctor": "ferry.cli.doctor",
    **dict.fromkeys(
        (
            "pull",
            "push",
            "login",
            "logout",
            "images",
            "rmi",
            "tag",
            "save",
            "load",
            "import",
            "history",
        ),
        "ferry.cli.images",
    ),
}
# in the order ``ferry --help`` lists them
_REGISTERING_MODULES = (
    "ferry.cli.system",
    "ferry.cli.containers",
    "ferry.cli.container_verbs",
    "ferry.cli.doctor",
    "ferry.cli.images",
)
# command groups: (module, its Typer), in the order ``ferry --help`` lists them
GROUPS = {
    "swarm": ("ferry.cli.swarm", "swarm_app"),
    "node": ("ferry.cli.swarm", "node_app"),
    "network": ("ferry.cli.network", "network_app"),
    "service": ("ferry.cli.service", "service_app"),
    "secret": ("ferry.cli.secrets", "secret_app"),
    "config": ("ferry.cli.secrets", "config_app"),
    "stack": ("ferry.cli.stack", "stack_app"),
    "image": ("ferry.cli.images", "image_app"),
    "volume": ("ferry.cli.volumes", "volume_app"),
    "container": ("ferry.cli.container_verbs", "container_app"),
    "lab": ("ferry.cli.lab", "lab_app"),
}


def main_options(
    host: Annotated[
        str | None,
        typer.Option("--host", "-H", envvar="FERRY_HOST", help="ferryd socket (unix://PATH)"),
    ] = None,
) -> None:
    from ferry.cli.common import set_host

    set_host(host)


def build_app(first_word: str | None = None) -> typer.Typer:
    """The ``ferry`` app: whole, or (for a known ``first_word``) holding only what that
    command line can reach."""
    app = typer.Typer(
        rich_markup_mode=None,
        name="ferry",
        help="Multi-host container networking and orchestration on the Linux kernel's data plane.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main_options)
    if first_word in GROUPS:
        _add_group(app, first_word)
    elif first_word in _MODULE_OF_COMMAND:
        importlib.import_module(_MODULE_OF_COMMAND[first_word]).register(app)
    else:
        for module in _REGISTERING_MODULES:
            importlib.import_module(module).register(app)
        for name in GROUPS:
            _add_group(app, name)
    return app


def _add_group(app: typer.Typer, name: str) -> None:
    module, attribute = GROUPS[name]
    app.add_typer(getattr(importlib.import_module(module), attribute), name=name)


def main() -> None:
    build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
