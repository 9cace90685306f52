"""Domain objects rendered in the Docker Engine API's JSON shapes (the one place that knows
how Docker spells a network or a container)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from ferry.api.inspect_defaults import LOG_DRIVER, config_defaults, host_config_defaults
from ferry.model.container import Container, ContainerConfig, Status
from ferry.model.network import (
    GWBRIDGE,
    Driver,
    EgressSubnet,
    Endpoint,
    EndpointKind,
    Network,
    Scope,
)
from ferry.model.node import Node
from ferry.model.runopts import MountType
from ferry.model.times import epoch, since
from ferry.network.local import BRIDGE_NAME_OPTION, bridge_device


def network(
    net: Network,
    endpoints: list[Endpoint],
    nodes: dict[str, Node],
    node_id: str,
    local: list[Container],
) -> dict[str, Any]:
    """A swarm network as this node's Docker shows it: ``Containers`` holds only what is attached
    here (containers and service tasks, keyed by container id; the load balancer as
    ``lb-NAME``), ``Peers`` every node with an endpoint on it. ``local`` are this node's
    containers; an endpoint whose container is not (or no longer) running here is left out."""
    holders = {
        ep.ep_id: container
        for container in local
        if container.running
        for ep in container.state.endpoints
        if ep.net_id == net.net_id
    }
    containers = {}
    for ep in sorted(endpoints, key=lambda e: e.ip):
        if ep.kind == EndpointKind.VIP or ep.node_id != node_id:
            continue
        holder = holders.get(ep.ep_id)
        if ep.kind == EndpointKind.SANDBOX:
            key, name = f"lb-{net.name}", ep.name
        elif holder is not None:
            key, name = holder.config.container_id, holder.config.name
        else:
            continue
        containers[key] = {
            "Name": name,
            "EndpointID": ep.ep_id,
            "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{net.prefixlen}",
            "IPv6Address": "",
        }
    peer_ids = sorted({ep.node_id for ep in endpoints if ep.kind != EndpointKind.VIP})
    peers = [
        {"Name": f"{nodes[n].hostname}-{n[:12]}", "IP": nodes[n].addr}
        for n in peer_ids
        if n in nodes
    ]
    options = dict(net.options)
    if net.vni:
        options["com.docker.network.driver.overlay.vxlanid_list"] = str(net.vni)
    return {**_network_fields(net, options, containers), "Peers": peers}


def network_services(
    net: Network, endpoints: list[Endpoint], nodes: dict[str, Node]
) -> dict[str, Any]:
    """Docker's ``Services`` of ``network inspect --verbose`` on a swarm network: each service's
    VIP and its tasks on every node, with the host they run on; containers attached without a
    service under the service ``""``, as Docker lists them. Ferry keeps no load-balancer index:
    ``LocalLBIndex`` is 0."""
    services: dict[str, Any] = {}

    def entry(name: str) -> dict[str, Any]:
        fresh: dict[str, Any] = {"VIP": "", "Ports": [], "LocalLBIndex": 0, "Tasks": []}
        found: dict[str, Any] = services.setdefault(name, fresh)
        return found

    for ep in sorted(endpoints, key=lambda e: e.ip):
        if ep.kind == EndpointKind.SANDBOX:
            continue
        if ep.kind == EndpointKind.VIP:
            entry(ep.service)["VIP"] = ep.ip
            continue
        node = nodes.get(ep.node_id)
        entry(ep.service if ep.kind == EndpointKind.TASK else "")["Tasks"].append(
            {
                "Name": ep.name,
                "EndpointID": ep.ep_id,
                "EndpointIP": ep.ip,
                "Info": {"Host IP": node.addr if node else ""},
            }
        )
    return services


def _network_fields(
    net: Network, options: dict[str, str], containers: dict[str, Any]
) -> dict[str, Any]:
    ipam_config: dict[str, str] = {"Subnet": net.subnet, "Gateway": net.gateway}
    if net.ip_range:
        ipam_config["IPRange"] = net.ip_range
    return {
        "Name": net.name,
        "Id": net.net_id,
        "Created": net.created_at,
        "Scope": net.scope.value,
        "Driver": net.driver.value,
        "EnableIPv6": False,
        # Docker's own spelling differs between swarm and local networks
        "IPAM": {
            "Driver": "default",
            "Options": {} if net.scope == Scope.LOCAL else None,
            "Config": [ipam_config],
        },
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": net.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": options,
        "Labels": net.labels,
    }


def _attached(net_id: str, containers: list[Container]) -> dict[str, Any]:
    """The running containers of this host attached to a local network."""
    attached = {}
    for container in containers:
        for ep in container.state.endpoints:
            if ep.net_id == net_id and container.running:
                attached[container.config.container_id] = {
                    "Name": container.config.name,
                    "EndpointID": ep.ep_id,
                    "MacAddress": ep.mac,
                    "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
                    "IPv6Address": "",
                }
    return attached


def local_network(net: Network, containers: list[Container]) -> dict[str, Any]:
    """A bridge or macvlan network of this host."""
    options = dict(net.options)
    if net.driver == Driver.BRIDGE:
        options.setdefault(BRIDGE_NAME_OPTION, bridge_device(net))
    return _network_fields(net, options, _attached(net.net_id, containers))


def gwbridge(net_id: str, containers: list[Container], egress: EgressSubnet) -> dict[str, Any]:
    """The host's egress bridge, as Docker shows docker_gwbridge: a local bridge network whose
    IPAM config is the host's egress subnet and gateway."""
    attached = _attached(GWBRIDGE, containers)
    attached["ingress-sbox"] = {
        "Name": "ingress-sbox",
        "EndpointID": "",
        "MacAddress": "",
        "IPv4Address": f"{egress.sandbox_ip}/{egress.prefixlen}",
        "IPv6Address": "",
    }
    bridge = Network(
        net_id, GWBRIDGE, Driver.BRIDGE, Scope.LOCAL, egress.subnet, egress.gateway,
        options={
            "com.docker.network.bridge.name": GWBRIDGE,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
        },
        created_at="0001-01-01T00:00:00Z",  # Go's zero time: the docker CLI must parse one
    )  # fmt: skip
    return _network_fields(bridge, dict(bridge.options), attached)


