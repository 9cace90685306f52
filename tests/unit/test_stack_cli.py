"""``ferry stack`` against an in-memory API: what deploy creates and updates, in Docker's order
and words; what prune, rm and ls do with the stack label."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ferry.cli.stack as stack_cli
from ferry.cli import stack_deploy
from ferry.cli.main import build_app
from ferry.errors import InvalidArgument, NotFound
from ferry.model.stack import LABEL_IMAGE, LABEL_NAMESPACE

APP = build_app("stack")
NS_LABEL = f"{LABEL_NAMESPACE}=app"


class FakeApi:
    """Services, networks, secrets and configs by id; list filters ``label`` and ``name``."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("services", "networks", "secrets", "configs", "tasks")
        }
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._next = 0

    def add(self, kind: str, name: str, labels: dict[str, str], **extra: Any) -> str:
        self._next += 1
        obj_id = f"{kind[:3]}{self._next}"
        spec = {"Name": name, "Labels": labels, **extra}
        body = {"ID": obj_id, "Version": {"Index": 7}, "Spec": spec}
        if kind == "networks":
            body = {"Id": obj_id, "Name": name, "Labels": labels, "Scope": "swarm"}
        self.objects[kind][obj_id] = body
        return obj_id

    def _find(self, kind: str, ref: str) -> dict[str, Any]:
        for obj_id, obj in self.objects[kind].items():
            if ref in (obj_id, obj.get("Spec", obj).get("Name")):
                return obj
        raise NotFound(f"no such {kind[:-1]}: {ref}")

    def get(self, path: str, **query: Any) -> Any:
        _, kind, *ref = path.split("/")
        if ref:
            return self._find(kind, ref[0])
        filters = query.get("filters") or {}
        out = []
        for obj in self.objects[kind].values():
            labels = obj.get("Spec", obj).get("Labels") or {}
            pairs = {f"{k}={v}" for k, v in labels.items()} | set(labels)
            name = obj.get("Spec", obj).get("Name")
            if all(f in pairs for f in filters.get("label", [])) and (
                "name" not in filters or name in filters["name"]
            ):
                out.append(obj)
        return out

    def call(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append((method, path, kw))
        kind = path.split("/")[1]
        body = kw.get("body")
        if path.endswith("/create"):
            extra = {k: v for k, v in body.items() if k not in ("Name", "Labels")}
            return {"ID": self.add(kind, body["Name"], body.get("Labels") or {}, **extra)}
        return None

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.call("POST", path, body=body, query=query)

    def delete(self, path: str, **query: Any) -> Any:
        self.calls.append(("DELETE", path, {}))
        _, kind, ref = path.split("/")
        self.objects[kind].pop(ref)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(stack_cli, "client", lambda: fake)
    return fake


def with_model(monkeypatch: pytest.MonkeyPatch, model: dict[str, Any]) -> None:
    monkeypatch.setattr(stack_cli, "load_compose", lambda files: model)


def run(*args: str) -> Any:
    return CliRunner().invoke(APP, ["stack", *args])


def model(tmp_path: Path, **web: Any) -> dict[str, Any]:
    (tmp_path / "pw").write_text("s3cret")
    return {
        "version": "3.8",
        "services": {
            "web": {"image": "tools", "secrets": [{"source": "pw"}], "build": {}, **web},
        },
        "secrets": {"pw": {"file": str(tmp_path / "pw")}},
    }


def test_deploy_creates_networks_secrets_then_services_in_dockers_words(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_model(monkeypatch, model(tmp_path))
    result = run("deploy", "-c", "compose.yml", "app")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Creating network app_default",
        "Creating secret app_pw",
        "Creating service app_web",
    ]
    assert result.stderr == "Ignoring unsupported options: build\n\n"
    assert [(m, p) for m, p, _ in api.calls] == [
        ("POST", "/networks/create"), ("POST", "/secrets/create"), ("POST", "/services/create"),
    ]  # fmt: skip
    secret = api.calls[1][2]["body"]
    assert base64.b64decode(secret["Data"]) == b"s3cret"
    assert secret["Labels"] == {LABEL_NAMESPACE: "app"}
    spec = api.calls[2][2]["body"]
    [ref] = spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert ref["SecretName"] == "app_pw"
    assert ref["SecretID"] == api._find("secrets", "app_pw")["ID"]
    assert api.calls[2][2]["query"] == {"queryRegistry": True}


def test_redeploy_updates_in_place_keeping_the_pinned_image_and_force_count(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_model(monkeypatch, model(tmp_path, environment={"V": "2"}))
    api.add("networks", "app_default", {LABEL_NAMESPACE: "app"})
    api.add("secrets", "app_pw", {LABEL_NAMESPACE: "app"})
    template = {"ContainerSpec": {"Image": "tools:latest@sha256:abc"}, "ForceUpdate": 3}
    svc_id = api.add("services", "app_web", {LABEL_NAMESPACE: "app", LABEL_IMAGE: "tools"},
                     TaskTemplate=template)  # fmt: skip
    result = run("deploy", "-c", "compose.yml", "--resolve-image", "changed", "app")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"Updating service app_web (id: {svc_id})"]
    [secret_update, update] = api.calls
    assert secret_update[1].endswith("/update") and secret_update[1].startswith("/secrets/")
    assert update[1] == f"/services/{svc_id}/update"
    assert update[2]["query"] == {"queryRegistry": False, "version": 7}
    container = update[2]["body"]["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == "tools:latest@sha256:abc"
    assert container["Env"] == ["V=2"]
    assert update[2]["body"]["TaskTemplate"]["ForceUpdate"] == 3


def test_prune_removes_the_stacks_services_the_file_no_longer_names(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_model(monkeypatch, model(tmp_path))
    old = api.add("services", "app_old", {LABEL_NAMESPACE: "app"})
    other = api.add("services", "other_old", {LABEL_NAMESPACE: "other"})
    result = run("deploy", "--prune", "-c", "compose.yml", "app")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Removing service app_old"
    assert old not in api.objects["services"] and other in api.objects["services"]


def test_a_missing_external_network_is_refused_in_dockers_words(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = {"image": "t", "networks": {"shared": None}}
    networks = {"shared": {"external": True, "name": "shared"}}
    with_model(monkeypatch, {"services": {"w": service}, "networks": networks})
    result = run("deploy", "-c", "compose.yml", "app")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: network "shared" is declared as external, but could not be found. You need to '
        "create a swarm-scoped network before the stack is deployed\n"
    )
    assert api.calls == []


def test_a_refused_service_is_named_in_dockers_words_with_the_daemons_reason(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_model(monkeypatch, {"services": {"web": {"image": "t", "hostname": "h"}}})
    refusal = "Ferry does not support TaskTemplate.ContainerSpec.Hostname"

    def refuse(method: str, path: str, **kw: Any) -> Any:
        if path == "/services/create":
            raise InvalidArgument(refusal)
        return FakeApi.call(api, method, path, **kw)

    monkeypatch.setattr(api, "call", refuse)
    result = run("deploy", "-c", "compose.yml", "app")
    assert result.exit_code == 2
    assert result.stderr == f"Error: failed to create service app_web: {refusal}\n"


def test_rm_removes_services_secrets_configs_then_networks(api: FakeApi) -> None:
    label = {LABEL_NAMESPACE: "app"}
    api.add("networks", "app_default", label)
    api.add("configs", "app_conf", label)
    api.add("secrets", "app_pw", label)
    api.add("services", "app_web", label)
    api.add("services", "app_db", label)
    kept = api.add("services", "other_web", {LABEL_NAMESPACE: "other"})
    result = run("rm", "app", "gone")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Removing service app_db", "Removing service app_web", "Removing secret app_pw",
        "Removing config app_conf", "Removing network app_default",
    ]  # fmt: skip
    assert result.stderr == "Nothing found in stack: gone\n"
    assert list(api.objects["services"]) == [kept]


def test_ls_counts_the_services_of_each_stack(api: FakeApi) -> None:
    for name, stack in (("a_x", "a"), ("a_y", "a"), ("b_x", "b")):
        api.add("services", name, {LABEL_NAMESPACE: stack})
    api.add("services", "loose", {})
    result = run("ls")
    assert result.stdout.splitlines() == ["NAME   SERVICES", "a      2", "b      1"]


def test_without_the_docker_cli_deploy_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack_deploy.shutil, "which", lambda _name: None)
    result = run("deploy", "-c", "compose.yml", "app")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "install the docker CLI" in result.stderr


def test_detach_takes_dockers_boolean_spelling() -> None:
    assert run("rm", "--detach=maybe", "app").exit_code == 2
    assert stack_cli.go_bool("false", "--detach") is False
    assert stack_cli.go_bool("1", "--detach") is True


def test_services_list_images_as_the_docker_cli_does() -> None:
    digest = "sha256:" + "a" * 64
    assert stack_cli.display_image(f"tools:latest@{digest}") == "tools:latest"
    assert stack_cli.display_image(f"docker.io/library/tools:1@{digest}") == "tools:1"
    assert stack_cli.display_image(f"tools@{digest}") == f"tools@{digest}"
    assert stack_cli.display_image("tools") == "tools"


@pytest.mark.skipif(stack_deploy.shutil.which("docker") is None, reason="no docker CLI")
def test_config_prints_what_docker_stack_config_prints(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text('version: "3.8"\nservices:\n  web:\n    image: tools\n    ports: ["80:80"]\n')
    ours = run("config", "-c", str(path))
    theirs = subprocess.run(["docker", "stack", "config", "-c", str(path)],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert ours.exit_code == 0 and ours.stdout == theirs
