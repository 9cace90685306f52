"""Every field of Docker's ServiceSpec (engine-api-v1.47.yaml), walked to its leaves, is
honoured or refused in one line that names it (or the object it sits in); the values the
docker CLI sends whatever the flags are accepted. ContainerSpec and TaskSpec's own fields are
walked in test_run_options."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.errors import InvalidArgument

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pydantic's warning on a field named Config
    from ferry.api import service_options
    from ferry.api.models.services import ServiceSpecModel
    from ferry.api.service_spec import request_of, spec_json
    from ferry.manager.services import ServiceRequest
    from ferry.model.service import ContainerTemplate, ServiceSpec, TaskOptions

SPEC = Path("/work/shared/docker-api/engine-api-v1.47.yaml")
NS = 10**9
BASE: dict[str, Any] = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "tools"}}}
# Leaves Ferry honours: a value there must change what is asked of the manager.
HONOURED = {
    "Name", "Labels", "Mode.Replicated.Replicas", "Networks[].Target",
    "TaskTemplate.Networks[].Target", "TaskTemplate.Networks[].Aliases", "Networks[].Aliases",
    "TaskTemplate.RestartPolicy.Condition",
    "TaskTemplate.RestartPolicy.Delay",
    "TaskTemplate.Placement.Constraints", "EndpointSpec.Mode", "EndpointSpec.Ports[].Protocol",
    "EndpointSpec.Ports[].TargetPort", "EndpointSpec.Ports[].PublishedPort",
    "EndpointSpec.Ports[].PublishMode", "TaskTemplate.Resources.Limits.NanoCPUs",
    "TaskTemplate.Resources.Limits.MemoryBytes", "TaskTemplate.Resources.Limits.Pids",
    "TaskTemplate.Resources.Reservations.NanoCPUs",
    "TaskTemplate.Resources.Reservations.MemoryBytes",
    *(f"{config}.{field}" for config in ("UpdateConfig", "RollbackConfig")
      for field in ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio",
                    "Order")),
}  # fmt: skip
# a value other than the default that the field takes (its enum's last is the default)
SAMPLES = {"RollbackConfig.FailureAction": "continue"}
SKIP = {"TaskTemplate.ContainerSpec", "TaskTemplate.ForceUpdate"}  # walked elsewhere / the route's
JOB_MODES = ("Mode.ReplicatedJob", "Mode.GlobalJob")  # refused as Docker: "job modes …"


def _definitions() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["definitions"]  # type: ignore[no-any-return]


def _resolve(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    props = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        props |= _resolve(defs, part).get("properties", {})
    return {**schema, "properties": props} if props else schema


def _leaves(defs: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    schema = _resolve(defs, schema)
    if path in SKIP:
        return
    if schema.get("type") == "array" and "items" in schema:
        items = _resolve(defs, schema["items"])
        if items.get("properties"):
            yield from _leaves(defs, items, path + "[]")
            return
    if schema.get("properties"):
        for name, child in schema["properties"].items():
            yield from _leaves(defs, child, f"{path}.{name}" if path else name)
        return
    yield path, _sample(schema)


def _sample(schema: dict[str, Any]) -> Any:
    """A value that is neither zero nor one of Docker's defaults."""
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][-1] if schema["enum"][-1] not in ("any", "pause") else "none"
    return {"boolean": True, "integer": 7, "number": 0.5, "array": ["x"], "object": {"x": "y"}}.get(
        str(kind), "x"
    )


def _body(path: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**BASE, "TaskTemplate": {"ContainerSpec": {"Image": "tools"}}}
    node = body
    parts = path.split(".")
    for part in parts[:-1]:
        key = part.removesuffix("[]")
        if part.endswith("[]"):
            node[key] = [{"Target": "front"} if key == "Networks" else {}]
            node = node[key][0]
        else:
            node = node.setdefault(key, {})
    last = parts[-1]
    if last.endswith("[]"):
        node[last.removesuffix("[]")] = [value]
    else:
        node[last] = value
    return body


def _request(body: dict[str, Any]) -> ServiceRequest:
    return request_of(ServiceSpecModel.model_validate(body))


LEAVES = sorted(_leaves(_definitions(), _definitions()["ServiceSpec"], ""))


@pytest.mark.parametrize(("path", "value"), LEAVES, ids=[p for p, _ in LEAVES])
def test_each_service_spec_field_is_honoured_or_refused_by_name(path: str, value: Any) -> None:
    body = _body(path, SAMPLES.get(path, value))
    if path in HONOURED:
        assert _request(body) != _request(BASE), f"{path} changes nothing"
        return
    with pytest.raises(InvalidArgument) as refused:
        _request(body)
    message = str(refused.value)
    if path.startswith(JOB_MODES):
        assert "job modes are not supported" in message
        return
    parts = path.replace("[]", "").split(".")
    named = [".".join(parts[:i]) for i in range(len(parts), 1, -1)]
    assert message.startswith("Ferry does not support "), message
    assert any(re.search(rf"(^|[ ,]){re.escape(n)}([=,.]|$)", message) for n in named), message


