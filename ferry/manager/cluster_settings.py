"""The swarm-wide settings ``swarm update`` changes in the cluster record (besides autolock,
which the key vault owns): today the task history limit. Each is written with the record's
version expected, so two updates never lose one another's change."""

from __future__ import annotations

from dataclasses import replace

from ferry.errors import Conflict, NotFound
from ferry.manager.feed import StoreFeed
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode


async def set_task_history(store: Store, view: ClusterView, feed: StoreFeed, limit: int) -> None:
    """Keep ``limit`` finished tasks per slot from now on (Docker's
    Orchestration.TaskHistoryRetentionLimit; negative keeps all). The leader's reconciler
    forgets the older ones on its next pass. NotFound without a cluster record, Conflict when
    the record changed meanwhile."""
    cluster = view.cluster()
    if cluster is None:
        raise NotFound("cluster record is missing from the store")
    if cluster.task_history == limit:
        return
    updated = replace(cluster, task_history=limit)
    current = view.entity_version(keys.CLUSTER)
    revision = await store.commit(
        [Put(keys.CLUSTER, encode(updated))], [Expect(keys.CLUSTER, current)]
    )
    if revision is None:
        raise Conflict("the swarm's settings changed meanwhile; retry")
    await feed.wait_for(revision)
