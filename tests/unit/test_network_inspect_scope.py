"""GET /networks/{id}?scope=: only a network of that scope is found (Docker's getNetwork adds
the scope to its lookup), and a scope Docker does not have is refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ferry.api.routes.networks import NetworkRoutes
from ferry.errors import NotFound
from ferry.model.ids import lookup
from ferry.model.network import Driver, Network, Scope, network_names
from tests.unit.api_rig import api_client

V = "/v1.47"
LOCAL = Network("a" * 64, "front", Driver.BRIDGE, Scope.LOCAL, "172.20.0.0/24", "172.20.0.1")
SWARM = Network("b" * 64, "front", Driver.OVERLAY, Scope.SWARM, "10.0.1.0/24", "10.0.1.1")
BACK = Network("c" * 64, "back", Driver.OVERLAY, Scope.SWARM, "10.0.2.0/24", "10.0.2.1")


def _routes() -> NetworkRoutes:
    """Routes over one local network and a cluster view of two swarm ones (no kernel)."""
    local = SimpleNamespace(find=lambda ref: lookup([LOCAL], ref, network_names, "network"))
    view = SimpleNamespace(networks=lambda: [SWARM, BACK])
    swarm = SimpleNamespace(manager=SimpleNamespace(view=view), agent=None, membership=None)
    return NetworkRoutes(cast(Any, swarm), cast(Any, None), cast(Any, local))


@pytest.mark.parametrize(
    ("ref", "scope", "found"),
    [
        ("front", "", LOCAL),  # this host's first, as before
        ("front", "local", LOCAL),
        ("front", "swarm", SWARM),  # the swarm network of the same name, not the local one
        ("bbbb", "swarm", SWARM),
        ("back", "", BACK),
        ("back", "swarm", BACK),
    ],
)
def test_a_scope_finds_only_a_network_of_that_scope(ref: str, scope: str, found: Network) -> None:
    assert _routes()._find(ref, scope) is found


@pytest.mark.parametrize(
    ("ref", "scope"), [("back", "local"), ("aaaa", "swarm"), ("front", "global")]
)
def test_a_network_not_of_the_scope_asked_is_not_found_in_docker_s_words(
    ref: str, scope: str
) -> None:
    with pytest.raises(NotFound, match=f"^network {ref} not found$"):
        _routes()._find(ref, scope)


async def test_inspect_of_host_filters_by_scope_and_refuses_an_unknown_scope(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path) as client:
        for query, status in (
            ("", 200),
            ("?scope=local", 200),
            ("?scope=local&verbose=1", 200),
            ("?scope=swarm", 404),
            ("?scope=global", 404),
        ):
            resp = await client.get(f"{V}/networks/host{query}")
            body = json.loads(await resp.read())
            assert resp.status == status, (query, body)
            if status == 404:
                assert body["message"] == "network host not found"
            else:
                assert (body["Name"], body["Scope"]) == ("host", "local")
        resp = await client.get(f"{V}/networks/none?scope=Swarm")
        assert resp.status == 400
        assert (await resp.json())["message"] == (
            'invalid scope: "Swarm" (use swarm, global, local)'
        )
