"""node promote / demote / update --role: the rules (model/node_roles.py) and what a manager
does with them (NodeOps.update, JoinService.take_role, the heartbeat's reply)."""

from __future__ import annotations

import pytest
from cryptography import x509

from ferry.daemon.manager_node import leave_refusal
from ferry.errors import Conflict, FerryError, Forbidden, InvalidArgument, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.join import JoinService
from ferry.manager.store import Put, keys
from ferry.manager.store.etcd import StoreMember
from ferry.manager.store_members import MemberReconciler, surplus
from ferry.manager.wire import RoleRequest
from ferry.model.codec import encode
from ferry.model.node import Node, Role
from ferry.model.node_roles import (
    DEMOTE_LAST,
    DEMOTE_QUORUM,
    check_demotion,
    parse_role,
    with_role,
)
from tests.unit.conftest import ManagerRig


def node(node_id: str, role: Role = Role.MANAGER, **kw: object) -> Node:
    return Node(node_id, f"host-{node_id}", role, f"10.0.0.{len(node_id)}", **kw)  # type: ignore[arg-type]


class FakeMembers:
    """etcd's member list, as role changes use it."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.learner_peers: list[str] = []

    async def add(self, peer_url: str, *, learner: bool = True) -> int:
        self.learner_peers.append(peer_url)
        return 7

    async def all(self) -> list[tuple[int, str, list[str]]]:
        urls = [*self.peers, *self.learner_peers]
        return [(i + 1, "", [url]) for i, url in enumerate(urls)]

    async def learners(self) -> list[tuple[int, list[str]]]:
        return [(100 + i, [url]) for i, url in enumerate(self.learner_peers)]

    async def remove(self, member_id: int) -> None:
        self.learner_peers = [u for i, u in enumerate(self.learner_peers) if 100 + i != member_id]


# the rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "role"), [("manager", Role.MANAGER), ("Worker", Role.WORKER)])
def test_a_role_is_worker_or_manager(raw: str, role: Role) -> None:
    assert parse_role(raw) is role


@pytest.mark.parametrize("raw", ["", "leader", "managers"])
def test_any_other_role_is_refused_as_docker_does(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=f'invalid Role: "{raw}"'):
        parse_role(raw)


def test_a_promotion_records_the_wish_and_a_demotion_is_at_once() -> None:
    worker = node("w", Role.WORKER)
    promoted = with_role(worker, Role.MANAGER, "t1")
    assert promoted is not None
    assert (promoted.role, promoted.desired_role, promoted.wanted_role) == (
        Role.WORKER, Role.MANAGER, Role.MANAGER,
    )  # fmt: skip
    assert with_role(promoted, Role.MANAGER, "t2") is None  # asked again: nothing new
    withdrawn = with_role(promoted, Role.WORKER, "t3")
    assert withdrawn is not None and (withdrawn.role, withdrawn.desired_role) == (Role.WORKER, None)
    demoted = with_role(node("m"), Role.WORKER, "t4")
    assert demoted is not None and (demoted.role, demoted.desired_role) == (Role.WORKER, None)
    assert with_role(node("m"), Role.MANAGER, "t5") is None


def test_a_node_that_left_keeps_its_role() -> None:
    with pytest.raises(Conflict, match="has left"):
        with_role(node("w", Role.WORKER, left=True), Role.MANAGER, "t")


def test_the_last_manager_is_not_demoted() -> None:
    managers = [node("a"), node("gone", left=True), node("w", Role.WORKER)]
    with pytest.raises(InvalidArgument) as refused:
        check_demotion(managers, managers[0], lambda _id: True)
    assert str(refused.value) == DEMOTE_LAST


@pytest.mark.parametrize(
    ("managers", "up", "demote", "allowed"),
    [
        (["a", "b", "c"], {"a", "b", "c"}, "a", True),
        (["a", "b", "c"], {"a", "b"}, "a", False),  # b alone of b, c: no majority
        (["a", "b", "c"], {"a", "b"}, "c", True),  # demoting the one that is down
        (["a", "b"], {"a", "b"}, "a", True),
        (["a", "b"], {"a"}, "a", False),
        (["a", "b", "c", "d", "e"], {"a", "b", "c"}, "a", False),  # b, c of four: no majority
        (["a", "b", "c", "d", "e"], {"a", "b", "c"}, "e", True),  # a, b, c of four
    ],
)
def test_a_demotion_keeps_a_majority_of_the_remaining_managers_up(
    managers: list[str], up: set[str], demote: str, allowed: bool
) -> None:
    nodes = [node(m) for m in managers]
    target = next(n for n in nodes if n.node_id == demote)
    if allowed:
        check_demotion(nodes, target, up.__contains__)
    else:
        with pytest.raises(InvalidArgument) as refused:
            check_demotion(nodes, target, up.__contains__)
        assert str(refused.value) == DEMOTE_QUORUM


# what a manager does ------------------------------------------------------------------------
async def up(rig: ManagerRig, *node_ids: str) -> None:
    for node_id in node_ids:
        await rig.hub.heartbeat(node_id)
    await rig.feed.wait_for(rig.store.revision)


async def test_node_update_promotes_by_recording_the_wanted_role(rig: ManagerRig) -> None:
    await rig.add_node("w1", "h2")
    await rig.nodes.update("h2", None, role="manager")
    recorded = rig.view.node("w1")
    assert recorded is not None
    assert (recorded.role, recorded.wanted_role) == (Role.WORKER, Role.MANAGER)
    reply = await rig.hub.heartbeat("w1")  # the node learns it from its next heartbeat
    assert reply.role == "manager"
    assert rig.view.manager_addrs() == []  # not a manager until its store member votes
    await rig.nodes.complete_promotion("w1")
    recorded = rig.view.node("w1")
    assert recorded is not None and (recorded.role, recorded.desired_role) == (Role.MANAGER, None)


async def three_managers(rig: ManagerRig, *up_ids: str) -> None:
    for node_id, host in (("m1", "h1"), ("m2", "h2"), ("m3", "h3")):
        await rig.add_node(node_id, host, Role.MANAGER)
    await up(rig, *up_ids)


async def test_node_update_demotes_at_once(rig: ManagerRig) -> None:
    await three_managers(rig, "m1", "m2", "m3")
    await rig.nodes.update("h2", None, role="worker")
    demoted = rig.view.node("m2")
    assert demoted is not None and (demoted.role, demoted.desired_role) == (Role.WORKER, None)
    assert len(rig.view.managers()) == 2
    assert (await rig.hub.heartbeat("m2")).role == "worker"  # it learns it from its beat


async def test_a_demotion_that_would_lose_the_quorum_changes_nothing(rig: ManagerRig) -> None:
    await three_managers(rig, "m1", "m2")  # m3 is down
    with pytest.raises(InvalidArgument, match="loss of quorum"):
        await rig.nodes.update("h1", None, role="worker")
    assert [n.role for n in rig.view.managers()] == [Role.MANAGER] * 3


def member(member_id: int, name: str, *, learner: bool = False) -> StoreMember:
    return StoreMember(member_id, name, (f"https://{name}:2380",), learner)


def test_the_members_of_nodes_that_are_no_managers_go() -> None:
    nodes = {
        "m1": node("m1"),
        "w1": node("w1", Role.WORKER),  # demoted
        "gone": node("gone", left=True),
        "p1": node("p1", Role.WORKER, desired_role=Role.MANAGER),  # being promoted
        "x1": node("x1", Role.WORKER),  # a promotion withdrawn: its learner
    }
    members = [
        member(1, "m1"),
        member(2, "w1"),
        member(3, "gone"),
        member(4, "p1", learner=True),
        member(5, "x1", learner=True),
        member(6, ""),  # added, not started yet
        member(7, "removed"),  # no record: demoted then removed (node rm) before a pass
    ]
    assert [m.member_id for m in surplus(members, nodes.get)] == [2, 3, 7, 5]


def test_the_last_voter_is_never_removed() -> None:
    nodes = {"w1": node("w1", Role.WORKER), "w2": node("w2", Role.WORKER)}
    members = [member(1, "w1"), member(2, "w2", learner=True)]
    assert [m.member_id for m in surplus(members, nodes.get)] == [2]


class ListingMembers:
    def __init__(self, members: list[StoreMember], unhealthy: int = 0) -> None:
        self.members = members
        self.unhealthy = unhealthy  # removals etcd refuses first (a member joined just now)

    async def listing(self) -> list[StoreMember]:
        return list(self.members)

    async def remove(self, member_id: int) -> None:
        if self.unhealthy:
            self.unhealthy -= 1
            raise Unavailable("etcdserver: unhealthy cluster")
        self.members = [m for m in self.members if m.member_id != member_id]


async def test_the_leader_removes_a_demoted_managers_member_until_it_is_gone(
    rig: ManagerRig,
) -> None:
    await three_managers(rig, "m1", "m2", "m3")
    await rig.nodes.update("h3", None, role="worker")
    members = ListingMembers([member(1, "m1"), member(2, "m2"), member(3, "m3")], unhealthy=1)
    reconciler = MemberReconciler(members, rig.view.node)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        await reconciler.step()  # refused by etcd: the loop tries again
    await reconciler.step()
    assert [m.name for m in members.members] == ["m1", "m2"]
    await reconciler.step()  # nothing more to do
    assert [m.name for m in members.members] == ["m1", "m2"]


def identity(cert_pem: str) -> ca.Identity:
    return ca.identity_of(x509.load_pem_x509_certificate(cert_pem.encode()))


def role_request(role: str) -> RoleRequest:
    return RoleRequest(
        role=role,
        csr_pem=ca.make_csr(ca.new_key_pem()).decode(),
        store_csr_pem=ca.make_csr(ca.new_key_pem()).decode() if role == "manager" else "",
    )


async def test_a_promoted_node_gets_a_managers_certificates_and_a_learner(
    rig: ManagerRig,
) -> None:
    members = FakeMembers()
    joins = JoinService(rig.store, members, rig.view, rig.nodes, rig.vault)  # type: ignore[arg-type]
    worker = await rig.add_node("w1", "h2")
    with pytest.raises(Forbidden, match="not to be a manager"):  # nobody promoted it
        await joins.take_role("w1", role_request("manager"))
    await rig.nodes.update("h2", None, role="manager")
    response = await joins.take_role("w1", role_request("manager"))
    assert identity(response.cert_pem) == ca.Identity("w1", "manager", "cluster0")
    ca.verify_signed_by(response.store_cert_pem.encode(), rig.store_ca.cert_pem)
    assert sealing.parse_key(response.unlock_key) == rig.kek
    peer = f"https://{worker.addr}:2380"
    assert members.learner_peers == [peer]
    assert response.etcd_initial_cluster is not None and peer in response.etcd_initial_cluster
    # a retried promotion starts a fresh member: the stale learner goes first
    await joins.take_role("w1", role_request("manager"))
    assert members.learner_peers == [peer]


async def test_a_demoted_node_gets_a_workers_certificate_only(rig: ManagerRig) -> None:
    members = FakeMembers()
    joins = JoinService(rig.store, members, rig.view, rig.nodes, rig.vault)  # type: ignore[arg-type]
    await rig.add_node("m1", "h1", Role.MANAGER)
    with pytest.raises(Forbidden, match="not to be a worker"):
        await joins.take_role("m1", role_request("worker"))
    demoted = Node("m2", "h2", Role.WORKER, "10.0.0.9")
    await rig.store.commit([Put(keys.node("m2"), encode(demoted))])
    await rig.feed.wait_for(rig.store.revision)
    response = await joins.take_role("m2", role_request("worker"))
    assert identity(response.cert_pem).role == "worker"
    assert (response.store_cert_pem, response.unlock_key) == ("", "")
    assert members.learner_peers == []


async def test_a_role_request_names_a_role(rig: ManagerRig) -> None:
    await rig.add_node("w1", "h2")
    with pytest.raises(FerryError):
        await rig.joins.take_role("w1", role_request("leader"))


@pytest.mark.parametrize(
    ("last", "reachable", "total", "says"),
    [
        (True, 1, 1, "Removing the last manager erases all current state of the swarm."),
        (False, 3, 3, "Removing this node leaves 2 managers out of 3. The only way to restore"),
        (False, 2, 3, "leaves 1 managers out of 3. Without a Raft quorum your swarm will be"),
        (False, 2, 2, "Removing this node leaves 1 managers out of 2. The only way to restore"),
    ],
)
def test_a_managers_leave_without_force_is_refused_in_dockers_words(
    last: bool, reachable: int, total: int, says: str
) -> None:
    message = leave_refusal(last, reachable, total)
    assert message.startswith("You are attempting to leave the swarm on a node that is ")
    assert says in message
    endings = ("Use `--force` to ignore this message.", "Use `--force` to suppress this message.")
    assert message.endswith(endings)


@pytest.mark.parametrize("raw", ["ACTIVE", "Drain", "pause"])
async def test_availability_takes_any_case(rig: ManagerRig, raw: str) -> None:
    await rig.add_node("w1", "h2")
    await rig.nodes.update("h2", None, availability=raw)
    found = rig.view.node("w1")
    assert found is not None and found.availability.value == raw.lower()


@pytest.mark.parametrize("raw", ["", "sleepy"])
async def test_a_missing_or_unknown_availability_is_refused(rig: ManagerRig, raw: str) -> None:
    await rig.add_node("w1", "h2")
    with pytest.raises(InvalidArgument, match=f'invalid Availability: "{raw}"'):
        await rig.nodes.update("h2", None, availability=raw)
