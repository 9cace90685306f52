"""`ferry service ps -f KEY=VALUE`: Docker's task filters reach the API with the service's
own, and a key the API does not know is refused in Docker's words; `service create` flags."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ferry.api import params
from ferry.cli import service as service_cli
from ferry.cli.main import build_app

app = build_app()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ferry.api.list_filters import TASK_FILTERS

TASK = {
    "ID": "t" * 25, "Slot": 1, "NodeID": "n1", "DesiredState": "running", "CreatedAt": "",
    "Status": {"State": "pending", "Err": "no suitable node (x)", "Message": "", "Timestamp": ""},
    "Spec": {"ContainerSpec": {"Image": "tools"}},
}  # fmt: skip


class FakeApi:
    """The three reads of service ps; /tasks checks its filters with the API's own parser."""

    def __init__(self) -> None:
        self.task_filters: list[dict[str, list[str]]] = []
        self.created: list[Any] = []

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert (method, path) == ("POST", "/services/create")
        self.created.append(kwargs["body"])
        return {"ID": "s1"}

    def get(self, path: str, **query: Any) -> Any:
        if path == "/nodes":
            return [{"ID": "n1", "Description": {"Hostname": "h1"}}]
        if path.startswith("/services/"):
            return {"ID": "s1", "Spec": {"Name": "many", "EndpointSpec": {}}}
        wanted = params.filters({"filters": json.dumps(query["filters"])}, TASK_FILTERS)
        self.task_filters.append(wanted)
        return [dict(TASK)]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(service_cli, "client", lambda *a, **k: fake)
    return fake


