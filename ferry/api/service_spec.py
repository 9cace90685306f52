"""A service spec between Docker's shape and Ferry's: ``request_of`` reads a ServiceSpec body
(after ``service_options.check_spec`` refused what Ferry does not honour) into a
``ServiceRequest``; ``spec_json`` shows a ``ServiceSpec`` as Docker's inspect does."""

from __future__ import annotations

from typing import Any

from ferry.api.models.services import RestartPolicyModel, ServiceSpecModel
from ferry.api.service_options import (
    check_spec,
    container_spec_json,
    policy_json,
    resources_json,
    task_options,
    update_policy,
)
from ferry.errors import InvalidArgument
from ferry.manager.orchestrator import RESTART_DELAY_S
from ferry.manager.services import ServiceRequest
from ferry.model.service import Mode, PortSpec, PublishMode, ServiceSpec

NS = 1_000_000_000


def ports_of(model: ServiceSpecModel) -> tuple[PortSpec, ...]:
    ports = model.EndpointSpec.Ports if model.EndpointSpec and model.EndpointSpec.Ports else []
    out = []
    for port in ports:
        try:
            mode = PublishMode(port.PublishMode or "ingress")
        except ValueError as exc:
            raise InvalidArgument(
                f"invalid publish mode {port.PublishMode!r}: use ingress or host"
            ) from exc
        out.append(PortSpec(port.PublishedPort, port.TargetPort, port.Protocol or "tcp", mode))
    return tuple(out)


def request_of(model: ServiceSpecModel) -> ServiceRequest:
    check_spec(model)
    template = model.TaskTemplate
    container = template.ContainerSpec
    mode = "replicated"
    replicas = None
    jobs = (model.Mode.ReplicatedJob, model.Mode.GlobalJob) if model.Mode else (None, None)
    if jobs != (None, None):
        raise InvalidArgument("job modes are not supported: use replicated or global")
    both = model.Mode is not None and None not in (model.Mode.Global, model.Mode.Replicated)
    if both:
        raise InvalidArgument("cannot specify both replicated mode and global mode")
    if model.Mode is not None and model.Mode.Global is not None:
        mode = "global"
    elif model.Mode is not None and model.Mode.Replicated is not None:
        replicas = model.Mode.Replicated.Replicas
    networks = template.Networks or model.Networks or []  # the latter deprecated
    return ServiceRequest(
        name=model.Name,
        image=container.Image,
        cmd=tuple(container.Args or ()),
        entrypoint=tuple(container.Command) if container.Command else None,
        env=tuple(container.Env or []),
        mode=mode,
        replicas=replicas,
        networks=tuple(n.Target for n in networks),
        aliases={n.Target: tuple(n.Aliases) for n in networks if n.Aliases},
        endpoint_mode=model.EndpointSpec.Mode if model.EndpointSpec else "vip",
        constraints=tuple(template.Placement.Constraints or []) if template.Placement else (),
        restart=template.RestartPolicy.Condition if template.RestartPolicy else "any",
        restart_delay_s=_restart_delay(template.RestartPolicy),
        init=bool(container.Init),
        stop_grace_s=(container.StopGracePeriod or 10 * NS) / NS,
        ports=ports_of(model),
        labels=model.Labels,
        options=task_options(template),
        update=update_policy(model.UpdateConfig),
        rollback=update_policy(model.RollbackConfig, rollback=True),
    )


def _attachment(net_id: str, spec: ServiceSpec) -> dict[str, Any]:
    """One of TaskTemplate.Networks: the network by id (Docker's daemon stores the id whatever
    the request named; the docker CLI's ``--network-add|rm`` compare ids), and the service's
    aliases there if any."""
    out: dict[str, Any] = {"Target": net_id}
    if spec.aliases.get(net_id):
        out["Aliases"] = list(spec.aliases[net_id])
    return out


def _restart_delay(policy: RestartPolicyModel | None) -> float:
    """RestartPolicy.Delay in seconds; Docker's 5 s when not given."""
    if policy is None or policy.Delay is None:
        return RESTART_DELAY_S
    return policy.Delay / NS


def spec_json(spec: ServiceSpec, force: int) -> dict[str, Any]:
    mode: dict[str, Any] = (
        {"Global": {}} if spec.mode == Mode.GLOBAL else {"Replicated": {"Replicas": spec.replicas}}
    )
    return {
        "Name": spec.name,
        "Labels": spec.labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": spec.template.image,
                "Command": list(spec.template.entrypoint or ()) or None,
                "Args": list(spec.template.cmd),
                "Env": list(spec.template.env),
                "Init": spec.template.init,
                "StopGracePeriod": int(spec.template.stop_grace_s * NS),
                **container_spec_json(spec.template.options),
            },
            "Resources": resources_json(spec.template.options),
            "RestartPolicy": {
                "Condition": spec.restart.value,
                "Delay": round(spec.restart_delay_s * NS),
                "MaxAttempts": 0,
            },
            "Placement": {"Constraints": list(spec.constraints)},
            "Networks": [_attachment(n, spec) for n in spec.networks],
            "ForceUpdate": force,
        },
        "Mode": mode,
        "UpdateConfig": policy_json(spec.update),
        "RollbackConfig": policy_json(spec.rollback),
        "EndpointSpec": {
            "Mode": spec.endpoint_mode.value,
            "Ports": [port_json(p) for p in spec.ports],
        },
    }


def port_json(port: PortSpec) -> dict[str, Any]:
    return {
        "Protocol": port.protocol,
        "TargetPort": port.target,
        "PublishedPort": port.published,
        "PublishMode": port.mode.value,
    }
