"""One compose service as the Docker ServiceSpec ``docker stack deploy`` sends for it (docker/cli
``cli/compose/convert/service.go`` and ``volume.go``), and the compose keys of a service:
converted, ignored as Docker ignores them, or refused. Plain data in and out; durations in
the spec are nanoseconds, as in Docker's API.

Be aware: a service's ``secrets:``/``configs:`` become references by name (``SecretName``,
``ConfigName``); ``stack.with_object_ids`` fills in the ids once the objects exist.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from ferry.errors import InvalidArgument
from ferry.model.runopts import parse_cpus, parse_duration

LABEL_NAMESPACE = "com.docker.stack.namespace"
LABEL_IMAGE = "com.docker.stack.image"
DEFAULT_NETWORK = "default"
# networks Docker attaches no aliases on (docker/cli: container.NetworkMode.IsUserDefined)
BUILTIN_NETWORKS = frozenset({"default", "bridge", "host", "none"})
NS = 1_000_000_000

# keys Docker's stack deploy warns it ignores (docker/cli cli/compose/types:
# UnsupportedProperties; DeprecatedProperties with Docker's reasons), and depends_on, which
# it drops without a word
IGNORED_SERVICE_KEYS = frozenset(
    {
        "build", "cgroupns_mode", "cgroup_parent", "devices", "domainname", "external_links",
        "ipc", "links", "mac_address", "network_mode", "pid", "privileged", "restart",
        "security_opt", "shm_size", "userns_mode", "depends_on",
    }
)  # fmt: skip
DEPRECATED_SERVICE_KEYS = {
    "container_name": "Setting the container name is not supported.",
    "expose": "Exposing ports is unnecessary - services on the same network can access each "
    "other's containers on any port.",
}
# keys converted here (env_file: the loader has read it into environment already)
SERVICE_KEYS = frozenset(
    {
        "image", "command", "entrypoint", "environment", "env_file", "labels", "ports",
        "deploy", "healthcheck", "user", "working_dir", "hostname", "stop_grace_period",
        "secrets", "configs", "volumes", "networks", "init", "read_only", "cap_add", "cap_drop",
    }
)  # fmt: skip
_DEPLOY_KEYS = frozenset(
    {
        "mode", "replicas", "labels", "placement", "resources", "update_config",
        "rollback_config", "restart_policy", "endpoint_mode",
    }
)  # fmt: skip
_NESTED_KEYS = {
    "deploy.placement": frozenset({"constraints", "preferences", "max_replicas_per_node"}),
    "deploy.resources": frozenset({"limits", "reservations"}),
    "deploy.resources.limits": frozenset({"cpus", "memory", "pids"}),
    "deploy.resources.reservations": frozenset({"cpus", "memory"}),
    "healthcheck": frozenset(
        {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
    ),
}
_VOLUME_MOUNT_KEYS = frozenset({"type", "source", "target", "read_only", "tmpfs"})
_PORT_KEYS = frozenset({"mode", "target", "published", "protocol"})
_NETWORK_REF_KEYS = frozenset({"aliases", "driver_opts"})
_REF_KEYS = frozenset({"source", "target", "uid", "gid", "mode"})


def scope(namespace: str, name: str) -> str:
    """Docker's ``Namespace.Scope``: ``<stack>_<name>``."""
    return f"{namespace}_{name}"


def stack_labels(namespace: str, labels: Mapping[str, Any] | None) -> dict[str, str]:
    """``labels`` plus ``com.docker.stack.namespace`` (Docker's ``AddStackLabel``)."""
    return {**{k: str(v) for k, v in (labels or {}).items()}, LABEL_NAMESPACE: namespace}


def service_networks(service: Mapping[str, Any]) -> list[str]:
    """The compose names of the networks a service is on: ``default`` when it names none."""
    return list(service.get("networks") or {}) or [DEFAULT_NETWORK]


def network_target(namespace: str, name: str, networks: Mapping[str, Any]) -> str:
    """The real name of compose network ``name``: its ``name:``, else ``<stack>_<name>``."""
    given = (networks.get(name) or {}).get("name")
    return str(given) if given else scope(namespace, name)


