"""The managers keep containers and services out of each other's DNS names, and refuse specs
whose tasks could never start (issue 9, finding 6)."""

from dataclasses import replace

import pytest

from ferry.errors import Conflict, Forbidden, InvalidArgument
from ferry.manager.admission import Ask
from ferry.manager.networks import NetworkOps
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.model.network import NetworkRequest
from tests.unit.conftest import ManagerRig

WEB = ServiceRequest("web", "tools", ("sleep", "600"), networks=("front",))


async def ops(rig: ManagerRig) -> tuple[NetworkOps, ServiceOps]:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1", images=("tools:latest",))  # the image the services run
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    await networks.create(NetworkRequest("front", attachable=True))
    await networks.create(NetworkRequest("back", attachable=True))
    return networks, ServiceOps(rig.store, rig.view, rig.feed, networks)


async def test_a_container_alias_equal_to_a_service_on_its_network_is_refused(
    rig: ManagerRig,
) -> None:
    networks, services = await ops(rig)
    await services.create(WEB)
    with pytest.raises(Forbidden, match="belongs to service web"):
        await networks.attach("front", Ask("n1", "c1", "app", aliases=("web",)))
    with pytest.raises(Forbidden, match="belongs to service web"):
        await networks.attach("front", Ask("n1", "c2", "Web"))
    with pytest.raises(Forbidden, match="belongs to service web"):
        await networks.attach("front", Ask("n1", "c3", "app3", hostname="tasks.web"))
    # the managers keep it off every network: a container on both would answer for the service
    with pytest.raises(Forbidden, match="belongs to service web"):
        await networks.attach("back", Ask("n1", "c4", "app4", aliases=("web",)))


async def test_a_service_named_like_a_containers_alias_or_hostname_is_refused(
    rig: ManagerRig,
) -> None:
    networks, services = await ops(rig)
    await networks.attach("front", Ask("n1", "c1", "app", aliases=("api",)))
    await networks.attach("front", Ask("n1", "c2", "app2", hostname="cache"))
    for name in ("api", "cache", "app"):
        with pytest.raises(Conflict, match="share the DNS namespace"):
            await services.create(replace(WEB, name=name))


async def test_specs_whose_tasks_could_never_start_are_refused_up_front(rig: ManagerRig) -> None:
    _networks, services = await ops(rig)
    with pytest.raises(InvalidArgument, match='invalid environment variable: "=novalue"'):
        await services.create(replace(WEB, env=("=novalue",)))
    with pytest.raises(InvalidArgument, match="value '=h1' is invalid"):
        await services.create(replace(WEB, constraints=("node.hostname===h1",)))
    svc = await services.create(replace(WEB, env=("A=1", "B")))
    assert svc.spec.template.env == ("A=1", "B=")
    with pytest.raises(InvalidArgument, match="invalid environment variable"):
        await services.update("web", None, replace(WEB, env=("=x",)), None)


async def test_a_services_aliases_are_its_vips_names_on_their_network(rig: ManagerRig) -> None:
    """docker stack deploy gives each service its short name as an alias on its networks."""
    networks, services = await ops(rig)
    stacked = replace(WEB, name="app_web", aliases={"front": ("web",)})
    svc = await services.create(stacked)
    front = networks.find("front").net_id
    assert svc.spec.aliases == {front: ("web",)}
    [vip] = [e for e in rig.view.endpoints(front) if e.owner_id == svc.svc_id]
    assert vip.aliases == ("web",)
    # a container may not take the alias, on any network
    with pytest.raises(Forbidden, match="belongs to service app_web"):
        await networks.attach("back", Ask("n1", "c1", "app", aliases=("web",)))
    # the same spec again is no change; new aliases keep the VIP's address, and roll the tasks
    same = await services.update("app_web", None, stacked, None)
    assert same.spec_version == svc.spec_version
    renamed = await services.update(
        "app_web", None, replace(stacked, aliases={"front": ("w",)}), None
    )
    [moved] = [e for e in rig.view.endpoints(front) if e.owner_id == svc.svc_id]
    assert (moved.ip, moved.aliases) == (vip.ip, ("w",))
    assert renamed.spec_version == svc.spec_version + 1


async def test_service_aliases_are_checked_names_on_networks_of_the_service(
    rig: ManagerRig,
) -> None:
    networks, services = await ops(rig)
    with pytest.raises(InvalidArgument, match="invalid network alias"):
        await services.create(replace(WEB, aliases={"front": ("bad name",)}))
    with pytest.raises(InvalidArgument, match="not one of the service's"):
        await services.create(replace(WEB, aliases={"back": ("web2",)}))
    await networks.attach("front", Ask("n1", "c1", "app", aliases=("api",)))
    with pytest.raises(Conflict, match="name api is taken by a container"):
        await services.create(replace(WEB, name="svc2", aliases={"front": ("api",)}))
