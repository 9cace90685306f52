"""The OCI config Ferry writes for runc, compared as data, option by option."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ferry.model.container import ContainerConfig
from ferry.model.runopts import (
    CAPABILITIES,
    DOCKER_DEFAULT_CAPS,
    MountSpec,
    MountType,
    Resources,
    Security,
    Ulimit,
)
from ferry.runtime import oci
from ferry.runtime.seccomp import docker_default_profile

ALL = CAPABILITIES[:41]
HOST = oci.HostFacts(available_caps=ALL, kernel=(6, 18), init_path="/usr/bin/tini-static")
BASE = ContainerConfig("c" * 64, "web", "tools:latest", ("sleep", "60"), env=("A=1",))
NETNS = "/run/netns/ferry-c-cccccccccccc"


def config_for(config: ContainerConfig = BASE, **spec: Any) -> dict[str, Any]:
    bundle = oci.BundleSpec(
        config=config,
        rootfs="/s/c/rootfs",
        netns=spec.pop("netns", NETNS),
        files_dir="/s/c",
        cgroups_path="/ferry/ferry/" + "c" * 64,
        **spec,
    )
    return oci.plan_config(bundle, HOST, docker_default_profile())


def caps_mask(caps: list[str]) -> str:
    return f"{sum(1 << CAPABILITIES.index(c) for c in caps):016x}"


def mount_at(doc: dict[str, Any], target: str) -> dict[str, Any]:
    return next(m for m in doc["mounts"] if m["destination"] == target)


def test_the_default_capabilities_are_dockers_a80425fb() -> None:
    caps = config_for()["process"]["capabilities"]
    assert caps_mask(caps["effective"]) == "00000000a80425fb"
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert "inheritable" not in caps and "ambient" not in caps
    assert set(caps["effective"]) == set(DOCKER_DEFAULT_CAPS)


def test_cap_add_and_cap_drop_change_the_set_as_docker_does() -> None:
    security = Security(cap_add=("net_admin",), cap_drop=("CAP_NET_RAW", "chown"))
    caps = config_for(replace(BASE, security=security))["process"]["capabilities"]["effective"]
    assert "CAP_NET_ADMIN" in caps
    assert "CAP_NET_RAW" not in caps and "CAP_CHOWN" not in caps
    only = config_for(replace(BASE, security=Security(cap_drop=("ALL",), cap_add=("KILL",))))
    assert only["process"]["capabilities"]["effective"] == ["CAP_KILL"]
    every = config_for(replace(BASE, security=Security(cap_add=("ALL",), cap_drop=("SYS_ADMIN",))))
    assert len(every["process"]["capabilities"]["effective"]) == len(ALL) - 1


def test_a_default_container_is_confined_by_seccomp_and_masked_paths() -> None:
    linux = config_for()["linux"]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert linux["seccomp"]["architectures"] == [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
    ]
    allowed = {n for rule in linux["seccomp"]["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
               for n in rule["names"]}  # fmt: skip
    assert "mount" not in allowed and "unshare" not in allowed and "reboot" not in allowed
    assert {"read", "socket", "clone"} <= allowed
    assert "/proc/kcore" in linux["maskedPaths"] and "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}


def test_cap_sys_admin_opens_the_syscalls_dockers_profile_ties_to_it() -> None:
    linux = config_for(replace(BASE, security=Security(cap_add=("SYS_ADMIN",))))["linux"]
    allowed = {n for rule in linux["seccomp"]["syscalls"] for n in rule["names"]
               if rule["action"] == "SCMP_ACT_ALLOW"}  # fmt: skip
    assert {"mount", "unshare", "setns"} <= allowed


def test_privileged_has_every_capability_and_no_seccomp_or_masks() -> None:
    doc = config_for(replace(BASE, security=Security(privileged=True)))
    assert doc["process"]["capabilities"]["effective"] == list(ALL)
    assert "seccomp" not in doc["linux"] and "maskedPaths" not in doc["linux"]
    assert doc["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in mount_at(doc, "/sys")["options"]


def test_seccomp_unconfined_drops_only_the_filter() -> None:
    doc = config_for(replace(BASE, security=Security(seccomp_unconfined=True)))
    assert "seccomp" not in doc["linux"]
    assert doc["linux"]["maskedPaths"]


def test_namespaces_join_the_network_namespace_ferry_made() -> None:
    linux = config_for()["linux"]
    assert {"type": "network", "path": NETNS} in linux["namespaces"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    assert linux["sysctl"]["net.ipv4.ping_group_range"] == "0 2147483647"
    host_net = config_for(netns="")["linux"]
    assert "network" not in {n["type"] for n in host_net["namespaces"]}
    assert "net.ipv4.ping_group_range" not in host_net["sysctl"]


def test_proc_sys_dev_and_the_containers_own_files_are_mounted() -> None:
    doc = config_for()
    assert "ro" in mount_at(doc, "/sys")["options"]
    assert mount_at(doc, "/proc")["type"] == "proc"
    assert mount_at(doc, "/dev/pts")["type"] == "devpts"
    assert "size=67108864" in mount_at(doc, "/dev/shm")["options"]
    assert mount_at(doc, "/etc/hosts")["source"] == "/s/c/hosts"
    assert mount_at(doc, "/etc/resolv.conf")["type"] == "bind"
    assert doc["root"] == {"path": "/s/c/rootfs", "readonly": False}
    assert doc["hostname"] == "cccccccccccc"


def test_read_only_makes_the_root_read_only() -> None:
    doc = config_for(replace(BASE, security=Security(read_only=True)))
    assert doc["root"]["readonly"] is True


def test_user_env_cwd_and_terminal_reach_the_process() -> None:
    user = oci.ResolvedUser(1000, 1000, (27,), "/home/app")
    config = replace(BASE, working_dir="/srv", tty=True, env=("A=1", "PATH=/x"))
    process = config_for(config, user=user)["process"]
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [27]}
    assert process["cwd"] == "/srv" and process["terminal"] is True
    assert process["env"] == ["PATH=/x", "HOSTNAME=cccccccccccc", "TERM=xterm",
                              "HOME=/home/app", "A=1"]  # fmt: skip
    assert process["args"] == ["sleep", "60"]
    assert process["noNewPrivileges"] is False


def test_no_new_privileges_and_ulimits_when_asked() -> None:
    config = replace(BASE, security=Security(no_new_privileges=True),
                     ulimits=(Ulimit("nofile", 1024, 2048),))  # fmt: skip
    process = config_for(config)["process"]
    assert process["noNewPrivileges"] is True
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]
    assert config_for()["process"]["rlimits"] == []  # inherited, as in Docker


def test_resources_become_cgroup_limits() -> None:
    config = replace(BASE, resources=Resources(memory_bytes=64 << 20, nano_cpus=1_500_000_000,
                                               pids_limit=50, cpu_shares=512))  # fmt: skip
    resources = config_for(config)["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["cpu"] == {"period": 100_000, "quota": 150_000, "shares": 512}
    assert resources["pids"] == {"limit": 50}
    assert config_for()["linux"]["cgroupsPath"] == "/ferry/ferry/" + "c" * 64
    assert "memory" not in config_for()["linux"]["resources"]


def test_init_runs_tini_as_dockers_docker_init() -> None:
    doc = config_for(replace(BASE, init=True))
    assert doc["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "60"]
    init = mount_at(doc, "/sbin/docker-init")
    assert init["source"] == "/usr/bin/tini-static" and "ro" in init["options"]


def test_binds_volumes_and_tmpfs_mounts() -> None:
    mounts = (
        oci.ResolvedMount(MountType.BIND, "/data", "/srv/data", read_only=True),
        oci.ResolvedMount(MountType.VOLUME, "/db", "/var/lib/ferry/volumes/db/_data"),
        oci.ResolvedMount(MountType.TMPFS, "/run", options=("noexec", "size=1024")),
    )
    doc = config_for(replace(BASE, mounts=(MountSpec(MountType.TMPFS, "/run"),)), mounts=mounts)
    data = mount_at(doc, "/data")
    assert (data["type"], data["source"]) == ("bind", "/srv/data")
    assert data["options"] == ["rbind", "rprivate", "ro"]
    assert mount_at(doc, "/db")["source"] == "/var/lib/ferry/volumes/db/_data"
    assert "rw" in mount_at(doc, "/db")["options"]
    assert mount_at(doc, "/run") == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                     "options": ["noexec", "size=1024", "rw"]}  # fmt: skip


def test_exec_processes_take_the_containers_confinement_or_every_capability() -> None:
    process = oci.plan_process(
        BASE, oci.ResolvedUser(), HOST, args=["ls"], env=["A=1"], cwd="/tmp", terminal=False,
        privileged=True,
    )  # fmt: skip
    assert process["capabilities"]["effective"] == list(ALL)
    assert process["cwd"] == "/tmp" and process["args"] == ["ls"]
    plain = oci.plan_process(
        BASE, oci.ResolvedUser(), HOST, args=["ls"], env=[], cwd="", terminal=True,
        privileged=False,
    )  # fmt: skip
    assert caps_mask(plain["capabilities"]["effective"]) == "00000000a80425fb"
    assert plain["cwd"] == "/" and plain["terminal"] is True
