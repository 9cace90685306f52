"""The swarm-wide settings ``swarm update`` changes in the cluster record (besides autolock,
which the key vault owns): the task history limit and the node certificates' validity. Each
is written with the record's version expected, so two updates never lose one another's
change."""

from __future__ import annotations

from dataclasses import replace

from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.manager.feed import StoreFeed
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.cluster import MIN_NODE_CERT_EXPIRY_S
from ferry.model.codec import encode


async def set_settings(
    store: Store,
    view: ClusterView,
    feed: StoreFeed,
    *,
    task_history: int | None = None,
    node_cert_expiry_s: int | None = None,
) -> None:
    """Change what is given (None: unchanged): ``task_history`` finished tasks kept per slot
    from now on (Docker's Orchestration.TaskHistoryRetentionLimit; negative keeps all; the
    leader's reconciler forgets the older ones on its next pass), and ``node_cert_expiry_s``,
    the validity of node certificates signed from now on (CAConfig.NodeCertExpiry;
    InvalidArgument under swarmkit's minimum of an hour). NotFound without a cluster record,
    Conflict when the record changed meanwhile."""
    cluster = view.cluster()
    if cluster is None:
        raise NotFound("cluster record is missing from the store")
    if node_cert_expiry_s is not None and node_cert_expiry_s < MIN_NODE_CERT_EXPIRY_S:
        raise InvalidArgument("minimum certificate expiry time is: 1h0m0s")
    updated = replace(
        cluster,
        task_history=cluster.task_history if task_history is None else task_history,
        node_cert_expiry_s=node_cert_expiry_s or cluster.node_cert_expiry_s,
    )
    if updated == cluster:
        return
    current = view.entity_version(keys.CLUSTER)
    revision = await store.commit(
        [Put(keys.CLUSTER, encode(updated))], [Expect(keys.CLUSTER, current)]
    )
    if revision is None:
        raise Conflict("the swarm's settings changed meanwhile; retry")
    await feed.wait_for(revision)