def check_service_keys(name: str, svc: Mapping[str, Any]) -> list[str]:
    """``services.NAME.KEY`` for each key of ``svc`` Ferry neither converts nor ignores as
    Docker does."""
    where = f"services.{name}"
    known = SERVICE_KEYS | IGNORED_SERVICE_KEYS | set(DEPRECATED_SERVICE_KEYS)
    # x-…: the compose format's extension fields, the user's own, which no tool acts on
    out = [f"{where}.{k}" for k in svc if k not in known and not str(k).startswith("x-")]
    deploy = svc.get("deploy") or {}
    out += [f"{where}.deploy.{k}" for k in deploy if k not in _DEPLOY_KEYS]
    for path, allowed in _NESTED_KEYS.items():
        body: Any = svc
        for part in path.split("."):
            body = (body or {}).get(part)
        out += [f"{where}.{path}.{k}" for k in body or {} if k not in allowed]
    for i, mount in enumerate(svc.get("volumes") or []):
        out += [f"{where}.volumes[{i}].{k}" for k in mount if k not in _VOLUME_MOUNT_KEYS]
    for i, port in enumerate(svc.get("ports") or []):
        out += [f"{where}.ports[{i}].{k}" for k in port if k not in _PORT_KEYS]
    for net, ref in (svc.get("networks") or {}).items():
        out += [f"{where}.networks.{net}.{k}" for k in ref or {} if k not in _NETWORK_REF_KEYS]
    for kind in ("secrets", "configs"):
        for i, ref in enumerate(svc.get(kind) or []):
            out += [f"{where}.{kind}[{i}].{k}" for k in ref if k not in _REF_KEYS]
    return out


def service_spec(
    namespace: str, name: str, svc: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    """Docker's ServiceSpec for compose service ``name`` of stack ``namespace``
    (docker/cli ``convert.Service``). Raises InvalidArgument as Docker's convert does: an
    undeclared network, volume, secret or config, replicas on a global service."""
    deploy = svc.get("deploy") or {}
    container: dict[str, Any] = {
        "Image": str(svc.get("image") or ""),
        "Labels": stack_labels(namespace, svc.get("labels")),
        "Env": _environment(svc.get("environment") or {}),
        **_optional(svc),
    }
    if not container["Image"]:
        raise InvalidArgument(f"service {name!r} has no image: set image: in the compose file")
    mounts = [
        _mount(namespace, name, m, config.get("volumes") or {}) for m in svc.get("volumes") or []
    ]
    if mounts:
        container["Mounts"] = mounts
    for kind in ("Secret", "Config"):
        refs = _file_refs(namespace, name, kind, svc, config)
        if refs:
            container[f"{kind}s"] = refs
    labels = stack_labels(namespace, deploy.get("labels"))
    labels[LABEL_IMAGE] = container["Image"]
    spec: dict[str, Any] = {
        "Name": scope(namespace, name),
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": _resources(deploy.get("resources") or {}),
            "Placement": _placement(deploy.get("placement") or {}),
            "Networks": _attachments(namespace, name, svc, config.get("networks") or {}),
        },
        "Mode": _mode(name, deploy),
        "EndpointSpec": {
            "Mode": str(deploy.get("endpoint_mode") or "vip").lower(),
            "Ports": _ports(svc.get("ports") or []),
        },
    }
    restart = _restart_policy(svc.get("restart"), deploy.get("restart_policy"))
    if restart is not None:
        spec["TaskTemplate"]["RestartPolicy"] = restart
    for key, field in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        if deploy.get(key) is not None:
            spec[field] = _update_config(deploy[key])
    return spec


def _ns(text: Any, what: str) -> int:
    """A Go duration (as the loader prints them: ``1m30s``) in nanoseconds."""
    return round(parse_duration(str(text), what) * NS)


