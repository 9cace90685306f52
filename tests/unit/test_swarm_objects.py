"""Swarm secrets and configs: Docker's rules (names, sizes, filters, what an update may change),
a secret's data sealed in the store and opened after a KEK rotation, and the API's shapes."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ferry.api import params
from ferry.api.routes.secrets import SwarmObjectRoutes
from ferry.api.server import make_app
from ferry.cli.secrets import pretty
from ferry.errors import Conflict, InvalidArgument, NotFound, SwarmLocked
from ferry.manager import sealing
from ferry.manager.secrets import ObjectOps
from ferry.manager.store import Put, keys
from ferry.manager.vault import Vault
from ferry.model.codec import encode
from ferry.model.filters import matches
from ferry.model.swarm_objects import (
    LIST_FILTERS,
    Kind,
    SwarmObject,
    check_data,
    check_name,
    check_unhonoured,
    check_update,
    list_rules,
)
from tests.unit.conftest import ManagerRig

PLAIN = b"s3cr3t-plaintext-value"


def ops(rig: ManagerRig, kind: Kind, vault: Vault | None = None) -> ObjectOps:
    return ObjectOps(
        kind,
        store=rig.store,
        view=rig.view,
        feed=rig.feed,
        vault=vault or rig.vault,
        cluster_secrets=rig.nodes.secrets,
    )


@pytest.mark.parametrize("name", ["a", "db-pass", "app.conf", "a_b.c-d", "x" * 64, "9"])
def test_docker_s_names_are_taken(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", ".a", "a b", "a/b", "x" * 65, "é"])
def test_other_names_are_refused_in_swarmkit_s_words(name: str) -> None:
    with pytest.raises(InvalidArgument, match="code = InvalidArgument desc = invalid name"):
        check_name(name)


def test_data_is_one_byte_to_under_500_kib() -> None:
    assert check_data(Kind.SECRET, b"x" * (500 * 1024 - 1))
    for size in (0, 500 * 1024):
        with pytest.raises(InvalidArgument, match="secret data must be larger than 0"):
            check_data(Kind.SECRET, b"x" * size)
    with pytest.raises(InvalidArgument, match="config data must be"):
        check_data(Kind.CONFIG, b"")


def test_a_driver_or_templating_is_refused_by_name_and_empty_ones_pass() -> None:
    check_unhonoured({"Driver": None, "Templating": {}})
    with pytest.raises(InvalidArgument, match=r"^Driver is not supported"):
        check_unhonoured({"Driver": {"Name": "vault"}})
    with pytest.raises(InvalidArgument, match=r"^Templating is not supported"):
        check_unhonoured({"Templating": {"Name": "golang"}})


def test_only_labels_may_change() -> None:
    config = SwarmObject("c1", "app", base64.b64encode(b"v1").decode())
    check_update(config, "app", None, b"v1")
    check_update(config, "app", b"v1", b"v1")  # the same data, sent back (stack deploy)
    for name, data in (("app", b"v2"), ("app2", None), ("app", b"")):
        with pytest.raises(InvalidArgument, match="only updates to Labels are allowed"):
            check_update(config, name, data, b"v1")


async def test_a_secret_s_update_compares_its_opened_data(rig: ManagerRig) -> None:
    secrets = ops(rig, Kind.SECRET)
    made = await secrets.create("db", PLAIN, {})
    relabelled = await secrets.update("db", secrets.version(made), "db", PLAIN, {"a": "b"})
    assert relabelled.labels == {"a": "b"}
    with pytest.raises(InvalidArgument, match="only updates to Labels are allowed"):
        await secrets.update("db", secrets.version(relabelled), "db", b"other", {})


def test_list_filters_match_as_swarmkit_matches_them() -> None:
    obj = SwarmObject("abc123", "db-pass", "x", {"env": "prod", "team": ""})

    def listed(**filters: list[str]) -> bool:
        return matches(filters, list_rules(obj))

    assert listed(id=["abc"]) and not listed(id=["bc"])
    assert listed(name=["db"]) and not listed(name=["pass"])  # a prefix
    assert listed(names=["db-pass"]) and not listed(names=["db"])  # exact names
    assert listed(label=["env=prod", "team"]) and not listed(label=["env=dev"])
    assert listed(names=["other", "db-pass"])  # alternatives of one key
    with pytest.raises(InvalidArgument, match="invalid filter 'driver'"):
        params.filters({"filters": '{"driver": ["x"]}'}, LIST_FILTERS)


async def test_a_secret_is_sealed_in_the_store_and_bound_to_its_id(rig: ManagerRig) -> None:
    secrets = ops(rig, Kind.SECRET)
    made = await secrets.create("db", PLAIN, {"a": "b"})
    raw = b"".join(entry.raw for entry in rig.mirror.entries(keys.ROOT))
    assert PLAIN not in raw and base64.b64encode(PLAIN) not in raw
    assert made.data.startswith(sealing.SEALED_PREFIX)
    assert secrets.secret_data(secrets.find("db")) == PLAIN
    # the data key is sealed with the KEK, as the CA keys are
    cluster, _ = await rig.nodes.secrets()
    assert cluster.data_key_sealed.startswith(sealing.SEALED_PREFIX)
    copied = replace(made, obj_id="another")  # a sealed value moved under another secret
    with pytest.raises(sealing.WrongUnlockKey):
        secrets.secret_data(copied)
    # the data key is made once, not per secret
    await secrets.create("db2", PLAIN, {})
    assert (await rig.nodes.secrets())[0].data_key_sealed == cluster.data_key_sealed


async def test_a_kek_rotation_reseals_the_data_key_and_secrets_still_open(
    rig: ManagerRig,
) -> None:
    secrets = ops(rig, Kind.SECRET)
    made = await secrets.create("db", PLAIN, {})
    before, _ = await rig.nodes.secrets()
    await rig.keys.rotate()
    after, _ = await rig.nodes.secrets()
    assert after.kek_id != before.kek_id and after.data_key_sealed != before.data_key_sealed
    assert secrets.secret_data(made) == PLAIN


async def test_a_locked_manager_makes_no_secret(rig: ManagerRig, tmp_path: Path) -> None:
    locked = Vault(tmp_path / "none")
    with pytest.raises(SwarmLocked):
        await ops(rig, Kind.SECRET, locked).create("db", PLAIN, {})
    await ops(rig, Kind.CONFIG, locked).create("app", PLAIN, {})  # configs are not sealed


async def test_names_are_unique_and_free_again_after_removal(rig: ManagerRig) -> None:
    configs = ops(rig, Kind.CONFIG)
    made = await configs.create("app", b"v1", {})
    with pytest.raises(Conflict, match="code = AlreadyExists desc = config app already exists"):
        await configs.create("app", b"v2", {})
    # a name key held (another manager's create the mirror has not seen) also refuses it
    rev = await rig.store.commit([Put(keys.CONFIG_NAMES + "raced", encode("zzz"))])
    assert rev is not None
    with pytest.raises(Conflict, match="already exists"):
        await configs.create("raced", b"v", {})
    await ops(rig, Kind.SECRET).create("app", b"v1", {})  # another kind, another namespace
    assert configs.find(made.obj_id[:5]) == made
    await configs.remove("app")
    with pytest.raises(NotFound, match=r"^config app not found$"):
        configs.find("app")
    await configs.create("app", b"v3", {})


async def test_an_update_changes_labels_at_the_version_inspected(rig: ManagerRig) -> None:
    configs = ops(rig, Kind.CONFIG)
    made = await configs.create("app", b"v1", {"a": "1"})
    version = configs.version(made)
    updated = await configs.update("app", version, "app", b"v1", {"b": "2"})
    assert configs.find("app").labels == {"b": "2"} == updated.labels
    with pytest.raises(Conflict, match="update out of sequence"):
        await configs.update("app", version, "app", None, {"c": "3"})
    with pytest.raises(InvalidArgument, match="only updates to Labels"):
        await configs.update("app", configs.version(updated), "app", b"v2", {})


# the API -----------------------------------------------------------------------------------
class _Swarm:
    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def require_manager(self) -> Any:
        return self.manager


async def test_the_api_speaks_docker_s_shapes_and_never_shows_a_secret(rig: ManagerRig) -> None:
    manager = SimpleNamespace(swarm_secrets=ops(rig, Kind.SECRET), configs=ops(rig, Kind.CONFIG))
    app = make_app()
    for kind in (Kind.SECRET, Kind.CONFIG):
        SwarmObjectRoutes(kind, _Swarm(manager)).register(app)  # type: ignore[arg-type]
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        data = base64.b64encode(PLAIN).decode()
        made = await client.post(
            "/v1.47/secrets/create", json={"Name": "db", "Labels": {"k": "v"}, "Data": data}
        )
        assert made.status == 201
        secret_id = (await made.json())["ID"]
        shown = await (await client.get(f"/secrets/{secret_id[:6]}")).json()
        assert shown["Spec"] == {"Name": "db", "Labels": {"k": "v"}}
        assert shown["Version"]["Index"] > 0 and shown["CreatedAt"].endswith("Z")
        listed = await client.get("/secrets", params={"filters": '{"names":["db"]}'})
        assert [s["ID"] for s in await listed.json()] == [secret_id]
        assert data not in await (await client.get("/secrets")).text()
        dup = await client.post("/secrets/create", json={"Name": "db", "Data": data})
        assert dup.status == 409
        driver = {"Name": "db2", "Data": data, "Driver": {"Name": "vault"}}
        refused = await client.post("/secrets/create", json=driver)
        assert refused.status == 400 and "Driver" in (await refused.json())["message"]
        other = base64.b64encode(b"another value").decode()
        changed = await client.post(
            f"/secrets/db/update?version={shown['Version']['Index']}",
            json={"Name": "db", "Data": other},
        )
        assert changed.status == 400
        assert "only updates to Labels are allowed" in (await changed.json())["message"]
        made = await client.post("/configs/create", json={"Name": "app", "Data": data})
        config = await (await client.get("/configs/app")).json()
        assert config["Spec"]["Data"] == data  # a config shows its data, as Docker's does
        unknown = await client.get("/configs", params={"filters": '{"driver":["x"]}'})
        assert unknown.status == 400
        assert (await client.delete("/secrets/db")).status == 204
        assert (await client.delete("/secrets/db")).status == 404
    finally:
        await client.close()


def test_inspect_pretty_is_docker_s_layout() -> None:
    obj = {
        "ID": "abc",
        "CreatedAt": "2026-11-30T16:00:00.123456Z",
        "UpdatedAt": "2026-11-30T16:00:00.123456Z",
        "Spec": {"Name": "app", "Labels": {"env": "prod", "flag": ""}},
    }
    assert pretty("secret", obj).splitlines() == [
        "ID:              abc",
        "Name:              app",
        "Labels:",
        " - env=prod",
        " - flag",
        "Driver:            ",
        "Created at:        2026-11-30 16:00:00.123456 +0000 UTC",
        "Updated at:        2026-11-30 16:00:00.123456 +0000 UTC",
    ]
    obj["Spec"] = {"Name": "app", "Labels": {}, "Data": base64.b64encode(b"a=1\n").decode()}
    assert pretty("config", obj).endswith("UTC\nData:\na=1\n")
