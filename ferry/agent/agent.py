"""An agent: this host's member of the swarm. Holds the session with the managers and the
mirror of cluster state that every reconciler on this host reads."""

from __future__ import annotations

from collections.abc import Callable

from ferry.agent.link import ManagerLink, client_context
from ferry.agent.session import AgentSession
from ferry.manager.ca import CertPaths
from ferry.manager.store.schema import TYPES
from ferry.manager.store.view import ClusterView
from ferry.model.mirror import Mirror
from ferry.model.root_rotation import Issuer, NodeTLS


class Agent:
    def __init__(
        self,
        node_id: str,
        certs: CertPaths,
        managers: list[str],
        on_managers: Callable[[list[str]], None],
        *,
        on_role: Callable[[str], None] = lambda _role: None,
        images: Callable[[], list[str]] = list,
        ports: Callable[[], list[str]] = list,
        wg_key: Callable[[], str] = str,
        tls: Callable[[], NodeTLS] = NodeTLS,
        on_tls: Callable[[str, Issuer], None] = lambda _trust, _issuer: None,
    ) -> None:
        self.node_id = node_id
        self.certs = certs
        self.link = ManagerLink(client_context(certs.ca, certs.cert, certs.key), managers)
        self.mirror = Mirror(TYPES)
        self.view = ClusterView(self.mirror)
        self.session = AgentSession(
            self.link,
            self.mirror,
            on_managers,
            on_role=on_role,
            images=images,
            ports=ports,
            wg_key=wg_key,
            tls=tls,
            on_tls=on_tls,
        )

    async def start(self) -> None:
        self.session.start()

    async def reload_certificate(self) -> None:
        """Talk to the managers with this node's certificate as it is on disk now (a new one
        for a new role)."""
        certs = self.certs
        # the session's stream runs on a connection of the old certificate: it stops with it
        # and opens again (a fresh snapshot), as after any broken stream
        await self.session.stop()
        await self.link.use(client_context(certs.ca, certs.cert, certs.key))
        self.session.start()

    async def stop(self) -> None:
        await self.session.stop()
        await self.link.close()
