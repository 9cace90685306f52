"""The image config's merge with run options: each of Docker's rules (moby daemon/commit.go
merge, daemon/create.go mergeAndVerifyConfig) as a sentence."""

from __future__ import annotations

import random

import pytest

from ferry.errors import InvalidArgument
from ferry.model.imageconfig import (
    EPHEMERAL_PORTS,
    HealthConfig,
    ImageConfig,
    RunConfig,
    merge,
    parse_image_config,
    publish_all,
)

NGINX = parse_image_config(
    {
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22"],
        "WorkingDir": "/srv",
        "User": "www-data",
        "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT",
        "Labels": {"maintainer": "nginx", "built-from": "debian"},
        "Volumes": {"/var/cache/nginx": {}},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5 * 10**9, "Retries": 7},
        "OnBuild": None,
        "ArgsEscaped": True,
    }
)


def test_an_image_config_is_parsed_into_its_fields() -> None:
    assert NGINX.entrypoint == ("/docker-entrypoint.sh",)
    assert NGINX.cmd == ("nginx", "-g", "daemon off;")
    assert NGINX.env == ("PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22")
    assert (NGINX.working_dir, NGINX.user, NGINX.stop_signal) == ("/srv", "www-data", "SIGQUIT")
    assert NGINX.exposed_ports == ("80/tcp",)
    assert NGINX.volumes == ("/var/cache/nginx",)
    assert NGINX.labels == {"maintainer": "nginx", "built-from": "debian"}
    assert NGINX.healthcheck == HealthConfig(("CMD", "true"), 5.0, 0.0, 7, 0.0)


def test_an_empty_config_is_an_image_with_nothing_to_give() -> None:
    assert parse_image_config({}) == ImageConfig()
    assert parse_image_config({"Cmd": None, "Env": None, "Labels": None}) == ImageConfig()


def test_an_exposed_port_without_protocol_is_tcp() -> None:
    assert parse_image_config({"ExposedPorts": {"53/udp": {}, "8080": {}}}).exposed_ports == (
        "53/udp",
        "8080/tcp",
    )


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"Cmd": [1, 2]}, "Cmd"),
        ({"Env": ["NOEQUALS"]}, "Env"),
        ({"Labels": {"a": 1}}, "Labels"),
        ({"ExposedPorts": {"http": {}}}, "ExposedPorts"),
        ({"ExposedPorts": {"70000/tcp": {}}}, "ExposedPorts"),
        ({"WorkingDir": 5}, "WorkingDir"),
        ({"WorkingDir": "srv"}, "WorkingDir"),
        ({"Healthcheck": {"Test": ["CMD", "x"], "Interval": -1}}, "Healthcheck.Interval"),
        ({"Volumes": ["/data"]}, "Volumes"),
    ],
)
def test_a_malformed_image_config_is_refused_naming_the_field(
    raw: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidArgument, match=named):
        parse_image_config(raw)


def test_a_run_without_command_takes_the_images_entrypoint_and_cmd() -> None:
    """docker run nginx: Path /docker-entrypoint.sh, Args nginx -g 'daemon off;'."""
    out = merge(RunConfig(), NGINX)
    assert out.entrypoint == ("/docker-entrypoint.sh",)
    assert out.cmd == ("nginx", "-g", "daemon off;")
    assert out.argv == ("/docker-entrypoint.sh", "nginx", "-g", "daemon off;")


def test_a_command_given_replaces_cmd_and_keeps_the_entrypoint() -> None:
    """docker run nginx sh: the image's Entrypoint runs with the new command as its args."""
    out = merge(RunConfig(cmd=("sh",)), NGINX)
    assert (out.entrypoint, out.cmd) == (("/docker-entrypoint.sh",), ("sh",))


def test_an_entrypoint_given_drops_the_images_cmd() -> None:
    """docker run --entrypoint top nginx: the image's Cmd is not top's arguments."""
    out = merge(RunConfig(entrypoint=("top",)), NGINX)
    assert (out.entrypoint, out.cmd) == (("top",), ())
    out = merge(RunConfig(entrypoint=("top",), cmd=("-b",)), NGINX)
    assert out.argv == ("top", "-b")


def test_an_empty_entrypoint_clears_the_images_and_needs_a_command() -> None:
    """docker run --entrypoint "" (the CLI sends [""]): no entrypoint; the image's Cmd is not
    taken either, so a command must be given."""
    out = merge(RunConfig(entrypoint=("",), cmd=("ls",)), NGINX)
    assert (out.entrypoint, out.cmd) == ((), ("ls",))
    with pytest.raises(InvalidArgument, match=r"^No command specified"):
        merge(RunConfig(entrypoint=("",)), NGINX)


def test_an_empty_entrypoint_list_keeps_the_images_cmd() -> None:
    """Entrypoint [] in the API body (not null): the image's Entrypoint is not taken, its Cmd
    is (moby merge: len(Entrypoint) == 0 but Entrypoint != nil)."""
    out = merge(RunConfig(entrypoint=()), NGINX)
    assert (out.entrypoint, out.cmd) == ((), ("nginx", "-g", "daemon off;"))


def test_nothing_to_run_is_dockers_no_command_specified() -> None:
    with pytest.raises(InvalidArgument, match=r"^No command specified \(the image alpine"):
        merge(RunConfig(), ImageConfig(), "alpine:latest")


