"""The store's members follow the managers: the leader removes the etcd member of a node that
is no manager any more (demoted, or left without removing it itself).

Swarm does the same (swarmkit's role manager reconciles the raft members with the nodes'
roles): ``node demote`` changes the record and returns; the member goes afterwards. A removal
done in the demoting request itself could not finish when a manager demotes itself (its own
store stops under it), and a failed one would need undoing; a loop on the leader just tries
again. etcd refuses a removal that would leave fewer members up than its quorum ("unhealthy
cluster", its strict reconfiguration check), and so does ``check_demotion`` before the record
changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ferry.aio import Periodic
from ferry.daemon.logs import kv
from ferry.manager.store.etcd import EtcdMembers, StoreMember
from ferry.model.node import Node, Role

log = logging.getLogger("ferry.manager.store_members")

CHECK_S = 1.0


def surplus(members: list[StoreMember], node: Callable[[str], Node | None]) -> list[StoreMember]:
    """The members to remove, voters first: those whose node (by the member's name, its node
    id) is recorded as no manager — to be a worker, or left — or has no record any more
    (removed: ``node demote`` then ``node rm`` at once, before this loop's pass; swarmkit's
    role manager removes the raft member of a deleted node too). A member without a name
    (added, not started yet) is kept: a joining manager's record is written before its member
    is added, so a named member without a record was removed, never one still to come. Never
    the last voter."""
    voters = [m for m in members if not m.learner]
    unwanted = []
    for member in members:
        if not member.name:
            continue
        found = node(member.name)
        if found is None or found.left or found.wanted_role == Role.WORKER:
            unwanted.append(member)
    unwanted.sort(key=lambda m: m.learner)
    if voters and all(m in unwanted for m in voters):
        unwanted = [m for m in unwanted if m.learner]
    return unwanted


class MemberReconciler:
    """Runs on the leader only (``start`` when it takes office, ``stop`` when it leaves)."""

    def __init__(self, members: EtcdMembers, node: Callable[[str], Node | None]) -> None:
        self._members = members
        self._node = node
        # etcd not ready for a change yet: the next pass tries again; a dead loop would leave
        # demoted managers voting
        self._loop = Periodic(
            self.step,
            CHECK_S,
            log,
            waiting="store member not removed yet",
            crashed="store member reconciler crashed; going on",
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def step(self) -> None:
        """One pass: at most one removal (etcd takes one membership change at a time)."""
        listing = await self._members.listing()
        for member in surplus(listing, self._node)[:1]:
            await self._members.remove(member.member_id)
            log.info("store member removed", extra=kv(member=member.name, urls=member.peer_urls))
