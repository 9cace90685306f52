"""``GET /system/df`` (docker system df -v): Docker's DiskUsage shape with Ferry's sizes."""

from __future__ import annotations

from pathlib import Path

from ferry.api.routes.system_df import image_usage, tree_bytes
from ferry.runtime.images import Image
from tests.unit.api_rig import api_client


def _image(image_id: str, layers: dict[str, int]) -> Image:
    return Image(
        name="",
        image_id=image_id,
        created_at="2024-01-01T00:00:00Z",
        size_bytes=sum(layers.values()),
        rootfs=Path("/l"),
        layers=tuple(Path(p) for p in layers),
        layer_sizes=tuple(layers.values()),
    )


def test_a_shared_layer_counts_once_and_is_each_images_shared_size() -> None:
    base = _image("sha256:a", {"/l/base": 100, "/l/app": 5})
    other = _image("sha256:b", {"/l/base": 100, "/l/tool": 7})
    alone = _image("sha256:c", {"/l/solo": 3})
    total, docs = image_usage([base, other, alone], {"sha256:a": 2})
    assert total == 115
    assert [(d["Id"], d["SharedSize"], d["Containers"], d["Size"]) for d in docs] == [
        ("sha256:a", 100, 2, 105),
        ("sha256:b", 100, 0, 107),
        ("sha256:c", 0, 0, 3),
    ]


def test_tree_bytes_counts_regular_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 10)
    (tmp_path / "g").write_bytes(b"y" * 5)
    (tmp_path / "link").symlink_to(tmp_path / "g")
    assert tree_bytes(tmp_path) == 15
    assert tree_bytes(tmp_path / "missing") == 0


async def test_system_df_answers_dockers_shape(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        made = await client.post(
            "/v1.47/containers/create?name=web",
            json={"Image": "tools", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}},
        )
        assert made.status == 201, await made.text()
        assert (await client.post("/v1.47/volumes/create", json={"Name": "data"})).status == 201
        answer = await client.get("/v1.47/system/df")
        assert answer.status == 200
        usage = await answer.json()
        assert set(usage) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
        assert usage["BuildCache"] == []
        assert [i["Containers"] for i in usage["Images"]] == [1]
        [web] = usage["Containers"]
        assert web["Names"] == ["/web"] and web["SizeRw"] == 0
        assert web["SizeRootFs"] == usage["Images"][0]["Size"]
        [data] = usage["Volumes"]
        assert data["Name"] == "data" and data["UsageData"] == {"Size": 0, "RefCount": 0}
        only = await client.get("/v1.47/system/df?type=volume")
        assert set(await only.json()) == {"Volumes"}
        wrong = await client.get("/v1.47/system/df?type=planet")
        assert wrong.status == 400
