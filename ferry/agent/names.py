"""The names a container can resolve, built from the endpoints of the networks it is on.

On each network, an endpoint answers to its owner's name, its aliases and its hostname, also
qualified with the network's name (``app2.my_overlay``). A service answers with its VIP, or with
its running tasks' addresses in dnsrr mode; ``tasks.<service>`` always lists the running tasks;
a task that is not running is not in DNS at all. A container sees only the networks it is
attached to: that is what isolates name resolution between overlays. Tables are rebuilt
lazily after a change (``invalidate``), once per network, not per query; the DNS server keeps
its own cache of finished answers on top.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from ferry.model.network import Endpoint, EndpointKind

EndpointSource = Callable[[], Iterable[Endpoint]]
NetworkNames = Callable[[], dict[str, str]]  # net_id -> network name
AskerNetworks = Callable[[str], tuple[str, ...]]  # asker key -> net_ids it is attached to
Names = Callable[[], set[str]]


class NameTable:
    def __init__(
        self,
        endpoints: EndpointSource,
        network_names: NetworkNames,
        asker_networks: AskerNetworks,
        running_tasks: Names = set,
        dnsrr_services: Names = set,
    ) -> None:
        self._running_tasks = running_tasks
        self._dnsrr = dnsrr_services
        self._endpoints = endpoints
        self._network_names = network_names
        self._asker_networks = asker_networks
        self._forward: dict[str, dict[str, tuple[str, ...]]] | None = None
        self._reverse: dict[str, dict[str, str]] | None = None

    def invalidate(self) -> None:
        self._forward = None
        self._reverse = None

    def _build(self) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, dict[str, str]]]:
        names = self._network_names()
        running = self._running_tasks()
        dnsrr = self._dnsrr()
        forward: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        reverse: dict[str, dict[str, str]] = defaultdict(dict)
        for ep in sorted(self._endpoints(), key=lambda e: (e.net_id, e.ip)):
            if ep.kind == EndpointKind.SANDBOX:
                continue
            labels: tuple[str, ...] = (ep.name, *ep.aliases, ep.hostname)
            if ep.kind == EndpointKind.TASK:
                if ep.owner_id not in running:
                    continue
                labels += (f"tasks.{ep.service}",)
                if ep.service in dnsrr:
                    labels += (ep.service,)
            net_name = names.get(ep.net_id, "")
            table = forward[ep.net_id]
            for label in dict.fromkeys(labels):
                if not label:
                    continue
                key = label.lower()
                table[key].append(ep.ip)
                if net_name:
                    table[f"{key}.{net_name.lower()}"].append(ep.ip)
            reverse[ep.net_id][ep.ip] = f"{ep.name}.{net_name}" if net_name else ep.name
        frozen = {
            net_id: {name: tuple(dict.fromkeys(ips)) for name, ips in table.items()}
            for net_id, table in forward.items()
        }
        return frozen, dict(reverse)

    def _tables(self) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, dict[str, str]]]:
        if self._forward is None or self._reverse is None:
            self._forward, self._reverse = self._build()
        return self._forward, self._reverse

    def lookup(self, asker: str, qname: str) -> tuple[str, ...] | None:
        forward, _ = self._tables()
        found: list[str] = []
        for net_id in self._asker_networks(asker):
            found += forward.get(net_id, {}).get(qname, ())
        return tuple(dict.fromkeys(found)) if found else None

    def reverse(self, asker: str, ip: str) -> str | None:
        _, reverse = self._tables()
        for net_id in self._asker_networks(asker):
            name = reverse.get(net_id, {}).get(ip)
            if name:
                return name
        return None

    def names(self, asker: str) -> list[str]:
        """Every name ``asker`` can resolve (unqualified and network-qualified), sorted."""
        forward, _ = self._tables()
        found: set[str] = set()
        for net_id in self._asker_networks(asker):
            found |= set(forward.get(net_id, {}))
        return sorted(found)
