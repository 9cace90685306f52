"""swarm update's settings in the cluster record: the node certificates' expiry is taken
(swarmkit's one-hour minimum) and the next node certificate signed lives that long."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from ferry.errors import InvalidArgument
from ferry.manager.cluster_settings import set_settings
from tests.unit.conftest import ManagerRig
from tests.unit.test_manager_nodes import join_request


async def test_the_cert_expiry_changes_what_the_next_join_gets(rig: ManagerRig) -> None:
    with pytest.raises(InvalidArgument, match=r"^minimum certificate expiry time is: 1h0m0s$"):
        await set_settings(rig.store, rig.view, rig.feed, node_cert_expiry_s=1800)
    await set_settings(rig.store, rig.view, rig.feed, node_cert_expiry_s=48 * 3600)
    cluster = rig.view.cluster()
    assert cluster is not None and cluster.node_cert_expiry_s == 48 * 3600
    assert cluster.task_history == 5  # what was not given is unchanged
    response = await rig.joins.join(join_request(rig, rig.secrets.worker_secret), "10.99.0.12")
    cert = x509.load_pem_x509_certificate(response.cert_pem.encode())
    lives = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=47) < lives <= dt.timedelta(hours=48)