# What the docker CLI 27 sends (captured): with no flag, with the restart condition alone,
# and with every update/rollback flag at its default.
CLI_DEFAULTS: dict[str, Any] = {
    "Name": "ds5", "Labels": {},
    "TaskTemplate": {
        "ContainerSpec": {"Image": "tools:latest", "Args": ["sleep", "100"], "Init": False,
                          "DNSConfig": {}},
        "Resources": {"Limits": {}, "Reservations": {}},
        "RestartPolicy": {"Condition": "on-failure", "Delay": 5 * NS, "MaxAttempts": 0},
        "Placement": {}, "ForceUpdate": 0,
    },
    "Mode": {"Replicated": {}},
    "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * NS,
                     "MaxFailureRatio": 0, "Order": "stop-first"},
    "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * NS,
                       "MaxFailureRatio": 0, "Order": "stop-first"},
    "EndpointSpec": {"Mode": "vip"},
}  # fmt: skip


def test_what_the_docker_cli_sends_by_default_is_accepted() -> None:
    request = _request(CLI_DEFAULTS)
    assert request.restart == "on-failure"


def _with(section: str, **fields: Any) -> dict[str, Any]:
    body = {**CLI_DEFAULTS, "TaskTemplate": dict(CLI_DEFAULTS["TaskTemplate"])}
    if section.startswith("TaskTemplate."):
        inner = section.removeprefix("TaskTemplate.")
        body["TaskTemplate"][inner] = {**body["TaskTemplate"].get(inner, {}), **fields}
    else:
        body[section] = {**body[section], **fields}
    return body


# The flags of the report, each as the docker CLI sends it, and the name the refusal gives.
CLI_FLAGS = [
    ("--placement-pref spread=node.labels.x",
     _with("TaskTemplate.Placement", Preferences=[{"Spread": {"SpreadDescriptor": "x"}}]),
     "TaskTemplate.Placement.Preferences"),
    ("--restart-max-attempts 2", _with("TaskTemplate.RestartPolicy", MaxAttempts=2),
     "TaskTemplate.RestartPolicy.MaxAttempts=2"),
    ("--restart-window 10s", _with("TaskTemplate.RestartPolicy", Window=10 * NS),
     "TaskTemplate.RestartPolicy.Window=10s"),
]  # fmt: skip


@pytest.mark.parametrize(("flag", "body", "name"), CLI_FLAGS, ids=[f for f, _, _ in CLI_FLAGS])
def test_a_non_default_docker_flag_is_refused_by_name(
    flag: str, body: dict[str, Any], name: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"^Ferry does not support {re.escape(name)}$"):
        _request(body)


def test_the_update_and_rollback_flags_are_honoured_and_shown() -> None:
    """--update-parallelism 2 --update-delay 30s --update-failure-action rollback
    --update-order start-first --update-monitor 10s --update-max-failure-ratio 0.25, and the
    --rollback-* flags, as the docker CLI sends them; inspect shows them back."""
    body = _with("UpdateConfig", Parallelism=2, Delay=30 * NS, FailureAction="rollback",
                 Order="start-first", Monitor=10 * NS, MaxFailureRatio=0.25)  # fmt: skip
    body["RollbackConfig"] = {**body["RollbackConfig"], "Parallelism": 0, "FailureAction":
                              "continue"}  # fmt: skip
    request = _request(body)
    assert (request.update.parallelism, request.update.delay_s, request.update.monitor_s) == (
        2, 30.0, 10.0)  # fmt: skip
    assert (request.update.failure_action, request.update.order) == ("rollback", "start-first")
    assert request.update.max_failure_ratio == 0.25
    assert (request.rollback.parallelism, request.rollback.failure_action) == (0, "continue")
    template = ContainerTemplate("tools", ("sleep", "9"))
    shown = spec_json(ServiceSpec("web", template, update=request.update,
                                  rollback=request.rollback), 0)  # fmt: skip
    assert shown["UpdateConfig"] == body["UpdateConfig"]
    assert _request(shown).update == request.update