def _words(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _optional(svc: Mapping[str, Any]) -> dict[str, Any]:
    """The ContainerSpec fields a service sets only when given."""
    out: dict[str, Any] = {}
    if svc.get("entrypoint") is not None:
        out["Command"] = _words(svc["entrypoint"])
    if svc.get("command") is not None:
        out["Args"] = _words(svc["command"])
    for key, field in (("hostname", "Hostname"), ("working_dir", "Dir"), ("user", "User")):
        if svc.get(key):
            out[field] = str(svc[key])
    if svc.get("stop_grace_period") is not None:
        out["StopGracePeriod"] = _ns(svc["stop_grace_period"], "stop_grace_period")
    for key, field in (("init", "Init"), ("read_only", "ReadOnly")):
        if svc.get(key) is not None:
            out[field] = bool(svc[key])
    for key, field in (("cap_add", "CapabilityAdd"), ("cap_drop", "CapabilityDrop")):
        if svc.get(key):
            out[field] = [str(c) for c in svc[key]]
    if svc.get("healthcheck") is not None:
        out["HealthCheck"] = _healthcheck(svc["healthcheck"])
    return out


def _environment(env: Mapping[str, Any]) -> list[str]:
    """``KEY=VALUE``, sorted; a key with no value stays bare (Docker's convertEnvironment)."""
    return sorted(k if v is None else f"{k}={v}" for k, v in env.items())


def _healthcheck(check: Mapping[str, Any]) -> dict[str, Any]:
    if check.get("disable"):
        if check.get("test"):
            raise InvalidArgument("healthcheck: test and disable can't be set at the same time")
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {"Test": _words(check.get("test") or [])}
    for key, field in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ):
        if check.get(key) is not None:
            out[field] = _ns(check[key], f"healthcheck {key}")
    if check.get("retries") is not None:
        out["Retries"] = int(check["retries"])
    return out


def _mode(name: str, deploy: Mapping[str, Any]) -> dict[str, Any]:
    mode, replicas = deploy.get("mode") or "replicated", deploy.get("replicas")
    if mode == "global":
        if replicas is not None:
            raise InvalidArgument(
                f"service {name!r}: replicas can only be used with replicated or "
                "replicated-job mode"
            )
        return {"Global": {}}
    if mode == "replicated":
        return {"Replicated": {"Replicas": 1 if replicas is None else int(replicas)}}
    raise InvalidArgument(f"service {name!r}: Unknown mode: {mode}")


