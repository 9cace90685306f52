"""ferry doctor: the kernel against the store, on this node or (on a manager) every node."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ferry.cli.common import client, handles_errors, print_table

COLUMNS = ("Node", "Check", "Subject", "Item", "Expected", "Actual")


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def doctor(
        every_node: Annotated[
            bool, typer.Option("--all", help="ask every node (run it on a manager)")
        ] = False,
        fmt: Annotated[str, typer.Option("--format", help="table (default) or json")] = "table",
    ) -> None:
        """Compare what the store says must exist with what the kernel has, and print every
        difference. Changes nothing. Exit status 0 only when nothing differs."""
        if fmt not in ("table", "json"):
            raise typer.BadParameter("use table or json", param_hint="--format")
        query = {"all": "true"} if every_node else {}
        findings: list[dict[str, Any]] = client(60.0).get("/ferry/doctor", **query)["Findings"]
        if fmt == "json":
            print(json.dumps(findings, indent=2))
        elif findings:
            print_table([c.upper() for c in COLUMNS], [[f[c] for c in COLUMNS] for f in findings])
        else:
            print("No differences: the kernel holds what the store says.")
        if findings:
            raise typer.Exit(1)