def _state_word(container: Container) -> str:
    """Docker's State.Status: created, running, paused, restarting, exited."""
    if container.state.paused and container.running:
        return "paused"
    if container.state.restarting:
        return "restarting"
    return container.state.status.value


def _status_text(container: Container) -> str:
    state = container.state
    if state.restarting:
        return f"Restarting ({state.exit_code}) {since(state.finished_at)} ago"
    if state.status == Status.RUNNING:
        paused = " (Paused)" if state.paused else ""
        health = {"starting": " (health: starting)", "healthy": " (healthy)",
                  "unhealthy": " (unhealthy)"}.get(state.health, "")  # fmt: skip
        return f"Up {since(state.started_at)}{paused or health}"
    if state.status == Status.EXITED:
        return f"Exited ({state.exit_code}) {since(state.finished_at)} ago"
    return "Created"


NetworkResolver = Callable[[str], tuple[str, str]]  # a container's network ref -> (name, id)


def unresolved(ref: str) -> tuple[str, str]:
    return ref, ""


def _networks(container: Container, resolve: NetworkResolver) -> dict[str, Any]:
    # A stopped container holds no endpoints, yet it still belongs to its networks: Docker lists
    # them by name, with empty addresses, filled in at the next start
    attached = {ep.net_id for ep in container.state.endpoints}
    named = [(choice, *resolve(choice.network)) for choice in container.config.networks]
    idle = {
        name: {
            "NetworkID": net_id,
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "MacAddress": "",
            "Aliases": list(choice.aliases),
            "DNSNames": None,
        }
        for choice, name, net_id in named
        if net_id not in attached and name not in {ep.net_name for ep in container.state.endpoints}
    }
    networks = idle | {
        ep.net_name: {
            "NetworkID": ep.net_id,
            "EndpointID": ep.ep_id,
            "Gateway": ep.gateway,
            "IPAddress": ep.ip,
            "IPPrefixLen": ep.prefixlen,
            "MacAddress": ep.mac,
            "Aliases": list(ep.aliases),
            "DNSNames": [container.config.name, *ep.aliases, container.config.short_id],
        }
        for ep in container.state.endpoints
    }
    # Docker's EndpointSettings carries these always; Ferry's endpoints are IPv4 only
    return {name: {**_ENDPOINT_DEFAULTS, **ep} for name, ep in networks.items()}


