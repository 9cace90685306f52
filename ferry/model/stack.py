"""A stack: a compose file (the docker CLI's normalised model, as ``docker stack config``
prints it) turned into the Docker API objects ``docker stack deploy`` makes of it.

Plain data in, plain data out: ``plan_stack`` reads the compose model (a dict) and returns the
networks, secrets, configs and service specs to create, named and labelled as the docker CLI
names and labels them (docker/cli ``cli/compose/convert``: ``compose.go``, ``service.go``,
``volume.go``), so that a stack deployed by ``ferry stack deploy`` and one deployed by
``docker stack deploy`` are the same stack to either CLI. The service specs themselves are
built in ``ferry.model.stack_service``.

Every compose key is accounted for: a key the docker CLI ignores gets Docker's own warning
line (``Ignoring unsupported options: build``), a key Ferry converts is converted, and any
other key is refused (InvalidArgument) in one line naming it. Fields Ferry's daemon does not
honour (``Placement.Preferences``, say) are converted as Docker converts them and refused by
the daemon, by their API name, so that one list of what Ferry honours exists.

Be aware: reading the files of ``file:`` secrets and configs, and looking up the ids of
secrets and configs, is the caller's: a plan names them (``FileObject.file``,
``SecretName``/``ConfigName``) and ``with_object_ids`` fills in the ids.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import InvalidArgument, NotFound
from ferry.model.stack_service import (
    DEFAULT_NETWORK,
    DEPRECATED_SERVICE_KEYS,
    IGNORED_SERVICE_KEYS,
    LABEL_IMAGE,
    LABEL_NAMESPACE,
    SERVICE_KEYS,
    check_service_keys,
    network_target,
    scope,
    service_networks,
    service_spec,
    stack_labels,
)

DEFAULT_DRIVER = "overlay"  # docker/cli createNetworks

_TOP_KEYS = frozenset({"version", "services", "networks", "volumes", "secrets", "configs"})
_NETWORK_KEYS = frozenset(
    {"driver", "driver_opts", "ipam", "external", "internal", "attachable", "labels", "name"}
)
_VOLUME_KEYS = frozenset({"name", "external"})  # driver, driver_opts, labels: see _volumes
_OBJECT_KEYS = frozenset({"file", "external", "name", "labels"})


@dataclass(frozen=True)
class FileObject:
    """A secret or config the stack creates: its full name, labels and the (absolute) file
    its data comes from."""

    name: str
    labels: dict[str, str]
    file: str


@dataclass(frozen=True)
class StackPlan:
    """What ``docker stack deploy`` would create for a compose model, in its order: networks
    (full name → Docker's NetworkCreate body, name included), then secrets and configs, then
    services (full name → Docker's ServiceSpec). ``external_networks`` must exist already;
    ``warnings`` are Docker's lines for the keys it ignores."""

    namespace: str
    networks: dict[str, dict[str, Any]]
    external_networks: tuple[str, ...]
    secrets: tuple[FileObject, ...]
    configs: tuple[FileObject, ...]
    services: dict[str, dict[str, Any]]
    warnings: tuple[str, ...] = field(default=())


def check_stack_name(namespace: str) -> None:
    """Docker's rule (``validateStackName``): not empty, no whitespace."""
    if not namespace or any(c.isspace() for c in namespace):
        raise InvalidArgument(f"invalid stack name: {namespace!r}")


def plan_stack(namespace: str, config: Mapping[str, Any]) -> StackPlan:
    """The plan for ``config`` (the compose model) deployed as stack ``namespace``.

    Raises InvalidArgument naming every compose key Ferry does not convert, an undeclared
    network, volume, secret or config, or a value the docker CLI's convert refuses.
    """
    check_stack_name(namespace)
    check_keys(config)
    services: Mapping[str, Any] = config.get("services") or {}
    networks_cfg: Mapping[str, Any] = config.get("networks") or {}
    used = sorted({n for svc in services.values() for n in service_networks(svc)})
    networks, external = _networks(namespace, networks_cfg, used)
    specs = {
        scope(namespace, name): service_spec(namespace, name, svc, config)
        for name, svc in sorted(services.items())
    }
    return StackPlan(
        namespace=namespace,
        networks=networks,
        external_networks=tuple(external),
        secrets=_objects(namespace, config.get("secrets") or {}),
        configs=_objects(namespace, config.get("configs") or {}),
        services=specs,
        warnings=tuple(warnings(config)),
    )


def _networks(
    namespace: str, networks: Mapping[str, Any], used: list[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Docker's ``convert.Networks``: only the networks a service uses; external ones are
    checked, not created; an undriven one is an overlay (``createNetworks``)."""
    out: dict[str, dict[str, Any]] = {}
    external = []
    for name in used:
        net = networks.get(name) or {}
        if name not in networks and name != DEFAULT_NETWORK:
            continue  # service_spec names the service that references it
        if net.get("external"):
            external.append(str(net.get("name") or name))
            continue
        body: dict[str, Any] = {
            "Name": network_target(namespace, name, networks),
            "Labels": stack_labels(namespace, net.get("labels")),
            "Driver": net.get("driver") or DEFAULT_DRIVER,
            "Internal": bool(net.get("internal")),
            "Attachable": bool(net.get("attachable")),
        }
        if net.get("driver_opts"):
            body["Options"] = {k: str(v) for k, v in net["driver_opts"].items()}
        ipam = net.get("ipam") or {}
        if ipam.get("driver") or ipam.get("config"):
            body["IPAM"] = {
                "Driver": ipam.get("driver") or "default",
                "Config": [{"Subnet": c.get("subnet", "")} for c in ipam.get("config") or []],
            }
        out[body["Name"]] = body
    return out, external


def _objects(namespace: str, objects: Mapping[str, Any]) -> tuple[FileObject, ...]:
    """Docker's ``convert.Secrets``/``Configs``: one per non-external entry, named by its
    ``name:`` or ``<stack>_<key>``, labelled, with its file (absolute: the loader made it)."""
    out = []
    for key, given in sorted(objects.items()):
        obj = given or {}
        if obj.get("external"):
            continue
        if not obj.get("file"):
            raise InvalidArgument(f"{key}: a secret or config needs file: or external: true")
        name = str(obj.get("name") or scope(namespace, key))
        out.append(FileObject(name, stack_labels(namespace, obj.get("labels")), str(obj["file"])))
    return tuple(out)


def check_keys(config: Mapping[str, Any]) -> None:
    """Refuse, in one line naming each, every compose key Ferry does not convert (neither
    converted nor one Docker's stack deploy ignores)."""
    names = [k for k in config if k not in _TOP_KEYS and not str(k).startswith("x-")]
    for kind, allowed in (
        ("networks", _NETWORK_KEYS),
        ("volumes", _VOLUME_KEYS),
        ("secrets", _OBJECT_KEYS),
        ("configs", _OBJECT_KEYS),
    ):
        for name, body in (config.get(kind) or {}).items():
            names += [f"{kind}.{name}.{k}" for k in body or {} if k not in allowed]
    for name, svc in (config.get("services") or {}).items():
        names += check_service_keys(name, svc or {})
    if names:
        raise InvalidArgument(
            f"Ferry's stack deploy does not support {', '.join(names)}: "
            "remove it from the compose file"
        )


def warnings(config: Mapping[str, Any]) -> list[str]:
    """Docker's lines for the service keys its stack deploy ignores (docker/cli
    ``stack/loader``: ``Ignoring unsupported options: …`` then ``Ignoring deprecated
    options:``), each key once, sorted. ``depends_on``, which Docker drops without a word, is
    named in the first line: Ferry drops nothing silently."""
    services = (config.get("services") or {}).values()
    given = {k for svc in services for k in svc or {}}
    lines = []
    ignored = sorted(given & IGNORED_SERVICE_KEYS)
    if ignored:
        lines.append(f"Ignoring unsupported options: {', '.join(ignored)}\n")
    deprecated = sorted(given & set(DEPRECATED_SERVICE_KEYS))
    if deprecated:
        body = "\n".join(f"{k}: {DEPRECATED_SERVICE_KEYS[k]}" for k in deprecated)
        lines.append(f"Ignoring deprecated options:\n\n{body}\n")
    return lines


def with_object_ids(
    spec: Mapping[str, Any], secret_ids: Mapping[str, str], config_ids: Mapping[str, str]
) -> dict[str, Any]:
    """``spec`` with ``SecretID``/``ConfigID`` filled in by name (docker/cli
    ``service.ParseSecrets``/``ParseConfigs``); raises NotFound in Docker's words
    (``secret not found: NAME``) for a name with no id."""
    out = copy.deepcopy(dict(spec))
    container = out["TaskTemplate"]["ContainerSpec"]
    for kind, ids in (("Secret", secret_ids), ("Config", config_ids)):
        for ref in container.get(f"{kind}s") or []:
            name = ref[f"{kind}Name"]
            if name not in ids:
                raise NotFound(f"{kind.lower()} not found: {name}")
            ref[f"{kind}ID"] = ids[name]
    return out


__all__ = [
    "LABEL_IMAGE",
    "LABEL_NAMESPACE",
    "SERVICE_KEYS",
    "FileObject",
    "StackPlan",
    "check_stack_name",
    "plan_stack",
    "scope",
    "stack_labels",
    "warnings",
    "with_object_ids",
]
