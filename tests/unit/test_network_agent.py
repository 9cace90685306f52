"""The network agent owns overlay sandboxes: a pass that started before an attach never takes
the sandbox from under it (issue 8, input 1)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from ferry.agent import networks
from ferry.agent.container_networks import ContainerNetworks
from ferry.agent.link import ManagerLink
from ferry.agent.local_networks import LocalNetworks
from ferry.agent.networks import NetworkAgent
from ferry.errors import Forbidden
from ferry.manager.store import keys
from ferry.manager.store.schema import TYPES, LeaderRecord
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode, to_plain
from ferry.model.container import NetworkChoice
from ferry.model.mirror import Mirror
from ferry.model.network import Driver, Endpoint, EndpointKind, Network, Scope
from ferry.model.node import Node, NodeSession, Role
from ferry.model.service import ContainerTemplate, Service, ServiceSpec
from ferry.network.drivers.overlay import OverlayDriver
from ferry.network.peers import Peer, PeerPlan

ME = "node-me"


def network(net_id: str) -> Network:
    return Network(net_id, net_id, Driver.OVERLAY, Scope.SWARM, "10.0.1.0/24", "10.0.1.1", vni=7)


def endpoint(net_id: str, ep_id: str, node_id: str = ME) -> Endpoint:
    return Endpoint(
        ep_id, net_id, node_id, "10.0.1.5", "02:42:0a:00:01:05", EndpointKind.TASK, "t1", "web.1"
    )


class FakeOverlay:
    """The overlay driver's contract in memory: sandboxes and what is plugged into them."""

    def __init__(self) -> None:
        self.sandboxes: set[str] = set()
        self.plugs: dict[str, set[str]] = {}
        self.removed: list[str] = []
        self.gate: dict[str, asyncio.Event] = {}  # set_peers waits here, per network

    async def ensure_network(self, network: Network) -> None:
        self.sandboxes.add(network.net_id[:12])

    async def ensure_endpoint(
        self, network: Network, ep: Endpoint, _netns: Path, _ifname: str
    ) -> None:
        short = network.net_id[:12]
        assert short in self.sandboxes, "an endpoint plugged into a sandbox that is gone"
        self.plugs.setdefault(short, set()).add(ep.ep_id)

    async def remove_endpoint(self, net_id: str, ep_id: str) -> None:
        self.plugs.get(net_id[:12], set()).discard(ep_id)

    async def set_peers(self, net_id: str, _peers: frozenset[Peer]) -> PeerPlan:
        gate = self.gate.get(net_id)
        if gate is not None:
            await gate.wait()
        return PeerPlan()

    async def plugged(self, net_id: str) -> set[str]:
        return set(self.plugs.get(net_id[:12], set()))

    async def remove_network(self, net_id: str) -> None:
        self.sandboxes.discard(net_id[:12])
        self.plugs.pop(net_id[:12], None)
        self.removed.append(net_id[:12])

    def existing_sandboxes(self) -> list[str]:
        return sorted(self.sandboxes)


class FakeLink:
    def __init__(self, reply: Endpoint | None = None) -> None:
        self.reply = reply
        self.calls: list[tuple[str, str]] = []

    async def call(self, method: str, path: str, _body: Any = None) -> Any:
        self.calls.append((method, path))
        if method == "POST" and self.reply is not None:
            return to_plain(self.reply)
        return {}


def rig(mirror: Mirror, overlay: FakeOverlay, link: FakeLink | None = None) -> NetworkAgent:
    return NetworkAgent(
        ME,
        cast(ManagerLink, link or FakeLink()),
        ClusterView(mirror),
        cast(OverlayDriver, overlay),
        set,
    )


def seed(mirror: Mirror, *items: tuple[str, Any]) -> None:
    mirror.reset([(key, encode(obj), 1) for key, obj in items], 1)


def add(mirror: Mirror, key: str, obj: Any) -> None:
    mirror.apply([(key, encode(obj), mirror.revision + 1)])


NODE = Node(ME, "h2", Role.WORKER, "10.99.0.12")


