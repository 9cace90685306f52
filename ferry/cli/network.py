"""ferry network …"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ferry.cli.common import (
    Column,
    FormatOption,
    Inspected,
    ListFormatOption,
    client,
    handles_errors,
    parse_filters,
    parse_kv,
    print_inspected,
    print_rows,
    remove_each,
)

network_app = typer.Typer(rich_markup_mode=None, help="Manage networks.", no_args_is_help=True)


@network_app.command("create")
@handles_errors
def create(
    name: Annotated[str, typer.Argument(help="Network name")],
    driver: Annotated[
        str, typer.Option("--driver", "-d", help="Driver: bridge, overlay or macvlan")
    ] = "bridge",
    attachable: Annotated[bool, typer.Option(help="Standalone containers may attach")] = False,
    internal: Annotated[bool, typer.Option(help="No access to the outside")] = False,
    ingress: Annotated[bool, typer.Option(help="Make it the routing mesh's network")] = False,
    subnet: Annotated[str, typer.Option(help="Subnet in CIDR form")] = "",
    gateway: Annotated[str, typer.Option(help="Gateway address")] = "",
    ip_range: Annotated[
        str, typer.Option(help="Allocate container addresses from this range")
    ] = "",
    opt: Annotated[
        list[str] | None,
        typer.Option(
            "--opt",
            "-o",
            help="Driver option KEY[=VALUE] (mtu=N; overlay: encrypted; macvlan: parent=IFACE)",
        ),
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="Label KEY=VALUE")] = None,
) -> None:
    """Create a network: overlay (swarm-wide, on a manager), bridge or macvlan (this host)."""
    ipam: dict[str, Any] = {"Driver": "default", "Config": []}
    if subnet or gateway or ip_range:
        ipam["Config"] = [{"Subnet": subnet, "Gateway": gateway, "IPRange": ip_range}]
    body = {
        "Name": name,
        "Driver": driver,
        "Attachable": attachable,
        "Internal": internal,
        "Ingress": ingress,
        "IPAM": ipam,
        "Options": parse_kv(opt or [], "option", bare_ok=True),
        "Labels": parse_kv(label or [], "label"),
    }
    print(client().post("/networks/create", body)["Id"])


@network_app.command("ls")
@handles_errors
def ls(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs")] = False,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="name=…, driver=…")
    ] = None,
    template: ListFormatOption = "",
) -> None:
    """List networks."""
    filters = parse_filters(filter_ or [])
    networks: list[dict[str, Any]] = client().get("/networks", filters=filters or None)
    if quiet:
        for net in networks:
            print(net["Id"][:12])
        return
    rows = [
        {
            "ID": n["Id"][:12],
            "Name": n["Name"],
            "Driver": n["Driver"],
            "Scope": n["Scope"],
            "Internal": n.get("Internal", False),
            "Attachable": n.get("Attachable", False),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
            "CreatedAt": n.get("Created", ""),
        }
        for n in networks
    ]
    columns: list[Column] = [
        ("NETWORK ID", "ID"),
        ("NAME", "Name"),
        ("DRIVER", "Driver"),
        ("SCOPE", "Scope"),
    ]
    print_rows(columns, rows, template)


@network_app.command("inspect")
@handles_errors
def inspect(
    networks: Annotated[list[str], typer.Argument(help="Network names or IDs")],
    template: FormatOption = "",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Verbose output for diagnostics")
    ] = False,
) -> None:
    """Display detailed information on one or more networks."""
    api = client()
    query = {"verbose": "true"} if verbose else {}
    inspected = Inspected(api, [f"/networks/{n}" for n in networks], **query)
    print_inspected(inspected.found, template)
    inspected.fail_for_missing()


@network_app.command("rm")
@handles_errors
def rm(networks: Annotated[list[str], typer.Argument(help="Network names or IDs")]) -> None:
    """Remove one or more networks."""
    remove_each(client(), "/networks", networks)


@network_app.command("prune")
@handles_errors
def prune(
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not prompt for confirmation")
    ] = False,
) -> None:
    """Remove all networks without endpoints."""
    if not force and not typer.confirm(
        "WARNING! This will remove all networks not used by at least one container.\n"
        "Are you sure you want to continue?"
    ):
        raise typer.Exit(1)
    removed = client().post("/networks/prune")["NetworksDeleted"] or []
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)


@network_app.command("connect")
@handles_errors
def connect(
    network: Annotated[str, typer.Argument(help="Network")],
    container: Annotated[str, typer.Argument(help="Container")],
    alias: Annotated[list[str] | None, typer.Option(help="Network-scoped alias")] = None,
    ip: Annotated[str, typer.Option(help="IPv4 address")] = "",
) -> None:
    """Connect a container to a network."""
    settings: dict[str, Any] = {"Aliases": alias or []}
    if ip:
        settings["IPAMConfig"] = {"IPv4Address": ip}
    client().post(
        f"/networks/{network}/connect", {"Container": container, "EndpointConfig": settings}
    )


@network_app.command("disconnect")
@handles_errors
def disconnect(
    network: Annotated[str, typer.Argument(help="Network")],
    container: Annotated[str, typer.Argument(help="Container")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Force the disconnection")] = False,
) -> None:
    """Disconnect a container from a network."""
    client().post(f"/networks/{network}/disconnect", {"Container": container, "Force": force})