def _ports(ports: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Docker's convertEndpointSpec: the long syntax, sorted by published port."""
    out = []
    for port in ports:
        published = port.get("published") or 0
        if not str(published).isdigit():
            raise InvalidArgument(f"invalid published port {published!r}: use one number")
        out.append(
            {
                "Protocol": str(port.get("protocol") or "tcp"),
                "TargetPort": int(port["target"]),
                "PublishedPort": int(published),
                "PublishMode": str(port.get("mode") or "ingress"),
            }
        )
    return sorted(out, key=lambda p: p["PublishedPort"])


def _resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, field in (("limits", "Limits"), ("reservations", "Reservations")):
        part = resources.get(key)
        if part is None:
            continue
        body: dict[str, Any] = {}
        if part.get("cpus"):
            body["NanoCPUs"] = parse_cpus(str(part["cpus"]))
        if part.get("memory"):
            body["MemoryBytes"] = int(part["memory"])  # the loader prints bytes
        if part.get("pids"):
            body["Pids"] = int(part["pids"])
        out[field] = body
    return out


def _placement(placement: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Constraints": [str(c) for c in placement.get("constraints") or []]}
    preferences = placement.get("preferences") or []
    if preferences:
        out["Preferences"] = [{"Spread": {"SpreadDescriptor": p["spread"]}} for p in preferences]
    if placement.get("max_replicas_per_node"):
        out["MaxReplicas"] = int(placement["max_replicas_per_node"])
    return out


def _restart_policy(restart: Any, policy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Docker's convertRestartPolicy: deploy.restart_policy, else the (ignored-with-a-warning
    yet honoured) ``restart:`` of docker run."""
    if policy is None:
        text = str(restart or "no")
        if text == "no":
            return None
        if text in ("always", "unless-stopped"):
            return {"Condition": "any"}
        kind, _, attempts = text.partition(":")
        if kind == "on-failure" and (not attempts or attempts.isdigit()):
            return {"Condition": "on-failure", "MaxAttempts": int(attempts or 0)}
        raise InvalidArgument(f"unknown restart policy: {text}")
    out: dict[str, Any] = {"Condition": str(policy.get("condition") or "any")}
    for key, field in (("delay", "Delay"), ("window", "Window")):
        if policy.get(key) is not None:
            out[field] = _ns(policy[key], f"restart_policy {key}")
    if policy.get("max_attempts") is not None:
        out["MaxAttempts"] = int(policy["max_attempts"])
    return out


def _update_config(update: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's convertUpdateConfig: parallelism 1 unless given; zero durations as zero."""
    parallelism = update.get("parallelism")
    return {
        "Parallelism": 1 if parallelism is None else int(parallelism),
        "Delay": _ns(update.get("delay") or "0", "update_config delay"),
        "FailureAction": str(update.get("failure_action") or ""),
        "Monitor": _ns(update.get("monitor") or "0", "update_config monitor"),
        "MaxFailureRatio": float(update.get("max_failure_ratio") or 0),
        "Order": str(update.get("order") or ""),
    }


def _attachments(
    namespace: str, name: str, svc: Mapping[str, Any], networks: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Docker's convertServiceNetworks: each network by its real name, its aliases plus the
    service's short name (on user-defined networks), sorted by target."""
    refs = svc.get("networks") or {DEFAULT_NETWORK: None}
    out = []
    for net in service_networks(svc):
        if net not in networks and net != DEFAULT_NETWORK:
            raise InvalidArgument(
                f"service {name!r} references network {net!r}, which is not declared"
            )
        ref = (refs.get(net) or {}) if isinstance(refs, Mapping) else {}
        target = network_target(namespace, net, networks)
        aliases = [str(a) for a in ref.get("aliases") or []]
        if target not in BUILTIN_NETWORKS:
            aliases.append(name)
        body: dict[str, Any] = {"Target": target, "Aliases": aliases}
        if ref.get("driver_opts"):
            body["DriverOpts"] = {k: str(v) for k, v in ref["driver_opts"].items()}
        out.append(body)
    return sorted(out, key=lambda b: str(b["Target"]))


def _mount(
    namespace: str, name: str, mount: Mapping[str, Any], volumes: Mapping[str, Any]
) -> dict[str, Any]:
    """Docker's convertVolumeToMount, for the mounts Ferry's services take: a named volume
    (``<stack>_<name>`` unless external or named), an anonymous one, a bind, a tmpfs."""
    kind = str(mount.get("type") or "volume")
    body: dict[str, Any] = {"Type": kind, "Target": str(mount["target"])}
    source = str(mount.get("source") or "")
    if kind == "volume" and source:
        if source not in volumes:
            raise InvalidArgument(f"service {name!r}: undefined volume {source!r}")
        declared = volumes[source] or {}
        source = str(declared.get("name") or scope(namespace, source))
    elif kind == "bind" and not source:
        raise InvalidArgument("invalid bind source, source cannot be empty")
    elif kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"service {name!r}: volume type must be volume, bind or tmpfs")
    if source:
        body["Source"] = source
    if mount.get("read_only"):
        body["ReadOnly"] = True
    tmpfs = mount.get("tmpfs") or {}
    if tmpfs:
        if kind != "tmpfs":
            raise InvalidArgument(f"tmpfs options are incompatible with type {kind}")
        body["TmpfsOptions"] = {"SizeBytes": int(tmpfs.get("size") or 0)}
    return body


def _file_refs(
    namespace: str, name: str, kind: str, svc: Mapping[str, Any], config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Docker's convertFileObject for each of a service's secrets (``kind="Secret"``) or
    configs: the object's real name, target (the source's key by default), uid and gid "0"
    by default and mode 0444 by default; sorted by name, as Docker sorts them."""
    key = f"{kind.lower()}s"
    declared: Mapping[str, Any] = config.get(key) or {}
    out = []
    for ref in svc.get(key) or []:
        source = str(ref["source"])
        if source not in declared:
            raise InvalidArgument(f"service {name!r}: undefined {kind.lower()} {source!r}")
        obj = declared[source] or {}
        out.append(
            {
                "File": {
                    "Name": str(ref.get("target") or source),
                    "UID": str(ref.get("uid") or "0"),
                    "GID": str(ref.get("gid") or "0"),
                    "Mode": int(ref["mode"]) if ref.get("mode") is not None else 0o444,
                },
                f"{kind}Name": str(obj.get("name") or scope(namespace, source)),
            }
        )
    return sorted(out, key=lambda r: str(r[f"{kind}Name"]))
