"""Issue 9, finding 3: what a node's certificate is trusted with.

A worker's certificate opens no door of the store (etcd takes the store CA's certificates,
which only managers hold); through the cluster API a node creates only what it owns; the CA keys
are sealed with a key only managers hold, which autolock keeps off their disks; and a swarm
formed by an older ferryd gets there on its managers' restart.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.errors import Unavailable
from ferry.lab import lab as labmod
from ferry.manager import sealing
from ferry.manager.store import keys
from tests.integration.lablib import (
    LabRig,
    new_lab,
    older_ferry,
    probe,
    restart_ferryd,
    wait_for_value,
    wait_until,
)

LOCKED = "Swarm is encrypted and needs to be unlocked before it can be used"


def certs(lab: LabRig, host: str) -> Path:
    return lab.topo.node(host).state_dir / "certs"


def tls(lab: LabRig, host: str, target: str, holder: str, kind: str) -> Any:
    """Whether etcd at ``target`` (HOST:PORT), dialled from ``host``, takes ``holder``'s
    ``node`` or ``store`` certificate: ``probes/tls_probe.py``'s answer."""
    files = certs(lab, holder)
    addr, _, port = target.rpartition(":")
    pem, key = str(files / f"{kind}.pem"), str(files / f"{kind}.key")
    return probe(lab, host, "tls_probe.py", addr, port, pem, key)[0]


def configured_tls_phase(lab: LabRig, host: str) -> int | None:
    """The phase in ``host``'s ``member.json`` (None: written by an older ferryd). It is what
    the member is to run, written *before* its restart: it says nothing of what serves now."""
    record = json.loads((lab.topo.node(host).state_dir / "etcd" / "member.json").read_text())
    phase = record.get("tls_phase")
    return int(phase) if phase is not None else None


def recorded_tls_phases(lab: LabRig, via: str) -> dict[str, int] | None:
    """Node id -> the TLS phase each manager recorded in the store (``storetls/<node>``), read
    through ``via``'s etcd client port with its store certificate; None while that port does
    not take it (an older member, or one restarting). A manager records a phase only once its
    member serves with it again (``StoreUpgrade._advance``): the condition a probe may follow."""
    files = certs(lab, via)
    read = lab.exec(
        via, "etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={files / 'store-ca.pem'}",
        f"--cert={files / 'store.pem'}", f"--key={files / 'store.key'}",
        "get", "--prefix", keys.STORE_TLS, "--write-out=json", check=False,
    )  # fmt: skip
    if read.returncode != 0:
        return None
    return {
        base64.b64decode(kv["key"]).decode().removeprefix(keys.STORE_TLS): int(
            base64.b64decode(kv["value"])
        )
        for kv in json.loads(read.stdout).get("kvs", [])
    }


def recorded_tls_phase_of(
    lab: LabRig, hosts: tuple[str, ...]
) -> Callable[[], dict[str, int | None] | None]:
    """A check for ``wait_until``: host -> its recorded phase (None: none yet), read through
    the first of ``hosts``; None while that host's store does not answer."""
    ids = {host: str(lab.api(host, "/info")["Swarm"]["NodeID"]) for host in hosts}

    def read() -> dict[str, int | None] | None:
        phases = recorded_tls_phases(lab, hosts[0])
        return None if phases is None else {h: phases.get(i) for h, i in ids.items()}

    return read


def every_node_ready(lab: LabRig) -> bool:
    """Whether h1 lists every node ready; False while h1 refuses swarm calls: a manager whose
    store was down answers for the swarm again only once its quorum watch sees a majority
    (``manager/quorum.py``), up to a check later than the store's own first answer."""
    try:
        return {n["Status"]["State"] for n in lab.nodes().values()} == {"ready"}
    except Unavailable:
        return False


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


