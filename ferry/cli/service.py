"""ferry service …: Docker's verbs, flags and output for replicated and global services."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Annotated, Any

import typer

from ferry.api.client import ApiClient
from ferry.cli import updateflags as roll
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
from ferry.cli.containers import CMD_SETTINGS
from ferry.cli.fileflags import FileFlags
from ferry.cli.fileflags import apply as apply_file_flags
from ferry.cli.ports import parse_publish
from ferry.cli.registry_auth import registry_auth_header
from ferry.cli.runflags import HealthFlags
from ferry.cli.taskflags import TaskFlags
from ferry.cli.taskflags import apply as apply_task_flags
from ferry.errors import FerryError
from ferry.model.times import epoch, since

service_app = typer.Typer(
    rich_markup_mode=None, help="Manage swarm services.", no_args_is_help=True
)

CONVERGE_TIMEOUT_S = 120.0
_FINAL = {"complete", "shutdown", "failed", "rejected", "orphaned"}
STUCK_S = 4.0  # a task pending for want of a node, or rejected, this long: give up waiting
NS = 1_000_000_000


def network_attachment(text: str) -> dict[str, Any]:
    """``--network NET`` or Docker's long form ``name=NET,alias=A[,alias=B]`` (``driver-opt``
    is refused: Ferry's overlays take none). Exits 2 on anything else."""
    if "=" not in text:
        return {"Target": text}
    target, aliases = "", []
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key in ("name", "target") and value:
            target = value
        elif key == "alias" and value:
            aliases.append(value)
        else:
            fail(f"invalid --network {text!r}: use NET or name=NET[,alias=NAME]…", 2)
    if not target:
        fail(f"invalid --network {text!r}: name=NET is missing", 2)
    return {"Target": target, "Aliases": aliases} if aliases else {"Target": target}


def parse_duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    fail(f"invalid duration {text!r}: use e.g. 10s, 500ms or 1m", 2)
    return 0.0


def _roll_flags(given: dict[str, Any]) -> dict[str, roll.RollFlags]:
    """The ``--update-*`` and ``--rollback-*`` flags of a command, by the spec key they set."""
    return {
        f"{section.capitalize()}Config": roll.RollFlags(
            *(given[f"{section}_{name}"] for name in
              ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"))
        )
        for section in ("update", "rollback")
    }  # fmt: skip


def _change_networks(
    api: ApiClient, template: dict[str, Any], added: list[str], removed: list[str]
) -> None:
    """--network-rm (by name or id: the spec names networks by id), then --network-add."""
    if not added and not removed:
        return
    gone = {api.get(f"/networks/{ref}")["Id"] for ref in removed}
    kept = [n for n in template.get("Networks") or [] if n["Target"] not in gone]
    template["Networks"] = kept + [network_attachment(text) for text in added]


def _changed_env(env: list[str], removed: list[str], added: list[str]) -> list[str]:
    """--env-rm KEY then --env-add KEY=VALUE, each replacing the same key's entry."""
    by_key = {e.partition("=")[0]: e for e in env}
    for key in removed:
        by_key.pop(key, None)
    for pair in added:
        key, sep, _ = pair.partition("=")
        if not sep:
            fail(f"invalid --env-add {pair!r}: use KEY=VALUE", 2)
        by_key[key] = pair
    return list(by_key.values())


def _apply_rolls(rolls: dict[str, roll.RollFlags], spec: dict[str, Any]) -> None:
    for key, given in rolls.items():
        if given.given():
            spec[key] = roll.apply(given, spec.get(key) or {}, parse_duration)


def _ago(iso: str) -> str:
    return f"{since(iso)} ago" if iso else ""


# progress --------------------------------------------------------------------------------------
def _live_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] not in _FINAL
    ]


def _converged(svc: dict[str, Any], tasks: list[dict[str, Any]]) -> bool:
    status = svc.get("ServiceStatus", {})
    live = _live_tasks(tasks)
    return (
        svc.get("UpdateStatus", {}).get("State") != "updating"
        and status.get("RunningTasks") == status.get("DesiredTasks")
        and all(t["Status"]["State"] == "running" for t in live)
        and not any(
            t["Status"]["State"] not in _FINAL for t in tasks if t["DesiredState"] != "running"
        )
    )


