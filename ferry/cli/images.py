"""ferry image … (and ``ferry images``): the local image verbs, in Docker's output."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer

from ferry.cli.common import (
    Column,
    Inspected,
    ListFormatOption,
    client,
    fail,
    for_each,
    handles_errors,
    parse_filters,
    print_inspected,
    print_rows,
)
from ferry.cli.registry import login, logout, pull, push
from ferry.model.times import human_duration

image_app = typer.Typer(rich_markup_mode=None, help="Manage images.", no_args_is_help=True)
Strs = list[str] | None


def register(app: typer.Typer) -> None:
    """The docker CLI's top-level aliases: ``pull``, ``push``, ``login``, ``logout``,
    ``images``, ``rmi``, ``tag``, ``save``, ``load``, ``import``, ``history``."""
    app.command("pull")(pull)
    app.command("push")(push)
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("images")(ls)
    app.command("rmi")(rm)
    app.command("tag")(tag)
    app.command("save")(save)
    app.command("load")(load)
    app.command("import")(import_)
    app.command("history")(history)


def _size(size: int) -> str:
    """Docker's sizes: decimal units, three significant digits (1.5MB, not 1MB)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def _ago(created: float) -> str:
    return f"{human_duration(max(0.0, time.time() - created))} ago" if created else "N/A"


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


@image_app.command("import")
@handles_errors
def import_(
    tarball: Annotated[Path, typer.Argument(help="Root filesystem tarball (docker export/save)")],
    name: Annotated[str, typer.Argument(help="Image name, NAME[:TAG]")],
    change: Annotated[
        Strs, typer.Option("--change", "-c", help="Dockerfile instruction (CMD, ENV, …)")
    ] = None,
    message: Annotated[
        str, typer.Option("--message", "-m", help="Commit message (the history comment)")
    ] = "",
    platform: Annotated[
        str, typer.Option("--platform", help="This host's platform (linux/ARCH) only")
    ] = "",
) -> None:
    """Import a root filesystem tarball as an image (``docker import``)."""
    if not tarball.is_file():
        fail(f"no such file: {tarball}", 3)
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    query = [("fromSrc", "-"), ("repo", repo), *([("tag", tag)] if tag else [])]
    query += [("changes", c) for c in change or []]
    query += [(k, v) for k, v in (("message", message), ("platform", platform)) if v]
    with open(tarball, "rb") as body:
        result = client(None).upload("/images/create?" + urlencode(query), body)
    print(result["status"])


def _repo_of(ref: str, sep: str) -> tuple[str, str]:
    """``nginx:1`` → (``nginx``, ``1``) with ``sep`` ``:``; ``nginx@sha256:…`` with ``@``."""
    if sep == "@":
        repo, _, digest = ref.partition("@")
        return repo, digest
    repo, found, tag = ref.rpartition(":")
    return (repo, tag) if found and "/" not in tag else (ref, "")