def test_an_autolocked_manager_restarts_locked_until_unlocked_with_its_key() -> None:
    with new_lab(hosts=3) as lab:
        h1 = lab.topo.node("h1").addr
        init = lab.exec("h1", "docker", "swarm", "init", "--autolock", "--advertise-addr", h1)
        key = lab.exec("h1", "docker", "swarm", "unlock-key", "-q").stdout.strip()
        assert key.startswith("SWMKEY-1-") and key in init.stdout
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        worker = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        lab.exec("h2", "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        assert not (certs(lab, "h1") / "kek").exists()
        assert not (certs(lab, "h2") / "kek").exists()  # a joining manager keeps it off disk too
        lab.ferry("h1", "run", "-d", "--name", "keep", "tools", "sleep", "600")

        restart_ferryd(lab, "h1")
        state = lab.exec("h1", "docker", "info", "--format", "{{.Swarm.LocalNodeState}}")
        assert state.stdout.strip() == "locked"
        refused = lab.exec("h1", "docker", "node", "ls", check=False)
        assert refused.returncode != 0 and LOCKED in refused.stderr
        join = lab.exec(
            "h3", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377", check=False
        )
        assert join.returncode != 0 and LOCKED in join.stderr  # a locked manager admits nobody
        running = lab.ferry("h1", "ps", "--format", "{{.Names}} {{.Status}}").stdout
        assert running.startswith("keep Up")  # its containers run on
        leave = lab.exec("h1", "docker", "swarm", "leave", check=False)
        assert leave.returncode != 0 and "Please unlock it first" in leave.stderr

        wrong = sealing.format_key(sealing.new_kek())
        bad = lab.exec("h1", "sh", "-c", f"echo {wrong} | docker swarm unlock", check=False)
        assert bad.returncode != 0 and "invalid key provided" in bad.stderr
        assert lab.api("h1", "/info")["Swarm"]["LocalNodeState"] == "locked"
        lab.exec("h1", "sh", "-c", f"echo {key} | docker swarm unlock")
        assert "h1" in lab.exec("h1", "docker", "node", "ls").stdout
        lab.exec("h3", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377")

        # without autolock the key is back on every manager's disk: a restart needs no unlock
        lab.exec("h1", "docker", "swarm", "update", "--autolock=false")
        wait_until((certs(lab, "h2") / "kek").exists, 10, "h2's key on its disk")
        assert (certs(lab, "h1") / "kek").exists()
        restart_ferryd(lab, "h1")
        assert lab.api("h1", "/info")["Swarm"]["LocalNodeState"] == "active"


def test_a_swarm_an_older_ferryd_formed_moves_to_the_store_ca_on_restart() -> None:
    with older_ferry() as older, new_lab(hosts=3, tools=False) as lab:
        for host in ("h1", "h2"):
            restart_ferryd(lab, host, code=older)
        lab.import_tools()  # in each ferryd's own image store (the older one keeps flat roots)
        h1 = lab.topo.node("h1").addr
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1)
        worker = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        lab.exec("h2", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377")
        assert configured_tls_phase(lab, "h1") is None  # what the older ferryd made
        assert tls(lab, "h2", f"{h1}:2380", "h2", "node")["status"] == 200  # the flaw being fixed
        lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "carry")
        lab.ferry("h2", "run", "-d", "--name", "old", "--network", "carry", "tools", "sleep", "600")

        restart_ferryd(lab, "h1")  # this version, on the same state
        recorded = recorded_tls_phase_of(lab, ("h1",))
        wait_for_value(recorded, {"h1": 3}, 30, "h1's etcd on the store CA (recorded)")
        assert tls(lab, "h2", f"{h1}:2380", "h2", "node")["refused"]
        assert (certs(lab, "h1") / "kek").exists()
        restart_ferryd(lab, "h2")
        wait_until(lambda: lab.node_state("h2") == "ready", 20, "h2 back")
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        lab.exec("h3", "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        assert tls(lab, "h3", f"{h1}:2380", "h3", "store")["status"] == 200
        nodes = lab.nodes()
        assert {n["Status"]["State"] for n in nodes.values()} == {"ready"}
        assert lab.ferry("h2", "ps", "--format", "{{.Names}}").stdout.split() == ["old"]
        lab.ferry("h3", "run", "-d", "--name", "new", "--network", "carry", "tools", "sleep", "600")
        lab.exec("h3", "ferry", "exec", "new", "getent", "hosts", "old")


def test_three_older_managers_move_to_the_store_ca_as_each_restarts() -> None:
    with older_ferry() as older, new_lab(hosts=3, tools=False) as lab:
        for host in ("h1", "h2", "h3"):
            restart_ferryd(lab, host, code=older)
        lab.import_tools()  # in the older ferryds' own image store
        h1 = lab.topo.node("h1").addr
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1)
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        for host in ("h2", "h3"):
            lab.exec(host, "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        lab.ferry("h1", "service", "create", "-d", "--name", "keep", "--replicas", "3",
                  "tools", "sleep", "600")  # fmt: skip
        recorded = recorded_tls_phase_of(lab, ("h1", "h2", "h3"))
        restart_ferryd(lab, "h1")
        # the others still run the older ferryd: h1 goes as far as they allow, and no further
        older_left = {"h1": 1, "h2": None, "h3": None}
        wait_for_value(recorded, older_left, 30, "h1 at the phase older members take")
        wait_until(lambda: every_node_ready(lab), 20, "every node ready, h1 serving again")
        for host in ("h2", "h3"):
            restart_ferryd(lab, host)  # each gets the key from h1, and its store certificate
        # what each manager records once its member serves again on the phase, not what its
        # member.json says before the restart
        everyone = {"h1": 3, "h2": 3, "h3": 3}
        wait_for_value(recorded, everyone, 60, "every member on the store CA", every_s=0.5)
        for host in ("h2", "h3"):
            assert tls(lab, host, f"{h1}:2380", host, "store")["status"] == 200
            assert tls(lab, host, f"{h1}:2380", host, "node")["refused"]
        wait_until(lambda: every_node_ready(lab), 20, "every node ready")
        keks = {sealing.parse_key((certs(lab, h) / "kek").read_text()) for h in ("h1", "h2", "h3")}
        assert len(keks) == 1  # one key, shared by the managers
        assert "keep" in lab.ferry("h3", "service", "ls").stdout


def test_lab_start_runs_another_source_tree_when_asked() -> None:
    """The test above leans on it: an older ferryd really runs the older code."""
    with older_ferry() as older, new_lab(hosts=1) as lab:
        restart_ferryd(lab, "h1", code=older)
        pid = labmod.ferryd_pid(lab.topo.node("h1"))
        assert pid is not None
        cwd = Path(f"/proc/{pid}/cwd").resolve()
        assert cwd == older.resolve()
