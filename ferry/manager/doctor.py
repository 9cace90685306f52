"""``ferry doctor --all``: a manager asks every node to examine itself and gathers the answers.

Design notes. Nodes dial managers, never the reverse, so the question travels through the store,
as log requests do (see ``manager.logs``): one lease-bound ``doctorreqs/<node>/<id>`` key per
node that is not Down; each agent sees its key in its mirror, examines its host
(``doctor.host``) and posts the findings to the manager that asked (``POST /v1/doctor/<id>``).
A node that is Down, or does not answer within ANSWER_WAIT_S, is itself a finding: it was not
examined, and nothing is claimed clean for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace

from ferry.doctor.findings import Finding
from ferry.errors import FerryError
from ferry.manager.store import Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.ids import new_hex_id
from ferry.model.logs import DoctorRequest

LEASE_TTL_S = 30
ANSWER_WAIT_S = 20.0


class DoctorRelay:
    def __init__(self, store: Store, view: ClusterView, manager_addr: str) -> None:
        self._store = store
        self._view = view
        self._addr = manager_addr
        self._answers: dict[str, asyncio.Queue[tuple[str, list[Finding]]]] = {}

    def deliver(self, req_id: str, node_id: str, findings: Sequence[Finding]) -> None:
        """A node's answer (the cluster API calls this for the node its certificate names)."""
        inbox = self._answers.get(req_id)
        if inbox is not None:
            inbox.put_nowait((node_id, list(findings)))

    async def examine_all(self) -> list[Finding]:
        nodes = [n for n in self._view.nodes() if not n.left]
        asked = {n.node_id: n.hostname for n in nodes if not self._view.is_down(n.node_id)}
        findings = [
            Finding(n.hostname, "node", n.hostname, "state", "ready", "down: not examined")
            for n in nodes
            if n.node_id not in asked
        ]
        if not asked:
            return sorted(findings)
        req_id = new_hex_id()
        inbox: asyncio.Queue[tuple[str, list[Finding]]] = asyncio.Queue()
        self._answers[req_id] = inbox
        lease = await self._store.grant_lease(LEASE_TTL_S)
        try:
            await self._store.commit(
                [
                    Put(
                        keys.doctor_request(node_id, req_id),
                        encode(DoctorRequest(req_id, node_id, self._addr)),
                        lease,
                    )
                    for node_id in asked
                ]
            )
            pending = dict(asked)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ANSWER_WAIT_S
            while pending:
                try:
                    node_id, found = await asyncio.wait_for(inbox.get(), deadline - loop.time())
                except TimeoutError:
                    break
                host = pending.pop(node_id, None)
                if host is not None:  # each asked node once, and about itself only
                    findings += [replace(f, node=host) for f in found]
            findings += [
                Finding(host, "node", host, "answer", "findings", "no answer: not examined")
                for host in pending.values()
            ]
        finally:
            self._answers.pop(req_id, None)
            with contextlib.suppress(FerryError):
                await self._store.revoke_lease(lease)
        return sorted(findings)