def image_rows(image: dict[str, Any], digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows of one ImageSummary, as the docker CLI makes them
    (cli/command/formatter/image.go): a dangling image is one ``<none>`` row; else a row per
    tag (with ``--digests``, per tag and digest of its repository), then a ``<none>`` tag row
    for a repository known only by digest (one per digest with ``--digests``)."""
    tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
    refs = [d for d in image.get("RepoDigests") or [] if d != "<none>@<none>"]
    if not tags and not refs:
        return [("<none>", "<none>", "<none>")]
    by_repo: dict[str, list[str]] = {}
    for ref in refs:
        repo, digest = _repo_of(ref, "@")
        by_repo.setdefault(repo, []).append(digest)
    rows = []
    for tag_ref in tags:
        repo, tag = _repo_of(tag_ref, ":")
        shown = by_repo.get(repo, []) if digests else []
        rows += [(repo, tag, d) for d in shown] or [(repo, tag, "<none>")]
    tagged = {_repo_of(t, ":")[0] for t in tags}
    for repo, found in by_repo.items():
        if repo not in tagged:
            rows += [(repo, "<none>", d) for d in found] if digests else [(repo, "<none>", "")]
    return rows


def _rows(images: list[dict[str, Any]], digests: bool) -> list[dict[str, str]]:
    rows = []
    for image in images:
        for repo, tag, digest in image_rows(image, digests):
            rows.append(
                {
                    "Repository": repo,
                    "Tag": tag,
                    "Digest": digest,
                    "ID": _short(image["Id"]),
                    "CreatedSince": _ago(image["Created"]),
                    "CreatedAt": time.strftime(
                        "%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(image["Created"])
                    ),
                    "Size": _size(image["Size"]),
                }
            )
    return rows


@image_app.command("ls")
@handles_errors
def ls(
    reference: Annotated[str, typer.Argument(help="Only REPOSITORY[:TAG]")] = "",
    all_: Annotated[bool, typer.Option("--all", "-a", help="Show all images")] = False,
    digests: Annotated[bool, typer.Option("--digests", help="Show digests")] = False,
    filters: Annotated[Strs, typer.Option("--filter", "-f", help="KEY=VALUE")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only image IDs")] = False,
    template: ListFormatOption = "",
) -> None:
    """List images (``docker images``)."""
    found = parse_filters(filters or [])
    if reference:
        found.setdefault("reference", []).append(reference)
    images: list[dict[str, Any]] = client().get(
        "/images/json", all=all_ or None, filters=found or None
    )
    if quiet:
        for image_id in dict.fromkeys(_short(i["Id"]) for i in images):
            print(image_id)
        return
    columns: list[Column] = [("REPOSITORY", "Repository"), ("TAG", "Tag")]
    if digests:
        columns.append(("DIGEST", "Digest"))
    columns += [("IMAGE ID", "ID"), ("CREATED", "CreatedSince"), ("SIZE", "Size")]
    # a template that prints .Digest gets the digests as --digests does (docker CLI 27)
    print_rows(columns, _rows(images, digests or ".Digest" in template), template)


@image_app.command("inspect")
@handles_errors
def inspect(
    images: Annotated[list[str], typer.Argument(help="Images")],
    template: Annotated[str, typer.Option("--format", "-f", help="Go template")] = "",
) -> None:
    """Display detailed information on one or more images."""
    api = client()
    inspected = Inspected(api, [f"/images/{quote(i, safe='/:@')}/json" for i in images])
    print_inspected(inspected.found, template)
    inspected.fail_for_missing()


@image_app.command("history")
@handles_errors
def history(
    image: Annotated[str, typer.Argument(help="Image")],
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Do not truncate")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only image IDs")] = False,
) -> None:
    """Show the history of an image."""
    entries: list[dict[str, Any]] = client().get(f"/images/{quote(image, safe='/:@')}/history")
    if quiet:
        for entry in entries:
            print(entry["Id"] if no_trunc or entry["Id"] == "<missing>" else _short(entry["Id"]))
        return
    rows = []
    for entry in entries:
        created_by = entry["CreatedBy"]
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        image_id = entry["Id"] if no_trunc or entry["Id"] == "<missing>" else _short(entry["Id"])
        rows.append(
            {
                "ID": image_id,
                "CreatedSince": _ago(entry["Created"]),
                "CreatedBy": created_by,
                "Size": _size(entry["Size"]),
                "Comment": entry["Comment"],
            }
        )
    columns: list[Column] = [
        ("IMAGE", "ID"),
        ("CREATED", "CreatedSince"),
        ("CREATED BY", "CreatedBy"),
        ("SIZE", "Size"),
        ("COMMENT", "Comment"),
    ]
    print_rows(columns, rows, "")


@image_app.command("rm")
@handles_errors
def rm(
    images: Annotated[list[str], typer.Argument(help="Images")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Force removal")] = False,
) -> None:
    """Remove one or more images."""
    api = client()

    def one(image: str) -> None:
        for line in api.delete(f"/images/{quote(image, safe='/:@')}", force=force or None):
            for key, value in line.items():
                print(f"{key}: {value}")

    for_each(images, one)


@image_app.command("prune")
@handles_errors
def prune(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Every unused image")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask")] = False,
    filters: Annotated[Strs, typer.Option("--filter", help="until=…, label=…")] = None,
) -> None:
    """Remove unused images (dangling ones, or with -a every one no container uses)."""
    if not force:
        what = (
            "all images without at least one container associated to them"
            if all_
            else ("all dangling images")
        )
        print(f"WARNING! This will remove {what}.")
        if input("Are you sure you want to continue? [y/N] ").strip().lower() not in ("y", "yes"):
            return
    found = parse_filters(filters or [])
    if all_:
        found["dangling"] = ["false"]
    result = client(None).post("/images/prune", filters=found or None)
    if result["ImagesDeleted"]:
        print("Deleted Images:")
        for line in result["ImagesDeleted"]:
            for key, value in line.items():
                print(f"{key.lower()}: {value}")
        print()
    print(f"Total reclaimed space: {_size(result['SpaceReclaimed'])}")


@image_app.command("tag")
@handles_errors
def tag(
    source: Annotated[str, typer.Argument(help="SOURCE_IMAGE[:TAG]")],
    target: Annotated[str, typer.Argument(help="TARGET_IMAGE[:TAG]")],
) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    repo, _, name = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "")
    client().post(f"/images/{quote(source, safe='/:@')}/tag", repo=repo, tag=name or None)


@image_app.command("save")
@handles_errors
def save(
    images: Annotated[list[str], typer.Argument(help="Images")],
    output: Annotated[str, typer.Option("--output", "-o", help="Write to a file")] = "",
) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if not output and sys.stdout.isatty():
        fail("cowardly refusing to save to a terminal. Use the -o flag or redirect", 2)
    chunks = client(None).stream("GET", "/images/get?" + urlencode([("names", i) for i in images]))
    target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in chunks:
            target.write(chunk)
    finally:
        if output:
            target.close()


@image_app.command("load")
@handles_errors
def load(
    input_: Annotated[str, typer.Option("--input", "-i", help="Read from a tar file")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress output")] = False,
) -> None:
    """Load images from a tar archive (``docker save`` output, or an OCI layout)."""
    if not input_ and sys.stdin.isatty():
        fail("requested load from stdin, but stdin is empty: use -i FILE or redirect", 2)
    with tempfile.TemporaryFile() as spool:
        source = open(input_, "rb") if input_ else sys.stdin.buffer  # noqa: SIM115
        try:
            shutil.copyfileobj(source, spool)
        finally:
            if input_:
                source.close()
        spool.seek(0)
        lines = client(None).upload("/images/load", spool, lines=True, quiet=quiet or None)
    for line in lines:
        print(line.get("stream", "").rstrip("\n"))


# as the docker CLI has them under `image` too (`docker image pull|push`): in the group once
# this module is imported, whoever registers what
image_app.command("pull")(pull)
image_app.command("push")(push)

__all__ = ["image_app", "image_rows", "register"]
