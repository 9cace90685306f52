"""The lab's images and registry as plain data: OCI layouts, recipes, registry and daemon config."""

import dataclasses
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from ferry.lab import oci
from ferry.lab.images import store_path
from ferry.lab.recipes import (
    HTTPD,
    MYSQL,
    NGINX,
    RECIPES,
    ImageFile,
    Recipe,
    mmdebstrap_argv,
    setup_script,
)
from ferry.lab.registry import daemon_config, registry_config


def _rootfs_tar(path: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("./etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _write(layout: Path, tar: Path) -> oci.Descriptor:
    return oci.write_layout(
        layout,
        tar,
        NGINX.image_config(),
        ref_name="latest",
        created="2026-01-02T03:04:05Z",
        architecture="amd64",
        created_by="test",
    )


def test_an_oci_layout_names_its_manifest_and_every_blob_matches_its_digest(
    tmp_path: Path,
) -> None:
    raw = _rootfs_tar(tmp_path / "rootfs.tar")
    layout = tmp_path / "layout"
    manifest_desc = _write(layout, tmp_path / "rootfs.tar")

    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert entry["digest"] == manifest_desc.digest
    assert entry["mediaType"] == oci.MEDIA_MANIFEST
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}

    manifest_bytes = _blob(layout, manifest_desc.digest)
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == manifest_desc.digest
    assert len(manifest_bytes) == entry["size"]
    manifest = json.loads(manifest_bytes)
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer_bytes = _blob(layout, layer["digest"])
    assert "sha256:" + hashlib.sha256(layer_bytes).hexdigest() == layer["digest"]
    assert layer["size"] == len(layer_bytes)
    assert gzip.decompress(layer_bytes) == raw

    config_bytes = _blob(layout, manifest["config"]["digest"])
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(config_bytes)
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()],
    }
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["created"] == "2026-01-02T03:04:05Z"
    assert config["config"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["config"]["StopSignal"] == "SIGQUIT"
    assert config["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert config["config"]["Labels"]["io.ferry.lab.debian.packages"] == "nginx-light"
    assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == sorted(
        d.removeprefix("sha256:")
        for d in (manifest_desc.digest, layer["digest"], manifest["config"]["digest"])
    )


def test_the_same_rootfs_and_config_give_the_same_image_digest(tmp_path: Path) -> None:
    _rootfs_tar(tmp_path / "rootfs.tar")
    first = _write(tmp_path / "a", tmp_path / "rootfs.tar")
    second = _write(tmp_path / "b", tmp_path / "rootfs.tar")
    assert first == second


def test_each_tutorial_image_has_its_docker_hub_name_and_a_real_config() -> None:
    refs = {recipe.ref for recipe in RECIPES}
    assert refs == {
        "library/alpine:latest",
        "library/nginx:latest",
        "library/httpd:latest",
        "library/mysql:5.7",
        "ferrylab/tools:latest",
    }
    for recipe in RECIPES:
        config = recipe.image_config()
        assert config["Cmd"], recipe.ref
        assert any(e.startswith("PATH=") for e in config["Env"]), recipe.ref
        labels = config["Labels"]
        assert labels["org.opencontainers.image.description"]
        assert labels["org.opencontainers.image.source"].startswith("https://")
        assert labels["io.ferry.lab.debian.suite"] == "bookworm"
        assert labels["io.ferry.lab.debian.packages"] == ",".join(recipe.packages)
    assert MYSQL.image_config()["Entrypoint"] == ["docker-entrypoint.sh"]
    assert "3306/tcp" in MYSQL.image_config()["ExposedPorts"]
    assert HTTPD.image_config()["Cmd"] == ["httpd-foreground"]


def test_stand_ins_say_what_they_stand_in_for() -> None:
    stand_ins = {r.ref for r in RECIPES if "io.ferry.lab.stand-in-for" in r.labels()}
    assert stand_ins == {"library/alpine:latest", "library/mysql:5.7"}


def test_a_recipe_hash_changes_with_anything_that_shapes_the_image() -> None:
    base = NGINX.recipe_hash()
    assert dataclasses.replace(NGINX).recipe_hash() == base
    changes = [
        dataclasses.replace(NGINX, packages=("nginx-full",)),
        dataclasses.replace(NGINX, config={**NGINX.config, "StopSignal": "SIGTERM"}),
        dataclasses.replace(NGINX, commands=()),
        dataclasses.replace(NGINX, files=(ImageFile("/x", "y"),)),
        dataclasses.replace(NGINX, description="other"),
    ]
    assert len({recipe.recipe_hash() for recipe in changes} | {base}) == len(changes) + 1


def test_the_registry_snapshot_is_named_by_the_whole_set_of_recipes(tmp_path: Path) -> None:
    other = dataclasses.replace(NGINX, packages=("nginx-full",))
    assert store_path(RECIPES, tmp_path) == store_path(tuple(reversed(RECIPES)), tmp_path)
    assert store_path(RECIPES, tmp_path) != store_path((*RECIPES[:1], other), tmp_path)


def test_the_setup_script_writes_files_verbatim_and_runs_commands_in_order(
    tmp_path: Path,
) -> None:
    content = "a $HOME `x` \\n \"quoted\" 'single'\nsecond line"
    target = tmp_path / "dir" / "f.sh"
    recipe = Recipe(
        repo="t/t",
        tag="1",
        description="d",
        packages=("p",),
        config={"Cmd": ["x"]},
        files=(ImageFile(str(target), content, 0o750),),
        commands=(f"echo one > {tmp_path}/log", f"echo two >> {tmp_path}/log"),
    )
    subprocess.run(["/bin/sh", "-c", setup_script(recipe)], check=True)
    assert target.read_text() == content + "\n"
    assert target.stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "log").read_text() == "one\ntwo\n"


def test_a_failing_setup_command_fails_the_script() -> None:
    recipe = dataclasses.replace(NGINX, commands=("false", "true"))
    assert subprocess.run(["/bin/sh", "-c", setup_script(recipe)], check=False).returncode != 0


def test_a_file_holding_the_heredoc_marker_is_refused() -> None:
    recipe = dataclasses.replace(NGINX, files=(ImageFile("/x", "FERRY_EOF_0\n"),))
    with pytest.raises(ValueError, match="marker"):
        setup_script(recipe)


def test_mmdebstrap_builds_the_recipe_packages_and_runs_the_script_in_the_rootfs() -> None:
    argv = mmdebstrap_argv(NGINX, "/tmp/s.sh", "/tmp/out.tar")
    assert argv[0] == "mmdebstrap"
    assert "--include=nginx-light" in argv
    assert '--customize-hook=chroot "$1" /bin/sh < /tmp/s.sh' in argv
    assert argv[-2:] == ["bookworm", "/tmp/out.tar"]


def test_daemon_json_makes_the_lab_registry_docker_hubs_mirror_and_insecure() -> None:
    assert daemon_config("10.30.0.250:5000") == {
        "registry-mirrors": ["http://10.30.0.250:5000"],
        "insecure-registries": ["10.30.0.250:5000"],
    }


def test_the_registry_config_serves_its_storage_on_the_given_address() -> None:
    doc = registry_config(Path("/s"), "10.30.0.250:5000", service="lab")
    assert doc["version"] == "0.1"
    assert doc["http"]["addr"] == "10.30.0.250:5000"
    assert doc["storage"]["filesystem"] == {"rootdirectory": "/s"}
    assert doc["storage"]["maintenance"]["uploadpurging"]["enabled"] is False
    assert "auth" not in doc  # the lab's registry is open, inside the lab only