_ENDPOINT_DEFAULTS: dict[str, Any] = {
    "IPAMConfig": None, "Links": None, "DriverOpts": None, "IPv6Gateway": "",
    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
}  # fmt: skip


def _network_settings(container: Container, sandbox_key: str, resolve: NetworkResolver) -> Any:
    """Docker's NetworkSettings: the top-level address fields (deprecated in Docker, still
    always there) describe the endpoint on the default ``bridge`` network, empty otherwise."""
    networks = _networks(container, resolve)
    bridge: dict[str, Any] = networks.get("bridge", {})
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": sandbox_key, "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": _port_map(container),
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.get("EndpointID", ""), "Gateway": bridge.get("Gateway", ""),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.get("IPAddress", ""), "IPPrefixLen": bridge.get("IPPrefixLen", 0),
        "IPv6Gateway": "", "MacAddress": bridge.get("MacAddress", ""), "Networks": networks,
    }  # fmt: skip


def _ports(container: Container) -> list[dict[str, Any]]:
    return [
        {
            "IP": p.host_ip or "0.0.0.0",
            "PrivatePort": p.target,
            "PublicPort": p.published,
            "Type": p.protocol,
        }
        for p in container.config.ports
    ]


def _port_map(container: Container) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in container.config.ports:
        binding = {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.published)}
        out.setdefault(f"{p.target}/{p.protocol}", []).append(binding)
    return out


def _network_mode(container: Container) -> str:
    if container.config.network_mode:
        return container.config.network_mode
    return container.config.networks[0].network if container.config.networks else "none"


def container_summary(
    container: Container, resolve: NetworkResolver = unresolved, image: str = ""
) -> dict[str, Any]:
    """Docker's ContainerSummary; ``image`` the name to list it under (Docker's rule: the
    name it was created from while that still names its image, else the image's id)."""
    config = container.config
    return {
        "Id": config.container_id,
        "Names": [f"/{config.name}"],
        "Image": image or config.image,
        "ImageID": config.image_id,
        "Command": " ".join(config.argv),
        "Created": int(epoch(config.created_at)),
        "Ports": _ports(container),
        "Labels": config.labels,
        "State": _state_word(container),
        "Status": _status_text(container),
        "HostConfig": {"NetworkMode": _network_mode(container)},
        "NetworkSettings": {"Networks": _networks(container, resolve)},
        "Mounts": mounts(config),
    }


def container_inspect(
    container: Container, sandbox_key: str, resolve: NetworkResolver = unresolved
) -> dict[str, Any]:
    config, state = container.config, container.state
    return {
        "Id": config.container_id,
        "Created": config.created_at,
        "Path": config.argv[0] if config.argv else "",
        "Args": list(config.argv[1:]),
        "State": {
            **_health(container),
            "Status": _state_word(container),
            "Running": state.status == Status.RUNNING,
            "Paused": state.paused,
            "Restarting": state.restarting,
            "OOMKilled": state.oom_killed,
            "Dead": False,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": state.finished_at or "0001-01-01T00:00:00Z",
        },
        "Image": config.image_id or config.image,  # Docker's: the id; Config.Image the name
        "Name": f"/{config.name}",
        "RestartCount": state.restart_count,
        "Driver": "ferry",
        "Platform": "linux",
        "HostConfig": {
            **host_config_defaults(),
            "NetworkMode": _network_mode(container),
            "AutoRemove": config.auto_remove,
            "PortBindings": _port_map(container),
            "PublishAllPorts": config.publish_all,
            **host_config(config),
        },
        "Config": {
            **config_defaults(),
            "Hostname": config.effective_hostname,
            "User": config.user,
            "Env": list(config.env),
            "Cmd": list(config.cmd) or None,
            "Entrypoint": list(config.entrypoint) or None,
            "Image": config.image,
            "Labels": config.labels,
            "WorkingDir": config.working_dir,
            "Tty": config.tty,
            "OpenStdin": config.open_stdin,
            "StdinOnce": config.stdin_once,
            "AttachStdout": True,
            "AttachStderr": True,
            "StopSignal": config.stop_signal or None,
            "StopTimeout": config.stop_timeout_s if config.stop_timeout_s >= 0 else None,
            "ExposedPorts": {p: {} for p in config.exposed_ports} or None,
            "Healthcheck": health_config(config),
        },
        "NetworkSettings": _network_settings(
            container, sandbox_key if state.netns else "", resolve
        ),
        "Mounts": mounts(config),
    }


