"""``--with-registry-auth`` reads the docker client's credentials as the docker CLI does and
sends them in Docker's ``X-Registry-Auth`` shape, which the manager decodes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ferry.cli.registry_auth import DOCKER_HUB, registry_auth_header, registry_of
from ferry.errors import InvalidArgument
from ferry.manager.pinning import decode_auth
from ferry.runtime.images import RegistryAuth


def _config(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_registry_of_an_image_is_dockers() -> None:
    assert registry_of("nginx") == "docker.io"
    assert registry_of("library/nginx:1") == "docker.io"
    assert registry_of("docker.io/library/nginx") == "docker.io"
    assert registry_of("10.30.0.250:5000/ferrylab/tools") == "10.30.0.250:5000"
    assert registry_of("registry.example/app@sha256:" + "0" * 64) == "registry.example"
    assert registry_of("localhost/app") == "localhost"


def test_credentials_docker_login_kept_are_sent_and_decode_on_the_manager(
    tmp_path: Path,
) -> None:
    basic = base64.b64encode(b"ferry:s3:cret").decode()
    hub = base64.b64encode(b"hub:pw").decode()
    path = _config(
        tmp_path, {"auths": {"10.30.0.250:5000": {"auth": basic}, DOCKER_HUB: {"auth": hub}}}
    )
    header = registry_auth_header("10.30.0.250:5000/ferrylab/tools", path)
    assert decode_auth(header) == RegistryAuth("ferry", "s3:cret", "10.30.0.250:5000")
    assert decode_auth(registry_auth_header("nginx", path)) == RegistryAuth("hub", "pw", DOCKER_HUB)


def test_a_registry_without_credentials_is_refused_naming_it(tmp_path: Path) -> None:
    path = _config(tmp_path, {"auths": {}})
    with pytest.raises(InvalidArgument, match=r"no credentials for r\.example in .*docker login"):
        registry_auth_header("r.example/app", path)
    helper = _config(tmp_path, {"auths": {}, "credsStore": "desktop"})
    with pytest.raises(InvalidArgument, match="credential helper"):
        registry_auth_header("r.example/app", helper)
    with pytest.raises(InvalidArgument, match=r"no .*missing\.json"):
        registry_auth_header("nginx", tmp_path / "missing.json")


def test_the_docker_clis_empty_auth_means_none() -> None:
    empty = base64.urlsafe_b64encode(b"{}").decode()
    assert decode_auth(empty) is None
    assert decode_auth("") is None
    with pytest.raises(InvalidArgument, match="not a JSON object"):
        decode_auth(base64.urlsafe_b64encode(b"[1]").decode())
