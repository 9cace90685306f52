"""ferry image …"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.cli.common import (
    Column,
    ListFormatOption,
    client,
    fail,
    for_each,
    handles_errors,
    print_rows,
)

image_app = typer.Typer(rich_markup_mode=None, help="Manage images.", no_args_is_help=True)


@image_app.command("import")
@handles_errors
def import_(
    tarball: Annotated[Path, typer.Argument(help="Root filesystem tarball (docker export/save)")],
    name: Annotated[str, typer.Argument(help="Image name, NAME[:TAG]")],
) -> None:
    """Import a root filesystem tarball as an image."""
    if not tarball.is_file():
        fail(f"no such file: {tarball}", 3)
    repo, _, tag = name.partition(":")
    api = client(None)
    with open(tarball, "rb") as body:
        result = api.upload("/images/create", body, fromSrc="-", repo=repo, tag=tag or None)
    print(result["status"])


def _size(size: int) -> str:
    """Docker's sizes: decimal units, three significant digits (1.5MB, not 1MB)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


@image_app.command("ls")
@handles_errors
def ls(template: ListFormatOption = "") -> None:
    """List images."""
    images: list[dict[str, Any]] = client().get("/images/json")
    rows = []
    for image in images:
        repo, _, tag = image["RepoTags"][0].partition(":")
        created = (
            dt.datetime.fromtimestamp(image["Created"], dt.UTC).strftime("%Y-%m-%d %H:%M")
            if image["Created"]
            else "built in"
        )
        rows.append(
            {
                "Repository": repo,
                "Tag": tag or "-",
                "ID": image["Id"].split(":")[-1][:12],
                "CreatedAt": created,
                "Size": _size(image["Size"]),
            }
        )
    columns: list[Column] = [
        ("REPOSITORY", "Repository"),
        ("TAG", "Tag"),
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedAt"),
        ("SIZE", "Size"),
    ]
    print_rows(columns, rows, template)


@image_app.command("rm")
@handles_errors
def rm(images: Annotated[list[str], typer.Argument(help="Images")]) -> None:
    """Remove one or more images."""
    api = client()

    def one(image: str) -> None:
        for line in api.delete(f"/images/{image}"):
            for key, value in line.items():
                print(f"{key}: {value}")

    for_each(images, one)