def _stuck(tasks: list[dict[str, Any]], since: float) -> str:
    """A reason to stop waiting: a task that cannot be placed or that was rejected."""
    if time.monotonic() - since < STUCK_S:
        return ""
    for task in _live_tasks(tasks):
        state = task["Status"]["State"]
        if state == "pending" and "no suitable node" in task["Status"]["Err"]:
            return f"{task['Name']}: {task['Status']['Err']}"
    rejected = [t for t in tasks if t["Status"]["State"] == "rejected"]
    if rejected and not any(t["Status"]["State"] == "running" for t in _live_tasks(tasks)):
        return f"{rejected[-1]['Name']}: {rejected[-1]['Status']['Err'] or 'rejected'}"
    return ""


def _lines(svc: dict[str, Any], tasks: list[dict[str, Any]]) -> list[str]:
    live = sorted(_live_tasks(tasks), key=lambda t: (t["Slot"], t["NodeID"]))
    status = svc.get("ServiceStatus", {})
    running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
    lines = [f"overall progress: {running} out of {desired} tasks"]
    for task in live:
        label = f"{task['Slot']}/{desired}" if task["Slot"] else task["NodeID"][:12]
        state = task["Status"]["State"]
        detail = task["Status"]["Err"] or (task["Status"]["Message"] if state == "pending" else "")
        lines.append(f"{label}: {state:<9} {detail}".rstrip())
    return lines


def _halted(svc: dict[str, Any], rollback: bool) -> str:
    """Why waiting is over though the service has not converged, in the docker CLI's words
    (``cli/command/service/progress``): a paused update or rollback, or an update that rolled
    itself back; "" otherwise."""
    status = svc.get("UpdateStatus") or {}
    state, message = status.get("State", ""), status.get("Message", "")
    if state == "paused":
        return f"service update paused: {message}"
    if state == "rollback_paused":
        return f"service rollback paused: {message}"
    if state in ("rollback_started", "rollback_completed") and not rollback:
        return f"service rolled back: {message}"
    return ""


