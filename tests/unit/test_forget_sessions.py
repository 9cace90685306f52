"""``swarm init --force-new-cluster`` ends the old cluster's sessions (nodes.py)."""

from __future__ import annotations

from tests.unit.conftest import ManagerRig


async def test_force_new_cluster_ends_the_old_clusters_sessions_but_its_own(
    rig: ManagerRig,
) -> None:
    for node_id, name in (("n1", "h1"), ("n2", "h2"), ("n3", "h3")):
        await rig.add_node(node_id, name)
        await rig.hub.heartbeat(node_id)
    await rig.feed.wait_for(rig.store.revision)
    old = {n: rig.view.session(n) for n in ("n1", "n2", "n3")}
    assert all(old.values())
    await rig.nodes.forget_sessions(keep="n1")
    assert rig.view.session("n1") == old["n1"]
    assert rig.view.session("n2") is None and rig.view.session("n3") is None
    session = old["n2"]
    assert session is not None
    assert not await rig.store.refresh_lease(session.lease_id)  # revoked, not left to lapse
    await rig.hub.heartbeat("n2")  # a node that is up opens a new session at its next beat
    await rig.feed.wait_for(rig.store.revision)
    again = rig.view.session("n2")
    assert again is not None and again.lease_id != session.lease_id
