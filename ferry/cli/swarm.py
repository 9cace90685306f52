"""ferry swarm … and ferry node …, following Docker's verbs, flags and output."""

from __future__ import annotations

import getpass
import sys
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
    parse_kv,
    print_inspected,
    print_rows,
    remove_each,
)
from ferry.model.cluster import DEFAULT_POOL, DEFAULT_SUBNET_SIZE
from ferry.model.runopts import parse_duration

swarm_app = typer.Typer(rich_markup_mode=None, help="Manage the swarm.", no_args_is_help=True)
node_app = typer.Typer(rich_markup_mode=None, help="Manage swarm nodes.", no_args_is_help=True)


def _join_command(role: str) -> tuple[str, str]:
    api = client()
    swarm: dict[str, Any] = api.get("/swarm")
    info: dict[str, Any] = api.get("/info")
    node: dict[str, Any] = api.get(f"/nodes/{info['Swarm']['NodeID']}")
    token = swarm["JoinTokens"]["Manager" if role == "manager" else "Worker"]
    addr = (node.get("ManagerStatus") or {}).get("Addr", "")
    return token, addr


def _print_join(role: str) -> None:
    token, addr = _join_command(role)
    print(f"To add a {role} to this swarm, run the following command:\n")
    print(f"    ferry swarm join --token {token} {addr}\n")


@swarm_app.command("init")
@handles_errors
def init(
    advertise_addr: Annotated[str, typer.Option(help="Advertised address (IP or interface)")] = "",
    listen_addr: Annotated[
        str, typer.Option(help="Listen address for the cluster API")
    ] = "0.0.0.0:2377",
    default_addr_pool: Annotated[
        str, typer.Option(help="Address pool for networks")
    ] = DEFAULT_POOL,
    default_addr_pool_mask_length: Annotated[
        int, typer.Option(help="Subnet size in the pool")
    ] = DEFAULT_SUBNET_SIZE,
    availability: Annotated[str, typer.Option(help="active, pause or drain")] = "active",
    autolock: Annotated[
        bool, typer.Option("--autolock", help="Enable manager autolocking")
    ] = False,
    force_new_cluster: Annotated[
        bool,
        typer.Option("--force-new-cluster", help="Force create a new cluster from current state"),
    ] = False,
    data_path_port: Annotated[
        int,
        typer.Option(
            help="Port number to use for data path traffic (1024 - 49151). If no value is set "
            "or is set to 0, the default port (4789) is used; encrypted overlays use the next "
            "port too"
        ),
    ] = 0,
) -> None:
    """Initialize a swarm: this node becomes its first manager."""
    body = {
        "ForceNewCluster": force_new_cluster,
        "DataPathPort": data_path_port,
        "AdvertiseAddr": advertise_addr,
        "ListenAddr": listen_addr,
        "DefaultAddrPool": [default_addr_pool],
        "SubnetSize": default_addr_pool_mask_length,
        "Availability": availability,
        "Spec": {"EncryptionConfig": {"AutoLockManagers": autolock}},
    }
    api = client()
    node_id = api.post("/swarm/init", body)
    print(f"Swarm initialized: current node ({node_id}) is now a manager.\n")
    _print_join("worker")
    print(
        "To add a manager to this swarm, run 'ferry swarm join-token manager' "
        "and follow the instructions."
    )
    if autolock:
        print()
        _print_unlock_key(api.get("/swarm/unlockkey")["UnlockKey"])


def _print_unlock_key(key: str) -> None:
    """Docker's words (cli/command/swarm/unlock_key.go)."""
    print(
        "To unlock a swarm manager after it restarts, run the `ferry swarm unlock`\n"
        f"command and provide the following key:\n\n    {key}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager."
    )