def wait_converged(
    api: ApiClient, svc_id: str, *, quiet: bool = False, rollback: bool = False
) -> None:
    """Until the service converges, showing each slot's progress (none with ``quiet``, as
    Docker's ``-q`` still waits, silently); exits 1 when it cannot converge, or at once when
    the update (``rollback``: the rollback) pauses or rolls back."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    started = time.monotonic()
    tty = sys.stdout.isatty() and not quiet
    shown = 0
    lines: list[str] = []
    while True:
        svc = api.get(f"/services/{svc_id}", status=True)
        tasks = api.get("/tasks", filters={"service": [svc_id]})
        lines = _lines(svc, tasks)
        if tty:
            if shown:
                sys.stdout.write(f"\x1b[{shown}F\x1b[J")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            shown = len(lines)
        if _converged(svc, tasks):
            if not quiet:
                if not tty:
                    print("\n".join(lines))
                print("verify: Service converged")
            return
        halted = _halted(svc, rollback)
        if halted:
            if not tty and not quiet:
                print("\n".join(lines))
            print(f"Error: {halted}", file=sys.stderr)
            raise typer.Exit(1)
        reason = _stuck(tasks, started)
        if reason or time.monotonic() > deadline:
            if not tty and not quiet:
                print("\n".join(lines))
            why = reason or f"not converged after {CONVERGE_TIMEOUT_S:.0f}s"
            print(f"Error: service {svc['Spec']['Name']} did not converge: {why}", file=sys.stderr)
            raise typer.Exit(1)
        time.sleep(0.1)


# commands --------------------------------------------------------------------------------------
@service_app.command("create", context_settings=CMD_SETTINGS)
@handles_errors
def create(
    image: Annotated[str, typer.Argument(help="Image (imported on the nodes)")],
    command: Annotated[list[str] | None, typer.Argument(help="Command and arguments")] = None,
    name: Annotated[str, typer.Option(help="Service name")] = "",
    replicas: Annotated[int | None, typer.Option(help="Number of tasks")] = None,
    mode: Annotated[str, typer.Option(help="replicated or global")] = "replicated",
    network: Annotated[
        list[str] | None,
        typer.Option(help="Network to attach to: NET, or name=NET,alias=NAME[,alias=…]"),
    ] = None,
    endpoint_mode: Annotated[str, typer.Option(help="vip or dnsrr")] = "vip",
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="Environment variables")
    ] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="Placement constraint")] = None,
    restart_condition: Annotated[str, typer.Option(help="any, on-failure or none")] = "any",
    restart_delay: Annotated[
        str, typer.Option("--restart-delay", help="Wait before replacing an ended task (5s)")
    ] = "",
    publish: Annotated[
        list[str] | None, typer.Option("--publish", "-p", help="Publish a port")
    ] = None,
    init: Annotated[
        bool, typer.Option(help="Run an init inside each task that forwards signals")
    ] = False,
    stop_grace_period: Annotated[
        str, typer.Option(help="Time to wait before killing a task")
    ] = "10s",
    label: Annotated[list[str] | None, typer.Option(help="Service label KEY=VALUE")] = None,
    container_label: Annotated[
        list[str] | None, typer.Option("--container-label", help="Container label KEY=VALUE")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Do not wait for convergence")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress progress output")] = False,
    mount: Annotated[
        list[str] | None, typer.Option("--mount", help="type=bind|volume|tmpfs,…")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="NAME|UID[:GROUP|GID]")] = None,
    workdir: Annotated[
        str | None, typer.Option("--workdir", "-w", help="Working directory")
    ] = None,
    cap_add: Annotated[list[str] | None, typer.Option("--cap-add", help="Add a capability")] = None,
    cap_drop: Annotated[
        list[str] | None, typer.Option("--cap-drop", help="Drop a capability")
    ] = None,
    read_only: Annotated[bool | None, typer.Option("--read-only", help="Read-only root")] = None,
    limit_memory: Annotated[str, typer.Option("--limit-memory", help="Memory limit")] = "",
    limit_cpu: Annotated[str, typer.Option("--limit-cpu", help="CPU limit")] = "",
    limit_pids: Annotated[int | None, typer.Option("--limit-pids", help="Most processes")] = None,
    reserve_memory: Annotated[str, typer.Option("--reserve-memory", help="Memory to reserve")] = "",
    reserve_cpu: Annotated[str, typer.Option("--reserve-cpu", help="CPUs to reserve")] = "",
    health_cmd: Annotated[str, typer.Option("--health-cmd", help="Command to check health")] = "",
    health_interval: Annotated[str, typer.Option("--health-interval", help="Between checks")] = "",
    health_timeout: Annotated[
        str, typer.Option("--health-timeout", help="Time a check may take")
    ] = "",
    health_retries: Annotated[
        int, typer.Option("--health-retries", help="Failures to be unhealthy")
    ] = 0,
    health_start_period: Annotated[
        str, typer.Option("--health-start-period", help="Failures then do not count")
    ] = "",
    no_healthcheck: Annotated[
        bool, typer.Option("--no-healthcheck", help="Disable the check")
    ] = False,
    no_resolve_image: Annotated[
        bool, typer.Option("--no-resolve-image", help="Do not pin the image to its digest")
    ] = False,
    with_registry_auth: Annotated[
        bool, typer.Option("--with-registry-auth", help="Send registry credentials to the nodes")
    ] = False,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="Secret: NAME or source=NAME,target=…,uid,gid,mode"),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", help="Config: NAME or source=NAME,target=…,uid,gid,mode"),
    ] = None,
    update_parallelism: roll.Parallelism = None,
    update_delay: roll.Delay = None,
    update_failure_action: roll.Action = None,
    update_monitor: roll.Monitor = None,
    update_max_failure_ratio: roll.Ratio = None,
    update_order: roll.Order = None,
    rollback_parallelism: roll.Parallelism = None,
    rollback_delay: roll.Delay = None,
    rollback_failure_action: roll.Action = None,
    rollback_monitor: roll.Monitor = None,
    rollback_max_failure_ratio: roll.Ratio = None,
    rollback_order: roll.Order = None,
) -> None:
    """Create a new service."""
    flags = TaskFlags(
        list(mount or []), [], user, workdir, list(cap_add or []), list(cap_drop or []),
        read_only, limit_memory, limit_cpu, limit_pids, reserve_memory, reserve_cpu,
        HealthFlags(health_cmd, health_interval, health_timeout, health_retries,
                    health_start_period, no_healthcheck),
    )  # fmt: skip
    if not name:
        fail("a service needs a name: --name NAME", 2)
    mode_json: dict[str, Any]
    if mode == "global":
        if replicas is not None:
            fail("--replicas can only be used with replicated mode", 2)
        mode_json = {"Global": {}}
    elif mode == "replicated":
        mode_json = {"Replicated": {"Replicas": 1 if replicas is None else replicas}}
    else:
        fail(f"invalid mode {mode!r}: use replicated or global", 2)
    spec: dict[str, Any] = {
        "Name": name,
        "Labels": parse_kv(label or [], "label"),
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Args": list(command or []),
                "Env": list(env or []),
                "Init": init,
                "StopGracePeriod": int(parse_duration(stop_grace_period) * NS),
                "Labels": parse_kv(container_label or [], "container label"),
            },
            "RestartPolicy": {
                "Condition": restart_condition,
                **({"Delay": int(parse_duration(restart_delay) * NS)} if restart_delay else {}),
            },
            "Placement": {"Constraints": list(constraint or [])},
            "Networks": [network_attachment(n) for n in network or []],
        },
        "Mode": mode_json,
        "EndpointSpec": {"Mode": endpoint_mode, "Ports": [parse_publish(p) for p in publish or []]},
    }
    apply_task_flags(flags, spec["TaskTemplate"])
    _apply_rolls(_roll_flags(locals()), spec)
    api = client()
    files = FileFlags(secrets=list(secret or []), configs=list(config or []))
    apply_file_flags(api, files, spec["TaskTemplate"]["ContainerSpec"])
    auth = {"X-Registry-Auth": registry_auth_header(image)} if with_registry_auth else None
    query = {"queryRegistry": not no_resolve_image}
    answer = api.call("POST", "/services/create", query=query, body=spec, headers=auth)
    _warn(answer)
    svc_id = answer["ID"]
    print(svc_id)
    if not detach:
        wait_converged(api, svc_id, quiet=quiet)


def _ports(spec: dict[str, Any], mode: str = "") -> str:
    """Published ports; ``mode="host"`` keeps those a running task opens on its own node, the
    ones Docker shows per task in ``service ps``."""
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or []
    if mode:
        ports = [p for p in ports if p.get("PublishMode", "ingress") == mode]
    return ", ".join(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}" for p in ports)


@service_app.command("ls")
@handles_errors
def ls(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs")] = False,
    template: ListFormatOption = "",
) -> None:
    """List services."""
    services: list[dict[str, Any]] = client().get("/services", status=True)
    if quiet:
        for svc in services:
            print(svc["ID"][:12])
        return
    rows = []
    for svc in services:
        spec = svc["Spec"]
        status = svc.get("ServiceStatus", {})
        mode = "global" if "Global" in spec["Mode"] else "replicated"
        replicas = f"{status.get('RunningTasks', 0)}/{status.get('DesiredTasks', 0)}"
        rows.append(
            {
                "ID": svc["ID"][:12],
                "Name": spec["Name"],
                "Mode": mode,
                "Replicas": replicas,
                "Image": spec["TaskTemplate"]["ContainerSpec"]["Image"],
                "Ports": _ports(spec),
            }
        )
    columns: list[Column] = [
        ("ID", "ID"),
        ("NAME", "Name"),
        ("MODE", "Mode"),
        ("REPLICAS", "Replicas"),
        ("IMAGE", "Image"),
        ("PORTS", "Ports"),
    ]
    print_rows(columns, rows, template)


@service_app.command("ps")
@handles_errors
def ps(
    services: Annotated[list[str], typer.Argument(help="Services")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display task IDs")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Do not truncate output")] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="id=…, name=…, node=…, desired-state=…, label=…"),
    ] = None,
    template: ListFormatOption = "",
) -> None:
    """List the tasks of one or more services."""
    filters = parse_filters(filter_ or [])
    if "service" in filters:  # the services are the arguments; the API would OR them
        fail("invalid filter 'service': name the services as arguments", 2)
    api = client()
    nodes = {n["ID"]: n["Description"]["Hostname"] for n in api.get("/nodes")}
    rows = []
    for ref in services:
        svc = api.get(f"/services/{ref}")
        host_ports = _ports(svc["Spec"], mode="host")
        # the API refuses a key it does not know, in Docker's words ("invalid filter 'x'")
        tasks = api.get("/tasks", filters={**filters, "service": [svc["ID"]]})
        # one group per slot (per node for global services), the live task first, then its
        # history newest first (Docker's layout: the indented rows are what a slot ran before)
        tasks.sort(
            key=lambda t: (
                t["Slot"] or 0,
                "" if t["Slot"] else t["NodeID"],
                t["DesiredState"] != "running",
                -epoch(t["CreatedAt"]),
            )
        )
        last_slot: object = None
        for task in tasks:
            if quiet:
                print(task["ID"] if no_trunc else task["ID"][:12])
                continue
            slot = (task["Slot"], task["NodeID"] if not task["Slot"] else "")
            base = f"{svc['Spec']['Name']}.{task['Slot'] or task['NodeID'][:12]}"
            name = base if slot != last_slot else f" \\_ {base}"
            last_slot = slot
            state = task["Status"]["State"]
            current = f"{state.capitalize()} {_ago(task['Status']['Timestamp'])}"
            error = task["Status"]["Err"] or (
                task["Status"]["Message"] if state == "pending" else ""
            )
            if not no_trunc and len(error) > 60:
                error = error[:59] + "…"
            rows.append({
                "ID": task["ID"] if no_trunc else task["ID"][:12], "Name": name,
                "Image": task["Spec"]["ContainerSpec"]["Image"],
                "Node": nodes.get(task["NodeID"], task["NodeID"][:12]),
                "DesiredState": task["DesiredState"].capitalize(), "CurrentState": current,
                "Error": f'"{error}"' if error else "",
                "Ports": host_ports if state == "running" else "",
            })  # fmt: skip
    if not quiet:
        columns: list[Column] = [
            ("ID", "ID"),
            ("NAME", "Name"),
            ("IMAGE", "Image"),
            ("NODE", "Node"),
            ("DESIRED STATE", "DesiredState"),
            ("CURRENT STATE", "CurrentState"),
            ("ERROR", "Error"),
            ("PORTS", "Ports"),
        ]
        print_rows(columns, rows, template)


@service_app.command("inspect")
@handles_errors
def inspect(
    services: Annotated[list[str], typer.Argument(help="Services")],
    pretty: Annotated[bool, typer.Option(help="Human-friendly output")] = False,
    template: FormatOption = "",
) -> None:
    """Display detailed information on one or more services."""
    if pretty and template:
        fail("--format is incompatible with human friendly format", 2)
    api = client()
    inspected = Inspected(api, [f"/services/{s}" for s in services])
    if pretty:
        for svc in inspected.found:
            _print_pretty(svc)
    else:
        print_inspected(inspected.found, template)
    inspected.fail_for_missing()


def _print_pretty(svc: dict[str, Any]) -> None:
    """``service inspect --pretty``: the service's main facts, one per line."""
    spec = svc["Spec"]
    print(f"ID:\t\t{svc['ID']}\nName:\t\t{spec['Name']}")
    if "Replicated" in spec["Mode"]:
        print(f"Service Mode:\tReplicated\n Replicas:\t{spec['Mode']['Replicated']['Replicas']}")
    else:
        print("Service Mode:\tGlobal")
    container = spec["TaskTemplate"]["ContainerSpec"]
    print(
        f"ContainerSpec:\n Image:\t\t{container['Image']}\n Args:\t\t{' '.join(container['Args'])}"
    )
    print(f"Endpoint Mode:\t{spec['EndpointSpec']['Mode']}")
    for vip in svc["Endpoint"]["VirtualIPs"]:
        print(f" VIP:\t\t{vip['Addr']} on {vip['NetworkID'][:12]}")
    if _ports(spec):
        print(f"Ports:\t\t{_ports(spec)}")


