"""ferry stack …: Docker's ``stack deploy|ls|ps|services|rm`` with the docker CLI's flags and
output. The compose files are read by the docker CLI's own loader (``docker stack config``:
the v3 schema, ``${VAR}`` interpolation, merging, short syntax normalised); ``ferry.model.stack``
turns the result into API objects, named and labelled as ``docker stack deploy`` names them,
so either CLI sees and removes the other's stacks."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from ferry.api.client import ApiClient
from ferry.cli.common import (
    Column,
    ListFormatOption,
    client,
    fail,
    handles_errors,
    one_line,
    parse_filters,
    print_rows,
)
from ferry.cli.service import wait_converged
from ferry.cli.stack_deploy import (
    compose_text,
    deploy_services,
    ensure_networks,
    ensure_objects,
    load_compose,
    prune_services,
    stack_filter,
)
from ferry.errors import FerryError, InvalidArgument
from ferry.model.reference import parse_reference
from ferry.model.stack import LABEL_NAMESPACE, check_stack_name, plan_stack

stack_app = typer.Typer(rich_markup_mode=None, help="Manage Swarm stacks.", no_args_is_help=True)

_FINAL = {"complete", "shutdown", "failed", "rejected", "orphaned"}
_TRUE, _FALSE = {"1", "t", "T", "true", "TRUE", "True"}, {"0", "f", "F", "false", "FALSE", "False"}
RM_WAIT_S = 120.0


def _detach(what: str) -> Any:
    """Docker's ``--detach``, true by default, so given as ``--detach=false`` to wait. It takes
    its value here (typer has no optional values), and ``-d`` is a flag of its own
    (``DetachShort``): it asks for what is the default."""
    return typer.Option(
        "--detach", metavar="BOOL", help=f"{what} (default true; --detach=false waits)"
    )


DetachShort = Annotated[bool, typer.Option("-d", help="Do not wait (the default)")]


def go_bool(text: str, flag: str) -> bool:
    """A boolean flag's value as Go's ``strconv.ParseBool`` reads ``--detach=false``."""
    if text in _TRUE | _FALSE:
        return text in _TRUE
    fail(f'invalid argument "{text}" for "{flag}" flag: use true or false', 2)
    return False


@stack_app.command("deploy")
@handles_errors
def deploy(
    stack: Annotated[str, typer.Argument(help="Stack name")],
    compose_file: Annotated[
        list[str] | None,
        typer.Option("--compose-file", "-c", help='Path to a Compose file, or "-" for stdin'),
    ] = None,
    detach: Annotated[
        str, _detach("Exit immediately instead of waiting for the services to converge")
    ] = "true",
    detach_short: DetachShort = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Prune services that are no longer referenced")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress progress output")] = False,
    resolve_image: Annotated[
        str,
        typer.Option(
            "--resolve-image",
            help='Query the registry to resolve image digests ("always", "changed", "never")',
        ),
    ] = "always",
    with_registry_auth: Annotated[
        bool, typer.Option("--with-registry-auth", help="Send registry credentials to the nodes")
    ] = False,
) -> None:
    """Deploy a new stack or update an existing stack."""
    wait = not (detach_short or go_bool(detach, "--detach"))
    if resolve_image not in ("always", "changed", "never"):
        fail(f"Invalid option {resolve_image} for flag --resolve-image", 2)
    if not compose_file:
        fail("Please specify a Compose file (with --compose-file).", 2)
    check_stack_name(stack)
    model = load_compose(list(compose_file or []))
    plan = plan_stack(stack, model)
    for line in plan.warnings:
        print(line, file=sys.stderr)
    api = client()
    if prune:
        prune_services(api, plan)
    ensure_networks(api, plan)
    ensure_objects(api, "secret", plan.secrets)
    ensure_objects(api, "config", plan.configs)
    svc_ids = deploy_services(api, plan, resolve_image, with_registry_auth)
    if wait:
        for svc_id in svc_ids:
            wait_converged(api, svc_id, quiet=quiet)


@stack_app.command("config")
@handles_errors
def config(
    compose_file: Annotated[
        list[str] | None,
        typer.Option("--compose-file", "-c", help='Path to a Compose file, or "-" for stdin'),
    ] = None,
    skip_interpolation: Annotated[
        bool, typer.Option("--skip-interpolation", help="Output only the merged config")
    ] = False,
) -> None:
    """Outputs the final config file, after doing merges and interpolations."""
    if not compose_file:
        fail("Please specify a Compose file (with --compose-file).", 2)
    print(compose_text(list(compose_file or []), skip_interpolation), end="")


# listings ----------------------------------------------------------------------------------
@stack_app.command("ls")
@handles_errors
def ls(template: ListFormatOption = "") -> None:
    """List stacks."""
    services = client().get("/services", filters={"label": [LABEL_NAMESPACE]})
    counts: dict[str, int] = {}
    for svc in services:
        name = (svc["Spec"].get("Labels") or {}).get(LABEL_NAMESPACE, "")
        counts[name] = counts.get(name, 0) + 1
    rows = [{"Name": n, "Services": str(c)} for n, c in sorted(counts.items())]
    print_rows([("NAME", "Name"), ("SERVICES", "Services")], rows, template)


def _stack_services(api: ApiClient, stack: str, filters: dict[str, list[str]]) -> list[Any]:
    label = [*filters.get("label", []), f"{LABEL_NAMESPACE}={stack}"]
    found: list[dict[str, Any]] = api.get(
        "/services", filters={**filters, "label": label}, status=True
    )
    return sorted(found, key=lambda s: str(s["Spec"]["Name"]))


def display_image(image: str) -> str:
    """A service's image as the docker CLI lists it (docker/cli ``formatter/service.go``): a
    tagged reference in its familiar form without the digest it was pinned to; any other
    as given."""
    try:
        ref = parse_reference(image, default_tag=False)
    except InvalidArgument:
        return image
    return ref.with_tag(ref.tag).familiar if ref.tag else image


def _ports(spec: dict[str, Any]) -> str:
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or []
    return ", ".join(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}" for p in ports)


@stack_app.command("services")
@handles_errors
def services(
    stack: Annotated[str, typer.Argument(help="Stack name")],
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="id=…, label=…, mode=…, name=…")
    ] = None,
    template: ListFormatOption = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs")] = False,
) -> None:
    """List the services in the stack."""
    found = _stack_services(client(), stack, parse_filters(filter_ or []))
    if not found:
        print(f"Nothing found in stack: {stack}", file=sys.stderr)
        return
    if quiet:
        for svc in found:
            print(svc["ID"][:12])  # Docker truncates, as service ls -q
        return
    rows = []
    for svc in found:
        spec, status = svc["Spec"], svc.get("ServiceStatus") or {}
        rows.append({
            "ID": svc["ID"][:12], "Name": spec["Name"],
            "Mode": "global" if "Global" in spec["Mode"] else "replicated",
            "Replicas": f"{status.get('RunningTasks', 0)}/{status.get('DesiredTasks', 0)}",
            "Image": display_image(spec["TaskTemplate"]["ContainerSpec"]["Image"]),
            "Ports": _ports(spec),
        })  # fmt: skip
    columns: list[Column] = [
        ("ID", "ID"), ("NAME", "Name"), ("MODE", "Mode"),
        ("REPLICAS", "Replicas"), ("IMAGE", "Image"), ("PORTS", "Ports"),
    ]  # fmt: skip
    print_rows(columns, rows, template)


@stack_app.command("ps")
@handles_errors
def ps(
    stack: Annotated[str, typer.Argument(help="Stack name")],
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="id=…, name=…, node=…, desired-state=…, label=…"),
    ] = None,
    template: ListFormatOption = "",
    no_resolve: Annotated[
        bool, typer.Option("--no-resolve", help="Do not map IDs to Names (not supported)")
    ] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Do not truncate output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display task IDs")] = False,
) -> None:
    """List the tasks in the stack (as ``service ps`` lists them, every service of it)."""
    from ferry.cli.service import ps as service_ps

    if no_resolve:
        fail("ferry stack ps does not support --no-resolve yet: leave it out", 2)
    found = _stack_services(client(), stack, {})
    if not found:
        fail(f"nothing found in stack: {stack}", 3)  # not found: Ferry's exit code of the kind
    names = [str(s["Spec"]["Name"]) for s in found]
    service_ps(names, quiet=quiet, no_trunc=no_trunc, filter_=filter_, template=template)


# rm ----------------------------------------------------------------------------------------
def _remove(api: ApiClient, kind: str, objects: list[dict[str, Any]]) -> bool:
    """Docker's ``removeServices``/``removeSecrets``/…: each by id, its name said; False if
    one could not be removed."""
    ok = True
    for obj in sorted(objects, key=lambda o: str(o.get("Spec", o).get("Name") or o.get("Name"))):
        name = obj.get("Spec", obj).get("Name") or obj.get("Name")
        print(f"Removing {kind} {name}")
        try:
            api.delete(f"/{kind}s/{obj.get('ID') or obj.get('Id')}")
        except FerryError as exc:
            print(f"Failed to remove {kind} {obj.get('ID') or obj.get('Id')}: {one_line(exc)}",
                  file=sys.stderr)  # fmt: skip
            ok = False
    return ok


def _wait_tasks_gone(api: ApiClient, stack: str) -> None:
    """Docker's ``waitOnTasks``: until every task of the stack reached a final state."""
    deadline = time.monotonic() + RM_WAIT_S
    while time.monotonic() < deadline:
        tasks = api.get("/tasks", filters=stack_filter(stack))
        if all(t["Status"]["State"] in _FINAL for t in tasks):
            return
        time.sleep(0.2)
    fail(f"stack {stack}: tasks still running after {RM_WAIT_S:.0f}s")


