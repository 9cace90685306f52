"""The conversion of a compose model into Docker API objects, as ``docker stack deploy`` does
it (docker/cli ``cli/compose/convert``): names, labels, networks, aliases, ports, deploy,
secrets and configs, volumes, and the keys ignored or refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.errors import InvalidArgument, NotFound
from ferry.model.stack import (
    LABEL_IMAGE,
    LABEL_NAMESPACE,
    FileObject,
    plan_stack,
    with_object_ids,
)

NS = 1_000_000_000


def compose(**services: dict[str, Any]) -> dict[str, Any]:
    return {"version": "3.8", "services": services}


def container(spec: dict[str, Any]) -> dict[str, Any]:
    return dict(spec["TaskTemplate"]["ContainerSpec"])


def test_objects_are_named_stack_underscore_name_unless_external_or_named() -> None:
    config = compose(web={"image": "tools", "networks": {"front": None, "ext": None, "n": None}})
    config["networks"] = {"front": {}, "ext": {"external": True, "name": "shared"},
                          "n": {"name": "given"}}  # fmt: skip
    plan = plan_stack("app", config)
    assert list(plan.services) == ["app_web"]
    assert plan.services["app_web"]["Name"] == "app_web"
    assert sorted(plan.networks) == ["app_front", "given"]
    assert plan.external_networks == ("shared",)
    targets = [n["Target"] for n in plan.services["app_web"]["TaskTemplate"]["Networks"]]
    assert targets == ["app_front", "given", "shared"]


def test_a_service_on_no_network_gets_the_stacks_default_overlay() -> None:
    plan = plan_stack("app", compose(web={"image": "tools"}))
    assert plan.networks == {
        "app_default": {
            "Name": "app_default", "Labels": {LABEL_NAMESPACE: "app"}, "Driver": "overlay",
            "Internal": False, "Attachable": False,
        }
    }  # fmt: skip
    assert plan.services["app_web"]["TaskTemplate"]["Networks"] == [
        {"Target": "app_default", "Aliases": ["web"]}
    ]


def test_only_the_networks_a_service_uses_are_created() -> None:
    config = compose(web={"image": "tools", "networks": {"front": None}})
    config["networks"] = {"front": {"driver": "overlay", "attachable": True}, "unused": {}}
    plan = plan_stack("app", config)
    assert list(plan.networks) == ["app_front"]
    assert plan.networks["app_front"]["Attachable"] is True


def test_each_service_has_its_short_name_as_an_alias_after_its_own() -> None:
    config = compose(web={"image": "tools", "networks": {"front": {"aliases": ["www"]}}})
    config["networks"] = {"front": {}}
    [attachment] = plan_stack("app", config).services["app_web"]["TaskTemplate"]["Networks"]
    assert attachment == {"Target": "app_front", "Aliases": ["www", "web"]}


def test_every_object_carries_the_namespace_label_and_services_the_image() -> None:
    config = compose(
        web={"image": "tools", "labels": {"c": "1"}, "deploy": {"labels": {"s": "2"}},
             "secrets": [{"source": "pw"}], "configs": [{"source": "conf"}]},
    )  # fmt: skip
    config["networks"] = {}
    config["secrets"] = {"pw": {"file": "/abs/pw.txt", "labels": {"k": "v"}}}
    config["configs"] = {"conf": {"file": "/abs/conf"}}
    plan = plan_stack("app", config)
    spec = plan.services["app_web"]
    assert spec["Labels"] == {"s": "2", LABEL_NAMESPACE: "app", LABEL_IMAGE: "tools"}
    assert container(spec)["Labels"] == {"c": "1", LABEL_NAMESPACE: "app"}
    assert plan.networks["app_default"]["Labels"] == {LABEL_NAMESPACE: "app"}
    assert plan.secrets == (
        FileObject("app_pw", {"k": "v", LABEL_NAMESPACE: "app"}, "/abs/pw.txt"),
    )
    assert plan.configs == (FileObject("app_conf", {LABEL_NAMESPACE: "app"}, "/abs/conf"),)


def test_ports_go_in_docker_long_form_sorted_by_published_port() -> None:
    ports = [
        {"mode": "ingress", "target": 80, "published": 8080, "protocol": "tcp"},
        {"mode": "host", "target": 5432, "published": 5432},
        {"target": 53, "published": 53, "protocol": "udp"},
    ]
    spec = plan_stack("app", compose(web={"image": "tools", "ports": ports})).services["app_web"]
    assert spec["EndpointSpec"] == {
        "Mode": "vip",
        "Ports": [
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 5432, "PublishedPort": 5432, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
        ],
    }


def test_deploy_fields_become_docker_service_fields() -> None:
    deploy = {
        "mode": "replicated", "replicas": 2, "endpoint_mode": "dnsrr",
        "placement": {"constraints": ["node.role==manager"],
                      "preferences": [{"spread": "node.labels.zone"}]},
        "resources": {"limits": {"cpus": "0.5", "memory": "104857600", "pids": 50},
                      "reservations": {"cpus": "0.25", "memory": "52428800"}},
        "update_config": {"parallelism": 2, "delay": "10s", "order": "start-first"},
        "rollback_config": {"failure_action": "pause", "monitor": "1m30s"},
        "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3},
    }  # fmt: skip
    spec = plan_stack("app", compose(web={"image": "tools", "deploy": deploy})).services["app_web"]
    template = spec["TaskTemplate"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert template["Placement"] == {
        "Constraints": ["node.role==manager"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
    }
    assert template["Resources"] == {
        "Limits": {"NanoCPUs": NS // 2, "MemoryBytes": 104857600, "Pids": 50},
        "Reservations": {"NanoCPUs": NS // 4, "MemoryBytes": 52428800},
    }
    assert spec["UpdateConfig"] == {
        "Parallelism": 2, "Delay": 10 * NS, "FailureAction": "", "Monitor": 0,
        "MaxFailureRatio": 0.0, "Order": "start-first",
    }  # fmt: skip
    assert spec["RollbackConfig"]["Parallelism"] == 1  # Docker's default when not given
    assert spec["RollbackConfig"]["Monitor"] == 90 * NS
    assert template["RestartPolicy"] == {"Condition": "on-failure", "Delay": 5 * NS,
                                         "MaxAttempts": 3}  # fmt: skip


def test_a_global_service_takes_no_replicas_and_an_unset_count_is_one() -> None:
    glob = plan_stack("a", compose(w={"image": "t", "deploy": {"mode": "global"}}))
    assert glob.services["a_w"]["Mode"] == {"Global": {}}
    assert plan_stack("a", compose(w={"image": "t"})).services["a_w"]["Mode"] == {
        "Replicated": {"Replicas": 1}
    }
    with pytest.raises(InvalidArgument, match="replicas can only be used with replicated"):
        plan_stack("a", compose(w={"image": "t", "deploy": {"mode": "global", "replicas": 2}}))


def test_container_fields_follow_dockers_convert() -> None:
    svc = {
        "image": "tools", "command": ["python3", "-m", "http.server"],
        "entrypoint": ["/bin/sh", "-c"], "environment": {"B": "2", "A": "1", "BARE": None},
        "user": "1000", "working_dir": "/w", "hostname": "h", "stop_grace_period": "1m30s",
        "init": True, "read_only": True, "cap_add": ["NET_ADMIN"], "cap_drop": ["ALL"],
        "healthcheck": {"test": ["CMD-SHELL", "curl -f http://x"], "interval": "30s",
                        "timeout": "5s", "retries": 3, "start_period": "1s"},
    }  # fmt: skip
    got = container(plan_stack("app", compose(web=svc)).services["app_web"])
    got.pop("Labels")
    assert got == {
        "Image": "tools", "Command": ["/bin/sh", "-c"], "Args": ["python3", "-m", "http.server"],
        "Env": ["A=1", "B=2", "BARE"], "User": "1000", "Dir": "/w", "Hostname": "h",
        "StopGracePeriod": 90 * NS, "Init": True, "ReadOnly": True,
        "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["ALL"],
        "HealthCheck": {"Test": ["CMD-SHELL", "curl -f http://x"], "Interval": 30 * NS,
                        "Timeout": 5 * NS, "StartPeriod": NS, "Retries": 3},
    }  # fmt: skip


def test_a_disabled_healthcheck_is_none_and_cannot_have_a_test() -> None:
    off = plan_stack("a", compose(w={"image": "t", "healthcheck": {"disable": True}}))
    assert container(off.services["a_w"])["HealthCheck"] == {"Test": ["NONE"]}
    with pytest.raises(InvalidArgument, match="test and disable"):
        check = {"disable": True, "test": ["CMD", "x"]}
        plan_stack("a", compose(w={"image": "t", "healthcheck": check}))


def test_restart_is_used_when_deploy_has_no_restart_policy_as_docker_does() -> None:
    def policy(restart: str) -> Any:
        plan = plan_stack("a", compose(w={"image": "t", "restart": restart}))
        return plan.services["a_w"]["TaskTemplate"].get("RestartPolicy")

    assert policy("always") == {"Condition": "any"}
    assert policy("on-failure:3") == {"Condition": "on-failure", "MaxAttempts": 3}
    assert policy("no") is None


def test_secrets_from_a_file_are_created_and_external_ones_only_referenced() -> None:
    config = compose(
        db={"image": "t", "secrets": [{"source": "pw"},
                                      {"source": "ext", "target": "/x", "uid": "1", "mode": 256}]},
    )  # fmt: skip
    config["secrets"] = {"pw": {"file": "/abs/pw"}, "ext": {"external": True, "name": "ext"}}
    plan = plan_stack("app", config)
    assert [s.name for s in plan.secrets] == ["app_pw"]  # the external one is not created
    assert container(plan.services["app_db"])["Secrets"] == [  # sorted by name, as Docker's
        {"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "app_pw"},
        {"File": {"Name": "/x", "UID": "1", "GID": "0", "Mode": 256}, "SecretName": "ext"},
    ]


def test_configs_are_referenced_as_secrets_are() -> None:
    config = compose(web={"image": "t", "configs": [{"source": "conf", "target": "/etc/c"}]})
    config["configs"] = {"conf": {"file": "/abs/c", "name": "fixed"}}
    plan = plan_stack("app", config)
    assert plan.configs == (FileObject("fixed", {LABEL_NAMESPACE: "app"}, "/abs/c"),)
    assert container(plan.services["app_web"])["Configs"] == [
        {"File": {"Name": "/etc/c", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigName": "fixed"}
    ]


def test_object_ids_are_filled_in_by_name_and_a_missing_one_is_dockers_not_found() -> None:
    config = compose(db={"image": "t", "secrets": [{"source": "pw"}]})
    config["secrets"] = {"pw": {"file": "/abs/pw"}}
    spec = plan_stack("app", config).services["app_db"]
    bound = with_object_ids(spec, {"app_pw": "s3cr3tid"}, {})
    assert container(bound)["Secrets"][0]["SecretID"] == "s3cr3tid"
    assert "SecretID" not in container(spec)["Secrets"][0]  # the plan is left as it was
    with pytest.raises(NotFound, match=r"^secret not found: app_pw$"):
        with_object_ids(spec, {}, {})


def test_undeclared_networks_volumes_and_secrets_are_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="references network 'nope', which is not declared"):
        plan_stack("a", compose(w={"image": "t", "networks": {"nope": None}}))
    with pytest.raises(InvalidArgument, match="undefined volume 'data'"):
        mount = {"type": "volume", "source": "data", "target": "/d"}
        plan_stack("a", compose(w={"image": "t", "volumes": [mount]}))
    with pytest.raises(InvalidArgument, match="undefined secret 'pw'"):
        plan_stack("a", compose(w={"image": "t", "secrets": [{"source": "pw"}]}))


def test_named_volumes_are_scoped_and_binds_anonymous_and_tmpfs_kept() -> None:
    config = compose(w={"image": "t", "volumes": [
        {"type": "volume", "source": "data", "target": "/data"},
        {"type": "volume", "source": "ext", "target": "/ext", "read_only": True},
        {"type": "bind", "source": "/srv", "target": "/srv"},
        {"type": "volume", "target": "/anon"},
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024}},
    ]})  # fmt: skip
    config["volumes"] = {"data": {}, "ext": {"external": True, "name": "shared"}}
    assert container(plan_stack("a", config).services["a_w"])["Mounts"] == [
        {"Type": "volume", "Target": "/data", "Source": "a_data"},
        {"Type": "volume", "Target": "/ext", "Source": "shared", "ReadOnly": True},
        {"Type": "bind", "Target": "/srv", "Source": "/srv"},
        {"Type": "volume", "Target": "/anon"},
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1024}},
    ]


def test_keys_docker_ignores_get_dockers_warning_lines() -> None:
    config = compose(web={"image": "t", "build": {"context": "."}, "links": ["db"],
                          "depends_on": ["db"], "container_name": "x"},
                     db={"image": "t", "restart": "always", "build": {"context": "."}})  # fmt: skip
    plan = plan_stack("app", config)
    assert plan.warnings == (
        "Ignoring unsupported options: build, depends_on, links, restart\n",
        "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not "
        "supported.\n",
    )
    assert "build" not in str(plan.services)


def test_keys_docker_honours_and_ferry_does_not_convert_are_refused_in_one_line() -> None:
    deploy = {"resources": {"reservations": {"generic_resources": []}}}
    config = compose(web={"image": "t", "dns": ["1.1.1.1"], "tty": True, "deploy": deploy})
    config["volumes"] = {"data": {"driver": "local"}}
    with pytest.raises(InvalidArgument) as caught:
        plan_stack("app", config)
    message = str(caught.value)
    assert "\n" not in message
    for key in ("volumes.data.driver", "services.web.dns", "services.web.tty",
                "services.web.deploy.resources.reservations.generic_resources"):  # fmt: skip
        assert key in message


def test_extension_fields_are_the_users_own_and_neither_warned_of_nor_refused() -> None:
    config = compose(web={"image": "t", "x-owner": "team a"})
    config["x-common"] = {"image": "t"}
    plan = plan_stack("app", config)
    assert plan.warnings == ()
    assert "x-owner" not in str(plan.services)


def test_a_stack_name_must_be_given_without_spaces() -> None:
    with pytest.raises(InvalidArgument, match="invalid stack name"):
        plan_stack("", compose(w={"image": "t"}))
    with pytest.raises(InvalidArgument, match="invalid stack name"):
        plan_stack("a b", compose(w={"image": "t"}))


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_the_docker_clis_loader_output_converts_with_interpolation_passed_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw.txt").write_text("hunter2\n")
    (tmp_path / "compose.yml").write_text(
        'version: "3.8"\nservices:\n  web:\n    image: ${IMAGE}\n    ports: ["8080:80"]\n'
        "    environment:\n      GREETING: hello ${WHO}\n"
        "    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\n"
    )
    monkeypatch.setenv("IMAGE", "tools:1")
    monkeypatch.setenv("WHO", "world")
    out = subprocess.run(["docker", "stack", "config", "-c", str(tmp_path / "compose.yml")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    plan = plan_stack("app", yaml.safe_load(out))
    spec = plan.services["app_web"]
    assert container(spec)["Image"] == "tools:1"
    assert container(spec)["Env"] == ["GREETING=hello world"]
    assert spec["Labels"][LABEL_IMAGE] == "tools:1"
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    ]
    assert plan.secrets == (
        FileObject("app_pw", {LABEL_NAMESPACE: "app"}, str(tmp_path / "pw.txt")),
    )