def _warn(answer: Any) -> None:
    for warning in (answer or {}).get("Warnings") or []:
        print(warning.rstrip("\n"), file=sys.stderr)


def _update(
    api: ApiClient,
    ref: str,
    change: Any,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    for _ in range(5):
        svc = api.get(f"/services/{ref}")
        spec = svc["Spec"]
        change(spec)
        try:
            asked = {**(query or {}), "version": svc["Version"]["Index"]}
            path = f"/services/{svc['ID']}/update"
            _warn(api.call("POST", path, query=asked, body=spec, headers=headers))
            return str(svc["ID"])
        except FerryError as exc:
            if "out of sequence" not in str(exc):
                raise
    fail(f"service {ref} keeps changing; retry", 4)
    return ""


@service_app.command("scale")
@handles_errors
def scale(
    pairs: Annotated[list[str], typer.Argument(help="SERVICE=REPLICAS")],
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Do not wait for convergence")
    ] = False,
) -> None:
    """Scale one or multiple replicated services."""
    targets = []
    for pair in pairs:
        name, sep, count = pair.partition("=")
        if not sep or not count.lstrip("-").isdigit():
            fail(f"invalid scale specifier {pair!r}: use SERVICE=REPLICAS", 2)
        targets.append((name, int(count)))
    api = client()
    updated = []
    for target, replicas in targets:

        def change(spec: dict[str, Any], target: str = target, replicas: int = replicas) -> None:
            if "Replicated" not in spec["Mode"]:
                fail(f"{target}: scale can only be used with replicated mode", 2)
            spec["Mode"]["Replicated"]["Replicas"] = replicas

        updated.append(_update(api, target, change))
        print(f"{target} scaled to {replicas}")
    if not detach:
        for svc_id in updated:
            wait_converged(api, svc_id)


