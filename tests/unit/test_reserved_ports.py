"""Ferry's own ports cannot be published: by ``run -p``, by a service in either mode, on create
or update, and not by a record written before the check existed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ferry.agent.containers import ContainerService, CreateRequest
from ferry.agent.hostports import HostPorts
from ferry.daemon.config import DaemonConfig
from ferry.errors import InvalidArgument
from ferry.kernel.thread import KernelThread
from ferry.manager.networks import NetworkOps
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.manager.store import Put, keys
from ferry.model.codec import encode
from ferry.model.container import (
    AttachedEndpoint,
    Container,
    ContainerConfig,
    ContainerState,
    PublishedPort,
    Status,
)
from ferry.model.network import EgressSubnet
from ferry.model.ports import ReservedPort, check_publishable, reserved, reserved_ports
from ferry.model.service import PortSpec, PublishMode
from ferry.network.ports import HostForward, render_host, split_reserved
from ferry.runtime.images import ImageStore
from ferry.runtime.runner import make_runner
from ferry.runtime.store import ContainerStore
from tests.unit.conftest import ManagerRig, put_image

WEB = ServiceRequest("web", "tools", ("sleep", "600"), replicas=1)
RESERVED_PORTS = reserved_ports(4789)  # with the default data-path port
REFUSAL = r"^port 51820/udp is reserved by Ferry \(WireGuard\): publish another$"


def test_the_reservation_is_the_designs_table_with_its_protocols() -> None:
    assert {(r.protocol, r.port) for r in RESERVED_PORTS} == {
        ("tcp", 2377),
        ("tcp", 2379),
        ("tcp", 2380),
        ("udp", 4789),
        ("udp", 4790),
        ("udp", 51820),
    }
    with pytest.raises(InvalidArgument, match=REFUSAL):
        check_publishable("udp", 51820, 4789)
    with pytest.raises(
        InvalidArgument, match=r"port 2377/tcp is reserved by Ferry \(cluster API\)"
    ):
        check_publishable("tcp", 2377, 4789)
    # only the protocol Ferry uses is taken: the DNAT rules match the protocol
    for protocol, port in (("tcp", 51820), ("udp", 2377), ("tcp", 4789), ("udp", 8080)):
        check_publishable(protocol, port, 4789)
        assert reserved(protocol, port, 4789) is None


def test_the_vxlan_pair_reserved_is_the_swarms_data_path_port_and_the_next() -> None:
    assert {(r.protocol, r.port) for r in reserved_ports(7789)} == {
        ("tcp", 2377), ("tcp", 2379), ("tcp", 2380), ("udp", 7789), ("udp", 7790),
        ("udp", 51820),
    }  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"^port 7789/udp is reserved by Ferry \(VXLAN\)"):
        check_publishable("udp", 7789, 7789)
    with pytest.raises(InvalidArgument, match=r"port 7790/udp is reserved by Ferry \(encrypted"):
        check_publishable("udp", 7790, 7789)
    check_publishable("udp", 4789, 7789)  # the default is free where the swarm chose another
    check_publishable("udp", 4790, 7789)
    # where the swarm's port is not known yet, only the fixed ports are checked
    check_publishable("udp", 4789, None)
    with pytest.raises(InvalidArgument, match=REFUSAL):
        check_publishable("udp", 51820, None)


def containers(tmp_path: Path, data_path_port: int = 4789) -> ContainerService:
    config = DaemonConfig(state_dir=tmp_path / "state", run_dir=tmp_path / "run", hostname="hx")
    put_image(config.images_dir)
    return ContainerService(
        netns_prefix="t-",
        kernel=KernelThread(),
        images=ImageStore(config.images_dir),
        store=ContainerStore(tmp_path / "containers"),
        runner=make_runner(config),
        networks=lambda: None,
        dns=None,
        on_change=lambda: None,
        data_path_port=lambda: data_path_port,
    )


@pytest.mark.parametrize("port", RESERVED_PORTS, ids=lambda r: f"{r.port}-{r.protocol}")
async def test_run_p_refuses_every_reserved_port_whatever_the_address(
    tmp_path: Path, port: ReservedPort
) -> None:
    service = containers(tmp_path)
    for host_ip in ("", "127.0.0.1"):
        ask = PublishedPort(port.port, 80, port.protocol, host_ip)
        req = CreateRequest(image="tools", cmd=("sleep", "1"), ports=(ask,))
        with pytest.raises(InvalidArgument, match=f"port {port.port}/{port.protocol} is reserved"):
            await service.create(req)
    assert service.all() == []


async def test_run_p_refuses_the_swarms_data_path_port_and_frees_4789(tmp_path: Path) -> None:
    service = containers(tmp_path, 7789)
    for port in (7789, 7790):
        ask = PublishedPort(port, 80, "udp")
        req = CreateRequest(image="tools", cmd=("sleep", "1"), ports=(ask,))
        with pytest.raises(InvalidArgument, match=f"port {port}/udp is reserved by Ferry"):
            await service.create(req)
    free = PublishedPort(4789, 80, "udp")
    created = await service.create(CreateRequest(image="tools", cmd=("sleep", "1"), ports=(free,)))
    assert created.config.ports == (free,)


async def test_run_p_may_forward_to_a_reserved_port_inside_the_container(tmp_path: Path) -> None:
    service = containers(tmp_path)
    ask = PublishedPort(8472, 51820, "udp")  # the target is the container's own port
    created = await service.create(CreateRequest(image="tools", cmd=("sleep", "1"), ports=(ask,)))
    assert created.config.ports == (ask,)


async def service_ops(rig: ManagerRig) -> ServiceOps:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1", images=("tools:latest",))
    await rig.feed.wait_for(rig.store.revision)
    return ServiceOps(rig.store, rig.view, rig.feed, NetworkOps(rig.store, rig.view, rig.feed))


async def test_a_service_may_not_publish_a_reserved_port_in_either_mode(rig: ManagerRig) -> None:
    services = await service_ops(rig)
    for mode in PublishMode:
        port = PortSpec(51820, 80, "udp", mode)
        with pytest.raises(InvalidArgument, match=REFUSAL):
            await services.create(replace(WEB, ports=(port,)))
    assert rig.view.services() == []


async def test_a_service_update_may_not_add_a_reserved_port(rig: ManagerRig) -> None:
    services = await service_ops(rig)
    await services.create(WEB)
    for mode in PublishMode:
        port = PortSpec(2377, 80, "tcp", mode)
        with pytest.raises(InvalidArgument, match=r"port 2377/tcp is reserved by Ferry"):
            await services.update("web", None, replace(WEB, ports=(port,)), None)
    assert rig.view.services()[0].spec.ports == ()


def test_a_record_from_before_the_check_is_never_forwarded(tmp_path: Path) -> None:
    wireguard = HostForward("udp", 51820, "172.18.0.2", 80)
    web = HostForward("tcp", 8080, "172.18.0.2", 80)
    assert split_reserved([wireguard, web], 4789) == ([web], [wireguard])
    vxlan = HostForward("udp", 7789, "172.18.0.2", 80)
    assert split_reserved([vxlan, web], 7789) == ([web], [vxlan])
    assert split_reserved([vxlan, web], 4789) == ([vxlan, web], [])
    endpoint = AttachedEndpoint(
        "ferry_gwbridge", "ferry_gwbridge", "bridge", "e" * 64, "172.18.0.5", 16,
        "172.18.0.1", "02:42:ac:12:00:05", "eth1",
    )  # fmt: skip
    config = ContainerConfig(
        "c" * 64, "old", "tools", ("sleep",),
        ports=(PublishedPort(4789, 80, "udp"), PublishedPort(8081, 80)),
        host_ports=((2380, 80, "tcp"),),
    )  # fmt: skip
    old = Container(config, ContainerState(Status.RUNNING, endpoints=(endpoint,)))
    ports = HostPorts(
        KernelThread(), lambda: [old], lambda: {("udp", 51820)}, tmp_path / "m", lambda: 4789,
        egress=lambda: EgressSubnet("172.18.0.0/16"),
    )  # fmt: skip
    body = render_host(ports.plan())
    assert "tcp dport 8081 dnat ip to 172.18.0.5:80" in body
    assert "4789" not in body and "2380" not in body and "51820" not in body


async def swarm_port(rig: ManagerRig, port: int) -> None:
    """The rig's cluster record, as a swarm formed with ``--data-path-port port`` has it."""
    cluster = rig.view.cluster()
    assert cluster is not None
    rev = await rig.store.commit([Put(keys.CLUSTER, encode(replace(cluster, data_path_port=port)))])
    assert rev is not None
    await rig.feed.wait_for(rev)


async def test_a_service_may_not_publish_the_swarms_data_path_port(rig: ManagerRig) -> None:
    services = await service_ops(rig)
    await swarm_port(rig, 7789)
    for mode in PublishMode:
        for number in (7789, 7790):
            port = PortSpec(number, 80, "udp", mode)
            with pytest.raises(InvalidArgument, match=f"port {number}/udp is reserved by Ferry"):
                await services.create(replace(WEB, ports=(port,)))
    assert rig.view.services() == []
    free = PortSpec(4789, 80, "udp", PublishMode.HOST)  # not this swarm's
    svc = await services.create(replace(WEB, ports=(free,)))
    assert svc.spec.ports == (free,)
