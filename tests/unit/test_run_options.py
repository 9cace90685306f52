"""Every field of Docker's container create body is either honoured or refused by name: walked
from Docker's own API description (engine-api-v1.47.yaml)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.errors import InvalidArgument

with warnings.catch_warnings():
    # ferry.api.models' Ipam has a field named Config, which pydantic mistakes for a
    # class-based config on import (a known pydantic warning, not this test's subject)
    warnings.simplefilter("ignore")
    from ferry.api.models.containers import ContainerCreate
    from ferry.api.routes.containers import create_request

SPEC = Path(__file__).parents[3] / "shared" / "docker-api" / "engine-api-v1.47.yaml"
if not SPEC.exists():
    SPEC = Path("/work/shared/docker-api/engine-api-v1.47.yaml")

# A value for each honoured field that must change what is asked of the runtime.
CONFIG_SAMPLES: dict[str, Any] = {
    "Hostname": "web", "User": "1000", "Tty": True, "OpenStdin": True, "StdinOnce": True,
    "Env": ["A=1"], "Cmd": ["echo", "hi"], "WorkingDir": "/srv", "Entrypoint": ["sh"],
    "Labels": {"a": "b"}, "StopSignal": "SIGINT", "StopTimeout": 3,
    "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Image": "other",
    "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 10**9},
}  # fmt: skip
HOST_SAMPLES: dict[str, Any] = {
    "Binds": ["/srv:/data"], "Mounts": [{"Type": "tmpfs", "Target": "/run"}],
    "Tmpfs": {"/run": "size=1m"}, "RestartPolicy": {"Name": "always"}, "AutoRemove": True,
    "CapAdd": ["NET_ADMIN"], "CapDrop": ["CHOWN"], "Privileged": True, "ReadonlyRootfs": True,
    "SecurityOpt": ["no-new-privileges"], "GroupAdd": ["50"], "ShmSize": 1 << 20,
    "Sysctls": {"net.ipv4.ip_forward": "1"}, "Init": True, "Memory": 64 << 20,
    "MemoryReservation": 32 << 20, "NanoCpus": 10**9, "CpuShares": 512, "CpuPeriod": 50000,
    "CpuQuota": 25000, "PidsLimit": 10, "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}],
    "ExtraHosts": ["db:10.0.0.9"], "PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
    "NetworkMode": "front", "PublishAllPorts": True,
}  # fmt: skip
# Declared, and accepted only with the values that change nothing (Docker's defaults)
DEFAULTS_ONLY = {"LogConfig", "ConsoleSize", "IpcMode", "CgroupnsMode", "MemorySwappiness",
                 "Isolation", "AttachStdin", "AttachStdout", "AttachStderr", "HostConfig",
                 "NetworkingConfig"}  # fmt: skip


def _definitions() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["definitions"]  # type: ignore[no-any-return]


def _properties(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    schema = definitions[name]
    props = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            props |= _properties(definitions, part["$ref"].rsplit("/", 1)[1])
        props |= part.get("properties", {})
    return props


def _sample(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "boolean":
        return True
    if kind == "integer":
        return 7
    if kind == "array":
        return ["x"]
    if kind == "object" or "$ref" in schema:
        return {"x": "y"}
    return "x"


def _body(host: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    return {"Image": "tools", "Cmd": ["sleep", "1"], **config, "HostConfig": host or {}}


def _request(body: dict[str, Any]) -> Any:
    return create_request("c1", ContainerCreate.model_validate(body))


FIELDS = [
    ("", name, schema) for name, schema in _properties(_definitions(), "ContainerConfig").items()
]
FIELDS += [
    ("HostConfig.", name, schema)
    for name, schema in _properties(_definitions(), "HostConfig").items()
]


@pytest.mark.parametrize(("where", "name", "schema"), FIELDS, ids=[w + n for w, n, _ in FIELDS])
def test_each_docker_field_is_honoured_or_refused_by_name(
    where: str, name: str, schema: dict[str, Any]
) -> None:
    samples = HOST_SAMPLES if where else CONFIG_SAMPLES
    if name in samples:
        body = _body({name: samples[name]}) if where else _body(**{name: samples[name]})
        assert _request(body) != _request(_body()), f"{where}{name} changes nothing"
        return
    if name in DEFAULTS_ONLY:
        return
    value = _sample(schema)
    body = _body({name: value}) if where else _body(**{name: value})
    with pytest.raises(InvalidArgument, match=f"Ferry does not support .*{where}{name}"):
        _request(body)


def test_what_the_docker_cli_sends_by_default_is_accepted() -> None:
    body = {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "Tty": False,
        "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": ["true"], "Image": "tools",
        "Volumes": {}, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
        "HostConfig": {
            "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
            "NetworkMode": "default", "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
            "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
            "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "IpcMode": "",
            "OomScoreAdj": 0, "PidMode": "", "ShmSize": 0, "Isolation": "", "Memory": 0,
            "BlkioWeightDevice": [], "Devices": [], "MemorySwappiness": -1,
            "OomKillDisable": False, "PidsLimit": 0, "Ulimits": [], "MaskedPaths": None,
        },
    }  # fmt: skip
    request = _request(body)
    assert request.cmd == ("true",)


def test_a_log_driver_ferry_does_not_have_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"LogConfig\.Type=syslog"):
        _request(_body({"LogConfig": {"Type": "syslog"}}))
    with pytest.raises(InvalidArgument, match=r"HostConfig\.MemorySwappiness"):
        _request(_body({"MemorySwappiness": 10}))


def test_the_default_network_is_bridge_and_host_and_none_are_modes() -> None:
    default = _request({"Image": "tools", "Cmd": ["true"], "HostConfig": {"NetworkMode": "default"},
                        "NetworkingConfig": {"EndpointsConfig": {"default": {}}}})  # fmt: skip
    assert [c.network for c in default.networks] == ["bridge"] and default.network_mode == ""
    assert [c.network for c in _request(_body()).networks] == ["bridge"]
    host = _request(_body({"NetworkMode": "host"}))
    assert host.networks == () and host.network_mode == "host"
    none = _request(_body({"NetworkMode": "none"}))
    assert none.networks == () and none.network_mode == "none"
    named = _request(_body({"NetworkMode": "front"}))
    assert [c.network for c in named.networks] == ["front"] and named.network_mode == ""


# --- services: TaskSpec and its ContainerSpec ---------------------------------------------
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ferry.api.models.services import ServiceSpecModel
    from ferry.api.service_spec import request_of

TASK_SAMPLES: dict[str, Any] = {
    "ContainerSpec": {"Image": "other"}, "Resources": {"Limits": {"MemoryBytes": 64 << 20}},
    "RestartPolicy": {"Condition": "none"}, "Placement": {"Constraints": ["node.role==worker"]},
    "Networks": [{"Target": "front"}],
}  # fmt: skip
TASK_ELSEWHERE = {"ContainerSpec", "ForceUpdate"}  # the route reads ForceUpdate itself
SPEC_SAMPLES: dict[str, Any] = {
    "Image": "other", "Command": ["sh"], "Args": ["-c", "true"], "Env": ["A=1"], "Init": True,
    "StopGracePeriod": 3 * 10**9, "User": "1000", "Dir": "/srv", "ReadOnly": True,
    "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}],
    "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["CHOWN"],
    "HealthCheck": {"Test": ["CMD-SHELL", "true"]},
    "Labels": {"com.docker.stack.namespace": "app"},
    "Secrets": [{"File": {"Name": "pw"}, "SecretID": "s1", "SecretName": "pw"}],
    "Configs": [{"File": {"Name": "/etc/app.conf"}, "ConfigID": "c1", "ConfigName": "conf"}],
}  # fmt: skip


def _service(template: dict[str, Any]) -> Any:
    spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "tools"}, **template}}
    return request_of(ServiceSpecModel.model_validate(spec))


TASK_FIELDS = [("TaskTemplate.", n, s) for n, s in _properties(_definitions(), "TaskSpec").items()]
TASK_FIELDS += [
    ("TaskTemplate.ContainerSpec.", n, s)
    for n, s in _definitions()["TaskSpec"]["properties"]["ContainerSpec"]["properties"].items()
]


@pytest.mark.parametrize(
    ("where", "name", "schema"), TASK_FIELDS, ids=[w + n for w, n, _ in TASK_FIELDS]
)
def test_each_task_spec_field_is_honoured_or_refused_by_name(
    where: str, name: str, schema: dict[str, Any]
) -> None:
    inner = where.endswith("ContainerSpec.")
    samples = SPEC_SAMPLES if inner else TASK_SAMPLES
    if name in samples:
        changed = (
            _service({"ContainerSpec": {"Image": "tools", name: samples[name]}})
            if inner
            else _service({name: samples[name]})
        )
        assert changed != _service({}), f"{where}{name} changes nothing"
        return
    if not inner and name in TASK_ELSEWHERE:
        return
    value = _sample(schema)
    body = {"ContainerSpec": {"Image": "tools", name: value}} if inner else {name: value}
    with pytest.raises(InvalidArgument, match=f"Ferry does not support .*{where}{name}"):
        _service(body)