async def test_a_pass_older_than_a_task_attach_keeps_the_new_sandbox() -> None:
    mirror = Mirror(TYPES)
    a, b = network("aaaaaaaaaaaaaaaa"), network("bbbbbbbbbbbbbbbb")
    busy = endpoint(a.net_id, "ep-a")
    seed(mirror, (keys.node(ME), NODE), (keys.network(a.net_id), a),
         (keys.network(b.net_id), b), (keys.endpoint(a.net_id, "ep-a"), busy))  # fmt: skip
    overlay = FakeOverlay()
    overlay.gate[a.net_id] = asyncio.Event()
    agent = rig(mirror, overlay)
    # the pass reads its view (no endpoint on b yet), then waits on network a's kernel work
    reconcile = asyncio.create_task(agent.reconcile())
    await asyncio.sleep(0)
    # meanwhile a task is placed here on b, and starts: its sandbox is made, its veth plugged
    new = endpoint(b.net_id, "ep-b")
    add(mirror, keys.endpoint(b.net_id, "ep-b"), new)
    await agent.attach(
        NetworkChoice(b.net_id, ep_id="ep-b"), Path("/run/netns/x"), "eth0",
        owner_id="t2", name="race.1", hostname="",
    )  # fmt: skip
    overlay.gate[a.net_id].set()
    await reconcile
    assert "bbbbbbbbbbbb" in overlay.sandboxes
    assert overlay.removed == []


async def test_an_attach_in_flight_whose_endpoint_the_mirror_has_not_seen_keeps_its_sandbox() -> (
    None
):
    """A standalone container's endpoint reaches this host's mirror after the manager made it:
    between the two only the attach itself knows the sandbox is wanted."""
    mirror = Mirror(TYPES)
    b = network("bbbbbbbbbbbbbbbb")
    seed(mirror, (keys.node(ME), NODE), (keys.network(b.net_id), b))
    overlay = FakeOverlay()
    reply = endpoint(b.net_id, "ep-c")
    agent = rig(mirror, overlay, FakeLink(reply))
    plugging = asyncio.Event()
    release = asyncio.Event()
    real_ensure = overlay.ensure_endpoint

    async def slow_ensure(net: Network, ep: Endpoint, netns: Path, ifname: str) -> None:
        plugging.set()
        await release.wait()
        await real_ensure(net, ep, netns, ifname)

    overlay.ensure_endpoint = slow_ensure  # type: ignore[method-assign]
    add(mirror, keys.network(b.net_id), replace(b, attachable=True))
    choice = NetworkChoice(b.net_id)
    netns = Path("/run/netns/x")
    attach = asyncio.create_task(
        agent.attach(choice, netns, "eth0", owner_id="c1", name="app", hostname="app")
    )
    await plugging.wait()
    await agent.reconcile()  # sees no local endpoint on b, and a sandbox for it
    release.set()
    await attach
    assert "bbbbbbbbbbbb" in overlay.sandboxes
    await agent.reconcile()  # the endpoint is plugged in, though the mirror still lacks it
    assert overlay.removed == []


async def test_a_sandbox_nothing_uses_any_more_is_removed() -> None:
    mirror = Mirror(TYPES)
    b = network("bbbbbbbbbbbbbbbb")
    seed(mirror, (keys.node(ME), NODE), (keys.network(b.net_id), b))
    overlay = FakeOverlay()
    overlay.sandboxes.add("bbbbbbbbbbbb")
    await rig(mirror, overlay).reconcile()
    assert overlay.removed == ["bbbbbbbbbbbb"]


async def test_a_sandbox_with_a_plugged_endpoint_is_kept_even_when_the_store_forgot_it() -> None:
    mirror = Mirror(TYPES)
    seed(mirror, (keys.node(ME), NODE))
    overlay = FakeOverlay()
    overlay.sandboxes.add("bbbbbbbbbbbb")
    overlay.plugs["bbbbbbbbbbbb"] = {"ep-x"}
    await rig(mirror, overlay).reconcile()
    assert overlay.removed == []


async def test_a_sandbox_kept_for_a_plugged_veth_goes_once_the_veth_has_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A replaced task's veth was still plugged in when the pass ran; its removal changes
    # nothing the agent watches, so only a second look can find the sandbox unused.
    monkeypatch.setattr(networks, "KEPT_RECHECK_S", 0.01)
    mirror = Mirror(TYPES)
    seed(mirror, (keys.node(ME), NODE))
    overlay = FakeOverlay()
    overlay.sandboxes.add("bbbbbbbbbbbb")
    overlay.plugs["bbbbbbbbbbbb"] = {"ep-x"}
    agent = rig(mirror, overlay)
    await agent.reconcile()
    assert overlay.removed == []
    overlay.plugs["bbbbbbbbbbbb"].clear()
    agent._dirty.clear()
    await asyncio.wait_for(agent._dirty.wait(), 5)  # the agent looks again on its own
    await agent.reconcile()
    assert overlay.removed == ["bbbbbbbbbbbb"]
    await agent.close()


