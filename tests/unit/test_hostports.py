"""Published ports across a restart of ferryd: the routing mesh's ports are never dropped from
the table while the swarm's state is not known again (issue 8, input 5)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from ferry.agent.hostports import HostPorts, MeshPorts
from ferry.kernel.thread import KernelThread
from ferry.model.network import EgressSubnet
from ferry.network.ports import HostForward

EGRESS = EgressSubnet("10.123.1.0/24")  # a host whose pools are not Docker's
SANDBOX = "10.123.1.2"  # the ingress sandbox: the egress subnet's second address


def ports(path: Path, mesh: MeshPorts | None) -> HostPorts:
    return HostPorts(
        cast(KernelThread, None), list, lambda: mesh, path, lambda: 4789, egress=lambda: EGRESS
    )


def test_the_mesh_ports_last_known_stand_until_the_swarm_state_is_known(tmp_path: Path) -> None:
    saved = tmp_path / "mesh.json"
    assert ports(saved, None).plan() == []  # a new host: nothing known, nothing forwarded
    assert ports(saved, {("tcp", 8080)}).plan() == [HostForward("tcp", 8080, SANDBOX, 8080)]
    # a restart: not known yet, so the last known ports stay in the table
    assert ports(saved, None).plan() == [HostForward("tcp", 8080, SANDBOX, 8080)]
    # known again: what the store says now, also for the restart after this one
    assert ports(saved, set()).plan() == []
    assert ports(saved, None).plan() == []


def test_an_unreadable_record_counts_as_nothing_known(tmp_path: Path) -> None:
    saved = tmp_path / "mesh.json"
    saved.write_text("{not json")
    assert ports(saved, None).plan() == []
