"""ferry volume …"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.cli.common import (
    Column,
    Inspected,
    ListFormatOption,
    client,
    handles_errors,
    print_inspected,
    print_rows,
    remove_each,
)

volume_app = typer.Typer(rich_markup_mode=None, help="Manage volumes.", no_args_is_help=True)


@volume_app.command("create")
@handles_errors
def create(
    name: Annotated[str, typer.Argument(help="Volume name (random when omitted)")] = "",
    label: Annotated[list[str] | None, typer.Option("--label", help="KEY=VALUE")] = None,
    driver: Annotated[str, typer.Option("--driver", "-d", help="Only 'local'")] = "local",
) -> None:
    """Create a volume."""
    labels = dict(item.partition("=")[::2] for item in label or [])
    volume = client().post("/volumes/create", {"Name": name, "Driver": driver, "Labels": labels})
    print(volume["Name"])


VOLUME_COLUMNS: list[Column] = [("DRIVER", "Driver"), ("VOLUME NAME", "Name")]


@volume_app.command("ls")
@handles_errors
def ls(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only names")] = False,
    template: ListFormatOption = "",
) -> None:
    """List volumes."""
    volumes: list[dict[str, Any]] = client().get("/volumes")["Volumes"]
    if quiet:
        for volume in volumes:
            print(volume["Name"])
        return
    print_rows(VOLUME_COLUMNS, volumes, template)


@volume_app.command("inspect")
@handles_errors
def inspect(names: Annotated[list[str], typer.Argument(help="Volumes")]) -> None:
    """Display detailed information on one or more volumes."""
    api = client()
    inspected = Inspected(api, [f"/volumes/{n}" for n in names])
    print_inspected(inspected.found, "")
    inspected.fail_for_missing()


@volume_app.command("rm")
@handles_errors
def rm(
    names: Annotated[list[str], typer.Argument(help="Volumes")],
    force: Annotated[bool, typer.Option("--force", "-f", help="No error if missing")] = False,
) -> None:
    """Remove one or more volumes (refused while a container uses one)."""
    remove_each(client(), "/volumes", names, force=force)


@volume_app.command("prune")
@handles_errors
def prune(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Also unused named volumes")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask")] = False,
) -> None:
    """Remove unused volumes (anonymous ones, or all with --all)."""
    del force  # never asks: there is no prompt in ferry
    filters = {"all": ["true"]} if all_ else None
    result = client().post("/volumes/prune", None, filters=filters)
    if result["VolumesDeleted"]:
        print("Deleted Volumes:")
        for name in result["VolumesDeleted"]:
            print(name)
        print()
    print(f"Total reclaimed space: {result['SpaceReclaimed']}B")
