from pathlib import Path

from ferry.model.container import AttachedEndpoint, ContainerConfig
from ferry.runtime import bundle

CONFIG = ContainerConfig("a" * 64, "app1", "host", ("sleep", "3600"), env=("A=1", "PATH=/x"))
EP = AttachedEndpoint(
    "net", "blue", "overlay", "ep", "10.0.0.2", 24, "10.0.0.1", "02:42:0a:00:00:02", "eth0"
)


def test_hosts_maps_the_hostname_to_each_address() -> None:
    hosts = bundle.hosts_file(CONFIG, (EP,))
    assert "127.0.0.1\tlocalhost" in hosts
    assert hosts.endswith("10.0.0.2\taaaaaaaaaaaa\n")


def test_resolv_conf_points_at_the_embedded_dns() -> None:
    assert bundle.resolv_conf().startswith("nameserver 127.0.0.11\n")


def test_the_environment_has_defaults_and_the_user_overrides_them() -> None:
    env = bundle.environment(CONFIG)
    assert env["PATH"] == "/x"
    assert env["A"] == "1"
    assert env["HOSTNAME"] == "aaaaaaaaaaaa"


def test_a_host_image_script_binds_the_private_files_and_execs_the_command() -> None:
    script = bundle.init_script(CONFIG, Path("/s/c"), None)
    assert "mount --bind /s/c/hosts /etc/hosts" in script
    assert "mount -t proc proc /proc" in script
    assert "umount -l /run/netns" in script
    assert script.rstrip().endswith('exec "$@"')


def test_an_image_script_mounts_an_overlay_and_chroots() -> None:
    script = bundle.init_script(CONFIG, Path("/s/c"), Path("/img/rootfs"))
    assert "lowerdir=/img/rootfs,upperdir=/s/c/upper,workdir=/s/c/work /s/c/rootfs" in script
    assert "mount --bind /s/c/hosts /s/c/rootfs/etc/hosts" in script
    assert script.rstrip().endswith('exec chroot /s/c/rootfs "$@"')


def test_the_shim_records_the_exit_status_and_passes_the_command_through() -> None:
    argv = bundle.shim_argv(
        Path("/run/netns/x"), Path("/s/init.sh"), Path("/s/exit"), ("echo", "a b")
    )
    assert argv[:3] == ["nsenter", "--net=/run/netns/x", "--"]
    assert "--fork" not in argv  # the shim itself must see how PID 1 ended
    assert argv[-2:] == ["echo", "a b"]
    assert 'echo $? > "$exitf"' in bundle.SHIM


def test_exec_enters_every_namespace_and_the_root() -> None:
    argv = bundle.exec_argv(42, ["ping", "x"])
    assert argv[:3] == ["nsenter", "--target", "42"]
    assert {"--mount", "--net", "--pid", "--root"} <= set(argv)
    assert argv[-3:] == ["--", "ping", "x"]
