"""Registry plumbing as data: manifests and configs, skopeo's configuration and errors,
credentials from Docker's header, ferryd's daemon.json, import's Dockerfile changes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ferry.errors import Forbidden, InvalidArgument, NotFound, Unavailable
from ferry.model.import_changes import apply_changes
from ferry.model.reference import parse_reference
from ferry.runtime.credentials import RegistryAuth, server_domain
from ferry.runtime.manifests import (
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    parse_config,
    parse_manifest,
    select_platform,
)
from ferry.runtime.registry import RegistryClient
from ferry.runtime.skopeo import RegistrySettings, Skopeo, check_mirror, classify

D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")


def _manifest(media: str, layer_type: str = DOCKER_LAYER) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": "x", "digest": D1, "size": 10},
        "layers": [{"mediaType": layer_type, "digest": D2, "size": 20}],
    }).encode()  # fmt: skip


@pytest.mark.parametrize("media", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_schema_2_and_oci_manifests_read_alike(media: str) -> None:
    manifest = parse_manifest(_manifest(media))
    assert (manifest.config.digest, [d.digest for d in manifest.layers]) == (D1, [D2])


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (_manifest(DOCKER_MANIFEST, "application/vnd.oci.image.layer.v1.tar+encrypted"),
         "unsupported type"),
        (json.dumps({"mediaType": DOCKER_LIST, "manifests": []}).encode(), "index of images"),
        (b"[]", "not a JSON object"),
        (json.dumps({"schemaVersion": 1, "mediaType": DOCKER_MANIFEST}).encode(), "unsupported"),
        (_manifest(DOCKER_MANIFEST).replace(D2.encode(), b"sha256:12"), "no sha256 digest"),
    ],
    ids=["an encrypted layer", "an index", "not an object", "schema 1", "a short digest"],
)  # fmt: skip
def test_a_manifest_ferry_cannot_use_is_refused_naming_why(data: bytes, refusal: str) -> None:
    with pytest.raises(InvalidArgument, match=refusal):
        parse_manifest(data)


def test_an_index_gives_the_linux_amd64_manifest_or_dockers_words() -> None:
    entries = [
        {"digest": D1, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": D2, "size": 2, "platform": {"os": "linux", "architecture": "amd64"}},
    ]
    index = json.dumps({"mediaType": DOCKER_LIST, "manifests": entries}).encode()
    assert select_platform(index).digest == D2
    only_arm = json.dumps({"manifests": entries[:1]}).encode()
    with pytest.raises(InvalidArgument, match="no matching manifest for linux/amd64"):
        select_platform(only_arm)


def test_a_config_gives_its_layers_and_its_config_object() -> None:
    doc = {"created": "2026-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
           "config": {"Cmd": ["nginx"]}, "rootfs": {"type": "layers", "diff_ids": [D1, D3]},
           "history": [{"created_by": "x"}]}  # fmt: skip
    config = parse_config(json.dumps(doc).encode())
    assert (config.diff_ids, config.config, config.history[0]["created_by"]) == (
        (D1, D3),
        {"Cmd": ["nginx"]},
        "x",
    )
    with pytest.raises(InvalidArgument, match="rootfs is not of type"):
        parse_config(json.dumps({"rootfs": {"type": "tar"}}).encode())


def test_changes_take_both_forms_of_each_instruction() -> None:
    config = apply_changes(["ENV PATH /usr/bin", "VOLUME [\"/data\", \"/logs\"]", "VOLUME /x",
                            "CMD [\"a\"]", "CMD b c"])  # fmt: skip
    assert config == {"Env": ["PATH=/usr/bin"], "Volumes": {"/data": {}, "/logs": {}, "/x": {}},
                      "Cmd": ["/bin/sh", "-c", "b c"]}  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"^invalid containerPort: http$"):
        apply_changes(["EXPOSE http"])


def test_docker_hub_names_are_looked_for_at_each_mirror_then_at_docker_hub(
    tmp_path: Path,
) -> None:
    settings = RegistrySettings(mirrors=("http://10.30.0.250:5000", "https://mirror.example"))
    client = RegistryClient(Skopeo(tmp_path, settings), tmp_path / "auth.json")
    sources = client.sources(parse_reference("nginx"))
    assert [s.remote for s in sources] == [
        "10.30.0.250:5000/library/nginx:latest",
        "mirror.example/library/nginx:latest",
        "docker.io/library/nginx:latest",
    ]
    other = client.sources(parse_reference("reg.local:5000/app@sha256:" + "a" * 64))
    assert [s.remote for s in other] == ["reg.local:5000/app@sha256:" + "a" * 64]
    assert settings.is_insecure("10.30.0.250:5000") and not settings.is_insecure("mirror.example")


@pytest.mark.parametrize(
    ("domain", "insecure"),
    [("reg.local:5000", True), ("reg.local:5001", False), ("10.40.3.4:5000", True),
     ("localhost:5000", True), ("127.0.0.1:5000", True), ("docker.io", False)],
)  # fmt: skip
def test_insecure_is_as_docker_decides_it(domain: str, insecure: bool) -> None:
    settings = RegistrySettings(insecure=("reg.local:5000", "10.40.0.0/16"))
    assert settings.is_insecure(domain) is insecure


def test_a_mirror_with_a_path_is_refused_with_dockers_words() -> None:
    with pytest.raises(InvalidArgument, match="path, query, or fragment"):
        check_mirror("http://10.30.0.250:5000/v2/")
    assert check_mirror("http://10.30.0.250:5000") == "10.30.0.250:5000"


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("reading manifest latest in 10.1.0.1:5000/x: manifest unknown: manifest unknown",
         NotFound),
        ("(Mirrors also failed: [10.30.0.250:5000/library/nope:latest: name unknown]): "
         "docker.io/library/nope:latest: dial tcp: lookup registry-1.docker.io: no such host",
         NotFound),
        ("pinging container registry 10.1.0.1:5000: dial tcp 10.1.0.1:5000: connect: "
         "connection refused", Unavailable),
        ("reading manifest: unauthorized: authentication required", Forbidden),
    ],
    ids=["manifest unknown", "a mirror without it, Hub unreachable", "refused", "denied"],
)  # fmt: skip
def test_skopeo_errors_become_ferrys_kinds(stderr: str, kind: type[Exception]) -> None:
    error = classify(stderr, "x:latest")
    assert isinstance(error, kind)
    if kind is NotFound:
        assert str(error) == "No such image: x:latest"


def _header(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_x_registry_auth_is_decoded_as_the_docker_cli_sends_it() -> None:
    auth = RegistryAuth.from_header(
        _header({"username": "u", "password": "p~?", "serveraddress": "reg:5000"})
    )
    assert auth == RegistryAuth("u", "p~?", "reg:5000")
    assert RegistryAuth.from_header(_header({})) is None  # the CLI's "no credentials"
    assert RegistryAuth.from_header("") is None
    with pytest.raises(InvalidArgument, match="identity tokens"):
        RegistryAuth.from_header(_header({"identitytoken": "t"}))
    with pytest.raises(InvalidArgument, match="base64url"):
        RegistryAuth.from_header("%%%")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"username": 5, "password": "p"}, "username must be a string, not a number"),
        ({"username": "u", "password": ["p"]}, "password must be a string, not an array"),
        ({"username": "u", "serveraddress": {}}, "serveraddress must be a string, not an obj"),
        ({"auth": True}, "auth must be a string, not a boolean"),
        ({"email": 1.5, "username": "u"}, "email must be a string, not a number"),
        ({"identitytoken": 7}, "identitytoken must be a string"),
    ],
)
def test_x_registry_auth_with_a_field_of_the_wrong_type_is_refused_naming_it(
    doc: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid X-Registry-Auth header: {message}"):
        RegistryAuth.from_header(_header(doc))


def test_x_registry_auth_null_fields_count_as_absent_as_go_decodes_them() -> None:
    assert RegistryAuth.from_header(_header({"username": "u", "password": "p", "email": None}))
    assert RegistryAuth.from_header(_header({"username": None, "password": None})) is None


@pytest.mark.parametrize(
    ("address", "domain"),
    [("", "docker.io"), ("https://index.docker.io/v1/", "docker.io"),
     ("http://reg:5000/", "reg:5000"), ("reg:5000", "reg:5000")],
)  # fmt: skip
def test_login_addresses_name_a_registry(address: str, domain: str) -> None:
    assert server_domain(address) == domain
