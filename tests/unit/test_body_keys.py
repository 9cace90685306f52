"""Request bodies match JSON keys to fields as Go's ``encoding/json`` does (Docker's decoder):
an exact match first, then one that differs only in case; a key that matches nothing stays
unknown and is refused by name where Ferry refuses unknown fields. The keys of maps (labels,
options) are data and keep their case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from ferry.api.body import validate
from ferry.api.models.containers import ContainerCreate, NetworkCreate
from ferry.api.models.services import ServiceSpecModel
from ferry.api.models.swarm import SwarmSpec
from ferry.api.routes.volumes import VolumeCreate
from ferry.api.service_spec import request_of
from ferry.errors import InvalidArgument
from tests.unit.api_rig import api_client

SPEC: dict[str, Any] = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "tools"}}}


def test_docker_pys_lowercase_replicated_mode_gives_its_replicas() -> None:
    # docker-py's ServiceMode('replicated', replicas=2) sends exactly this
    model = validate(ServiceSpecModel, {**SPEC, "Mode": {"replicated": {"Replicas": 2}}})
    assert request_of(model).replicas == 2


def test_keys_differing_only_in_case_reach_their_field_at_every_depth() -> None:
    body = {
        "name": "web",
        "taskTEMPLATE": {"containerspec": {"IMAGE": "tools", "env": ["A=1"]}},
        "mode": {"REPLICATED": {"replicas": 3}},
    }
    request = request_of(validate(ServiceSpecModel, body))
    assert (request.name, request.replicas) == ("web", 3)
    assert (request.image, request.env) == ("tools", ("A=1",))


def test_an_exact_match_wins_over_a_case_insensitive_one_and_the_later_key_wins() -> None:
    model = validate(ContainerCreate, {"Image": "a", "image": "b"})
    assert model.Image == "b"  # both are the field Image: the later assignment stays, as in Go
    model = validate(ContainerCreate, {"image": "b", "Image": "a"})
    assert model.Image == "a"


def test_a_fields_json_name_is_matched_case_insensitively_even_when_it_is_an_alias() -> None:
    body = {"Name": "n", "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}
    model = validate(NetworkCreate, body)
    assert model.IPAM is not None and model.IPAM.Subnets[0].Subnet == "10.9.0.0/24"


def test_the_keys_of_maps_keep_their_case() -> None:
    model = validate(VolumeCreate, {"name": "v", "labels": {"Tier": "x"}, "driveropts": {"O": "1"}})
    assert (model.Name, model.Labels) == ("v", {"Tier": "x"})
    assert model.DriverOpts == {"O": "1"}


def test_a_key_that_matches_no_field_is_still_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="Replicass"):
        request_of(validate(ServiceSpecModel, {**SPEC, "Mode": {"replicated": {"Replicass": 2}}}))
    with pytest.raises(InvalidArgument, match=r"Raft\.SnapshotInterval"):
        spec = validate(SwarmSpec, {"raft": {"SnapshotInterval": 7}})
        if spec.unsupported():
            raise InvalidArgument(", ".join(spec.unsupported()))


async def test_container_create_through_the_api_takes_lowercase_keys(tmp_path: Path) -> None:
    body = {"image": "tools", "cmd": ["sleep", "1"], "hostconfig": {"networkmode": "none"}}
    async with api_client(tmp_path) as client:
        created = await client.post("/v1.47/containers/create?name=low", json=body)
        assert created.status == 201, await created.text()
        got = await (await client.get("/v1.47/containers/low/json")).json()
        assert got["Config"]["Cmd"] == ["sleep", "1"]
        assert got["HostConfig"]["NetworkMode"] == "none"
        refused = await client.post(
            "/v1.47/containers/create?name=typo", json={**body, "hostconfig": {"nettworkmode": 1}}
        )
        assert refused.status == 400 and "nettworkmode" in await refused.text()


def test_a_null_leaves_a_field_at_its_default_as_go_does_with_docker_pys_bodies() -> None:
    # the bodies docker-py's own types build: unset arguments are sent as null
    health = docker.types.Healthcheck(test=["CMD", "true"], interval=1_000_000_000)
    mount = docker.types.Mount("/m", None, type="tmpfs")
    body = {"Image": "tools", "Healthcheck": dict(health), "HostConfig": {"Mounts": [mount]}}
    model = validate(ContainerCreate, body)
    assert model.Healthcheck is not None
    assert (model.Healthcheck.Interval, model.Healthcheck.Timeout) == (1_000_000_000, 0)
    assert model.HostConfig is not None and model.HostConfig.Mounts[0].Source == ""
    pool = docker.types.IPAMPool(subnet="10.9.0.0/24", gateway="10.9.0.1")
    ipam = docker.types.IPAMConfig(pool_configs=[pool])
    network = validate(NetworkCreate, {"Name": "n", "IPAM": dict(ipam)})
    assert network.IPAM is not None and network.IPAM.Subnets[0].IPRange == ""


def test_a_null_for_a_field_that_may_be_none_is_none_and_a_required_null_is_missing() -> None:
    model = validate(NetworkCreate, {"Name": "n", "Labels": None, "EnableIPv6": None})
    assert (model.Labels, model.EnableIPv6) == (None, None)
    with pytest.raises(InvalidArgument, match="Image"):
        validate(ContainerCreate, {"Image": None})
