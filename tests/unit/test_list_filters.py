"""Docker's list filters: the matching rules (ferry.model.filters), then each list endpoint
through the whole local API (in-process, no kernel) honouring its keys and refusing others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ferry.errors import InvalidArgument
from ferry.model import filters as f
from tests.unit.api_rig import Client, api_client

NO_NET = {"NetworkMode": "none"}  # the rig has no default bridge network


def test_a_name_pattern_matches_exactly_or_as_a_regular_expression_found_anywhere() -> None:
    assert f.pattern(["web"], "/my-web-1")
    assert f.pattern(["^/web$"], "/web")
    assert not f.pattern(["^web"], "/web")
    assert not f.pattern(["[oops"], "[oops-not-exact")  # an invalid expression matches nothing
    assert f.pattern(["[oops"], "[oops")  # but an exact one does


def test_swarm_names_and_ids_match_by_prefix() -> None:
    assert f.prefix(["we"], "web")
    assert not f.prefix(["eb"], "web")


def test_labels_need_every_key_and_every_key_value() -> None:
    have = {"tier": "db", "team": ""}
    assert f.labels(["tier", "team="], have)
    assert f.labels(["tier=db"], have)
    assert not f.labels(["tier=web"], have)
    assert not f.labels(["tier", "zone"], have)
    assert f.no_labels(["zone", "tier=web"], have)
    assert not f.no_labels(["zone", "tier"], have)


def test_a_boolean_filter_takes_true_false_1_or_0_once() -> None:
    assert f.flag({"dangling": ["1"]}, "dangling") is True
    assert f.flag({"dangling": ["false"]}, "dangling") is False
    assert f.flag({}, "dangling") is None
    with pytest.raises(InvalidArgument, match="invalid value for filter 'dangling'"):
        f.flag({"dangling": ["yes"]}, "dangling")
    with pytest.raises(InvalidArgument, match='more than one value for filter key "dangling"'):
        f.flag({"dangling": ["1", "0"]}, "dangling")


def test_port_filters_take_ports_and_ranges_with_tcp_by_default() -> None:
    ranges = f.port_ranges({"publish": ["80", "8000-8080/udp"]}, "publish")
    assert ranges == [(80, 80, "tcp"), (8000, 8080, "udp")]
    assert f.in_ranges(ranges, [(8001, "udp")])
    assert not f.in_ranges(ranges, [(8001, "tcp")])
    with pytest.raises(InvalidArgument, match="invalid filter 'publish=90-80'"):
        f.port_ranges({"publish": ["90-80"]}, "publish")


def test_until_takes_a_duration_a_unix_time_or_rfc3339() -> None:
    assert f.until_s("1700000000") == 1700000000.0
    assert f.until_s("2023-11-14T22:13:20Z") == 1700000000.0
    with pytest.raises(InvalidArgument, match="invalid filter 'until=soon'"):
        f.until_s("soon")


def test_matches_wants_a_rule_for_every_key() -> None:
    assert f.matches({"name": ["a"]}, {"name": lambda v: "a" in v})
    with pytest.raises(KeyError):
        f.matches({"bogus": ["a"]}, {"name": lambda v: True})


# through the API -----------------------------------------------------------------------------
def _q(filters: dict[str, list[str]]) -> str:
    return "filters=" + quote(json.dumps(filters))


async def _create(client: Client, name: str, **body: Any) -> str:
    created = await client.post(
        f"/v1.47/containers/create?name={name}",
        json={"Image": "tools", "Cmd": ["true"], "HostConfig": NO_NET, **body},
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["Id"])


async def _names(client: Client, filters: dict[str, list[str]], all_: bool = True) -> list[str]:
    answer = await client.get(f"/v1.47/containers/json?all={int(all_)}&{_q(filters)}")
    assert answer.status == 200, await answer.text()
    return sorted(c["Names"][0] for c in await answer.json())


async def _refusal(client: Client, method: str, path: str) -> str:
    answer = await client.request(method, path)
    assert answer.status == 400, await answer.text()
    return str((await answer.json())["message"])


async def test_container_list_honours_each_docker_filter(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        web_id = await _create(client, "web-1", Labels={"tier": "front"})
        await _create(client, "db", Labels={"tier": "back"}, ExposedPorts={"5432/tcp": {}})
        assert await _names(client, {"name": ["web"]}) == ["/web-1"]
        assert await _names(client, {"name": ["^/d"]}) == ["/db"]
        assert await _names(client, {"id": [web_id[:8]]}) == ["/web-1"]
        assert await _names(client, {"label": ["tier=back"]}) == ["/db"]
        assert await _names(client, {"label": ["tier"]}) == ["/db", "/web-1"]
        assert await _names(client, {"ancestor": ["tools"]}) == ["/db", "/web-1"]
        assert await _names(client, {"ancestor": ["nothing-here"]}) == []
        assert await _names(client, {"health": ["none"]}) == ["/db", "/web-1"]
        assert await _names(client, {"exited": ["0"]}) == []  # never ran
        assert await _names(client, {"is-task": ["false"]}) == ["/db", "/web-1"]
        assert await _names(client, {"is-task": ["true"]}) == []
        assert await _names(client, {"expose": ["5000-6000"]}) == ["/db"]
        assert await _names(client, {"since": ["web-1"]}) == ["/db"]
        assert await _names(client, {"before": ["db"]}) == ["/web-1"]
        # a status filter lists stopped containers without all (Docker's foldFilter)
        assert await _names(client, {"status": ["created"]}, all_=False) == ["/db", "/web-1"]


async def test_the_since_and_before_query_parameters_filter_as_the_filters_do(
    tmp_path: Path,
) -> None:
    # docker-py's containers.list(since=..., before=...) sends them as query parameters,
    # which moby's getContainersJSON reads into ListOptions.Since/Before
    async with api_client(tmp_path) as client:
        await _create(client, "web-1")
        await _create(client, "db")
        await _create(client, "cache")
        listed = await client.get("/v1.47/containers/json?all=1&since=web-1&before=cache")
        assert [c["Names"] for c in await listed.json()] == [["/db"]]
        since = await client.get("/v1.47/containers/json?since=db")  # implies all, as Docker
        assert [c["Names"] for c in await since.json()] == [["/cache"]]
        missing = await client.get("/v1.47/containers/json?before=nosuch")
        assert missing.status == 404
        assert (await missing.json())["message"] == "No such container: nosuch"


async def test_container_list_refuses_unknown_filters_and_wrong_values(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        base = "/v1.47/containers/json?"
        assert (await _refusal(client, "GET", base + _q({"bogus": ["x"]}))).startswith(
            "invalid filter 'bogus'"
        )
        health = await _refusal(client, "GET", base + _q({"health": ["ok"]}))
        assert health == "Unrecognised filter value for health: ok"
        exited = await _refusal(client, "GET", base + _q({"exited": ["x"]}))
        assert exited == "invalid filter 'exited=x'"
        task = await _refusal(client, "GET", base + _q({"is-task": ["maybe"]}))
        assert task.startswith("invalid value for filter 'is-task'")


async def test_network_list_filters_by_type_and_dangling(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        answer = await client.get(f"/v1.47/networks?{_q({'type': ['builtin']})}")
        assert answer.status == 200
        assert sorted(n["Name"] for n in await answer.json()) == ["host", "none"]
        answer = await client.get(f"/v1.47/networks?{_q({'type': ['custom']})}")
        assert await answer.json() == []
        answer = await client.get(f"/v1.47/networks?{_q({'dangling': ['true']})}")
        assert await answer.json() == []
        kind = await _refusal(client, "GET", f"/v1.47/networks?{_q({'type': ['odd']})}")
        assert kind == "invalid filter: 'type'='odd'"
        assert (await _refusal(client, "GET", f"/v1.47/networks?{_q({'x': ['1']})}")).startswith(
            "invalid filter 'x'"
        )


async def test_volume_list_and_prune_follow_the_filters(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        for name, labels in (("keep-me", {"keep": "1"}), ("scratch", {})):
            made = await client.post("/v1.47/volumes/create", json={"Name": name, "Labels": labels})
            assert made.status == 201, await made.text()
        listed = await client.get(f"/v1.47/volumes?{_q({'name': ['^scr'], 'dangling': ['1']})}")
        assert [v["Name"] for v in (await listed.json())["Volumes"]] == ["scratch"]
        listed = await client.get(f"/v1.47/volumes?{_q({'driver': ['other']})}")
        assert (await listed.json())["Volumes"] == []
        pruned = await client.post(
            f"/v1.47/volumes/prune?{_q({'all': ['true'], 'label!': ['keep']})}"
        )
        assert pruned.status == 200, await pruned.text()
        assert (await pruned.json())["VolumesDeleted"] == ["scratch"]
        bad = await _refusal(client, "POST", f"/v1.47/volumes/prune?{_q({'until': ['1h']})}")
        assert bad.startswith("invalid filter 'until'")


async def test_container_prune_removes_only_what_the_filters_choose(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        await _create(client, "old", Labels={"junk": "yes"})
        await _create(client, "kept")
        pruned = await client.post(f"/v1.47/containers/prune?{_q({'label': ['junk=yes']})}")
        assert pruned.status == 200, await pruned.text()
        assert len((await pruned.json())["ContainersDeleted"]) == 1
        assert await _names(client, {}) == ["/kept"]
        bad = await _refusal(client, "POST", f"/v1.47/containers/prune?{_q({'name': ['x']})}")
        assert bad.startswith("invalid filter 'name'")
        until = await _refusal(client, "POST", f"/v1.47/containers/prune?{_q({'until': ['x']})}")
        assert until.startswith("invalid filter 'until=x'")


@pytest.mark.parametrize("all_", [0, 1])
@pytest.mark.parametrize(
    ("filters", "status", "message"),
    [
        ({"status": ["bogus"]}, 400, "invalid filter 'status=bogus'"),
        ({"health": ["ok"]}, 400, "Unrecognised filter value for health: ok"),
        ({"exited": ["x"]}, 400, "invalid filter 'exited=x'"),
        ({"publish": ["99999"]}, 400, "invalid filter 'publish=99999'"),
        ({"is-task": ["maybe"]}, 400, "invalid value for filter 'is-task'"),
        ({"before": ["nosuch"]}, 404, "No such container: nosuch"),
        ({"since": ["nosuch"]}, 404, "No such container: nosuch"),
    ],
)
async def test_a_wrong_container_filter_is_refused_whatever_all_says(
    tmp_path: Path, all_: int, filters: dict[str, list[str]], status: int, message: str
) -> None:
    async with api_client(tmp_path) as client:
        query = f"all={all_}&filters={quote(json.dumps(filters))}"
        answer = await client.get(f"/v1.47/containers/json?{query}")
        assert answer.status == status, await answer.text()
        assert (await answer.json())["message"].startswith(message)
        limited = await client.get(f"/v1.47/containers/json?limit=1&{query}")
        assert limited.status == status


def test_a_tasks_label_filter_reads_its_services_labels() -> None:
    """swarmkit matches a task's ServiceAnnotations: docker stack ps lists a stack's tasks."""
    from ferry.api import list_filters as lf
    from ferry.model.service import ContainerTemplate, Task

    task = Task("t1", "s1", "app_web", 1, ContainerTemplate("tools", ()), 1)
    stacked = {"com.docker.stack.namespace": "app"}
    rules = lf.task_rules(task, set(), set(), True, stacked)
    assert f.matches({"label": ["com.docker.stack.namespace=app"]}, rules)
    assert not f.matches({"label": ["com.docker.stack.namespace=other"]}, rules)
