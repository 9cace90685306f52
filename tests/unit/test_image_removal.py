"""docker rmi by Docker's rules (daemon/images/image_delete.go): a running container's image
is untagged by ``rmi -f NAME`` and stays, dangling, for it; containers are pinned to their
image's id at create, so a container keeps its image whatever its name tags later."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ferry.agent.containers import CreateRequest
from ferry.errors import Conflict
from ferry.model.image_removal import ImageUser, Removal, plan_removal, single_reference
from tests.unit.api_rig import Client, api_client
from tests.unit.test_reserved_ports import containers

pytestmark = pytest.mark.usefixtures("as_root")
V = "/v1.47"
ID = "sha256:" + "c" * 64
D1 = "sha256:" + "d" * 64
RUNNING, STOPPED = ImageUser("a" * 64, running=True), ImageUser("b" * 64, running=False)


def plan(ref: str | None, tags: list[str], users: list[ImageUser], force: bool,
         digests: tuple[str, ...] = ()) -> Removal:  # fmt: skip
    return plan_removal(ID, ref, tags=tags, digests=digests, users=users, force=force)


def test_rmi_f_of_a_running_containers_image_untags_it_and_keeps_the_image() -> None:
    removal = plan("web:latest", ["web:latest"], [RUNNING], force=True)
    assert removal.records() == [{"Untagged": "web:latest"}]
    assert not removal.delete


def test_rmi_without_f_of_a_containers_only_reference_is_dockers_conflict() -> None:
    for user in (RUNNING, STOPPED):
        with pytest.raises(Conflict) as refused:
            plan_removal(ID, "web:latest", tags=["web:latest"], digests=(), users=[user],
                         force=False, typed="web")  # fmt: skip
        assert str(refused.value) == (
            'conflict: unable to remove repository reference "web" (must force) - container '
            f"{user.container_id[:12]} is using its referenced image cccccccccccc"
        )


def test_one_tag_of_several_is_untagged_whoever_uses_the_image() -> None:
    removal = plan("a:1", ["a:1", "b:2"], [RUNNING], force=False)
    assert removal.records() == [{"Untagged": "a:1"}]


def test_a_repositorys_last_tag_takes_its_digests_and_an_unused_image_along() -> None:
    digests = (f"web@{D1}", f"cache@{D1}")
    removal = plan("web:1", ["web:1"], [], force=False, digests=digests)
    assert removal.records() == [{"Untagged": "web:1"}, {"Untagged": f"web@{D1}"}]
    assert not removal.delete  # cache@… still names it
    gone = plan("web:1", ["web:1"], [], force=False, digests=(f"web@{D1}",))
    assert gone.records() == [{"Untagged": "web:1"}, {"Untagged": f"web@{D1}"}, {"Deleted": ID}]
    by_digest = plan(f"web@{D1}", ["web:1"], [], force=False, digests=(f"web@{D1}",))
    assert by_digest.records() == [{"Untagged": f"web@{D1}"}]


@pytest.mark.parametrize("force", [False, True])
def test_an_id_of_a_running_containers_image_cannot_be_forced(force: bool) -> None:
    with pytest.raises(Conflict, match=(
        r"^conflict: unable to delete cccccccccccc \(cannot be forced\) - image is being used "
        r"by running container aaaaaaaaaaaa$"
    )):  # fmt: skip
        plan(None, ["web:latest"], [STOPPED, RUNNING], force=force)


def test_an_id_without_f_refuses_a_stopped_containers_image_and_several_repositories() -> None:
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped "
                                       r"container bbbbbbbbbbbb$"):  # fmt: skip
        plan(None, ["web:latest"], [STOPPED], force=False)
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is referenced in multiple"):
        plan(None, ["a:1", "b:1"], [], force=False)


def test_an_id_deletes_with_every_reference_and_keeps_a_stopped_containers_image() -> None:
    removal = plan(None, ["a:1", "b:1"], [], force=True, digests=(f"a@{D1}",))
    assert removal.records() == [
        {"Untagged": "a:1"}, {"Untagged": "b:1"}, {"Untagged": f"a@{D1}"}, {"Deleted": ID},
    ]  # fmt: skip
    kept = plan(None, ["a:1"], [STOPPED], force=True)
    assert kept.records() == [{"Untagged": "a:1"}]
    with pytest.raises(Conflict, match="remove the container first"):
        plan(None, [], [STOPPED], force=True)


def test_a_single_reference_is_one_tag_and_digests_of_its_repository() -> None:
    assert single_reference(["a:1"], [f"a@{D1}"])
    assert not single_reference(["a:1"], [f"b@{D1}"])
    assert not single_reference(["a:1", "a:2"], [])
    assert single_reference([], [f"a@{D1}", f"a@{ID}"])
    assert not single_reference([], [])


# through the API: a stopped container (the rig runs nothing) ---------------------------------
def _rootfs(motd: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = len(motd)
        tar.addfile(info, io.BytesIO(motd))
    return out.getvalue()


async def _call(client: Client, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    resp = await client.request(method, V + path, **kw)
    body = await resp.read()
    assert resp.status == status, body
    return json.loads(body) if body else None


async def _import(client: Client, motd: bytes) -> str:
    query = urlencode({"fromSrc": "-", "repo": "web"})
    found = await _call(client, "POST", f"/images/create?{query}", data=_rootfs(motd))
    return str(found["status"])


async def test_a_container_keeps_its_image_by_id_through_rmi_f_and_a_moved_tag(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        first = await _import(client, b"1")
        body = {"Image": "web", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
        cid = (await _call(client, "POST", "/containers/create?name=cc", 201, json=body))["Id"]
        refused = await _call(client, "DELETE", "/images/web", 409)
        assert refused["message"] == (
            f'conflict: unable to remove repository reference "web" (must force) - container '
            f"{cid[:12]} is using its referenced image {first[7:19]}"
        )
        assert await _call(client, "DELETE", "/images/web?force=1") == [{"Untagged": "web:latest"}]
        listed = await _call(client, "GET", "/images/json")
        assert [i["RepoTags"] for i in listed if i["Id"] == first] == [[]]  # dangling, kept
        second = await _import(client, b"2")  # "web" now tags another image
        doc = await _call(client, "GET", "/containers/cc/json")
        assert (doc["Image"], doc["Config"]["Image"]) == (first, "web:latest")
        (ps,) = await _call(client, "GET", "/containers/json?all=1")
        assert (ps["Image"], ps["ImageID"]) == (first, first)
        pruned = await _call(client, "POST", "/images/prune")
        assert pruned["ImagesDeleted"] is None  # the container's image is not dangling-unused
        refused = await _call(client, "DELETE", f"/images/{first[7:19]}", 409)
        assert refused["message"].endswith(f"being used by stopped container {cid[:12]}")
        await _call(client, "DELETE", "/containers/cc", 204)
        pruned = await _call(client, "POST", "/images/prune")
        assert pruned["ImagesDeleted"] == [{"Deleted": first}]
        assert (await _call(client, "GET", "/images/web/json"))["Id"] == second


async def test_a_container_lists_under_its_name_while_the_name_still_tags_its_image(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        image_id = await _import(client, b"1")
        body = {"Image": "web", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
        await _call(client, "POST", "/containers/create", 201, json=body)
        (ps,) = await _call(client, "GET", "/containers/json?all=1")
        assert (ps["Image"], ps["ImageID"]) == ("web:latest", image_id)


async def test_a_containers_image_is_the_one_it_was_created_from(tmp_path: Path) -> None:
    service = containers(tmp_path)
    created = await service.create(CreateRequest(image="tools", cmd=("true",)))
    pinned = service.images.get("tools").image_id
    assert created.config.image_id == pinned
    service.images.tag("tools", "old:1")
    (tmp_path / "empty.tar").write_bytes(_rootfs(b"new"))
    service.images.import_tar(tmp_path / "empty.tar", "tools")  # the name moves on
    assert service.images.get("tools").image_id != pinned
    assert service.image_of(created.config).image_id == pinned


def test_ferry_ps_shows_a_containers_image_id_short_as_the_docker_cli_does() -> None:
    from ferry.cli.containers import _image_column

    assert _image_column({"Image": ID, "ImageID": ID}) == "c" * 12
    assert _image_column({"Image": "web:latest", "ImageID": ID}) == "web:latest"
    assert _image_column({"Image": "web:latest"}) == "web:latest"  # an older ferryd's
