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


class Agent:
    def __init__(
        self,
        node_id: str,
        certs: CertPaths,
        managers: list[str],
        on_managers: Callable[[list[str]], None],
        *,
        images: Callable[[], list[str]] = list,
        ports: Callable[[], list[str]] = list,
        wg_key: Callable[[], str] = str,
    ) -> None:
        self.node_id = node_id
        self.link = ManagerLink(client_context(certs.ca, certs.cert, certs.key), managers)
        self.mirror = Mirror(TYPES)
        self.view = ClusterView(self.mirror)
        self.session = AgentSession(
            self.link, self.mirror, on_managers, images=images, ports=ports, wg_key=wg_key
        )

    async def start(self) -> None:
        self.session.start()

    async def stop(self) -> None:
        await self.session.stop()
        await self.link.close()
