"""JSON from image archives, registries and X-Registry-Auth is decoded with its shape checked:
deep nesting is a 400 (InvalidArgument), never a RecursionError (a 500 with a traceback)."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.runtime import image_archive
from ferry.runtime.credentials import RegistryAuth, server_domain
from ferry.runtime.images import ImageStore
from ferry.runtime.manifests import loads_object

DEEP = b"[" * 5000 + b"]" * 5000


def test_a_deep_manifest_or_config_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="nested deeper than 32"):
        loads_object(b'{"a": ' + DEEP + b"}", "the manifest")


def test_a_deep_registry_auth_header_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"username": ' + DEEP + b"}").decode()
    with pytest.raises(InvalidArgument, match="nested deeper than 32"):
        RegistryAuth.from_header(header)


def test_a_docker_load_archive_with_a_deep_manifest_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "deep.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(DEEP)
        tar.addfile(info, io.BytesIO(DEEP))
    with pytest.raises(InvalidArgument, match="nested deeper than 32"):
        image_archive.load(ImageStore(tmp_path / "images"), archive, "deep.tar")


@pytest.mark.parametrize("address", ["-v", "--authfile=/tmp/x", "a b", "https://-x/"])
def test_a_registry_address_that_would_be_an_option_is_refused(address: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid registry address"):
        server_domain(address)


@pytest.mark.parametrize(
    ("address", "domain"),
    [("10.0.0.1:5000", "10.0.0.1:5000"), ("http://reg.example:5000/", "reg.example:5000"),
     ("https://index.docker.io/v1/", "docker.io"), ("", "docker.io")],
)  # fmt: skip
def test_registry_addresses_name_their_host(address: str, domain: str) -> None:
    assert server_domain(address) == domain
    assert json.dumps(domain)
