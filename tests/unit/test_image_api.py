"""The image routes answer in Docker's shapes (in-process API, no kernel): list and its
filters, inspect, history, tag, remove, prune, import with changes, save then load."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from ferry.api.routes.images import check_import_platform, host_platform
from ferry.cli import images as cli_images
from ferry.errors import InvalidArgument
from tests.unit.api_rig import Client, api_client

pytestmark = pytest.mark.usefixtures("as_root")
V = "/v1.47"


def _rootfs() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return out.getvalue()


async def _json(client: Client, method: str, path: str, status: int = 200, **kw: Any) -> Any:
    resp = await client.request(method, V + path, **kw)
    body = await resp.read()
    assert resp.status == status, body
    return json.loads(body) if body else None


async def _import(client: Client, name: str, *changes: str) -> str:
    query = urlencode([("fromSrc", "-"), ("repo", name), *(("changes", c) for c in changes)])
    return str((await _json(client, "POST", f"/images/create?{query}", data=_rootfs()))["status"])


async def test_inspect_list_and_history_have_dockers_shapes(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        image_id = await _import(client, "web", 'CMD ["nginx"]', "LABEL tier=front")
        doc = await _json(client, "GET", "/images/web/json")
        assert doc["Id"] == image_id and doc["RepoTags"] == ["web:latest"]
        assert isinstance(doc["Created"], str) and doc["Created"].endswith("Z")
        assert doc["Config"] == {"Cmd": ["nginx"], "Labels": {"tier": "front"}}
        assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
        assert (doc["Size"], doc["Os"], doc["Architecture"]) == (2, "linux", "amd64")
        listed = await _json(client, "GET", "/images/json")
        assert {i["RepoTags"][0] for i in listed} == {"web:latest", "tools:latest"}
        assert all(isinstance(i["Created"], int) for i in listed)
        (history,) = await _json(client, "GET", "/images/web/history")
        assert (history["Id"], history["Tags"], history["Size"]) == (image_id, ["web:latest"], 2)
        assert history["Comment"] == "Imported from -"


async def test_list_filters_are_dockers_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        await _import(client, "web", "LABEL tier=front")
        await _import(client, "me/app")

        async def tags(**filters: list[str]) -> set[str]:
            query = urlencode({"filters": json.dumps(filters)})
            return {t for i in await _json(client, "GET", f"/images/json?{query}")
                    for t in i["RepoTags"] or ["<none>"]}  # fmt: skip

        assert await tags(label=["tier=front"]) == {"web:latest"}
        assert await tags(reference=["me/*"]) == {"me/app:latest"}
        assert await tags(reference=["web:latest"]) == {"web:latest"}
        assert await tags(dangling=["true"]) == set()
        resp = await client.get(V + "/images/json?" + urlencode({"filters": '{"x": ["1"]}'}))
        assert resp.status == 400 and "invalid filter 'x'" in (await resp.json())["message"]


async def test_a_reference_filter_lists_an_image_once_with_only_its_matching_tags(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        image_id = await _import(client, "a")
        assert (await client.post(V + "/images/a/tag?repo=b&tag=2")).status == 201
        assert (await client.post(V + "/images/a/tag?repo=me/a&tag=1")).status == 201

        async def listed(*patterns: str) -> list[list[str]]:
            query = urlencode({"filters": json.dumps({"reference": list(patterns)})})
            found = await _json(client, "GET", f"/images/json?{query}")
            return [i["RepoTags"] for i in found if i["Id"] == image_id]

        assert await listed() == [["a:latest", "b:2", "me/a:1"]]
        assert await listed("a") == [["a:latest"]]
        assert await listed("b:*") == [["b:2"]]
        assert await listed("a", "b") == [["a:latest", "b:2"]]
        assert await listed("*/a") == [["me/a:1"]]  # "*" stops at "/", as Go's path.Match
        assert await listed("*") == [["a:latest", "b:2"]]
        assert await listed("[ab]:[^l]*") == [["b:2"]]
        assert await listed("c") == []
        query = urlencode({"filters": json.dumps({"reference": ["a["]})})
        refused = await _json(client, "GET", f"/images/json?{query}", status=400)
        assert refused["message"] == "invalid reference filter 'a[': syntax error in pattern"


async def test_tag_then_remove_untags_then_deletes(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        image_id = await _import(client, "web")
        resp = await client.post(V + "/images/web/tag?repo=localhost:5000/web&tag=v1")
        assert resp.status == 201
        gone = await _json(client, "DELETE", "/images/localhost:5000/web:v1")
        assert gone == [{"Untagged": "localhost:5000/web:v1"}]
        gone = await _json(client, "DELETE", "/images/web")
        assert gone == [{"Untagged": "web:latest"}, {"Deleted": image_id}]
        missing = await _json(client, "GET", "/images/web/json", status=404)
        assert missing["message"] == "No such image: web"


async def test_prune_removes_dangling_images_and_all_unused_with_dangling_false(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        first = await _import(client, "web", "ENV A=1")
        await _import(client, "web", "ENV A=2")  # takes the tag: the first is dangling
        listed = await _json(client, "GET", "/images/json")
        assert [i["RepoTags"] for i in listed if i["Id"] == first] == [[]]
        pruned = await _json(client, "POST", "/images/prune")
        assert pruned["ImagesDeleted"] == [{"Deleted": first}]
        query = urlencode({"filters": json.dumps({"dangling": ["false"]})})
        pruned = await _json(client, "POST", f"/images/prune?{query}")
        assert {"Untagged": "web:latest"} in pruned["ImagesDeleted"]
        assert await _json(client, "GET", "/images/json") == []


async def test_prune_keeps_the_images_a_negated_label_names(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        kept = await _import(client, "keep", "LABEL pin=yes")
        other = await _import(client, "junk", "LABEL pin=no")
        query = urlencode({"filters": json.dumps({"dangling": ["false"], "label!": ["pin=yes"]})})
        pruned = await _json(client, "POST", f"/images/prune?{query}")
        assert {"Deleted": other} in pruned["ImagesDeleted"]
        assert [i["Id"] for i in await _json(client, "GET", "/images/json")] == [kept]


async def test_save_then_load_gives_the_same_image(tmp_path: Path) -> None:
    async with api_client(tmp_path / "a") as client:
        image_id = await _import(client, "web", 'CMD ["x"]')
        resp = await client.get(V + "/images/get?names=web")
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-tar"
        archive = await resp.read()
    async with api_client(tmp_path / "b") as client:
        resp = await client.post(V + "/images/load?quiet=1", data=archive)
        lines = [json.loads(line) for line in (await resp.read()).splitlines() if line]
        assert lines == [{"stream": "Loaded image: web:latest\n"}]
        assert (await _json(client, "GET", "/images/web/json"))["Id"] == image_id


async def test_a_pull_of_every_tag_is_refused_by_name(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        refused = await _json(client, "POST", "/images/create?fromImage=nginx", status=400)
        assert refused["message"] == "pulling every tag of nginx is not supported: name a tag"


async def test_a_pull_with_a_wrongly_typed_registry_auth_is_a_400_naming_the_field(
    tmp_path: Path,
) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"username": 5}).encode()).decode()
    async with api_client(tmp_path) as client:
        for method, path in (
            ("POST", "/images/create?fromImage=nginx&tag=1"),
            ("POST", "/images/nginx/push"),
            ("GET", "/distribution/nginx/json"),
        ):
            refused = await _json(
                client, method, path, status=400, headers={"X-Registry-Auth": header}
            )
            assert refused["message"] == (
                "invalid X-Registry-Auth header: username must be a string, not a number"
            ), path


async def test_search_is_refused_in_one_line_saying_there_is_no_index(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        refused = await _json(client, "GET", "/images/search?term=nginx&limit=5", status=400)
        assert refused["message"] == (
            "cannot search for 'nginx': Ferry has no image index to search (docker search asks "
            "Docker Hub's); name the image with its registry and pull it"
        )


async def test_auth_takes_strings_only(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        body = {"username": "u", "password": {"": []}}
        refused = await _json(client, "POST", "/auth", status=400, json=body)
        assert refused["message"] == "password in /auth must be a string"


async def _create(client: Client, query: list[tuple[str, str]], status: int, **kw: Any) -> Any:
    return await _json(client, "POST", f"/images/create?{urlencode(query)}", status, **kw)


async def test_an_import_message_is_the_history_comment_in_place_of_imported_from(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        query = [("fromSrc", "-"), ("repo", "web"), ("tag", ""), ("message", "base of v2")]
        image_id = (await _create(client, query, 200, data=_rootfs()))["status"]
        (history,) = await _json(client, "GET", "/images/web/history")
        assert (history["Id"], history["Comment"]) == (image_id, "base of v2")
        assert (await _json(client, "GET", "/images/web/json"))["Comment"] == "base of v2"
        # the docker CLI sends message= when -m is not given: Docker's default comment
        query = [("fromSrc", "-"), ("repo", "plain"), ("message", "")]
        await _create(client, query, 200, data=_rootfs())
        (history,) = await _json(client, "GET", "/images/plain/history")
        assert history["Comment"] == "Imported from -"


async def test_an_import_for_this_host_s_platform_is_taken_and_any_other_refused(
    tmp_path: Path,
) -> None:
    here = host_platform()
    async with api_client(tmp_path) as client:
        for value in (here, here.upper(), "linux", here.split("/")[1]):
            query = [("fromSrc", "-"), ("repo", "web"), ("platform", value)]
            await _create(client, query, 200, data=_rootfs())
        doc = await _json(client, "GET", "/images/web/json")
        assert f"{doc['Os']}/{doc['Architecture']}" == here
        for value in ("linux/s390x", "windows", "windows/amd64", f"{here}/v9", "a/b/c/d"):
            query = [("fromSrc", "-"), ("repo", "web"), ("platform", value)]
            refused = await _create(client, query, 400, data=_rootfs())
            assert refused["message"] == (
                f"platform {value!r} is not supported: Ferry imports images for this host's "
                f"platform, {here}"
            )


IMPORT = [("fromSrc", "-"), ("repo", "web")]
PULL = [("fromImage", "nginx"), ("tag", "1")]


@pytest.mark.parametrize(
    ("base", "extra", "verb"),
    [
        (IMPORT, ("squash", "1"), "an import (fromSrc)"),
        (PULL, ("message", "x"), "a pull (fromImage)"),
        (PULL, ("changes", "CMD x"), "a pull (fromImage)"),
        (PULL, ("repo", "web"), "a pull (fromImage)"),
        (PULL, ("fromSrc", "-"), "a pull (fromImage)"),
        (PULL, ("squash", "1"), "a pull (fromImage)"),
    ],
)
async def test_a_create_parameter_the_verb_does_not_take_is_refused_by_name(
    tmp_path: Path, base: list[tuple[str, str]], extra: tuple[str, str], verb: str
) -> None:
    async with api_client(tmp_path) as client:
        refused = await _create(client, [*base, extra], 400, data=_rootfs())
        assert refused["message"].startswith(f"{extra[0]} is not a parameter of {verb}: ")


async def test_an_import_change_docker_refuses_is_a_400_in_docker_s_words(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        for change, message in (
            ("EXPOSE 99999", "invalid containerPort: 99999"),
            ("EXPOSE 80/foo", "invalid proto: foo"),
            ("STOPSIGNAL SIGFOO", "invalid signal: SIGFOO"),
        ):
            query = [("fromSrc", "-"), ("repo", "web"), ("changes", change)]
            assert (await _create(client, query, 400, data=_rootfs()))["message"] == message
        assert [i["RepoTags"] for i in await _json(client, "GET", "/images/json")] == [
            ["tools:latest"]
        ]


async def test_a_message_for_an_imported_save_archive_is_refused(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        await _import(client, "web")
        archive = await (await client.get(V + "/images/get?names=web")).read()
        query = [("fromSrc", "-"), ("repo", "copy"), ("message", "m")]
        refused = await _create(client, query, 400, data=archive)
        assert "keeps its own history: a commit message (-m) applies" in refused["message"]


@pytest.mark.parametrize(
    ("machine", "taken", "refused"),
    [
        ("x86_64", ["linux/amd64", "LINUX/X86_64", "amd64", "linux", "x86_64"], "linux/arm64"),
        ("aarch64", ["linux/arm64", "arm64", "linux/aarch64"], "linux/amd64"),
    ],
)
def test_an_import_platform_is_this_host_s_in_any_of_containerd_s_spellings(
    machine: str, taken: list[str], refused: str
) -> None:
    for value in taken:
        check_import_platform(value, machine)
    with pytest.raises(InvalidArgument, match=f"^platform '{refused}' is not supported"):
        check_import_platform(refused, machine)


def test_the_cli_import_sends_its_message_and_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    class Api:
        def upload(self, path: str, body: Any) -> Any:
            sent.append(path)
            return {"status": "sha256:1"}

    monkeypatch.setattr(cli_images, "client", lambda _: Api())
    (tmp_path / "root.tar").write_bytes(_rootfs())
    cli_images.import_(tmp_path / "root.tar", "web:1", ["CMD x"], "first", "linux/amd64")
    path, _, query = sent[0].partition("?")
    assert (path, parse_qsl(query)) == (
        "/images/create",
        [("fromSrc", "-"), ("repo", "web"), ("tag", "1"), ("changes", "CMD x"),
         ("message", "first"), ("platform", "linux/amd64")],
    )  # fmt: skip


async def test_an_import_from_a_url_is_refused_as_such(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        query = [("fromSrc", "http://10.0.0.9/rootfs.tar"), ("repo", "web")]
        answer = await _create(client, query, 400)
        assert "importing from a URL is not supported" in answer["message"]
