"""The swarm's data-path port (``swarm init --data-path-port``): which ports it may be, where
it is kept (the cluster record; each node's membership file), how a joiner learns it or is
refused for its daemon.json, and how the data plane's plans take it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from ferry.cli import system as cli_system
from ferry.daemon.config import DaemonConfig
from ferry.daemon.membership import Membership, MembershipFile
from ferry.daemon.swarm import InitOptions, SwarmController
from ferry.errors import InvalidArgument
from ferry.kernel.thread import KernelThread
from ferry.manager.store import Put, keys
from ferry.model.cluster import ClusterInfo
from ferry.model.codec import decode_plain, encode, to_plain
from ferry.model.network import ENCRYPTED_OPTION, Driver, Network, Scope
from ferry.model.node import Role
from ferry.model.ports import (
    DEFAULT_DATA_PATH_PORT,
    FIXED_PORTS,
    check_data_path_port,
    encrypted_port,
    vxlan_ports,
)
from ferry.network.drivers.overlay import OverlayDriver, Underlay
from tests.unit.conftest import ManagerRig
from tests.unit.test_manager_nodes import join_request

# which ports ------------------------------------------------------------------------------


def test_0_is_the_default_port_and_the_range_ends_are_taken() -> None:
    assert check_data_path_port(0) == DEFAULT_DATA_PATH_PORT == 4789
    assert check_data_path_port(1024) == 1024
    assert check_data_path_port(49151) == 49151
    assert check_data_path_port(7789) == 7789


@pytest.mark.parametrize("port", [-1, 1, 1023, 49152, 65535, 70000])
def test_a_port_outside_1024_49151_is_refused_in_moby_s_words(port: int) -> None:
    with pytest.raises(
        InvalidArgument,
        match=rf"^VXLAN UDP port number is not in valid range \(1024-49151\): {port}$",
    ):
        check_data_path_port(port)


@pytest.mark.parametrize("fixed", [p for p in FIXED_PORTS if p.port <= 49151])
def test_a_port_ferry_uses_itself_is_refused_naming_both(fixed: Any) -> None:
    with pytest.raises(
        InvalidArgument,
        match=rf"^data path port {fixed.port} clashes with port {fixed.port}/{fixed.protocol}, "
        rf"which Ferry uses for its {fixed.use}: choose another data path port$",
    ):
        check_data_path_port(fixed.port)


@pytest.mark.parametrize(("port", "clash"), [(2376, "2377/tcp"), (2378, "2379/tcp")])
def test_a_port_whose_encrypted_companion_clashes_is_refused(port: int, clash: str) -> None:
    with pytest.raises(
        InvalidArgument,
        match=rf"^data path port {port} needs {port + 1}/udp for encrypted overlays .* clashes "
        rf"with port {clash}",
    ):
        check_data_path_port(port)


def test_encrypted_overlays_use_the_next_port() -> None:
    assert encrypted_port(4789) == 4790
    assert vxlan_ports(7789) == (7789, 7790)
    assert vxlan_ports(49151) == (49151, 49152)  # the companion may leave Docker's range


# where it is kept -------------------------------------------------------------------------


def test_a_record_and_a_membership_from_before_the_port_was_chosen_read_4789() -> None:
    old = {"cluster_id": "c", "created_at": "t", "ca_cert_pem": "pem"}
    assert decode_plain(ClusterInfo, old).data_path_port == 4789
    member = {"node_id": "n", "cluster_id": "c", "role": "worker", "addr": "10.0.0.2",
              "listen_addr": "0.0.0.0:2377"}  # fmt: skip
    assert decode_plain(Membership, member).data_path_port == 4789


def test_the_membership_file_keeps_the_swarms_port_across_a_restart(tmp_path: Path) -> None:
    file = MembershipFile(tmp_path)
    file.save(Membership("n", "c", Role.WORKER, "10.0.0.2", "0.0.0.0:2377", data_path_port=7789))
    file.update_managers(["10.0.0.1:2377"])
    loaded = file.load()
    assert loaded is not None and loaded.data_path_port == 7789
    assert to_plain(loaded)["data_path_port"] == 7789


def test_a_node_uses_its_swarms_port_and_outside_one_its_daemon_json_default() -> None:
    swarm = SwarmController(DaemonConfig(), KernelThread())
    assert swarm.data_path_port() == 4789
    swarm = SwarmController(DaemonConfig(data_path_port=5789), KernelThread())
    assert swarm.data_path_port() == 5789
    swarm.membership = Membership(
        "n", "c", Role.WORKER, "10.0.0.2", "0.0.0.0:2377", data_path_port=7789
    )
    assert swarm.data_path_port() == 7789  # the swarm's wins once it is a member


# joining ------------------------------------------------------------------------------------


async def swarm_port(rig: ManagerRig, port: int) -> None:
    cluster = rig.view.cluster()
    assert cluster is not None
    rev = await rig.store.commit([Put(keys.CLUSTER, encode(replace(cluster, data_path_port=port)))])
    assert rev is not None
    await rig.feed.wait_for(rev)


async def test_a_joiner_learns_the_swarms_port_in_the_join_reply(rig: ManagerRig) -> None:
    await swarm_port(rig, 7789)
    response = await rig.joins.join(join_request(rig, rig.secrets.worker_secret), "10.99.0.12")
    assert response.data_path_port == 7789


async def test_a_joiner_whose_daemon_json_sets_the_same_port_or_none_joins(
    rig: ManagerRig,
) -> None:
    await swarm_port(rig, 7789)
    same = join_request(rig, rig.secrets.worker_secret, "h2").model_copy(
        update={"data_path_port": 7789}
    )
    assert (await rig.joins.join(same, "10.99.0.12")).data_path_port == 7789
    unset = join_request(rig, rig.secrets.worker_secret, "h3")
    assert (await rig.joins.join(unset, "10.99.0.13")).data_path_port == 7789


async def test_a_joiner_whose_daemon_json_sets_another_port_is_refused(rig: ManagerRig) -> None:
    await swarm_port(rig, 7789)
    other = join_request(rig, rig.secrets.worker_secret, "h2").model_copy(
        update={"data_path_port": 4789}
    )
    with pytest.raises(
        InvalidArgument,
        match=r"^this swarm's data path port is 7789, but data-path-port in the daemon.json of "
        r"h2 is 4789: set it to 7789 or remove it, restart ferryd and join again$",
    ):
        await rig.joins.join(other, "10.99.0.12")
    assert [n.hostname for n in rig.view.nodes()] == []  # refused before it was admitted


# the data plane's plans -------------------------------------------------------------------


def overlay(encrypted: bool) -> Network:
    options = {ENCRYPTED_OPTION: ""} if encrypted else {}
    return Network(
        "n" * 64, "ov", Driver.OVERLAY, Scope.SWARM, "10.0.1.0/24", "10.0.1.1", vni=4097,
        options=options,
    )  # fmt: skip


def test_every_vxlan_device_takes_the_swarms_port() -> None:
    driver = OverlayDriver(
        cast(KernelThread, None), Underlay("10.99.0.11", 1500, "t-"), data_path_port=7789
    )
    assert driver.vxlan_port(overlay(encrypted=False)) == 7789
    assert driver.vxlan_port(overlay(encrypted=True)) == 7790


def test_docker_info_shows_the_swarms_port(capsys: pytest.CaptureFixture[str]) -> None:
    cli_system._print_swarm(
        {"NodeID": "n", "ControlAvailable": True, "Cluster": {"ID": "c", "DataPathPort": 7789}}
    )
    assert "  Data Path Port: 7789\n" in capsys.readouterr().out
    used = cli_system._ports_used({"Swarm": {"Cluster": {"DataPathPort": 7789}}})
    assert "7789/udp (7790/udp inside WireGuard)" in used and "4789" not in used
    assert "4789/udp (4790/udp inside WireGuard)" in cli_system._ports_used({})


async def test_force_new_cluster_keeps_the_swarms_port() -> None:
    swarm = SwarmController(DaemonConfig(data_path_port=5789), KernelThread())
    member = Membership("n", "c", Role.MANAGER, "10.0.0.1", "0.0.0.0:2377", data_path_port=7789)
    for same in (InitOptions(force_new_cluster=True),
                 InitOptions(force_new_cluster=True, data_path_port=7789)):  # fmt: skip
        await swarm._check_recovery(same, member)  # daemon.json's 5789 is not asked for
    with pytest.raises(
        InvalidArgument,
        match=r"^--force-new-cluster keeps the swarm's data path port 7789: leave out "
        r"--data-path-port 4789$",
    ):
        await swarm._check_recovery(
            InitOptions(force_new_cluster=True, data_path_port=4789), member
        )
