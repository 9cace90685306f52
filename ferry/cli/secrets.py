"""ferry secret … and ferry config …: the same verbs over ``/secrets`` and ``/configs``, with
the docker CLI's output (``secret ls``: ID, NAME, DRIVER, CREATED, UPDATED; ``config ls``
without DRIVER; ``inspect --pretty`` in Docker's layout)."""

from __future__ import annotations

import base64
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.cli.common import (
    Column,
    FormatOption,
    Inspected,
    ListFormatOption,
    client,
    fail,
    handles_errors,
    parse_filters,
    parse_kv,
    print_inspected,
    print_rows,
    remove_each,
)
from ferry.model.times import epoch, human_duration

secret_app = typer.Typer(rich_markup_mode=None, help="Manage swarm secrets.", no_args_is_help=True)
config_app = typer.Typer(rich_markup_mode=None, help="Manage swarm configs.", no_args_is_help=True)


def _read(source: str) -> bytes:
    """The data of FILE, or of standard input for ``-``."""
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}", 1)
        raise  # unreachable: fail exits


def _ago(iso: str) -> str:
    return f"{human_duration(max(0.0, time.time() - epoch(iso)))} ago" if iso else ""


def go_time(iso: str) -> str:
    """An RFC 3339 time as Go's ``time.Time.String`` prints it (``inspect --pretty``):
    ``2026-11-30 16:00:00.123456 +0000 UTC``."""
    if not iso:
        return ""
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")


def _row(obj: dict[str, Any]) -> dict[str, Any]:
    """One object as ``--format`` sees it (the docker CLI's placeholders)."""
    spec = obj["Spec"]
    labels = spec.get("Labels") or {}
    return {
        "ID": obj["ID"],
        "Name": spec["Name"],
        "Driver": (spec.get("Driver") or {}).get("Name", ""),
        "CreatedAt": _ago(obj["CreatedAt"]),
        "UpdatedAt": _ago(obj["UpdatedAt"]),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    }


def pretty(kind: str, obj: dict[str, Any]) -> str:
    """``inspect --pretty`` in Docker's layout (docker/cli ``secret/formatter.go`` and
    ``config/formatter.go``): a config shows its data, a secret its (empty) driver."""
    spec = obj["Spec"]
    lines = [f"ID:              {obj['ID']}", f"Name:              {spec['Name']}"]
    labels = spec.get("Labels") or {}
    if labels:
        lines.append("Labels:")
        lines += [f" - {k}={v}" if v else f" - {k}" for k, v in sorted(labels.items())]
    if kind == "secret":
        lines.append(f"Driver:            {(spec.get('Driver') or {}).get('Name', '')}")
    lines.append(f"Created at:        {go_time(obj['CreatedAt'])}")
    lines.append(f"Updated at:        {go_time(obj['UpdatedAt'])}")
    if kind == "config":
        lines += ["Data:", base64.b64decode(spec.get("Data") or "").decode(errors="replace")]
    return "\n".join(lines)


def _register(app: typer.Typer, kind: str) -> None:
    path = f"/{kind}s"
    columns: list[Column] = [("ID", "ID"), ("NAME", "Name")]
    columns += [("DRIVER", "Driver")] if kind == "secret" else []
    columns += [("CREATED", "CreatedAt"), ("UPDATED", "UpdatedAt")]

    @app.command("create")
    @handles_errors
    def create(
        name: Annotated[str, typer.Argument(help="Name")],
        source: Annotated[str, typer.Argument(help="File to read the data from, or - for stdin")],
        label: Annotated[
            list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE, repeatable")
        ] = None,
    ) -> None:
        """Create a {kind} from a file or standard input; prints its ID."""
        body = {
            "Name": name,
            "Labels": parse_kv(label or [], "label", bare_ok=True),
            "Data": base64.b64encode(_read(source)).decode(),
        }
        print(client().post(f"{path}/create", body)["ID"])

    @app.command("ls")
    @handles_errors
    def ls(
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only IDs")] = False,
        filter_: Annotated[
            list[str] | None,
            typer.Option("--filter", "-f", help="id=…, label=…, name=…, names=…"),
        ] = None,
        template: ListFormatOption = "",
    ) -> None:
        """List {kind}s."""
        found: list[dict[str, Any]] = client().get(path, filters=parse_filters(filter_ or []))
        found.sort(key=lambda o: str(o["Spec"]["Name"]))
        if quiet:
            for obj in found:
                print(obj["ID"])
            return
        print_rows(columns, [_row(o) for o in found], template)

    @app.command("inspect")
    @handles_errors
    def inspect(
        names: Annotated[list[str], typer.Argument(help="Names or IDs")],
        template: FormatOption = "",
        pretty_: Annotated[bool, typer.Option("--pretty", help="Human-friendly format")] = False,
    ) -> None:
        """Display detailed information on one or more {kind}s."""
        api = client()
        if pretty_ and template:
            fail("--format is incompatible with human friendly format", 2)
        inspected = Inspected(api, [f"{path}/{n}" for n in names])
        if pretty_:
            if inspected.found:
                print("\n\n".join(pretty(kind, obj) for obj in inspected.found))
        else:
            print_inspected(inspected.found, template)
        inspected.fail_for_missing()

    @app.command("rm")
    @handles_errors
    def rm(names: Annotated[list[str], typer.Argument(help="Names or IDs")]) -> None:
        """Remove one or more {kind}s."""
        remove_each(client(), path, names)

    for command in (create, ls, inspect, rm):
        command.__doc__ = (command.__doc__ or "").format(kind=kind)


_register(secret_app, "secret")
_register(config_app, "config")