@swarm_app.command("update")
@handles_errors
def update(
    autolock: Annotated[
        str | None,
        typer.Option(
            "--autolock",
            metavar="true|false",
            help="Change manager autolocking setting: --autolock=true|false",
        ),
    ] = None,
    task_history_limit: Annotated[
        int | None, typer.Option("--task-history-limit", help="Task history retention limit")
    ] = None,
    cert_expiry: Annotated[
        str | None, typer.Option("--cert-expiry", help="Validity period for node certificates")
    ] = None,
) -> None:
    """Update the swarm."""
    if autolock is None and task_history_limit is None and cert_expiry is None:
        fail("nothing to update: give --autolock, --task-history-limit or --cert-expiry", 2)
    if autolock not in (None, "true", "false"):
        fail(f"invalid argument {autolock!r} for --autolock: use true or false", 2)
    api = client()
    swarm: dict[str, Any] = api.get("/swarm")
    spec = dict(swarm["Spec"])
    before = bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))
    if autolock is not None:
        spec["EncryptionConfig"] = {"AutoLockManagers": autolock == "true"}
    if task_history_limit is not None:
        spec["Orchestration"] = {**(spec.get("Orchestration") or {}),
                                 "TaskHistoryRetentionLimit": task_history_limit}  # fmt: skip
    if cert_expiry is not None:
        expiry = round(parse_duration(cert_expiry, "--cert-expiry") * 1_000_000_000)
        spec["CAConfig"] = {**(spec.get("CAConfig") or {}), "NodeCertExpiry": expiry}
    api.post("/swarm/update", spec, version=swarm["Version"]["Index"])
    print("Swarm updated.")
    if autolock == "true" and not before:
        _print_unlock_key(api.get("/swarm/unlockkey")["UnlockKey"])


@swarm_app.command("unlock")
@handles_errors
def unlock() -> None:
    """Unlock a locked manager: the key is asked for, or read from standard input."""
    api = client()
    state = api.get("/info")["Swarm"].get("LocalNodeState", "")
    if state == "inactive":
        fail("This node is not part of a swarm", 3)
    if state != "locked":
        fail("swarm is not locked", 4)
    # Docker's prompt; a pipe is read whole (docker swarm unlock < keyfile)
    key = getpass.getpass("Please enter unlock key: ") if sys.stdin.isatty() else sys.stdin.read()
    api.post("/swarm/unlock", {"UnlockKey": key.strip()})


@swarm_app.command("unlock-key")
@handles_errors
def unlock_key(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display the key")] = False,
    rotate: Annotated[bool, typer.Option(help="Rotate the unlock key")] = False,
) -> None:
    """Manage the unlock key."""
    api = client()
    if rotate:
        swarm: dict[str, Any] = api.get("/swarm")
        if not (swarm["Spec"].get("EncryptionConfig") or {}).get("AutoLockManagers"):
            fail("cannot rotate because autolock is not turned on")
        api.post(
            "/swarm/update",
            swarm["Spec"],
            version=swarm["Version"]["Index"],
            rotateManagerUnlockKey=True,
        )
        if not quiet:
            print("Successfully rotated manager unlock key.\n")
    key = api.get("/swarm/unlockkey")["UnlockKey"]
    if not key:
        fail("no unlock key is set")
    if quiet:
        print(key)
    else:
        _print_unlock_key(key)


@swarm_app.command("join")
@handles_errors
def join(
    addr: Annotated[str, typer.Argument(help="A manager's address, HOST[:2377]")],
    token: Annotated[str, typer.Option(help="Token for entry into the swarm")],
    advertise_addr: Annotated[str, typer.Option(help="Advertised address")] = "",
    listen_addr: Annotated[str, typer.Option(help="Listen address")] = "0.0.0.0:2377",
    availability: Annotated[str, typer.Option(help="active, pause or drain")] = "active",
) -> None:
    """Join a swarm as a node and/or manager."""
    body = {
        "RemoteAddrs": [addr],
        "JoinToken": token,
        "AdvertiseAddr": advertise_addr,
        "ListenAddr": listen_addr,
        "Availability": availability,
    }
    api = client()
    api.post("/swarm/join", body)
    info: dict[str, Any] = api.get("/info")
    role = "manager" if info["Swarm"].get("ControlAvailable") else "worker"
    print(f"This node joined a swarm as a {role}.")


