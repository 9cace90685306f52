"""ferry pull / push / login / logout, and the docker CLI's pull on ``run`` when the image is
missing (``--pull missing|always|never``), which the docker CLI does on its side too: create,
and on "No such image" pull, then create again."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any, TextIO
from urllib.parse import quote

import typer

from ferry.api.client import ApiClient
from ferry.cli.common import client, fail, handles_errors
from ferry.errors import FerryError, InvalidArgument, NotFound, from_status
from ferry.model.reference import parse_reference

PULL_POLICIES = ("missing", "always", "never")


def _messages(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for line in whole:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)


def _error_of(message: dict[str, Any]) -> FerryError:
    text = str(message.get("errorDetail", {}).get("message") or message.get("error", ""))
    return NotFound(text) if text.startswith("No such image") else from_status(500, text)


def show_progress(chunks: Iterator[bytes], out: TextIO, quiet: bool = False) -> None:
    """Docker's JSON messages as the docker CLI prints them without a terminal: ``ID: status``
    per line; an error message ends it with that error."""
    for message in _messages(chunks):
        if "error" in message or "errorDetail" in message:
            raise _error_of(message)
        status = message.get("status", "")
        if quiet or not status:
            continue
        prefix = f"{message['id']}: " if message.get("id") else ""
        print(prefix + status, file=out, flush=True)


def pull_image(api: ApiClient, ref: str, out: TextIO, quiet: bool = False) -> str:
    """Pull ``ref`` through ferryd; returns its full name (``docker.io/library/nginx:latest``)."""
    parsed = parse_reference(ref)
    tag = parsed.digest or parsed.tag
    query = {"fromImage": parsed.familiar_repository, "tag": tag}
    show_progress(api.stream("POST", "/images/create", query=query), out, quiet)
    return parsed.full


@handles_errors
def pull(
    image: Annotated[str, typer.Argument(help="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the image name")] = False,
    platform: Annotated[str, typer.Option("--platform", help="linux/amd64 only")] = "",
) -> None:
    """Download an image from a registry."""
    if platform not in ("", "linux", "linux/amd64"):
        fail(f"platform {platform!r} is not supported: Ferry runs linux/amd64", 2)
    print(pull_image(client(None), image, sys.stdout, quiet))


@handles_errors
def push(
    image: Annotated[str, typer.Argument(help="NAME[:TAG]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress verbose output")] = False,
) -> None:
    """Upload an image to a registry."""
    parsed = parse_reference(image)
    path = f"/images/{quote(parsed.familiar_repository, safe='/:')}/push"
    chunks = client(None).stream("POST", path, query={"tag": parsed.tag})
    show_progress(chunks, sys.stdout, quiet)
    if quiet:
        print(parsed.full)


@handles_errors
def login(
    server: Annotated[str, typer.Argument(help="Registry (default: Docker Hub)")] = "",
    username: Annotated[str, typer.Option("--username", "-u", help="Username")] = "",
    password: Annotated[str, typer.Option("--password", "-p", help="Password")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Log in to a registry: ferryd checks the credentials and keeps them (mode 0600)."""
    if password_stdin:
        if password:
            fail("--password and --password-stdin are mutually exclusive", 2)
        password = sys.stdin.read().rstrip("\n")
    username = username or input("Username: ")
    password = password or getpass.getpass("Password: ")
    if not username:
        raise InvalidArgument("Non-null Username Required")
    if not password:
        raise InvalidArgument("Password Required")  # the docker CLI's words
    body = {"username": username, "password": password, "serveraddress": server}
    result = client(None).post("/auth", body)
    print(result["Status"])


@handles_errors
def logout(
    server: Annotated[str, typer.Argument(help="Registry (default: Docker Hub)")] = "",
) -> None:
    """Forget the credentials ferryd keeps for a registry."""
    client().post("/auth/logout", {"serveraddress": server})
    print(f"Removing login credentials for {server or 'https://index.docker.io/v1/'}")


def create_container(
    api: ApiClient, body: dict[str, Any], name: str | None, image: str, pull_policy: str
) -> str:
    """``docker run --pull``: ``always`` pulls first; ``missing`` pulls when the create says
    "No such image" and creates again; ``never`` only creates. Progress goes to stderr, as the
    docker CLI prints it. Returns the container id."""
    if pull_policy not in PULL_POLICIES:
        raise InvalidArgument(
            f"invalid pull option {pull_policy!r}: must be one of missing, always, never"
        )
    if pull_policy == "always":
        pull_image(api, image, sys.stderr)
    try:
        created = api.post("/containers/create", body, name=name or None)
    except NotFound as exc:
        if pull_policy != "missing" or not str(exc).startswith("No such image"):
            raise
        print(f"Unable to find image '{parse_reference(image).familiar}' locally", file=sys.stderr)
        pull_image(api, image, sys.stderr)
        created = api.post("/containers/create", body, name=name or None)
    return str(created["Id"])
