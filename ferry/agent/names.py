"""The names a container can resolve, built from the endpoints of the networks it is on.

On each network, an endpoint answers to its owner's name, its aliases and its hostname, also
qualified with the network's name (``app2.my_overlay``). A service answers with its VIP, or with
its running tasks' addresses in dnsrr mode; ``tasks.<service>`` (and ``tasks.<alias>`` for
each of its aliases there) always lists the running tasks;
a task that is not running is not in DNS at all. A container sees only the networks it is
attached to: that is what isolates name resolution between overlays. A name a service holds
(its VIP, its tasks) is answered by the service alone: a container that holds the same name on
one of the asker's networks — a local one, which no manager sees, or one made before the service
— never adds its address to the service's (that would take part of the service's traffic, and
the managers refuse such names for new containers). Tables are rebuilt lazily after a change
(``invalidate``), once per network, not per query; the DNS server keeps its own cache of
finished answers on top.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from ferry.model.network import Endpoint, EndpointKind

SERVICE_KINDS = (EndpointKind.VIP, EndpointKind.TASK)
Forward = dict[str, dict[str, tuple[str, ...]]]  # net_id -> DNS name -> addresses

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
        # services' names and everyone else's, apart: see the module notes
        self._tables_built: tuple[Forward, Forward, dict[str, dict[str, str]]] | None = None

    def invalidate(self) -> None:
        self._tables_built = None

    def _build(self) -> tuple[Forward, Forward, dict[str, dict[str, str]]]:
        names = self._network_names()
        running = self._running_tasks()
        dnsrr = self._dnsrr()
        served: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        others: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        reverse: dict[str, dict[str, str]] = defaultdict(dict)
        endpoints = sorted(self._endpoints(), key=lambda e: (e.net_id, e.ip))
        # a service's aliases on a network (its VIP's): ``tasks.<alias>`` lists its tasks too,
        # as libnetwork adds "tasks."+alias (a stack's ``tasks.web``)
        aliases = {(ep.net_id, ep.service): ep.aliases for ep in endpoints
                   if ep.kind == EndpointKind.VIP}  # fmt: skip
        for ep in endpoints:
            if ep.kind == EndpointKind.SANDBOX:
                continue
            labels: tuple[str, ...] = (ep.name, *ep.aliases, ep.hostname)
            if ep.kind == EndpointKind.TASK:
                if ep.owner_id not in running:
                    continue
                known = (*aliases.get((ep.net_id, ep.service), ()), *ep.aliases)
                labels += tuple(f"tasks.{name}" for name in (ep.service, *known))
                if ep.service in dnsrr:
                    labels += (ep.service,)
            net_name = names.get(ep.net_id, "")
            table = (served if ep.kind in SERVICE_KINDS else others)[ep.net_id]
            for label in dict.fromkeys(labels):
                if not label:
                    continue
                key = label.lower()
                table[key].append(ep.ip)
                if net_name:
                    table[f"{key}.{net_name.lower()}"].append(ep.ip)
            reverse[ep.net_id][ep.ip] = f"{ep.name}.{net_name}" if net_name else ep.name
        return _frozen(served), _frozen(others), dict(reverse)

    def _tables(self) -> tuple[Forward, Forward, dict[str, dict[str, str]]]:
        if self._tables_built is None:
            self._tables_built = self._build()
        return self._tables_built

    def lookup(self, asker: str, qname: str) -> tuple[str, ...] | None:
        """The addresses ``qname`` (lower case) has for ``asker``: a service's alone where a
        service holds the name on one of its networks, else every endpoint's; None: none."""
        served, others, _ = self._tables()
        networks = self._asker_networks(asker)
        for forward in (served, others):
            found: list[str] = []
            for net_id in networks:
                found += forward.get(net_id, {}).get(qname, ())
            if found:
                return tuple(dict.fromkeys(found))
        return None

    def reverse(self, asker: str, ip: str) -> str | None:
        _, _, reverse = self._tables()
        for net_id in self._asker_networks(asker):
            name = reverse.get(net_id, {}).get(ip)
            if name:
                return name
        return None

    def names(self, asker: str) -> list[str]:
        """Every name ``asker`` can resolve (unqualified and network-qualified), sorted."""
        served, others, _ = self._tables()
        found: set[str] = set()
        for net_id in self._asker_networks(asker):
            found |= set(served.get(net_id, {})) | set(others.get(net_id, {}))
        return sorted(found)


def _frozen(table: dict[str, dict[str, list[str]]]) -> Forward:
    return {
        net_id: {name: tuple(dict.fromkeys(ips)) for name, ips in names.items()}
        for net_id, names in table.items()
    }