@service_app.command("update")
@handles_errors
def update(
    service: Annotated[str, typer.Argument(help="Service")],
    replicas: Annotated[int | None, typer.Option(help="Number of tasks")] = None,
    image: Annotated[str | None, typer.Option(help="Service image")] = None,
    env_add: Annotated[
        list[str] | None, typer.Option(help="Add or update an environment variable")
    ] = None,
    env_rm: Annotated[list[str] | None, typer.Option(help="Remove an environment variable")] = None,
    publish_add: Annotated[list[str] | None, typer.Option(help="Publish a port")] = None,
    publish_rm: Annotated[
        list[str] | None, typer.Option(help="Unpublish a port (PUBLISHED[/proto])")
    ] = None,
    constraint_add: Annotated[
        list[str] | None, typer.Option(help="Add a placement constraint (rolls the tasks over)")
    ] = None,
    constraint_rm: Annotated[
        list[str] | None, typer.Option(help="Remove a placement constraint")
    ] = None,
    label_add: Annotated[list[str] | None, typer.Option(help="Add or update a label")] = None,
    label_rm: Annotated[list[str] | None, typer.Option(help="Remove a label")] = None,
    restart_condition: Annotated[str | None, typer.Option(help="any, on-failure or none")] = None,
    restart_delay: Annotated[
        str | None, typer.Option("--restart-delay", help="Wait before replacing an ended task")
    ] = None,
    force: Annotated[bool, typer.Option(help="Roll the tasks over even without a change")] = False,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Do not wait for convergence")
    ] = False,
    mount_add: Annotated[list[str] | None, typer.Option("--mount-add", help="Add a mount")] = None,
    mount_rm: Annotated[
        list[str] | None, typer.Option("--mount-rm", help="Remove a mount (target)")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="NAME|UID[:GROUP|GID]")] = None,
    workdir: Annotated[
        str | None, typer.Option("--workdir", "-w", help="Working directory")
    ] = None,
    cap_add: Annotated[list[str] | None, typer.Option("--cap-add", help="Add a capability")] = None,
    cap_drop: Annotated[
        list[str] | None, typer.Option("--cap-drop", help="Drop a capability")
    ] = None,
    read_only: Annotated[
        bool | None, typer.Option("--read-only/--no-read-only", help="Read-only root")
    ] = None,
    limit_memory: Annotated[str, typer.Option("--limit-memory", help="Memory limit")] = "",
    limit_cpu: Annotated[str, typer.Option("--limit-cpu", help="CPU limit")] = "",
    limit_pids: Annotated[int | None, typer.Option("--limit-pids", help="Most processes")] = None,
    reserve_memory: Annotated[str, typer.Option("--reserve-memory", help="Memory to reserve")] = "",
    reserve_cpu: Annotated[str, typer.Option("--reserve-cpu", help="CPUs to reserve")] = "",
    health_cmd: Annotated[str, typer.Option("--health-cmd", help="Command to check health")] = "",
    health_interval: Annotated[str, typer.Option("--health-interval", help="Between checks")] = "",
    health_timeout: Annotated[
        str, typer.Option("--health-timeout", help="Time a check may take")
    ] = "",
    health_retries: Annotated[
        int, typer.Option("--health-retries", help="Failures to be unhealthy")
    ] = 0,
    health_start_period: Annotated[
        str, typer.Option("--health-start-period", help="Failures then do not count")
    ] = "",
    no_healthcheck: Annotated[
        bool, typer.Option("--no-healthcheck", help="Disable the check")
    ] = False,
    no_resolve_image: Annotated[
        bool, typer.Option("--no-resolve-image", help="Do not pin the image to its digest")
    ] = False,
    with_registry_auth: Annotated[
        bool, typer.Option("--with-registry-auth", help="Send registry credentials to the nodes")
    ] = False,
    args: Annotated[str | None, typer.Option("--args", help="Service command args")] = None,
    network_add: Annotated[
        list[str] | None, typer.Option("--network-add", help="Add a network (NET or name=…)")
    ] = None,
    network_rm: Annotated[
        list[str] | None, typer.Option("--network-rm", help="Remove a network")
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Rollback to previous specification")
    ] = False,
    secret_add: Annotated[
        list[str] | None, typer.Option("--secret-add", help="Add or update a secret")
    ] = None,
    secret_rm: Annotated[
        list[str] | None, typer.Option("--secret-rm", help="Remove a secret")
    ] = None,
    config_add: Annotated[
        list[str] | None, typer.Option("--config-add", help="Add or update a config")
    ] = None,
    config_rm: Annotated[
        list[str] | None, typer.Option("--config-rm", help="Remove a config")
    ] = None,
    update_parallelism: roll.Parallelism = None,
    update_delay: roll.Delay = None,
    update_failure_action: roll.Action = None,
    update_monitor: roll.Monitor = None,
    update_max_failure_ratio: roll.Ratio = None,
    update_order: roll.Order = None,
    rollback_parallelism: roll.Parallelism = None,
    rollback_delay: roll.Delay = None,
    rollback_failure_action: roll.Action = None,
    rollback_monitor: roll.Monitor = None,
    rollback_max_failure_ratio: roll.Ratio = None,
    rollback_order: roll.Order = None,
) -> None:
    """Update a service. A change to what its tasks run, or where, replaces them one at a
    time; labels, replicas and the restart condition change without touching them."""
    flags = TaskFlags(
        list(mount_add or []), list(mount_rm or []), user, workdir, list(cap_add or []),
        list(cap_drop or []), read_only, limit_memory, limit_cpu, limit_pids, reserve_memory,
        reserve_cpu, HealthFlags(health_cmd, health_interval, health_timeout, health_retries,
                                 health_start_period, no_healthcheck),
    )  # fmt: skip

    def change(spec: dict[str, Any]) -> None:
        container = spec["TaskTemplate"]["ContainerSpec"]
        if replicas is not None:
            if "Replicated" not in spec["Mode"]:
                fail("--replicas can only be used with replicated mode", 2)
            spec["Mode"]["Replicated"]["Replicas"] = replicas
        if image is not None:
            container["Image"] = image
        if args is not None:  # the docker CLI splits it as a shell would
            container["Args"] = shlex.split(args)
        container["Env"] = _changed_env(container.get("Env") or [], env_rm or [], env_add or [])
        ports = spec["EndpointSpec"].get("Ports") or []
        for text in publish_rm or []:
            published, _, proto = text.partition("/")
            ports = [
                p
                for p in ports
                if not (
                    str(p["PublishedPort"]) == published
                    and p["Protocol"] == (proto or p["Protocol"])
                )
            ]
        ports += [parse_publish(p) for p in publish_add or []]
        spec["EndpointSpec"]["Ports"] = ports
        placement = spec["TaskTemplate"].setdefault("Placement", {})
        constraints = [
            c for c in placement.get("Constraints") or [] if c not in (constraint_rm or [])
        ]
        placement["Constraints"] = constraints + [
            c for c in constraint_add or [] if c not in constraints
        ]
        labels = spec.get("Labels") or {}
        for key in label_rm or []:
            labels.pop(key, None)
        spec["Labels"] = labels | parse_kv(label_add or [], "label")
        if restart_condition is not None:
            spec["TaskTemplate"].setdefault("RestartPolicy", {})["Condition"] = restart_condition
        if restart_delay is not None:
            delay = int(parse_duration(restart_delay) * NS)
            spec["TaskTemplate"].setdefault("RestartPolicy", {})["Delay"] = delay
        if force:
            spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
        apply_task_flags(flags, spec["TaskTemplate"])
        apply_file_flags(api, files, container)
        _apply_rolls(rolls, spec)
        _change_networks(api, spec["TaskTemplate"], network_add or [], network_rm or [])

    files = FileFlags(list(secret_add or []), list(secret_rm or []), list(config_add or []),
                      list(config_rm or []))  # fmt: skip
    rolls = _roll_flags(locals())
    if rollback:  # the docker CLI's update --rollback: the previous spec, nothing else
        _roll_back(service, detach=detach, quiet=False)
        return
    api = client()
    # as the docker CLI: a new --image is pinned to its digest (unless --no-resolve-image)
    query = {"queryRegistry": image is not None and not no_resolve_image}
    auth = None
    if with_registry_auth:
        current = image or api.get(f"/services/{service}")["Spec"]["TaskTemplate"]
        name = current if isinstance(current, str) else current["ContainerSpec"]["Image"]
        auth = {"X-Registry-Auth": registry_auth_header(name)}
    svc_id = _update(api, service, change, query, auth)
    print(service)
    if not detach:
        wait_converged(api, svc_id)


