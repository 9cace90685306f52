"""Service changes on the manager: an update is the whole spec, and nothing is silently dropped."""

from dataclasses import replace

import pytest

from ferry.errors import Conflict, InvalidArgument
from ferry.manager import services
from ferry.manager.admission import Ask
from ferry.manager.networks import NetworkOps
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.model.network import EndpointKind, NetworkRequest
from tests.unit.conftest import ManagerRig

WEB = ServiceRequest("web", "tools", ("sleep", "600"), replicas=2)


async def ops(rig: ManagerRig) -> ServiceOps:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1", images=("tools:latest",))  # the image the services run
    await rig.feed.wait_for(rig.store.revision)
    return ServiceOps(rig.store, rig.view, rig.feed, NetworkOps(rig.store, rig.view, rig.feed))


async def test_what_the_tasks_run_or_where_rolls_them_over_and_the_rest_does_not(
    rig: ManagerRig,
) -> None:
    services = await ops(rig)
    svc = await services.create(WEB)
    labelled = await services.update("web", None, replace(WEB, labels={"tier": "front"}), None)
    assert labelled.spec.labels == {"tier": "front"}
    assert labelled.spec_version == svc.spec_version  # metadata only: the tasks stay
    restarted = await services.update("web", None, replace(WEB, restart="none"), None)
    assert restarted.spec.restart.value == "none"
    assert restarted.spec_version == svc.spec_version
    placed = await services.update(
        "web", None, replace(WEB, constraints=("node.role==worker",)), None
    )
    assert placed.spec.constraints == ("node.role==worker",)
    assert placed.spec_version == svc.spec_version + 1
    graced = await services.update(
        "web", None, replace(WEB, constraints=placed.spec.constraints, stop_grace_s=2), None
    )
    assert graced.spec.template.stop_grace_s == 2
    assert graced.spec_version == svc.spec_version + 2
    assert graced.previous is not None and graced.previous.template.stop_grace_s == 10
    # the labels set earlier are gone: an update states the whole spec, as Docker's does
    assert graced.spec.labels == {}


async def test_what_cannot_change_in_place_is_refused(rig: ManagerRig) -> None:
    services = await ops(rig)
    network = NetworkOps(rig.store, rig.view, rig.feed)
    await network.create(NetworkRequest("front", attachable=True))
    await services.create(WEB)
    with pytest.raises(InvalidArgument, match="renaming"):
        await services.update("web", None, replace(WEB, name="api"), None)
    with pytest.raises(InvalidArgument, match="mode cannot change"):
        await services.update("web", None, replace(WEB, mode="global", replicas=None), None)
    with pytest.raises(InvalidArgument, match="endpoint mode"):
        await services.update("web", None, replace(WEB, endpoint_mode="dnsrr"), None)
    with pytest.raises(InvalidArgument, match="constraint"):
        await services.update("web", None, replace(WEB, constraints=("node.colour==red",)), None)
    with pytest.raises(Conflict, match="out of sequence"):
        await services.update("web", 1, WEB, None)


async def test_networks_added_and_removed_move_the_vips_and_roll_the_tasks(
    rig: ManagerRig,
) -> None:
    """docker service update --network-add/--network-rm (and a rollback across them): a VIP
    on each network added, released from each removed; the tasks roll over."""
    services = await ops(rig)
    network = NetworkOps(rig.store, rig.view, rig.feed)
    front = (await network.create(NetworkRequest("front"))).net_id
    back = (await network.create(NetworkRequest("back"))).net_id
    svc = await services.create(replace(WEB, networks=("front",)))

    def vips() -> set[str]:
        return {e.net_id for e in rig.view.endpoints()
                if e.kind == EndpointKind.VIP and e.owner_id == svc.svc_id}  # fmt: skip

    assert vips() == {front}
    both = await services.update("web", None, replace(WEB, networks=("front", "back")), None)
    assert vips() == {front, back} and both.spec_version == svc.spec_version + 1
    moved = await services.update("web", None, replace(WEB, networks=("back",)), None)
    assert vips() == {back} and moved.spec.networks == (back,)
    await services.rollback("web", None)  # back to front and back
    assert vips() == {front, back}
    await services.update("web", None, replace(WEB, networks=()), None)
    assert vips() == set()
    assert not [e for e in rig.view.endpoints() if e.owner_id == svc.svc_id]