def host_config(config: ContainerConfig) -> dict[str, Any]:
    """The run options in Docker's HostConfig spelling."""
    res, sec = config.resources, config.security
    return {
        "Binds": [f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in config.mounts
                  if m.type != MountType.TMPFS] or None,
        "Tmpfs": {m.target: ",".join(m.tmpfs_options) for m in config.mounts
                  if m.type == MountType.TMPFS} or None,
        "RestartPolicy": {"Name": config.restart.name.value,
                          "MaximumRetryCount": config.restart.max_retries},
        "CapAdd": list(sec.cap_add) or None,
        "CapDrop": list(sec.cap_drop) or None,
        "Privileged": sec.privileged,
        "ReadonlyRootfs": sec.read_only,
        "SecurityOpt": (["no-new-privileges"] if sec.no_new_privileges else [])
        + (["seccomp=unconfined"] if sec.seccomp_unconfined else []) or None,
        "Init": config.init or None,
        "Memory": res.memory_bytes,
        "MemoryReservation": res.memory_reservation_bytes,
        "NanoCpus": res.nano_cpus,
        "CpuShares": res.cpu_shares,
        "CpuPeriod": res.cpu_period_us,
        "CpuQuota": res.cpu_quota_us,
        "PidsLimit": res.pids_limit or None,
        "GroupAdd": list(config.group_add) or None,
        "ShmSize": config.shm_size_bytes or 64 << 20,
        "Sysctls": config.sysctls or None,
        "ExtraHosts": list(config.extra_hosts) or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in config.ulimits]
        or None,
        "LogConfig": {"Type": LOG_DRIVER, "Config": {}},
    }  # fmt: skip


def mounts(config: ContainerConfig) -> list[dict[str, Any]]:
    """Docker's ``Mounts`` of a container (volumes by name, binds by path)."""
    out = []
    for m in config.mounts:
        entry: dict[str, Any] = {
            "Type": m.type.value,
            "Source": m.source,
            "Destination": m.target,
            "Mode": "" if m.type == MountType.BIND else "z",
            "RW": not m.read_only,
            "Propagation": "rprivate" if m.type == MountType.BIND else "",
        }
        if m.type == MountType.VOLUME:
            entry |= {"Name": m.source, "Driver": "local"}
        out.append(entry)
    return out


def mode_network_id(mode: str) -> str:
    return hashlib.sha256(f"ferry-network-mode/{mode}".encode()).hexdigest()


def mode_network(mode: str, containers: list[Container]) -> dict[str, Any]:
    """Docker's ``host`` and ``none`` networks: modes, listed as networks (drivers host and
    null), with the running containers that use them."""
    attached = {
        c.config.container_id: {
            "Name": c.config.name, "EndpointID": "", "MacAddress": "", "IPv4Address": "",
            "IPv6Address": "",
        }
        for c in containers
        if c.running and c.config.network_mode == mode
    }  # fmt: skip
    return {
        "Name": mode,
        "Id": mode_network_id(mode),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": "host" if mode == "host" else "null",
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": attached,
        "Options": {},
        "Labels": {},
    }


NS = 1_000_000_000


def health_config(config: ContainerConfig) -> dict[str, Any] | None:
    check = config.healthcheck
    if check is None:
        return None
    return {
        "Test": list(check.test),
        "Interval": round(check.interval_s * NS),
        "Timeout": round(check.timeout_s * NS),
        "Retries": check.retries,
        "StartPeriod": round(check.start_period_s * NS),
    }


def _health(container: Container) -> dict[str, Any]:
    """Docker's State.Health, for a container with a health check that has been started:
    Docker makes it when the container starts (moby ``initHealthMonitor``), so a container
    never started has none (docker-py's ``Container.health`` says "unknown")."""
    check = container.config.healthcheck
    if check is None or not check.enabled or not container.state.started_at:
        return {}
    state = container.state
    log = [
        {"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output}
        for p in state.health_log
    ]
    status = state.health or ("starting" if container.running else "unhealthy")
    return {"Health": {"Status": status, "FailingStreak": state.health_failing, "Log": log}}
