"""Issue 9, finding 3: what a node's certificate is trusted with.

A worker's certificate opens no door of the store (etcd takes the store CA's certificates,
which only managers hold); through the cluster API a node creates only what it owns. The CA
keys sealed with a key only managers hold, which autolock keeps off their disks, are
test_trust_autolock.py's; a swarm formed by an older ferryd getting there on its managers'
restart is test_trust_upgrade.py's and test_trust_upgrade_managers.py's.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.lablib import LabRig, new_lab, probe
from tests.integration.trustlib import certs, tls


@pytest.fixture(scope="module")
def trust_lab() -> Iterator[LabRig]:
    """h1 manager (init), h2 worker, h3 manager."""
    with new_lab(hosts=3) as lab:
        lab.form_swarm(managers=("h3",))
        yield lab


def test_etcd_takes_the_store_certificates_of_managers_only(trust_lab: LabRig) -> None:
    lab = trust_lab
    h1 = lab.topo.node("h1").addr
    # the peer port, each from the host whose certificate it is (etcd checks the address)
    assert tls(lab, "h3", f"{h1}:2380", "h3", "store")["status"] == 200
    assert tls(lab, "h2", f"{h1}:2380", "h2", "node")["refused"]  # a worker's
    assert tls(lab, "h3", f"{h1}:2380", "h3", "node")["refused"]  # a manager's node cert
    # the client port listens on h1's loopback: only something on h1 reaches it
    assert tls(lab, "h1", "127.0.0.1:2379", "h1", "store")["status"] == 200
    assert tls(lab, "h1", "127.0.0.1:2379", "h2", "node")["refused"]
    assert tls(lab, "h1", "127.0.0.1:2379", "h1", "node")["refused"]
    # a worker holds nothing that opens the store, nor the key that opens the CA keys
    assert sorted(p.name for p in certs(lab, "h2").iterdir()) == ["ca.pem", "node.key", "node.pem"]
    for manager in ("h1", "h3"):
        assert (certs(lab, manager) / "kek").stat().st_mode & 0o777 == 0o600
        assert (certs(lab, manager) / "store.key").stat().st_mode & 0o777 == 0o600


def test_a_worker_creates_only_its_own_containers_endpoints(trust_lab: LabRig) -> None:
    lab = trust_lab
    lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "open")
    lab.ferry("h1", "network", "create", "-d", "overlay", "closed")
    lab.ferry(
        "h1", "service", "create", "--name", "web", "--network", "open",
        "--constraint", "node.hostname==h2", "tools", "sleep", "600",
    )  # fmt: skip
    network = lab.api("h1", "/networks/open", verbose="true")
    task_ep = next(
        t["EndpointID"]
        for t in network["Services"]["web"]["Tasks"]
        if t["Name"].startswith("web.1.")
    )
    owner = secrets.token_hex(32)

    def ask(net: str, name: str, kind: str = "container", owner_id: str = owner) -> list[Any]:
        body = {"net": net, "owner_id": owner_id, "name": name, "kind": kind}
        return ["POST", "/v1/attachments", body]

    calls = [
        ask("open", "evil", "vip"),
        ask("open", "evil", "task"),
        ask("open", "", "sandbox"),
        ask("closed", "evil"),
        ask("open", "web"),  # a service's name
        ask("ingress", "", "sandbox", owner_id=""),  # h2 has its ingress sandbox already
        ["DELETE", f"/v1/attachments/{network['Id']}/{task_ep}", None],
        ask("open", "mine"),
    ]
    h1 = lab.topo.node("h1").addr
    answers = probe(lab, "h2", "cluster_call.py", str(certs(lab, "h2")), h1, json.dumps(calls))
    assert [a["status"] for a in answers] == [403, 403, 403, 403, 403, 409, 403, 200]
    assert "cannot create vip endpoints" in answers[0]["body"]["message"]
    assert "not manually attachable" in answers[3]["body"]["message"]
    assert "belongs to service web" in answers[4]["body"]["message"]
    mine = answers[-1]["body"]
    assert (mine["kind"], mine["name"]) == ("container", "mine")
    release = [["DELETE", f"/v1/attachments/{mine['net_id']}/{mine['ep_id']}", None]]
    assert (
        probe(lab, "h2", "cluster_call.py", str(certs(lab, "h2")), h1, json.dumps(release))[0][
            "status"
        ]
        == 200
    )
    services = lab.api("h1", "/networks/open", verbose="true")["Services"].values()
    inspected = [t for service in services for t in service["Tasks"]]
    assert any(c["EndpointID"] == task_ep for c in inspected)  # the task kept its address
    assert not any(c["Name"] in ("evil", "mine") for c in inspected)
