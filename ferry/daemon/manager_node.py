"""This node as a manager: restored after a restart, bootstrapped at init, leaving.

The pieces of ``swarm.py`` that only a manager runs; the controller calls them under its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from ferry import __version__
from ferry.agent.link import ManagerLink, client_context
from ferry.daemon.config import DaemonConfig
from ferry.daemon.founding import Founding, bootstrap_ops
from ferry.daemon.logs import kv
from ferry.daemon.membership import Membership
from ferry.errors import Conflict, FerryError, Unavailable
from ferry.kernel import host
from ferry.manager.ca import CertPaths
from ferry.manager.etcd_member import load_config
from ferry.manager.manager import Manager
from ferry.manager.pinning import DigestResolver, no_registry
from ferry.manager.store import Expect, keys
from ferry.manager.vault import Vault
from ferry.model.cluster import ClusterInfo
from ferry.model.node import Availability, Node, Role
from ferry.model.ports import ETCD_PEER_PORT
from ferry.model.times import now_iso

log = logging.getLogger("ferry.swarm")

MEMBER_REMOVAL_WAIT_S = 30.0

LAST_MANAGER_MESSAGE = (
    "You are attempting to leave the swarm on a node that is participating as a manager. "
    "Removing the last manager erases all current state of the swarm. Use `--force` to "
    "ignore this message."
)
# Docker's, for a locked manager (daemon/cluster/swarm.go)
LOCKED_LEAVE_MESSAGE = (
    "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
)


async def restore_manager(
    config: DaemonConfig,
    certs: CertPaths,
    membership: Membership,
    resolve: DigestResolver = no_registry,
) -> Manager:
    """The manager this node was, running again: its etcd member adopted or restarted, holding
    the KEK from disk unless the swarm is autolocked (then locked until ``swarm unlock``)."""
    etcd_config = load_config(config.etcd_dir, certs, config.etcd_binary)
    if etcd_config is None:
        raise FerryError(f"manager state is incomplete: no etcd member record in {config.etcd_dir}")
    vault = Vault(certs.kek)
    vault.load()

    async def fetch_key() -> str:
        return await fetch_unlock_key(certs, membership)

    manager = Manager(
        membership.node_id,
        membership.cluster_id,
        certs,
        etcd_config,
        vault,
        fetch_key=fetch_key,
        resolve=resolve,
    )
    try:
        await manager.start_store()
        await manager.start_services(membership.listen_addr)
    except BaseException:
        await manager.stop()
        raise
    return manager


async def force_new_cluster(
    config: DaemonConfig,
    certs: CertPaths,
    membership: Membership,
    resolve: DigestResolver = no_registry,
) -> Manager:
    """``swarm init --force-new-cluster`` on a manager whose swarm lost its majority: its etcd
    member runs once with etcd's ``--force-new-cluster`` (the only member now, with all the
    data), then again as usual, so that no later restart forces anything. The other managers'
    records then say worker: they are no members any more, and one that comes back gives up
    its manager role (role_change.py). Services, networks, secrets and nodes are all kept.
    Raises FerryError when the store does not come up."""
    recorded = load_config(config.etcd_dir, certs, config.etcd_binary)
    if recorded is None:
        raise FerryError(f"manager state is incomplete: no etcd member record in {config.etcd_dir}")
    alone = replace(recorded, initial_cluster=f"{recorded.name}={recorded.peer_url}")
    vault = Vault(certs.kek)
    vault.load()
    manager = Manager(
        membership.node_id, membership.cluster_id, certs, replace(alone, force_new_cluster=True),
        vault, resolve=resolve,
    )  # fmt: skip
    try:
        manager.etcd.save_config()
        await manager.start_store()
        await manager.etcd.restart(alone)
        await manager.start_store()
        await manager.start_services(membership.listen_addr)
        await manager.nodes.forget_managers(keep=membership.node_id)
        await manager.nodes.forget_sessions(keep=membership.node_id)
    except BaseException:
        await manager.stop()
        raise
    log.warning("swarm recovered as a one-manager cluster", extra=kv(node=membership.node_id))
    return manager


async def fetch_unlock_key(certs: CertPaths, membership: Membership) -> str:
    """The KEK's text from another manager (store_upgrade.py), asked with this manager's node
    certificate; each other manager in turn, as one may be locked or not upgraded yet."""
    own = f"{membership.addr}:"
    errors = []
    for addr in (m for m in membership.managers if not m.startswith(own)):
        link = ManagerLink(client_context(certs.ca, certs.cert, certs.key), [addr])
        try:
            reply = await link.call("GET", "/v1/managers/unlock-key")
            return str(reply["unlock_key"])
        except FerryError as exc:
            errors.append(f"{addr}: {exc}")
        finally:
            await link.close()
    raise Unavailable(f"no other manager gave the unlock key ({'; '.join(errors) or 'none known'})")


def first_manager(hostname: str, node_id: str, addr: str, availability: Availability) -> Node:
    return Node(
        node_id=node_id,
        hostname=hostname,
        role=Role.MANAGER,
        addr=addr,
        availability=availability,
        created_at=now_iso(),
        updated_at=now_iso(),
        engine_version=__version__,
        ncpu=host.cpu_count(),
        memory_bytes=host.memory_bytes(),
    )


async def bootstrap_store(
    manager: Manager,
    founding: Founding,
    node: Node,
    default_pool: str,
    subnet_size: int,
    *,
    autolock: bool,
    data_path_port: int,
) -> None:
    """Write the new swarm into its empty store (Conflict if it is not empty)."""
    cluster = ClusterInfo(
        cluster_id=manager.cluster_id,
        created_at=now_iso(),
        ca_cert_pem=founding.cluster_ca.cert_pem.decode(),
        default_pool=default_pool,
        subnet_size=subnet_size,
        data_path_port=data_path_port,
    )
    ops = bootstrap_ops(founding, cluster, node, autolock=autolock)
    if await manager.store.commit(ops, [Expect(keys.CLUSTER, 0)]) is None:
        raise Conflict("the new store already holds a cluster")


async def leave_as_manager(manager: Manager, membership: Membership, force: bool) -> None:
    """What a manager's leave does to the swarm. Without ``force`` it is refused, in Docker's
    words, as Docker refuses every manager's leave (moby ``Cluster.Leave``). Forced, and not
    the last manager: the node is marked as left, and this returns once the leader has removed
    its store member (``store_members.py``; stopping ours first could cost the others their
    quorum) or MEMBER_REMOVAL_WAIT_S have passed."""
    managers = [n for n in manager.view.managers() if not n.left]
    reachable = sum(1 for n in managers if manager.view.is_up(n.node_id))
    last = len(managers) <= 1
    if not force:
        raise Conflict(leave_refusal(last, reachable, len(managers)))
    if last:
        return
    try:
        await manager.nodes.mark_left(membership.node_id)
        await wait_member_removed(manager, membership.addr)
    except FerryError as exc:
        log.warning("leaving before the store let this member go", extra=kv(error=exc))


def leave_refusal(last: bool, reachable: int, total: int) -> str:
    """Docker's refusal of a manager's leave without --force (moby daemon/cluster/swarm.go)."""
    if last:
        return LAST_MANAGER_MESSAGE
    message = (
        "You are attempting to leave the swarm on a node that is participating as a manager. "
        f"Removing this node leaves {reachable - 1} managers out of {total}. "
    )
    if reachable - 1 <= total - reachable:  # moby's isLosingQuorum
        message += "Without a Raft quorum your swarm will be inaccessible. "
    return message + (
        "The only way to restore a swarm that has lost consensus is to reinitialize it with "
        "`--force-new-cluster`. Use `--force` to suppress this message."
    )


async def wait_member_removed(manager: Manager, addr: str) -> None:
    """Until this manager's etcd member is gone from the store: the leader removes it once the
    record says worker or left. Raises Unavailable after MEMBER_REMOVAL_WAIT_S."""
    peer_url = f"https://{addr}:{ETCD_PEER_PORT}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEMBER_REMOVAL_WAIT_S
    while not manager.etcd.removed:
        with contextlib.suppress(FerryError):  # our member may be going: ask again
            if all(peer_url not in m.peer_urls for m in await manager.members.listing()):
                return
        if loop.time() > deadline:
            raise Unavailable(
                "this node's store member is not removed yet: the leader removes it once etcd "
                "lets it (a majority of the other managers up)"
            )
        await asyncio.sleep(0.5)
