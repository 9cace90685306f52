"""Root CA rotation on the managers (``docker swarm ca --rotate``): starting one, and the
leader's loop that moves it on as the nodes report (the steps: ``model/root_rotation.py``).

Like swarmkit's CA reconciler, the loop reads every node's reported TLS state (its heartbeat
carries it) and changes the cluster record when all nodes have done a step; each change is
written with the versions it read expected, so a concurrent ``swarm update`` or a second
leader loses nothing. The heartbeat's reply tells each node what to trust and which issuer
its certificate is to have; the node does the rest itself (``daemon/trust.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from ferry.aio import Periodic
from ferry.daemon.logs import kv
from ferry.errors import Conflict, InvalidArgument, NotFound, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.feed import StoreFeed
from ferry.manager.nodes import NodeOps
from ferry.manager.root_ca import (
    check_given_root,
    cross_sign,
    issuer_of,
    same_subject,
    valid_until,
)
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.manager.tokens import new_secret
from ferry.manager.vault import Vault
from ferry.model.cluster import RETIRED_ROOTS_KEPT, ClusterInfo, ClusterSecrets
from ferry.model.codec import encode
from ferry.model.root_rotation import RootRotation, Step, next_step

log = logging.getLogger("ferry.manager.root_rotation")

CHECK_S = 1.0


class RootRotations:
    def __init__(
        self, store: Store, view: ClusterView, feed: StoreFeed, vault: Vault, nodes: NodeOps
    ) -> None:
        self._store = store
        self._view = view
        self._feed = feed
        self._vault = vault
        self._nodes = nodes

    def _cluster(self) -> ClusterInfo:
        cluster = self._view.cluster()
        if cluster is None:
            raise NotFound("cluster record is missing from the store")
        return cluster

    async def start(
        self,
        force_rotate: int,
        given: ca.KeyPair | None = None,
        *,
        swarm_version: int,
        node_cert_expiry_s: int | None = None,
    ) -> None:
        """Start a rotation to ``given`` (``--ca-cert``/``--ca-key``), or to a new root made
        here; ``force_rotate`` is the CAConfig.ForceRotate recorded with it. Conflict while
        another rotation is under way or when the swarm changed since ``swarm_version``;
        InvalidArgument for a given root that is no usable CA, has the key of this root or of
        one rotated away, or ends before node certificates of ``node_cert_expiry_s`` (the
        expiry this update sets, else the swarm's) would; SwarmLocked while locked."""
        cluster = self._cluster()
        if cluster.root_rotation is not None:
            raise Conflict(
                "a root CA rotation is already in progress: wait for it to finish ('docker "
                "swarm ca' shows the root once it has; a node that is down holds it back until "
                "it returns or is removed with 'docker node rm --force')"
            )
        secrets, version = await self._nodes.secrets()
        if version != swarm_version:
            raise Conflict("update out of sequence: the swarm changed; inspect it and retry")
        if not secrets.sealed:
            raise Unavailable("this swarm's keys are not sealed yet: restart its managers first")
        if given is not None:
            cert_pem = check_given_root(given.cert_pem, given.key_pem, dt.datetime.now(dt.UTC))
            given = ca.KeyPair(cert_pem, given.key_pem)
        new = given or ca.create_ca(cluster.cluster_id)
        if new.cert_pem.strip() == cluster.ca_cert_pem.encode().strip():
            raise InvalidArgument("the given CA certificate is the swarm's root CA already")
        new_key = issuer_of(new.cert_pem).key
        if new_key == issuer_of(cluster.ca_cert_pem.encode()).key:
            # the point of a rotation is a key the old one's holders do not have
            raise InvalidArgument(
                "the given CA certificate has the key of the swarm's current root: a rotation "
                "needs a new key"
            )
        if new_key in cluster.retired_root_keys:
            raise InvalidArgument(
                "the given CA certificate has the key of a root this swarm rotated away from: "
                "a rotation needs a new key"
            )
        expiry_s = node_cert_expiry_s or cluster.node_cert_expiry_s
        ends = valid_until(new.cert_pem)
        if ends < dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expiry_s):
            raise InvalidArgument(
                f"the given CA certificate expires at {ends.isoformat()}, before node "
                f"certificates of the swarm's expiry ({expiry_s // 3600}h) would: give a root "
                "valid longer, or a shorter --cert-expiry"
            )
        if same_subject(new.cert_pem, cluster.ca_cert_pem.encode()):
            # nodes trust both roots for a while; TLS finds an issuer by its name first
            raise InvalidArgument(
                "the given CA certificate has the subject name of the swarm's current root: "
                "give the new root a name of its own"
            )
        old = self._vault.ca_pair(cluster, secrets)
        rotation = RootRotation(new.cert_pem.decode(), cross_sign(old, new.cert_pem).decode())
        sealed = sealing.seal(self._vault.kek(), new.key_pem, sealing.ROTATION_CA_KEY)
        await self._commit(
            replace(cluster, root_rotation=rotation, ca_force_rotate=force_rotate),
            replace(secrets, rotation_ca_key_sealed=sealed),
            version,
        )
        log.info("root CA rotation started", extra=kv(given=given is not None))

    async def step(self) -> Step:
        """One pass of the leader's loop: move the rotation on if every node has done the
        current step. Returns what it did (WAIT: nothing)."""
        cluster = self._view.cluster()
        rotation = cluster.root_rotation if cluster is not None else None
        if cluster is None or rotation is None:
            return Step.WAIT
        reports = [node.tls for node in self._view.nodes()]
        step = next_step(rotation, issuer_of(rotation.ca_cert_pem.encode()), reports)
        if step == Step.SIGN:
            await self._commit(replace(cluster, root_rotation=replace(rotation, signing=True)))
            log.info("root CA rotation: every node trusts the new root; signing with it")
        elif step == Step.FINISH:
            secrets, version = await self._nodes.secrets()
            retired = (*cluster.retired_root_keys, issuer_of(cluster.ca_cert_pem.encode()).key)
            await self._commit(
                replace(
                    cluster,
                    ca_cert_pem=rotation.ca_cert_pem,
                    root_rotation=None,
                    retired_root_keys=retired[-RETIRED_ROOTS_KEPT:],
                ),
                self._finished(secrets),
                version,
            )
            log.info("root CA rotation finished: the new root is the swarm's")
        return step

    def _finished(self, secrets: ClusterSecrets) -> ClusterSecrets:
        """The secrets once the new root is the swarm's: its key is the CA key, the old one
        is gone, and the join tokens are new (a token names the root by its digest)."""
        key = self._vault.rotation_key(secrets)
        if key is None:
            raise NotFound("the new root's key is missing from the swarm's secrets")
        return replace(
            secrets,
            ca_key_sealed=sealing.seal(self._vault.kek(), key, sealing.CLUSTER_CA_KEY),
            rotation_ca_key_sealed="",
            worker_secret=new_secret(),
            manager_secret=new_secret(),
        )

    async def _commit(
        self,
        cluster: ClusterInfo,
        secrets: ClusterSecrets | None = None,
        secrets_version: int | None = None,
    ) -> None:
        ops = [Put(keys.CLUSTER, encode(cluster))]
        expect = [Expect(keys.CLUSTER, self._view.entity_version(keys.CLUSTER))]
        if secrets is not None and secrets_version is not None:
            ops.append(Put(keys.SECRETS, encode(secrets)))
            expect.append(Expect(keys.SECRETS, secrets_version))
        revision = await self._store.commit(ops, expect)
        if revision is None:
            raise Conflict("the swarm changed meanwhile; retry")
        await self._feed.wait_for(revision)


def rotation_loop(rotations: RootRotations) -> Periodic:
    """The leader's loop (``start`` when it takes office, ``stop`` when it leaves); a dead
    loop would leave a rotation half-done for good."""
    return Periodic(rotations.step, CHECK_S, log, waiting="root CA rotation held up",
                    crashed="root CA rotation loop crashed; going on")  # fmt: skip