def test_filters_reach_the_api_with_the_service(api: FakeApi) -> None:
    args = ["service", "ps", "-f", "desired-state=running", "--filter", "node=h1", "-f",
            "name=many.1", "-f", "id=t", "many"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert api.task_filters == [
        {"desired-state": ["running"], "node": ["h1"], "name": ["many.1"], "id": ["t"],
         "service": ["s1"]}
    ]  # fmt: skip
    assert '"no suitable node (x)"' in result.output  # the ERROR column


def test_an_unknown_filter_is_refused_as_docker(api: FakeApi) -> None:
    result = CliRunner().invoke(app, ["service", "ps", "-f", "x=1", "many"])
    assert result.exit_code != 0
    assert "invalid filter 'x'" in result.output


def test_no_trunc_is_one_flag(api: FakeApi) -> None:
    result = CliRunner().invoke(app, ["service", "ps", "--no-trunc", "many"])
    assert result.exit_code == 0, result.output
    assert "t" * 25 in result.output


@pytest.mark.parametrize("flag", ["--restart-max-attempts", "--placement-pref=spread=x"])
def test_service_create_refuses_a_flag_it_does_not_have_by_name(api: FakeApi, flag: str) -> None:
    # the arguments after the image are the command's; an option before it is not
    result = CliRunner().invoke(app, ["service", "create", "--name", "x", flag, "2", "tools"])
    assert result.exit_code == 2
    # click refuses it before the command runs, as for `ferry run` (CMD_SETTINGS)
    assert f"No such option: {flag.partition('=')[0]}" in result.output


def test_service_create_sends_the_update_and_rollback_flags(api: FakeApi) -> None:
    args = ["service", "create", "-d", "--name", "x", "--update-parallelism", "2",
            "--update-delay", "30s", "--update-order", "start-first", "--update-failure-action",
            "rollback", "--rollback-monitor", "10s", "tools", "true"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sent = api.created[0]
    wanted = {"Parallelism": 2, "Delay": 30 * 10**9, "Order": "start-first",
              "FailureAction": "rollback"}  # fmt: skip
    assert sent["UpdateConfig"] == wanted
    assert sent["RollbackConfig"] == {"Monitor": 10 * 10**9}


def test_service_create_sends_the_restart_delay(api: FakeApi) -> None:
    args = ["service", "create", "-d", "--name", "x", "--restart-delay", "30s", "tools", "true"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    policy = api.created[0]["TaskTemplate"]["RestartPolicy"]
    assert policy == {"Condition": "any", "Delay": 30 * 10**9}


class RollbackApi:
    """A service at version 7: rollback posts its spec back with rollback=previous."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, path: str, **_query: Any) -> Any:
        assert path == "/services/web"
        return {"ID": "s1", "Version": {"Index": 7}, "Spec": {"Name": "web"}}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path, kwargs["query"]))
        return {"Warnings": []}


def test_service_rollback_asks_for_the_previous_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RollbackApi()
    monkeypatch.setattr(service_cli, "client", lambda *a, **k: fake)
    result = CliRunner().invoke(app, ["service", "rollback", "-d", "web"])
    assert result.exit_code == 0, result.output
    assert result.output == "web\n"
    assert fake.calls == [("POST", "/services/s1/update", {"rollback": "previous", "version": 7})]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("front", {"Target": "front"}),
        ("name=front", {"Target": "front"}),
        ("name=front,alias=api,alias=web", {"Target": "front", "Aliases": ["api", "web"]}),
    ],
)
def test_network_takes_dockers_long_form_with_aliases(given: str, sent: dict[str, Any]) -> None:
    assert service_cli.network_attachment(given) == sent


@pytest.mark.parametrize("given", ["name=front,driver-opt=x=1", "alias=api", "name=,alias=a"])
def test_a_network_option_ferry_does_not_take_is_refused(given: str) -> None:
    with pytest.raises(typer.Exit) as exited:
        service_cli.network_attachment(given)
    assert exited.value.exit_code == 2


def test_waiting_ends_at_once_on_a_paused_or_rolled_back_update_in_docker_s_words() -> None:
    from ferry.cli.service import _halted, _lines

    def svc(state: str, message: str = "why") -> dict[str, Any]:
        return {"UpdateStatus": {"State": state, "Message": message}}

    assert _halted(svc("paused"), rollback=False) == "service update paused: why"
    assert _halted(svc("rollback_paused"), rollback=True) == "service rollback paused: why"
    assert _halted(svc("rollback_started"), rollback=False) == "service rolled back: why"
    assert _halted(svc("rollback_started"), rollback=True) == ""  # what a rollback waits for
    assert _halted(svc("updating"), rollback=False) == ""
    assert _halted({}, rollback=False) == ""
    # each slot is shown out of the replicas asked for, as the docker CLI's "2/3"
    shown = {"ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 3}}
    task = {"Slot": 2, "NodeID": "n1", "DesiredState": "running",
            "Status": {"State": "running", "Err": "", "Message": ""}}  # fmt: skip
    assert _lines(shown, [task]) == ["overall progress: 1 out of 3 tasks", "2/3: running"]


def test_service_update_rollback_and_args_as_the_docker_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = RollbackApi()
    monkeypatch.setattr(service_cli, "client", lambda *a, **k: fake)
    result = CliRunner().invoke(app, ["service", "update", "-d", "--rollback", "web"])
    assert result.exit_code == 0, result.output
    assert fake.calls == [("POST", "/services/s1/update", {"rollback": "previous", "version": 7})]

    class ArgsApi(RollbackApi):
        def get(self, path: str, **_query: Any) -> Any:
            spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Args": ["x"]}},
                    "EndpointSpec": {}, "Mode": {"Replicated": {"Replicas": 1}}}  # fmt: skip
            return {"ID": "s1", "Version": {"Index": 7}, "Spec": spec}

        def call(self, method: str, path: str, **kwargs: Any) -> Any:
            self.calls.append((method, path, kwargs["body"]))
            return {"Warnings": []}

    args_api = ArgsApi()
    monkeypatch.setattr(service_cli, "client", lambda *a, **k: args_api)
    result = CliRunner().invoke(app, ["service", "update", "-d", "--args", "sh -c 'exit 3'", "web"])
    assert result.exit_code == 0, result.output
    sent = args_api.calls[0][2]["TaskTemplate"]["ContainerSpec"]["Args"]
    assert sent == ["sh", "-c", "exit 3"]


def test_swarm_update_sends_the_history_limit_and_cert_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ferry.cli import swarm as swarm_cli

    posted: list[Any] = []

    class SwarmApi:
        def get(self, path: str, **_query: Any) -> Any:
            return {"Version": {"Index": 3}, "Spec": {"Orchestration": {}, "CAConfig": {},
                                                      "EncryptionConfig": {}}}  # fmt: skip

        def post(self, path: str, body: Any, **query: Any) -> Any:
            posted.append((path, body, query))
            return None

    monkeypatch.setattr(swarm_cli, "client", lambda *a, **k: SwarmApi())
    result = CliRunner().invoke(
        app, ["swarm", "update", "--task-history-limit", "2", "--cert-expiry", "48h"]
    )
    assert result.exit_code == 0, result.output
    [(path, body, query)] = posted
    assert (path, query) == ("/swarm/update", {"version": 3})
    assert body["Orchestration"] == {"TaskHistoryRetentionLimit": 2}
    assert body["CAConfig"] == {"NodeCertExpiry": 48 * 3600 * 10**9}


def test_service_update_network_add_and_rm(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    class NetApi:
        def get(self, path: str, **_query: Any) -> Any:
            if path.startswith("/networks/"):
                return {"Id": {"/networks/front": "f1"}.get(path, "x")}
            spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {}, "Networks": [
                {"Target": "f1", "Aliases": ["w"]}, {"Target": "b1"}]},
                "EndpointSpec": {}, "Mode": {"Replicated": {"Replicas": 1}}}  # fmt: skip
            return {"ID": "s1", "Version": {"Index": 7}, "Spec": spec}

        def call(self, method: str, path: str, **kwargs: Any) -> Any:
            sent.append(kwargs["body"])
            return {"Warnings": []}

    monkeypatch.setattr(service_cli, "client", lambda *a, **k: NetApi())
    args = ["service", "update", "-d", "--network-rm", "front", "--network-add",
            "name=back2,alias=api", "web"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sent[0]["TaskTemplate"]["Networks"] == [
        {"Target": "b1"}, {"Target": "back2", "Aliases": ["api"]}]  # fmt: skip