@swarm_app.command("join-token")
@handles_errors
def join_token(
    role: Annotated[str, typer.Argument(help="worker or manager")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display the token")] = False,
    rotate: Annotated[bool, typer.Option(help="Rotate the join token")] = False,
) -> None:
    """Manage join tokens."""
    if role not in ("worker", "manager"):
        fail(f"unknown role {role!r}: use worker or manager", 2)
    api = client()
    if rotate:
        flag = "rotateWorkerToken" if role == "worker" else "rotateManagerToken"
        swarm = api.get("/swarm")  # an update states the whole spec, as Docker's does
        api.post("/swarm/update", swarm["Spec"], version=swarm["Version"]["Index"], **{flag: True})
        if not quiet:
            print(f"Successfully rotated {role} join token.\n")
    if quiet:
        print(_join_command(role)[0])
    else:
        _print_join(role)


@swarm_app.command("leave")
@handles_errors
def leave(
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Leave even as the last manager")
    ] = False,
) -> None:
    """Leave the swarm."""
    client().post("/swarm/leave", None, force=force)
    print("Node left the swarm.")


@swarm_app.command("inspect")
@handles_errors
def swarm_inspect(template: FormatOption = "") -> None:
    """Display the swarm's details (join tokens excluded)."""
    data: dict[str, Any] = client().get("/swarm")
    data.pop("JoinTokens", None)
    print_inspected([data], template)


def _status(node: dict[str, Any]) -> tuple[str, str]:
    manager = node.get("ManagerStatus") or {}
    if manager.get("Leader"):
        mstatus = "Leader"
    elif manager:
        mstatus = str(manager.get("Reachability", "")).capitalize()
    else:
        mstatus = ""
    return node["Status"]["State"].capitalize(), mstatus


def _tls_status(node_tls: dict[str, Any], cluster_tls: dict[str, Any]) -> str:
    """docker/cli's node TLSStatus: Ready when the node's TLS info is the swarm's, Needs
    Rotation when not, Unknown when either is missing."""
    if not any(node_tls.values()) or not any(cluster_tls.values()):
        return "Unknown"
    return "Ready" if node_tls == cluster_tls else "Needs Rotation"


@node_app.command("ls")
@handles_errors
def node_ls(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs")] = False,
    template: ListFormatOption = "",
) -> None:
    """List nodes in the swarm."""
    api = client()
    nodes: list[dict[str, Any]] = api.get("/nodes")
    swarm_info = api.get("/info")["Swarm"]
    self_id = swarm_info.get("NodeID", "")
    cluster_tls = (swarm_info.get("Cluster") or {}).get("TLSInfo") or {}
    if quiet:
        for node in nodes:
            print(node["ID"])
        return
    rows = []
    for node in nodes:
        status, mstatus = _status(node)
        rows.append(
            {
                "ID": node["ID"],
                "Self": node["ID"] == self_id,
                "Hostname": node["Description"]["Hostname"],
                "Status": status,
                "Availability": node["Spec"]["Availability"].capitalize(),
                "ManagerStatus": mstatus,
                "EngineVersion": node["Description"]["Engine"]["EngineVersion"],
                "TLSStatus": _tls_status(node["Description"].get("TLSInfo") or {}, cluster_tls),
            }
        )
    columns: list[Column] = [
        ("ID", lambda row: row["ID"] + (" *" if row["Self"] else "")),
        ("HOSTNAME", "Hostname"),
        ("STATUS", "Status"),
        ("AVAILABILITY", "Availability"),
        ("MANAGER STATUS", "ManagerStatus"),
        ("ENGINE VERSION", "EngineVersion"),
    ]
    print_rows(columns, rows, template)


@node_app.command("inspect")
@handles_errors
def node_inspect(
    nodes: Annotated[list[str], typer.Argument(help="Node IDs or hostnames ('self' for this one)")],
    pretty: Annotated[bool, typer.Option(help="Human-friendly output")] = False,
    template: FormatOption = "",
) -> None:
    """Display detailed information on one or more nodes."""
    if pretty and template:
        fail("--format is incompatible with human friendly format", 2)
    api = client()
    inspected = Inspected(api, [f"/nodes/{n}" for n in nodes])
    if pretty:
        for node in inspected.found:
            _print_pretty_node(node)
    else:
        print_inspected(inspected.found, template)
    inspected.fail_for_missing()


