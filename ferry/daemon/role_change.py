"""This node taking the role its record asks for (``node promote`` / ``node demote``).

The heartbeat's reply carries the role a node is to have; when it differs from the role this
node runs, the controller calls ``become_manager`` or ``become_worker`` under its lock. Like
a Swarm node renewing its certificate for a new role, the node asks a manager for new
certificates with its current one (``POST /v1/role``):

- a promoted worker gets a manager's node certificate, a store certificate and the KEK; its
  store member is added as a learner, started, and promoted once caught up (as a manager join
  does); only then does its record say manager. A failure undoes everything on this node and
  the next heartbeat tries again.
- a demoted manager waits until the leader has removed its store member (until then its
  member votes, so that the others keep their quorum), then stops its manager, forgets its
  store and the KEK, and keeps working as a worker with a worker's certificate. A manager
  whose member was removed while it was down does the same when it starts again (``forget``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from typing import TYPE_CHECKING

from ferry.daemon.addrs import with_port
from ferry.daemon.logs import kv
from ferry.daemon.manager_node import wait_member_removed
from ferry.daemon.membership import Membership
from ferry.manager import ca
from ferry.manager.cluster_api import PORT
from ferry.manager.wire import JoinResponse, RoleRequest
from ferry.model.node import Role

if TYPE_CHECKING:
    from ferry.daemon.swarm import SwarmController

log = logging.getLogger("ferry.swarm")

ROLE_CALL_TIMEOUT_S = 90.0  # a promotion waits for etcd to take a new member (~5 s apart)


async def become_manager(ctl: SwarmController) -> None:
    """Run this worker as a manager (see the module notes). Raises what the managers answer
    (Forbidden when the record no longer asks for it) or what starting the manager raised."""
    membership, agent = ctl.require_member()
    certs = ctl.file.certs
    key_pem, store_key_pem = ca.new_key_pem(), ca.new_key_pem()
    request = RoleRequest(
        role=Role.MANAGER.value,
        csr_pem=ca.make_csr(key_pem).decode(),
        store_csr_pem=ca.make_csr(store_key_pem).decode(),
    )
    reply = JoinResponse.model_validate(
        await agent.link.call(
            "POST", "/v1/role", request.model_dump(), timeout_s=ROLE_CALL_TIMEOUT_S
        )
    )
    target = agent.link.current  # the manager that added our store member promotes it
    old_cert, old_key = certs.cert.read_bytes(), certs.key.read_bytes()
    certs.write_node(reply.ca_pem.encode(), reply.cert_pem.encode(), key_pem)
    promoted = replace(
        membership,
        role=Role.MANAGER,
        managers=sorted(with_port(m, PORT) for m in reply.managers) or membership.managers,
    )

    def undo() -> None:
        shutil.rmtree(ctl.config.etcd_dir, ignore_errors=True)
        certs.remove_store()
        certs.write_node(certs.ca.read_bytes(), old_cert, old_key)
        ctl.file.save(membership)

    await ctl.start_joined_manager(reply, promoted, store_key_pem, target, undo)
    ctl.membership = promoted
    await agent.reload_certificate()
    log.info("this node is a manager now", extra=kv(node=membership.node_id))


async def become_worker(ctl: SwarmController) -> None:
    """Run this manager as a worker (see the module notes): the manager and its store member
    stop, the store's credentials and the KEK leave this host."""
    membership, agent = ctl.require_member()
    certs = ctl.file.certs
    key_pem = ca.new_key_pem()
    request = RoleRequest(role=Role.WORKER.value, csr_pem=ca.make_csr(key_pem).decode())
    reply = JoinResponse.model_validate(
        await agent.link.call("POST", "/v1/role", request.model_dump())
    )
    if ctl.manager is not None:
        # our etcd member keeps voting until the leader has removed it: stopped before, it
        # would count against the others' quorum, and the removal itself needs a majority
        await wait_member_removed(ctl.manager, membership.addr)
    # the KEK and the store's credentials leave the disk first (the running manager holds
    # what it needs in memory), then the manager and its member stop
    certs.remove_store()
    certs.write_node(reply.ca_pem.encode(), reply.cert_pem.encode(), key_pem)
    manager, ctl.manager = ctl.manager, None
    if manager is not None:
        await manager.stop()
    shutil.rmtree(ctl.config.etcd_dir, ignore_errors=True)
    demoted = replace(
        membership,
        role=Role.WORKER,
        managers=sorted(with_port(m, PORT) for m in reply.managers) or membership.managers,
    )
    ctl.file.save(demoted)
    ctl.membership = demoted
    agent.link.set_managers(demoted.managers)
    await agent.reload_certificate()
    log.info("this node is a worker now", extra=kv(node=membership.node_id))


def forget_manager_role(ctl: SwarmController, membership: Membership) -> Membership:
    """This node's manager cannot run because its store member was removed (demoted, or the
    swarm recovered without it, while it was down): it is a worker from here on, with no store
    data and no KEK. If its record asks for a manager again, the next heartbeat promotes it.
    Its certificate (a manager's) serves until that, or its renewal."""
    shutil.rmtree(ctl.config.etcd_dir, ignore_errors=True)
    ctl.file.certs.remove_store()
    worker = replace(membership, role=Role.WORKER)
    ctl.file.save(worker)
    log.warning("this node's store member was removed: it runs as a worker")
    return worker