@stack_app.command("rm")
@handles_errors
def rm(
    stacks: Annotated[list[str], typer.Argument(help="Stack names")],
    detach: Annotated[str, _detach("Do not wait for stack removal")] = "true",
    detach_short: DetachShort = False,
) -> None:
    """Remove one or more stacks: services, then secrets and configs, then networks."""
    wait = not (detach_short or go_bool(detach, "--detach"))
    api = client()
    errors = []
    for stack in stacks:
        where = stack_filter(stack)
        services = api.get("/services", filters=where)
        networks = api.get("/networks", filters=where)
        secrets = api.get("/secrets", filters=where)
        configs = api.get("/configs", filters=where)
        if not services + networks + secrets + configs:
            print(f"Nothing found in stack: {stack}", file=sys.stderr)
            continue
        ok = _remove(api, "service", services)
        ok = _remove(api, "secret", secrets) and ok
        ok = _remove(api, "config", configs) and ok
        ok = _remove(api, "network", networks) and ok
        if not ok:
            errors.append(f"failed to remove some resources from stack: {stack}")
            continue
        if wait:
            _wait_tasks_gone(api, stack)
    if errors:
        fail("; ".join(errors))


# Docker's aliases: stack up, stack list, stack remove, stack down
stack_app.command("up", hidden=True)(deploy)
stack_app.command("list", hidden=True)(ls)
stack_app.command("remove", hidden=True)(rm)
stack_app.command("down", hidden=True)(rm)