def _print_pretty_node(node: dict[str, Any]) -> None:
    """``node inspect --pretty``: the node's main facts, one per line."""
    status, mstatus = _status(node)
    print(f"ID:\t\t\t{node['ID']}")
    print(f"Hostname:\t\t{node['Description']['Hostname']}")
    print(
        f"Status:\n State:\t\t\t{status}\n"
        f" Availability:\t\t{node['Spec']['Availability'].capitalize()}"
    )
    print(f" Address:\t\t{node['Status']['Addr']}")
    if mstatus:
        print(f"Manager Status:\n Address:\t\t{node['ManagerStatus']['Addr']}")
        print(f" Raft Status:\t\t{mstatus}\n Leader:\t\t{'Yes' if mstatus == 'Leader' else 'No'}")
    print(f"Engine Version:\t\t{node['Description']['Engine']['EngineVersion']}")


@node_app.command("rm")
@handles_errors
def node_rm(
    nodes: Annotated[list[str], typer.Argument(help="Node IDs or hostnames")],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Remove even if it is not down")
    ] = False,
) -> None:
    """Remove one or more nodes from the swarm."""
    remove_each(client(), "/nodes", nodes, force=force)


@node_app.command("update")
@handles_errors
def node_update(
    node: Annotated[str, typer.Argument(help="Node ID or hostname")],
    availability: Annotated[str | None, typer.Option(help="active, pause or drain")] = None,
    label_add: Annotated[
        list[str] | None, typer.Option(help="Add or update a label (KEY=VALUE)")
    ] = None,
    label_rm: Annotated[list[str] | None, typer.Option(help="Remove a label")] = None,
    role: Annotated[str | None, typer.Option(help='Role of the node ("worker"|"manager")')] = None,
) -> None:
    """Update a node."""
    api = client()
    current: dict[str, Any] = api.get(f"/nodes/{node}")
    spec = dict(current["Spec"])
    if availability is not None:
        spec["Availability"] = availability
    if role is not None:
        spec["Role"] = role
    labels = dict(spec.get("Labels") or {})
    labels.update(parse_kv(label_add or [], "label"))
    for key in label_rm or []:
        labels.pop(key, None)
    spec["Labels"] = labels
    api.post(f"/nodes/{current['ID']}/update", spec, version=current["Version"]["Index"])
    print(node)


def _set_roles(nodes: list[str], role: str) -> None:
    """``node promote`` and ``node demote``: each node in turn, in Docker's words; the first
    refusal ends the command, as Docker's does."""
    api = client()
    for name in nodes:
        current: dict[str, Any] = api.get(f"/nodes/{name}")
        if current["Spec"]["Role"] == role:
            print(f"Node {current['ID']} is already a {role}.")  # the docker CLI's: the ID
            continue
        spec = {**current["Spec"], "Role": role}
        api.post(f"/nodes/{current['ID']}/update", spec, version=current["Version"]["Index"])
        if role == "manager":
            print(f"Node {name} promoted to a manager in the swarm.")
        else:
            print(f"Manager {name} demoted in the swarm.")


@node_app.command("promote")
@handles_errors
def node_promote(
    nodes: Annotated[list[str], typer.Argument(help="Node IDs or hostnames")],
) -> None:
    """Promote one or more nodes to manager in the swarm."""
    _set_roles(nodes, "manager")


@node_app.command("demote")
@handles_errors
def node_demote(
    nodes: Annotated[list[str], typer.Argument(help="Node IDs or hostnames")],
) -> None:
    """Demote one or more nodes from manager in the swarm."""
    _set_roles(nodes, "worker")


# registers ``swarm ca`` on swarm_app (its own module: display, rotation and progress)
from ferry.cli import swarm_ca as _swarm_ca  # noqa: E402, F401
