"""The image store: layers unpacked once each (whiteouts as overlayfs marks), shared between
images; import, save and load; tags; references normalised as Docker does."""

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.kernel import mounts
from ferry.kernel.inroot import remove_tree
from ferry.model.reference import parse_reference
from ferry.runtime import image_archive
from ferry.runtime.images import Image, ImageStore, ImageUser, normalise

pytestmark = pytest.mark.usefixtures("as_root")


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path) -> Iterator[None]:
    """Some trees here are deeper than pytest's own clean-up (shutil.rmtree) can remove."""
    yield
    for child in tmp_path.iterdir():
        remove_tree(child)


def _layer(entries: dict[str, bytes | str | None]) -> bytes:
    """A layer tarball: bytes are files, str are symlink targets, None are directories."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _saved_image(path: Path, layers: list[dict[str, bytes | str | None]]) -> Path:
    """A tarball shaped like the output of `docker save` (config included)."""
    names = [f"layer{i}/layer.tar" for i in range(len(layers))]
    files = {name: _layer(layer) for name, layer in zip(names, layers, strict=True)}
    diff_ids = ["sha256:" + hashlib.sha256(files[n]).hexdigest() for n in names]
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    files["c.json"] = json.dumps(config).encode()
    files["manifest.json"] = json.dumps([{"Config": "c.json", "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@contextlib.contextmanager
def merged(image: Image, scratch: Path) -> Iterator[Path]:
    """The image as a container sees it: its layers under an overlay mount."""
    for sub in ("upper", "work", "merged"):
        (scratch / sub).mkdir(parents=True)
    mounts.mount_overlay(image.layers, scratch / "upper", scratch / "work", scratch / "merged")
    try:
        yield scratch / "merged"
    finally:
        mounts.unmount(scratch / "merged")


def test_layers_apply_in_order_with_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    tarball = _saved_image(
        tmp_path / "img.tar",
        [
            {"etc": None, "etc/keep": b"1", "etc/gone": b"2", "var": None, "var/old": b"3"},
            {"etc/.wh.gone": b"", "var/.wh..wh..opq": b"", "var/new": b"4", "etc/keep": b"5"},
        ],
    )
    image = ImageStore(tmp_path / "images").import_tar(tarball, "demo")
    assert len(image.layers) == 2
    with merged(image, tmp_path / "mnt") as rootfs:
        assert (rootfs / "etc/keep").read_bytes() == b"5"
        assert not (rootfs / "etc/gone").exists()
        assert sorted(p.name for p in (rootfs / "var").iterdir()) == ["new"]
        assert not list(rootfs.rglob(".wh.*"))


def test_a_layer_keeps_whiteouts_as_overlayfs_marks(tmp_path: Path) -> None:
    tarball = _saved_image(
        tmp_path / "img.tar",
        [{"etc": None, "etc/gone": b"2"}, {"etc/.wh.gone": b"", "var/.wh..wh..opq": b""}],
    )
    top = ImageStore(tmp_path / "images").import_tar(tarball, "demo").layers[-1]
    mark = os.lstat(top / "etc/gone")
    assert stat.S_ISCHR(mark.st_mode) and mark.st_rdev == os.makedev(0, 0)
    assert os.getxattr(top / "var", "trusted.overlay.opaque") == b"y"
    assert not list(top.rglob(".wh.*"))


def test_a_whiteout_of_an_entry_of_its_own_layer_leaves_the_entry(tmp_path: Path) -> None:
    """OCI: a whiteout hides lower layers only; order in the tar does not matter."""
    tarball = _saved_image(tmp_path / "img.tar", [{"f": b"own", ".wh.f": b""}])
    (layer,) = ImageStore(tmp_path / "images").import_tar(tarball, "demo").layers
    assert (layer / "f").read_bytes() == b"own"


def test_images_that_share_a_layer_share_its_directory(tmp_path: Path) -> None:
    base = {"bin": None, "bin/sh": b"#!"}
    store = ImageStore(tmp_path / "images")
    one = store.import_tar(_saved_image(tmp_path / "1.tar", [base, {"a": b"1"}]), "one")
    two = store.import_tar(_saved_image(tmp_path / "2.tar", [base, {"b": b"2"}]), "two")
    assert one.layers[0] == two.layers[0] and one.layers[1] != two.layers[1]
    assert len(list((tmp_path / "images/layers").iterdir())) == 3
    store.remove("one", [])
    assert two.layers[0].is_dir() and not one.layers[1].exists()
    store.remove("two", [])
    assert list((tmp_path / "images/layers").iterdir()) == []
    assert list((tmp_path / "images/blobs/sha256").iterdir()) == []


def test_the_image_id_is_the_digest_of_its_config_and_save_then_load_keeps_it(
    tmp_path: Path,
) -> None:
    store = ImageStore(tmp_path / "a")
    image = store.import_tar(_saved_image(tmp_path / "1.tar", [{"f": b"1"}, {"g": b"2"}]), "x")
    config = (tmp_path / "a/blobs/sha256" / image.image_id.removeprefix("sha256:")).read_bytes()
    assert image.image_id == "sha256:" + hashlib.sha256(config).hexdigest()
    image_archive.save(store, ["x"], tmp_path / "saved.tar")
    other = ImageStore(tmp_path / "b")
    (loaded,) = image_archive.load(other, tmp_path / "saved.tar", "saved.tar")
    assert loaded == (image.image_id, ["x:latest"])
    got = other.get("x:latest")
    assert (got.repo_tags, got.diff_ids, got.config) == (
        ("x:latest",),
        image.diff_ids,
        {"Cmd": ["sh"]},
    )


def test_import_with_changes_makes_dockers_config(tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(_layer({"bin": None}))
    changes = ['CMD ["nginx", "-g", "daemon off;"]', "ENV A=1 B=two", "WORKDIR /srv",
               "EXPOSE 80 53/udp", 'LABEL a=b "c d"=e', "USER www", "STOPSIGNAL SIGQUIT",
               "ENTRYPOINT run me"]  # fmt: skip
    image = ImageStore(tmp_path / "images").import_tar(tarball, "web", changes=changes)
    assert image.config == {
        "Cmd": ["nginx", "-g", "daemon off;"], "Env": ["A=1", "B=two"], "WorkingDir": "/srv",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"a": "b", "c d": "e"},
        "User": "www", "StopSignal": "SIGQUIT", "Entrypoint": ["/bin/sh", "-c", "run me"],
    }  # fmt: skip
    assert image.diff_ids == ("sha256:" + hashlib.sha256(tarball.read_bytes()).hexdigest(),)
    with pytest.raises(InvalidArgument, match="'RUN' is not a valid change command"):
        ImageStore(tmp_path / "images").import_tar(tarball, "web", changes=["RUN make"])


def test_tags_untag_and_delete_as_docker_rmi(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    image = store.import_tar(_saved_image(tmp_path / "1.tar", [{"f": b"1"}]), "one")
    store.tag("one", "localhost:5000/one:v1")
    assert store.get("localhost:5000/one:v1").image_id == image.image_id
    assert store.get(image.image_id[7:19]).image_id == image.image_id  # an id prefix
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(image.image_id, [])
    assert store.remove("localhost:5000/one:v1", []) == [{"Untagged": "localhost:5000/one:v1"}]
    with pytest.raises(Conflict, match="container abc is using its referenced image"):
        store.remove("one", [ImageUser("abc", running=False)])
    assert store.remove("one", []) == [{"Untagged": "one:latest"}, {"Deleted": image.image_id}]
    with pytest.raises(NotFound, match=r"^No such image: one$"):
        store.get("one")


def test_an_image_of_an_older_ferryd_is_named_with_the_fix(tmp_path: Path) -> None:
    old = tmp_path / "images/tools@latest"
    (old / "rootfs").mkdir(parents=True)
    (old / "image.json").write_text(json.dumps({"name": "tools:latest"}))
    with pytest.raises(NotFound, match=r"older ferryd.*ferry image import"):
        ImageStore(tmp_path / "images").get("tools")


def test_a_manifest_naming_a_layer_outside_the_tarball_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "bad.tar"
    manifest = json.dumps([{"Layers": ["../../etc/passwd"]}]).encode()
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    with pytest.raises(InvalidArgument, match="refusing the path"):
        ImageStore(tmp_path / "images").import_tar(tarball, "bad")


def _manifest_only(path: Path, manifest: object, members: dict[str, bytes] | None = None) -> Path:
    files = {"manifest.json": json.dumps(manifest).encode(), **(members or {})}
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("manifest", "members", "refusal"),
    [
        ([{"Layers": ["/etc/passwd"]}], {}, "refusing the path '/etc/passwd'"),
        ([{"Layers": ["a/./b.tar"]}], {}, "refusing the path"),
        ([{"Layers": ["gone/layer.tar"]}], {}, "gone/layer.tar is not in the archive"),
        ([{"Layers": ["d"]}, {"Layers": ["d"]}], {"d": b""}, "holds 2 images"),
        ({"Layers": []}, {}, "not a docker save manifest"),
        ([{"Layers": "x"}], {}, "Layers is not a list of paths"),
        ([{"NoLayers": []}], {}, "Layers is not a list of paths"),
    ],
    ids=[
        "an absolute layer path",
        "a layer path that is not clean",
        "a layer the archive lacks",
        "two images in one archive",
        "a manifest that is not a list",
        "layers that are not a list",
        "a manifest without layers",
    ],
)
def test_a_bad_docker_save_manifest_is_refused(
    tmp_path: Path, manifest: object, members: dict[str, bytes], refusal: str
) -> None:
    tarball = _manifest_only(tmp_path / "bad.tar", manifest, members)
    with pytest.raises(InvalidArgument, match=refusal):
        ImageStore(tmp_path / "images").import_tar(tarball, "bad")


def test_a_layer_stored_as_a_link_inside_the_archive_is_read_from_the_archive(
    tmp_path: Path,
) -> None:
    """docker save stores an identical layer once and links the others to it."""
    layer = _layer({"f": b"shared"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {"rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]}}
    manifest = [{"Config": "c.json", "Layers": ["a/layer.tar", "b/layer.tar"]}]
    members = {"a/layer.tar": layer, "c.json": json.dumps(config).encode()}
    tarball = _manifest_only(tmp_path / "img.tar", manifest, members)
    with tarfile.open(tarball, "a") as tar:
        link = tarfile.TarInfo("b/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../a/layer.tar"
        tar.addfile(link)
    image = ImageStore(tmp_path / "images").import_tar(tarball, "linked")
    assert image.layers[0] == image.layers[1]
    assert (image.rootfs / "f").read_bytes() == b"shared"


def test_a_layer_linked_outside_the_archive_is_refused(tmp_path: Path) -> None:
    tarball = _manifest_only(tmp_path / "img.tar", [{"Config": "c", "Layers": ["a/l.tar"]}])
    with tarfile.open(tarball, "a") as tar:
        link = tarfile.TarInfo("a/l.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(link)
    with pytest.raises(InvalidArgument, match=r"a/l\.tar links outside the archive"):
        ImageStore(tmp_path / "images").import_tar(tarball, "evil")


def test_a_plain_root_filesystem_is_one_layer_with_whiteouts_honoured(tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, content in {"bin": None, "bin/sh": b"#!", ".wh.gone": b""}.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    image = ImageStore(tmp_path / "images").import_tar(tarball, "plain")
    assert sorted(os.listdir(image.rootfs)) == ["bin", "gone"]  # "gone": overlayfs's mark
    assert (image.rootfs / "bin/sh").read_bytes() == b"#!"
    with merged(image, tmp_path / "mnt") as root:
        assert sorted(os.listdir(root)) == ["bin"]


def test_not_a_tarball_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(InvalidArgument, match=r"junk\.tar, layer 1 of 1: not a valid tar archive"):
        ImageStore(tmp_path / "images").import_tar(junk, "junk")
    assert ImageStore(tmp_path / "images").all() == []
    assert list((tmp_path / "images/blobs/sha256").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a" * 237, True),  # docker.io/library/ and these: 255, Docker's limit
        ("a" * 238, False),
        ("a:" + "t" * 128, True),
        ("a:" + "t" * 129, False),
        ("a:.hidden", False),
        ("a:-dash", False),
    ],
    ids=["255 characters", "256", "a tag of 128", "129", "a tag from a dot", "from a dash"],
)
def test_image_names_keep_dockers_limits(name: str, ok: bool) -> None:
    if ok:
        assert normalise(name).startswith("a")
    else:
        with pytest.raises(InvalidArgument):
            normalise(name)


@pytest.mark.parametrize(
    ("ref", "full", "familiar"),
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
        ("index.docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
        ("10.30.0.250:5000/library/alpine:3", "10.30.0.250:5000/library/alpine:3",
         "10.30.0.250:5000/library/alpine:3"),
        ("nginx@sha256:" + "a" * 64, "docker.io/library/nginx@sha256:" + "a" * 64,
         "nginx@sha256:" + "a" * 64),
        ("localhost/a/b:t", "localhost/a/b:t", "localhost/a/b:t"),
    ],
)  # fmt: skip
def test_references_normalise_as_dockers(ref: str, full: str, familiar: str) -> None:
    parsed = parse_reference(ref)
    assert (parsed.full, parsed.familiar) == (full, familiar)


@pytest.mark.parametrize(
    ("ref", "why"),
    [("NGINX", "must be lowercase"), ("a@sha256:12", "digest"), ("a:b:c", ""),
     ("/a", ""), ("a//b", ""), ("", "")],
)  # fmt: skip
def test_invalid_references_are_refused_with_dockers_words(ref: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"invalid reference format.*{why}"):
        parse_reference(ref)


def test_an_image_with_a_tree_deeper_than_pythons_recursion_is_removed(tmp_path: Path) -> None:
    tarball = _saved_image(tmp_path / "deep.tar", [{"d/" + "a/" * 1500 + "f": b"deep"}])
    store = ImageStore(tmp_path / "images")
    image = store.import_tar(tarball, "deep")
    assert image.size_bytes == 4
    store.remove("deep", [])
    assert list((tmp_path / "images/layers").iterdir()) == []


def test_an_oci_layout_archive_loads_with_its_tag(tmp_path: Path) -> None:
    """``docker save`` of Docker 25+ and ``skopeo copy … oci-archive:`` write an OCI image
    layout; a gzip layer is unpacked, its DiffID checked against the config."""
    import gzip

    layer = _layer({"f": b"oci"})
    blob = gzip.compress(layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]},
        }
    ).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(blob), "size": len(blob)}],
    }).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _sha(manifest),
                "size": len(manifest),
                "annotations": {"io.containerd.image.name": "oci/app:1"},
            }
        ],
    }
    members = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
               "index.json": json.dumps(index).encode()}  # fmt: skip
    for data in (blob, config, manifest):
        members["blobs/sha256/" + _sha(data)[7:]] = data
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    store = ImageStore(tmp_path / "images")
    ((image_id, tags),) = image_archive.load(store, archive, "oci.tar")
    assert (image_id, tags) == (_sha(config), ["oci/app:1"])
    assert (store.get("oci/app:1").rootfs / "f").read_bytes() == b"oci"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_save_writes_dockers_archive_that_is_also_an_oci_layout(tmp_path: Path) -> None:
    # Docker 25 and later: manifest.json beside oci-layout, index.json and blobs/sha256/
    store = ImageStore(tmp_path / "a")
    image = store.import_tar(_saved_image(tmp_path / "1.tar", [{"f": b"1"}, {"g": b"2"}]), "x")
    image_archive.save(store, ["x"], tmp_path / "saved.tar")
    with tarfile.open(tmp_path / "saved.tar") as saved:
        names = set(saved.getnames())
        assert {"oci-layout", "index.json", "manifest.json"} <= names
        for diff_id in image.diff_ids:  # an uncompressed layer's digest is its DiffID
            member = saved.extractfile("blobs/" + diff_id.replace(":", "/"))
            assert member is not None
            assert "sha256:" + hashlib.sha256(member.read()).hexdigest() == diff_id
        # the OCI layout alone (no manifest.json) loads to the same image and tag
        with tarfile.open(tmp_path / "oci.tar", "w") as oci:
            for info in saved.getmembers():
                if info.name != "manifest.json":
                    oci.addfile(info, saved.extractfile(info))
    other = ImageStore(tmp_path / "b")
    (loaded,) = image_archive.load(other, tmp_path / "oci.tar", "oci.tar")
    assert loaded == (image.image_id, ["x:latest"])