@pytest.mark.parametrize(
    ("section", "fields", "message"),
    [
        ("UpdateConfig", {"FailureAction": "boom"}, "unrecognized update failure action boom"),
        ("RollbackConfig", {"FailureAction": "rollback"},
         "unrecognized rollback failure action rollback"),
        ("UpdateConfig", {"Order": "sideways"}, "unrecognized update order sideways"),
        ("UpdateConfig", {"Delay": -1}, "TaskSpec: update-delay cannot be negative"),
        ("RollbackConfig", {"Monitor": -1}, "TaskSpec: rollback-monitor cannot be negative"),
        ("UpdateConfig", {"MaxFailureRatio": 1.5},
         "update-maxfailureratio cannot be less than 0 or bigger than 1"),
    ],
)  # fmt: skip
def test_bad_update_and_rollback_configs_are_refused_in_docker_s_words(
    section: str, fields: dict[str, Any], message: str
) -> None:
    """Names and orders are read with the spec; the numbers are checked by the manager
    (``ServiceOps._spec``), whoever sent the spec."""
    try:
        request = _request(_with(section, **fields))
    except InvalidArgument as exc:
        assert message in str(exc)
        return
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        (request.rollback if section == "RollbackConfig" else request.update).check(
            rollback=section == "RollbackConfig"
        )


def test_what_inspect_shows_is_accepted_back() -> None:
    # docker service update sends back the spec inspect showed, changed where asked
    template = ContainerTemplate("tools", ("sleep", "9"), (), False, 10.0, TaskOptions(), None)
    shown = spec_json(ServiceSpec("web", template), 0)
    assert shown["UpdateConfig"]["FailureAction"] == "pause"
    assert shown["RollbackConfig"]["Order"] == "stop-first"
    assert _request(shown).restart == "any"


def test_the_restart_delay_is_honoured_and_shown() -> None:
    request = _request(_with("TaskTemplate.RestartPolicy", Delay=30 * NS))
    assert request.restart_delay_s == 30.0
    assert _request(BASE).restart_delay_s == 5.0  # Docker's default when not given
    template = ContainerTemplate("tools", ("sleep", "9"), (), False, 10.0, TaskOptions(), None)
    shown = spec_json(ServiceSpec("web", template, restart_delay_s=0.5), 0)
    assert shown["TaskTemplate"]["RestartPolicy"]["Delay"] == NS // 2


def test_placement_platforms_that_name_the_nodes_platform_are_taken() -> None:
    # what the docker CLI sends after resolving a multi-platform image
    platforms: list[object] = [
        {"Architecture": "arm64", "OS": "linux"},
        {"Architecture": "amd64", "OS": "linux"},
    ]
    service_options.check_platforms(platforms, machine="x86_64")
    service_options.check_platforms([], machine="x86_64")


def test_placement_platforms_without_the_nodes_platform_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="no node of this swarm is linux/arm64"):
        service_options.check_platforms(
            [{"Architecture": "arm64", "OS": "linux"}], machine="x86_64"
        )


def test_container_labels_reach_the_tasks_options_and_inspect() -> None:
    """docker stack deploy labels each task's container (com.docker.stack.namespace)."""
    from ferry.api.service_options import container_spec_json

    body = {"Name": "app_web", "TaskTemplate": {"ContainerSpec": {
        "Image": "tools", "Labels": {"com.docker.stack.namespace": "app"},
    }}}  # fmt: skip
    options = _request(body).options
    assert options.labels == {"com.docker.stack.namespace": "app"}
    assert container_spec_json(options)["Labels"] == {"com.docker.stack.namespace": "app"}
    blank = dict(body, TaskTemplate={"ContainerSpec": {"Image": "tools", "Labels": {" ": "x"}}})
    with pytest.raises(InvalidArgument, match="container label"):
        _request(blank).options.check()


def test_a_service_on_a_local_network_is_refused_in_dockers_words() -> None:
    """The docker CLI asks for the network with scope=swarm first (404 for a local one); an
    API client that does not is answered as Docker's daemon answers."""
    from types import SimpleNamespace
    from typing import cast

    from ferry.api.routes.services import ServiceRoutes
    from ferry.errors import NotFound
    from ferry.manager.manager import Manager

    def find(ref: str) -> None:
        raise NotFound(f"network {ref} not found")

    manager = cast(Manager, SimpleNamespace(networks=SimpleNamespace(find=find)))
    routes = ServiceRoutes(cast(Any, None), lambda ref: object() if ref == "bridge" else None)
    wanted = _request({**BASE, "TaskTemplate": {"ContainerSpec": {"Image": "tools"},
                                                "Networks": [{"Target": "bridge"}]}})  # fmt: skip
    with pytest.raises(InvalidArgument, match="The network bridge cannot be used with services"):
        routes._check_swarm_scoped(manager, wanted)
    routes._check_swarm_scoped(manager, _request(BASE))  # no network: nothing to say