def test_env_is_merged_by_key_and_the_runs_value_wins() -> None:
    out = merge(RunConfig(env=("NGINX_VERSION=custom", "A=1")), NGINX)
    assert out.env == ("NGINX_VERSION=custom", "A=1", "PATH=/usr/sbin:/usr/bin")


def test_working_dir_user_and_stop_signal_default_to_the_images() -> None:
    out = merge(RunConfig(), NGINX)
    assert (out.working_dir, out.user, out.stop_signal) == ("/srv", "www-data", "SIGQUIT")
    out = merge(RunConfig(working_dir="/tmp", user="0", stop_signal="SIGTERM"), NGINX)
    assert (out.working_dir, out.user, out.stop_signal) == ("/tmp", "0", "SIGTERM")


def test_labels_are_merged_and_the_runs_win() -> None:
    out = merge(RunConfig(labels={"maintainer": "me", "x": "1"}), NGINX)
    assert out.labels == {"maintainer": "me", "built-from": "debian", "x": "1"}


def test_exposed_ports_and_volumes_are_the_union() -> None:
    out = merge(RunConfig(exposed_ports=("443/tcp", "80/tcp"), volumes=("/data",)), NGINX)
    assert out.exposed_ports == ("443/tcp", "80/tcp")
    assert out.volumes == ("/data", "/var/cache/nginx")


def test_the_images_healthcheck_applies_with_dockers_defaults() -> None:
    check = merge(RunConfig(), NGINX).healthcheck
    assert check is not None
    assert (check.test, check.interval_s, check.timeout_s, check.retries) == (
        ("CMD", "true"), 5.0, 30.0, 7,
    )  # fmt: skip


def test_given_health_fields_override_the_images_one_by_one() -> None:
    """docker run --health-timeout 2s nginx: the image's test and interval stay."""
    check = merge(RunConfig(healthcheck=HealthConfig(timeout_s=2.0)), NGINX).healthcheck
    assert check is not None
    assert (check.test, check.interval_s, check.timeout_s, check.retries) == (
        ("CMD", "true"), 5.0, 2.0, 7,
    )  # fmt: skip
    given = HealthConfig(("CMD-SHELL", "curl -f localhost"), interval_s=1.0)
    check = merge(RunConfig(healthcheck=given), NGINX).healthcheck
    assert check is not None
    assert (check.test, check.interval_s, check.retries) == (given.test, 1.0, 7)


def test_no_healthcheck_disables_the_images() -> None:
    check = merge(RunConfig(healthcheck=HealthConfig(("NONE",))), NGINX).healthcheck
    assert check is not None and not check.enabled


def test_health_fields_without_a_test_anywhere_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="--health-cmd"):
        merge(RunConfig(cmd=("sh",), healthcheck=HealthConfig(retries=2)), ImageConfig())


def test_an_image_without_healthcheck_leaves_none() -> None:
    assert merge(RunConfig(cmd=("sh",)), ImageConfig()).healthcheck is None


def test_publish_all_gives_each_unbound_exposed_port_a_free_ephemeral_port() -> None:
    taken = {"tcp/40000"}
    ports = publish_all(("80/tcp", "53/udp", "443/tcp"), {"443/tcp"}, taken, random.Random(1), 4789)
    assert [(p.target, p.protocol) for p in ports] == [(80, "tcp"), (53, "udp")]
    low, high = EPHEMERAL_PORTS
    assert all(low <= p.published <= high for p in ports)
    assert {f"{p.protocol}/{p.published}" for p in ports} <= taken  # recorded as taken


def test_publish_all_skips_taken_ports_and_says_when_none_is_left() -> None:
    low, high = EPHEMERAL_PORTS
    taken = {f"tcp/{p}" for p in range(low, high + 1) if p != 50000}
    assert publish_all(("80/tcp",), set(), taken, random.Random(3), 4789)[0].published == 50000
    with pytest.raises(InvalidArgument, match="no free tcp host port"):
        publish_all(("81/tcp",), set(), taken, random.Random(3), 4789)


def test_publish_all_refuses_sctp() -> None:
    with pytest.raises(InvalidArgument, match="sctp"):
        publish_all(("9/sctp",), set(), set(), random.Random(0), 4789)


def test_an_ephemeral_port_is_never_one_of_ferrys_own() -> None:
    """51820/udp (WireGuard) lies in Docker's ephemeral range: it is never picked."""
    low, high = EPHEMERAL_PORTS
    taken = {f"udp/{p}" for p in range(low, high + 1) if p not in (51820, 51821)}
    assert publish_all(("53/udp",), set(), taken, random.Random(0), 4789)[0].published == 51821
    with pytest.raises(InvalidArgument, match="no free udp host port"):
        publish_all(("54/udp",), set(), taken, random.Random(0), 4789)


def test_an_ephemeral_port_is_never_the_swarms_vxlan_pair() -> None:
    """A data-path port may lie in the ephemeral range too (40000: 40000 and 40001)."""
    low, high = EPHEMERAL_PORTS
    taken = {f"udp/{p}" for p in range(low, high + 1) if p not in (40000, 40001, 40002)}
    assert publish_all(("53/udp",), set(), taken, random.Random(0), 40000)[0].published == 40002
    with pytest.raises(InvalidArgument, match="no free udp host port"):
        publish_all(("54/udp",), set(), taken, random.Random(0), 40000)