async def test_a_down_nodes_containers_are_neither_programmed_nor_named() -> None:
    """Issue 8, input 6: a dead host's standalone containers leave every other host's
    forwarding tables and DNS as soon as the host is Down (as its tasks are replaced)."""
    mirror = Mirror(TYPES)
    a = network("aaaaaaaaaaaaaaaa")
    other = Node("node-other", "h3", Role.WORKER, "10.99.0.13")
    mine = endpoint(a.net_id, "ep-mine")
    theirs = replace(endpoint(a.net_id, "ep-theirs", "node-other"), ip="10.0.1.6",
                     kind=EndpointKind.CONTAINER)  # fmt: skip
    leader = LeaderRecord("node-mgr", "2026-01-01T00:00:00Z")  # in office for long: no grace
    seed(mirror, (keys.node(ME), NODE), (keys.node(other.node_id), other),
         (keys.network(a.net_id), a), (keys.endpoint(a.net_id, "ep-mine"), mine),
         (keys.endpoint(a.net_id, "ep-theirs"), theirs), (keys.LEADER, leader))  # fmt: skip
    overlay = FakeOverlay()
    peers_seen: list[frozenset[Peer]] = []

    async def record_peers(_net_id: str, peers: frozenset[Peer]) -> PeerPlan:
        peers_seen.append(peers)
        return PeerPlan()

    overlay.set_peers = record_peers  # type: ignore[method-assign]
    agent = rig(mirror, overlay)
    await agent.reconcile()  # h3 has no session: Down
    assert peers_seen[-1] == frozenset()
    assert {e.ep_id for e in agent.programmed} == {"ep-mine"}  # this host's own stay
    session = NodeSession(other.node_id, 9, "node-mgr", "2026-01-01T00:00:00Z")
    add(mirror, keys.session(other.node_id), session)  # h3 is back
    await agent.reconcile()
    assert peers_seen[-1] == frozenset({Peer("10.0.1.6", theirs.mac, "10.99.0.13")})
    assert {e.ep_id for e in agent.programmed} == {"ep-mine", "ep-theirs"}


class FakeLocal:
    """This host's local networks, as ContainerNetworks reads them."""

    def __init__(self, *networks: Network) -> None:
        self.networks = {n.net_id: n for n in networks}

    def find(self, ref: str) -> Network | None:
        return next((n for n in self.networks.values() if ref in (n.net_id, n.name)), None)

    def get(self, net_id: str) -> Network | None:
        return self.networks.get(net_id)


def test_on_a_swarm_node_no_container_takes_a_services_name_on_a_local_network_either() -> None:
    mirror = Mirror(TYPES)
    web = Service("s1", ServiceSpec("web", ContainerTemplate("tools", ()), networks=("ovl",)))
    overlay = replace(network("ovl"), attachable=True)
    seed(mirror, (keys.node(ME), NODE), (keys.network("ovl"), overlay),
         (keys.service("s1"), web))  # fmt: skip
    agent = rig(mirror, FakeOverlay())
    bridge = Network("br", "bridge", Driver.BRIDGE, Scope.LOCAL, "172.17.0.0/16", "172.17.0.1")
    local = cast(LocalNetworks, FakeLocal(bridge))
    nets = ContainerNetworks(lambda: agent, local, None)
    nets.check((NetworkChoice("bridge", ("api",)),), ("app", "apphost"))
    refused = [
        ((NetworkChoice("bridge"),), ("web", "")),  # run --name web
        ((NetworkChoice("bridge", ("web",)),), ("xb", "")),  # connect --alias web
        ((NetworkChoice("bridge"),), ("xb", "tasks.web")),  # --hostname
        ((NetworkChoice("ovl"),), ("WEB", "")),
    ]
    for choices, names in refused:
        with pytest.raises(Forbidden, match="belongs to service web: service and container"):
            nets.check(choices, names)
    # a node in no swarm has no services to keep apart from
    ContainerNetworks(lambda: None, local, None).check((NetworkChoice("bridge"),), ("web", ""))
