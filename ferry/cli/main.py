"""Entry point of the ``ferry`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from ferry.cli import container_verbs, containers, doctor, images, system
from ferry.cli.common import set_host
from ferry.cli.lab import lab_app
from ferry.cli.network import network_app
from ferry.cli.service import service_app
from ferry.cli.swarm import node_app, swarm_app
from ferry.cli.volumes import volume_app

app = typer.Typer(
    rich_markup_mode=None,
    name="ferry",
    help="Multi-host container networking and orchestration on the Linux kernel's data plane.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_options(
    host: Annotated[
        str | None,
        typer.Option("--host", "-H", envvar="FERRY_HOST", help="ferryd socket (unix://PATH)"),
    ] = None,
) -> None:
    set_host(host)


system.register(app)
containers.register(app)
container_verbs.register(app)
doctor.register(app)
images.register(app)
app.add_typer(swarm_app, name="swarm")
app.add_typer(node_app, name="node")
app.add_typer(network_app, name="network")
app.add_typer(service_app, name="service")
app.add_typer(images.image_app, name="image")
app.add_typer(volume_app, name="volume")
app.add_typer(container_verbs.container_app, name="container")
app.add_typer(lab_app, name="lab")


def main() -> None:
    app()
