"""Run options as Docker spells them: sizes, CPUs, volumes, mounts, tmpfs, restart, caps."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from ferry.cli.container_verbs import update_body
from ferry.errors import InvalidArgument
from ferry.model.runopts import (
    CAPABILITIES,
    MountSpec,
    MountType,
    Resources,
    RestartName,
    RestartPolicy,
    Security,
    Ulimit,
    capabilities,
    check_destination,
    check_mounts,
    check_sysctls,
    check_ulimit,
    check_user,
    normalise_cap,
    parse_bytes,
    parse_cpus,
    parse_mount,
    parse_restart,
    parse_security_opts,
    parse_tmpfs,
    parse_ulimit,
    parse_volume,
)
from ferry.runtime import oci

HELD = CAPABILITIES[:24] + CAPABILITIES[25:41]  # this VM's root lacks CAP_SYS_RESOURCE


@pytest.mark.parametrize(
    ("text", "value"),
    [("64m", 64 << 20), ("1g", 1 << 30), ("512", 512), ("1.5k", 1536), ("2MB", 2 << 20)],
)
def test_sizes_are_read_as_dockers_binary_units(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "m", "-1m", "1x", "lots"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_bytes(text)


def test_cpus_are_nano_cpus() -> None:
    assert parse_cpus("1.5") == 1_500_000_000
    assert parse_cpus("0.25") == 250_000_000
    assert parse_cpus("0") == 0  # Docker: no limit
    for bad in ("-1", "x"):
        with pytest.raises(InvalidArgument):
            parse_cpus(bad)


def test_a_memory_limit_below_6m_is_refused_with_dockers_words() -> None:
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        Resources(memory_bytes=1 << 20).check()
    with pytest.raises(InvalidArgument, match="Conflicting options"):
        Resources(nano_cpus=1, cpu_quota_us=5000).check()


def test_dash_v_reads_binds_named_and_anonymous_volumes() -> None:
    assert parse_volume("/srv:/data:ro") == MountSpec(MountType.BIND, "/data", "/srv", True)
    assert parse_volume("db:/var/lib/db") == MountSpec(MountType.VOLUME, "/var/lib/db", "db")
    assert parse_volume("/cache") == MountSpec(MountType.VOLUME, "/cache")
    for bad in ("a:b:c:d", ":/x", "db:/x:z", "db:relative"):
        with pytest.raises(InvalidArgument):
            parse_volume(bad)


def test_dash_dash_mount_reads_the_three_types() -> None:
    assert parse_mount("type=bind,source=/srv,target=/data,readonly") == MountSpec(
        MountType.BIND, "/data", "/srv", True
    )
    assert parse_mount("type=volume,src=db,dst=/db") == MountSpec(MountType.VOLUME, "/db", "db")
    assert parse_mount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1777") == MountSpec(
        MountType.TMPFS, "/run", "", False, 64 << 20, 0o1777
    )
    for bad in ("type=nfs,target=/x", "source=/x", "type=bind,src=/a,dst=/b,bind-nonrecursive",
                "type=tmpfs,src=x,dst=/y", "type=bind,src=rel,dst=/y"):  # fmt: skip
        with pytest.raises(InvalidArgument):
            parse_mount(bad)


def test_tmpfs_options() -> None:
    mount = parse_tmpfs("/run", "size=1m,mode=700,exec")
    assert (mount.tmpfs_size_bytes, mount.tmpfs_mode) == (1 << 20, 0o700)
    assert mount.tmpfs_options == ("exec",)
    with pytest.raises(InvalidArgument):
        parse_tmpfs("/run", "uid=5")


def test_two_mounts_on_one_target_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /data"):
        check_mounts((parse_volume("a:/data"), parse_tmpfs("/data/")))
    with pytest.raises(InvalidArgument, match="can't be '/'"):
        check_mounts((MountSpec(MountType.TMPFS, "/"),))


def test_restart_policies() -> None:
    assert parse_restart("on-failure:3") == RestartPolicy(RestartName.ON_FAILURE, 3)
    assert parse_restart("unless-stopped").name == RestartName.UNLESS_STOPPED
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(InvalidArgument):
            parse_restart(bad)


def test_restart_decisions_follow_dockers_restart_manager() -> None:
    on_failure = RestartPolicy(RestartName.ON_FAILURE, 2)
    assert on_failure.wants_restart(1, 0, False)
    assert not on_failure.wants_restart(0, 0, False)
    assert not on_failure.wants_restart(1, 2, False)
    assert RestartPolicy(RestartName.ALWAYS).wants_restart(0, 99, False)
    assert not RestartPolicy(RestartName.ALWAYS).wants_restart(0, 0, True)  # user stopped it
    assert not RestartPolicy().wants_restart(1, 0, False)


def test_capability_names_in_any_spelling() -> None:
    assert normalise_cap("net_admin") == normalise_cap("CAP_NET_ADMIN") == "CAP_NET_ADMIN"
    with pytest.raises(InvalidArgument, match="unknown capability"):
        normalise_cap("FLY")


def test_all_means_what_the_host_holds() -> None:
    assert "CAP_SYS_RESOURCE" not in capabilities(Security(privileged=True), HELD)
    with pytest.raises(InvalidArgument, match="not available"):
        capabilities(Security(cap_add=("SYS_RESOURCE",)), HELD)


def test_security_opts() -> None:
    assert parse_security_opts(["no-new-privileges"]) == (True, False)
    assert parse_security_opts(["no-new-privileges:true", "seccomp=unconfined"]) == (True, True)
    for bad in (["apparmor=x"], ["label=disable"], ["seccomp=/tmp/p.json"]):
        with pytest.raises(InvalidArgument, match="unsupported --security-opt"):
            parse_security_opts(bad)


def test_ulimits_users_and_sysctls() -> None:
    limit = parse_ulimit("nofile=1024:2048")
    assert (limit.name, limit.soft, limit.hard) == ("nofile", 1024, 2048)
    for bad in ("nofile", "files=1", "nofile=9:1"):
        with pytest.raises(InvalidArgument):
            parse_ulimit(bad)
    assert check_user("app:staff") == "app:staff"
    with pytest.raises(InvalidArgument):
        check_user("a b")
    check_sysctls({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"})
    with pytest.raises(InvalidArgument, match="not namespaced"):
        check_sysctls({"kernel.panic": "1"})
    with pytest.raises(InvalidArgument, match="host network"):
        check_sysctls({"net.ipv4.ip_forward": "1"}, host_network=True)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(nano_cpus=1_000_000), "Range of CPUs is from 0.01 to 2.00, as there are only 2"),
        (Resources(nano_cpus=5 * 10**9), "Range of CPUs is from 0.01 to 2.00"),
        (Resources(nano_cpus=-1), "Range of CPUs is from 0.01 to 2.00"),
        (Resources(memory_bytes=-1), "Minimum memory limit allowed is 6MB"),
        (Resources(memory_reservation_bytes=1 << 20), "Minimum memory reservation allowed is 6MB"),
        (Resources(nano_cpus=10**9, cpu_quota_us=50000), "Nano CPUs and CPU Quota cannot both"),
        (Resources(cpu_period_us=10), "CPU cfs period can not be less than 1ms"),
        (Resources(cpu_quota_us=100), "CPU cfs quota can not be less than 1ms"),
        (Resources(cpu_shares=-1), "invalid CPU shares -1"),
    ],
)
def test_resources_are_checked_with_dockers_words(resources: Resources, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        resources.check(cpus_available=2)


def test_resources_docker_accepts_pass() -> None:
    Resources(nano_cpus=10**7).check(2)
    Resources(nano_cpus=2 * 10**9, memory_bytes=6 << 20, cpu_shares=2).check(2)
    Resources(cpu_period_us=100000, cpu_quota_us=-1).check(2)
    Resources(nano_cpus=64 * 10**9).check(None)  # a service's: the host is not known here


@pytest.mark.parametrize(
    "target", ["/proc", "/proc/", "/proc/sys", "/proc/self/../kcore", "/sys", "/dev", "/dev/pts"]
)
def test_a_mount_over_the_runtimes_own_filesystems_is_refused(target: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid mount config: destination"):
        check_destination(target)
    with pytest.raises(InvalidArgument, match="invalid mount config: destination"):
        parse_volume(f"/tmp/x:{target}").check()


@pytest.mark.parametrize("target", ["/proc/cpuinfo", "/sys/fs/cgroup", "/dev/shm", "/procx"])
def test_a_mount_runc_can_make_passes(target: str) -> None:
    check_destination(target)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (Ulimit("nofile", 2048, 1024), "soft limit must be less than or equal to hard limit"),
        (Ulimit("nofile", -1, 1024), "soft limit must be less than or equal to hard limit"),
        (Ulimit("nofile", -5, 1024), "cannot be negative"),
        (Ulimit("bogus", 1, 1), "not a known resource name"),
    ],
)
def test_ulimits_from_an_api_body_are_checked_as_flags_are(limit: Ulimit, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_ulimit(limit)


def test_an_update_lifts_a_cpu_limit_with_quota_minus_one_and_pids_with_zero_or_minus_one() -> None:
    limited = Resources(nano_cpus=500_000_000, pids_limit=40, memory_bytes=96 << 20)
    lifted = Resources(nano_cpus=500_000_000, cpu_quota_us=-1, pids_limit=-1, memory_bytes=96 << 20)
    assert lifted.plain() == Resources(memory_bytes=96 << 20)
    assert Resources(cpu_period_us=100_000, cpu_quota_us=-1).plain() == Resources()
    assert limited.plain() == limited
    # runc leaves alone what it is not given: a lifted limit is written as the cgroup's -1
    plan = oci.plan_update(lifted.plain())
    assert plan["cpu"]["quota"] == -1 and plan["pids"] == {"limit": -1}
    assert plan["memory"] == {"limit": 96 << 20}
    kept = oci.plan_update(limited)
    assert kept["cpu"] == {"period": 100_000, "quota": 50_000} and kept["pids"] == {"limit": 40}


def test_ferry_update_lifts_limits_in_dockers_words_and_refuses_memory_0() -> None:
    body = update_body("", "", "0", 0, 0)
    assert (body["NanoCpus"], body["CpuQuota"], body["PidsLimit"]) == (0, -1, -1)
    body = update_body("96m", "", "1.5", 0, None)
    assert (body["Memory"], body["NanoCpus"], body["PidsLimit"]) == (96 << 20, 1_500_000_000, None)
    assert "CpuQuota" not in body
    assert update_body("", "", "", 0, 40)["PidsLimit"] == 40
    with pytest.raises(InvalidArgument, match="--memory 0 cannot lift a memory limit"):
        update_body("0", "", "", 0, None)


def test_an_api_update_reads_pids_limit_zero_as_unlimited_and_null_as_unchanged() -> None:
    from ferry.api.routes.container_verbs import ContainerUpdate, _resources

    now = Resources(pids_limit=40, nano_cpus=500_000_000)
    assert _resources(ContainerUpdate(PidsLimit=0), now) == replace(now, pids_limit=-1)
    assert _resources(ContainerUpdate(PidsLimit=-1), now) == replace(now, pids_limit=-1)
    assert _resources(ContainerUpdate(PidsLimit=64), now) == replace(now, pids_limit=64)
    assert _resources(ContainerUpdate(NanoCpus=0), now) is None  # the docker CLI's "not given"