@service_app.command("rollback")
@handles_errors
def rollback(
    service: Annotated[str, typer.Argument(help="Service")],
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Do not wait for convergence")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress progress output")] = False,
) -> None:
    """Revert changes to a service's configuration (its spec before the last update)."""
    _roll_back(service, detach=detach, quiet=quiet)


def _roll_back(service: str, *, detach: bool, quiet: bool) -> None:
    api = client()
    # as the docker CLI: the current spec is sent, the manager takes the previous one whole
    svc_id = _update(api, service, lambda _spec: None, query={"rollback": "previous"})
    print(service)
    if not detach:
        wait_converged(api, svc_id, quiet=quiet, rollback=True)


@service_app.command("rm")
@handles_errors
def rm(services: Annotated[list[str], typer.Argument(help="Services")]) -> None:
    """Remove one or more services."""
    remove_each(client(), "/services", services)


@service_app.command("logs")
@handles_errors
def logs(
    service: Annotated[str, typer.Argument(help="Service")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow log output")] = False,
    tail: Annotated[
        str, typer.Option("--tail", "-n", help="Lines from the end of each task, or 'all'")
    ] = "all",
) -> None:
    """Fetch the logs of a service's tasks, from every node."""
    from ferry.cli.streams import frames, write_frame

    chunks = client(None).stream(
        "GET",
        f"/services/{service}/logs",
        query={"stdout": 1, "stderr": 1, "follow": int(follow), "tail": tail},
    )
    for stream, data in frames(chunks):
        write_frame(stream, data)