async def test_a_network_a_service_names_is_neither_removed_nor_pruned(rig: ManagerRig) -> None:
    services = await ops(rig)
    network = NetworkOps(rig.store, rig.view, rig.feed)
    await network.create(NetworkRequest("front"))
    # no task holds an address on it, only the service's VIP
    await services.create(replace(WEB, replicas=0, networks=("front",)))
    with pytest.raises(Conflict, match="in use by service"):
        await network.remove("front")
    assert await network.prune() == []
    await services.remove("web")
    assert await network.prune() == ["front"]


@pytest.mark.parametrize(
    ("name", "more"),
    [("web", {}), ("app", {"aliases": ("web",)}), ("app", {"hostname": "WEB"})],
)
async def test_a_service_cannot_take_a_name_a_container_holds_in_dns(
    rig: ManagerRig, name: str, more: dict[str, object]
) -> None:
    services = await ops(rig)
    network = NetworkOps(rig.store, rig.view, rig.feed)
    await network.create(NetworkRequest("front", attachable=True))
    await network.attach("front", Ask("n1", "c1", name, **more))  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="share the DNS namespace"):
        await services.create(WEB)


@pytest.mark.parametrize("name", ["my_service", "mysql_db", "web_server", "a-b_c", "a" * 63])
def test_service_names_follow_swarmkit_underscores_included(name: str) -> None:
    # seed 002 names my_service, mysql_db and web_server; stacks name every service STACK_SVC
    assert services.NAME_RE.match(name) and len(name) <= services.NAME_MAX


@pytest.mark.parametrize("name", ["_a", "a_", "a__", "-a", "a.b", "a b", ""])
def test_service_names_swarmkit_refuses(name: str) -> None:
    assert not services.NAME_RE.match(name)


async def test_a_restart_delay_is_kept_changes_in_place_and_is_bounded(rig: ManagerRig) -> None:
    services = await ops(rig)
    svc = await services.create(replace(WEB, restart_delay_s=30.0))
    assert svc.spec.restart_delay_s == 30.0
    # like the restart condition, it changes how ended tasks are replaced, not what runs
    quick = await services.update("web", None, replace(WEB, restart_delay_s=1.0), None)
    assert (quick.spec.restart_delay_s, quick.spec_version) == (1.0, svc.spec_version)
    for bad in (-1.0, 10 * 24 * 3600.0):
        with pytest.raises(InvalidArgument, match="invalid restart delay"):
            await services.update("web", None, replace(WEB, restart_delay_s=bad), None)


async def test_every_update_keeps_the_spec_it_replaces_and_a_rollback_swaps_them(
    rig: ManagerRig,
) -> None:
    services = await ops(rig)
    created = await services.create(WEB)
    assert created.previous is None
    with pytest.raises(Conflict, match="service web does not have a previous spec"):
        await services.rollback("web", None)
    scaled = await services.update("web", None, replace(WEB, replicas=3), None)
    assert scaled.previous is not None and scaled.previous.replicas == 2  # a scale too
    graced = await services.update("web", None, replace(WEB, replicas=3, stop_grace_s=2), None)
    back = await services.rollback("web", None)
    assert back.spec == scaled.spec and back.previous == graced.spec
    assert back.rolled_back and back.rolled_at == back.updated_at
    assert back.spec_version == graced.spec_version + 1  # the tasks roll over to the old spec
    again = await services.rollback("web", services.version(back))
    assert again.spec == graced.spec and again.previous == scaled.spec  # a second one returns
    updated = await services.update("web", None, replace(WEB, replicas=1), None)
    assert not updated.rolled_back  # an update after a rollback is an update
    with pytest.raises(Conflict, match="out of sequence"):
        await services.rollback("web", 1)
