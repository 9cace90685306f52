"""ferryd's daemon.json: each of Docker's keys Ferry honours, the refusals (an unknown key, a
bad value, a setting given both as a flag and in the file), and where the file is read from."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ferry.api.client import DEFAULT_HOST
from ferry.daemon import logs
from ferry.daemon.config import DEFAULT_CONFIG_FILE, FILE_KEYS, DaemonConfig, read_config_file
from ferry.daemon.main import parse
from ferry.errors import InvalidArgument
from ferry.network.local import LOCAL_POOLS


def read(tmp_path: Path, doc: Any) -> dict[str, Any]:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(doc))
    return read_config_file(path)


def refused(tmp_path: Path, doc: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        read(tmp_path, doc)


# each key ------------------------------------------------------------------------------------
def test_data_root_is_the_state_directory(tmp_path: Path) -> None:
    config = DaemonConfig(**read(tmp_path, {"data-root": "/srv/ferry"}))
    assert config.state_dir == Path("/srv/ferry")
    assert config.etcd_dir == Path("/srv/ferry/etcd")
    assert config.containers_dir == Path("/srv/ferry/containers")


@pytest.mark.parametrize("level", ["debug", "info", "warn", "warning", "error", "fatal"])
def test_log_level_takes_dockerd_s_levels(tmp_path: Path, level: str) -> None:
    assert read(tmp_path, {"log-level": level}) == {"log_level": level}
    root = logging.getLogger()
    handlers, before = root.handlers[:], root.level
    try:
        logs.setup(level)  # what ferryd does with it
        assert logging.getLevelName(root.level) == {"warn": "WARNING", "fatal": "CRITICAL"}.get(
            level, level.upper()
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(before)


def test_mtu_is_the_default_bridge_s(tmp_path: Path) -> None:
    assert DaemonConfig().mtu_bytes == 1500  # dockerd's default
    assert read(tmp_path, {"mtu": 1400}) == {"mtu_bytes": 1400}


def test_default_address_pools_in_docker_s_shape(tmp_path: Path) -> None:
    pools = [{"base": "10.10.0.0/16", "size": 24}, {"base": "10.20.0.0/16", "size": 20}]
    got = read(tmp_path, {"default-address-pools": pools})
    assert got == {"address_pools": (("10.10.0.0/16", 24), ("10.20.0.0/16", 20))}
    # an empty list is Docker's defaults
    assert read(tmp_path, {"default-address-pools": []}) == {"address_pools": LOCAL_POOLS}


def test_registry_keys(tmp_path: Path) -> None:
    got = read(tmp_path, {"registry-mirrors": ["http://10.30.0.250:5000"],
                          "insecure-registries": ["10.30.0.250:5000", "10.40.0.0/16"]})  # fmt: skip
    assert got == {
        "registry_mirrors": ("http://10.30.0.250:5000",),
        "insecure_registries": ("10.30.0.250:5000", "10.40.0.0/16"),
    }


def test_hosts_are_the_api_s_unix_sockets(tmp_path: Path) -> None:
    hosts = ["unix:///run/ferry/ferryd.sock", "unix:///var/run/docker.sock"]
    config = DaemonConfig(**read(tmp_path, {"hosts": hosts}))
    assert config.socket_paths == (Path("/run/ferry/ferryd.sock"), Path("/var/run/docker.sock"))
    assert config.socket_path == Path("/run/ferry/ferryd.sock")
    assert DaemonConfig(run_dir=Path("/x")).socket_paths == (Path("/x/ferryd.sock"),)


def test_the_cli_s_default_endpoint_is_ferryd_s_default_socket() -> None:
    assert f"unix://{DaemonConfig().socket_path}" == DEFAULT_HOST


def test_every_key_has_a_check() -> None:
    from ferry.daemon.config import _CHECKS

    assert set(_CHECKS) == set(FILE_KEYS)
    assert set(FILE_KEYS.values()) <= set(DaemonConfig.__dataclass_fields__)


# refusals ------------------------------------------------------------------------------------
def test_unknown_keys_are_refused_all_at_once_in_dockerd_s_words(tmp_path: Path) -> None:
    refused(
        tmp_path,
        {"registry-mirrors": [], "debug": True, "bip": "10.1.0.1/24"},
        "the following directives don't match any configuration option: bip, debug",
    )


def test_data_path_port_is_this_hosts_default_for_swarm_init(tmp_path: Path) -> None:
    assert read(tmp_path, {"data-path-port": 7789}) == {"data_path_port": 7789}
    assert DaemonConfig(data_path_port=7789).default_data_path_port == 7789
    # 0 is Docker's "not set": the default for init, and no objection to any swarm's port
    assert read(tmp_path, {"data-path-port": 0}) == {"data_path_port": 0}
    assert DaemonConfig().default_data_path_port == 4789


POOL = "default-address-pools"
BAD_VALUES = [
    ({"data-root": "var/lib/ferry"}, "invalid data-root .*not an absolute path"),
    ({"data-root": 3}, "invalid data-root"),
    ({"log-level": "verbose"}, "invalid log-level .*use debug, info, warn, warning, error, fatal"),
    ({"mtu": "1400"}, "invalid mtu .*use a number from 68 to 65535"),
    ({"mtu": 67}, "invalid mtu"),
    ({"mtu": 65536}, "invalid mtu"),
    ({"mtu": True}, "invalid mtu"),
    ({POOL: {"base": "10.10.0.0/16"}}, "invalid default-address-pools"),
    ({POOL: [{"base": "10.10.0.0/16"}]}, "invalid default-address-pools"),
    ({POOL: [{"base": "10.10.0.0/16", "size": 24, "x": 1}]}, "invalid default-address-pools"),
    ({POOL: [{"base": "10.10.0.0/16", "size": 8}]}, "/8 does not fit the pool 10.10.0.0/16"),
    ({POOL: [{"base": "127.0.0.0/8", "size": 24}]}, "invalid default-address-pools .*loopback"),
    ({POOL: [{"base": "10.10.0.1/16", "size": 24}]}, "invalid default-address-pools .*host bits"),
    ({"registry-mirrors": "http://m"}, "invalid registry-mirrors .*list of strings"),
    ({"registry-mirrors": ["ftp://m"]}, "invalid registry-mirrors .*unsupported scheme"),
    ({"insecure-registries": ["r:5000 x"]}, "invalid insecure-registries .*HOST.:PORT."),
    ({"hosts": ["tcp://0.0.0.0:2375"]}, "invalid hosts .*tcp://0.0.0.0:2375 is refused: .*TLS"),
    ({"hosts": ["fd://"]}, "invalid hosts .*'fd://' is not unix:///PATH"),
    ({"hosts": ["unix://run/x.sock"]}, "invalid hosts .*not unix:///PATH"),
    ({"hosts": ["unix:///a.sock", "unix:///a.sock"]}, "invalid hosts .*listed twice"),
    (
        {"data-path-port": 80},
        r"^invalid data-path-port in the config file .*: VXLAN UDP port number is not in valid "
        r"range \(1024-49151\): 80$",
    ),
    ({"data-path-port": "7789"}, "invalid data-path-port .*'7789' is not a port number"),
    ({"data-path-port": True}, "invalid data-path-port .*True is not a port number"),
    ({"data-path-port": 2380}, "invalid data-path-port .*clashes with port 2380/tcp"),
]


@pytest.mark.parametrize(("doc", "match"), BAD_VALUES)
def test_a_bad_value_is_refused_naming_its_key(tmp_path: Path, doc: Any, match: str) -> None:
    refused(tmp_path, doc, match)


def test_a_file_that_is_not_a_json_object_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, ["mtu"], "is not a JSON object")
    (tmp_path / "bad.json").write_text("{mtu: 1400}")
    with pytest.raises(InvalidArgument, match=r"bad\.json is not JSON"):
        read_config_file(tmp_path / "bad.json")
    with pytest.raises(InvalidArgument, match="cannot read the config file"):
        read_config_file(tmp_path / "missing.json")


# where the file comes from, and flags --------------------------------------------------------
def test_etc_ferry_daemon_json_is_read_by_default_when_it_exists(tmp_path: Path) -> None:
    assert Path("/etc/ferry/daemon.json") == DEFAULT_CONFIG_FILE
    default = tmp_path / "etc" / "daemon.json"
    assert parse([], default_file=default) == DaemonConfig()  # absent: the defaults
    default.parent.mkdir()
    default.write_text(json.dumps({"data-root": "/srv/ferry", "mtu": 1450}))
    config = parse([], default_file=default)
    assert (config.state_dir, config.mtu_bytes) == (Path("/srv/ferry"), 1450)


def test_config_file_names_another_file(tmp_path: Path) -> None:
    default = tmp_path / "default.json"
    default.write_text(json.dumps({"mtu": 1450}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"mtu": 1400}))
    for flag in ("--config-file", "--config"):
        assert parse([flag, str(other)], default_file=default).mtu_bytes == 1400


def test_a_setting_given_both_as_a_flag_and_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"data-root": "/srv/ferry", "log-level": "info"}))
    with pytest.raises(InvalidArgument, match=(
        "specified both as a flag and in the configuration file .*: "
        r"data-root: \(from flag: /other, from file: /srv/ferry\)"
    )):  # fmt: skip
        parse(["--config-file", str(path), "--data-root", "/other"])
    with pytest.raises(InvalidArgument, match=r"log-level: \(from flag: debug, from file: info\)"):
        parse(["--config-file", str(path), "--log-level", "debug"])


def test_flags_alone_still_configure_ferryd(tmp_path: Path) -> None:
    config = parse(
        ["--state-dir", "/s", "--run-dir", "/r", "--log-level", "debug", "--hostname", "h1"],
        default_file=tmp_path / "absent.json",
    )
    assert (config.state_dir, config.run_dir, config.log_level) == (Path("/s"), Path("/r"), "debug")
    assert config.node_hostname == "h1"
    assert parse(["--data-root", "/d"], default_file=tmp_path / "absent.json").state_dir == Path(
        "/d"
    )
