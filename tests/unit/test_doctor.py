"""ferry doctor's comparisons, without a kernel: nft's JSON and the plans in one form."""

from __future__ import annotations

from typing import Any

from ferry.doctor import nftrules
from ferry.doctor.findings import MISSING, UNEXPECTED, Finding, diff_maps
from ferry.model.network import EgressSubnet
from ferry.network.lb import VipBackends
from ferry.network.ports import HostForward, IngressPort


def match(proto: str, field: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}},
                      "right": right}}  # fmt: skip


FIB_LOCAL = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                       "right": "local"}}  # fmt: skip


def numgen(*targets: Any) -> dict[str, Any]:
    entries = [[i, t] for i, t in enumerate(targets)]
    return {"map": {"key": {"numgen": {"mode": "inc", "mod": len(targets), "offset": 0}},
                    "data": {"set": entries}}}  # fmt: skip


def test_a_vip_table_as_nft_lists_it_reads_as_its_plan() -> None:
    # what `nft -j list table ip ferry_vip` gives for network.lb's rendering (nft 1.0.6)
    listed = [
        [{"chain": "vip_nat"}, match("ip", "daddr", "10.0.0.5"),
         {"dnat": {"addr": numgen("10.0.0.3", "10.0.0.4")}}],
        [{"chain": "vip_reject"}, match("ip", "daddr", "10.0.0.9"),
         {"reject": {"type": "icmp", "expr": "port-unreachable"}}],
    ]  # fmt: skip
    plan = [VipBackends("10.0.0.5", ("10.0.0.3", "10.0.0.4")), VipBackends("10.0.0.9", ())]
    assert nftrules.kernel_rules(listed) == nftrules.vip_rules(plan)
    stale = [VipBackends("10.0.0.5", ("10.0.0.3",)), VipBackends("10.0.0.9", ())]
    assert nftrules.kernel_rules(listed) != nftrules.vip_rules(stale)


def test_published_ports_and_the_ingress_table_read_as_their_plans() -> None:
    host = [
        [{"chain": chain}, FIB_LOCAL, match("tcp", "dport", 8080),
         {"dnat": {"addr": "172.18.0.2", "port": 8080}}]
        for chain in ("prerouting", "output")
    ]  # fmt: skip
    assert nftrules.kernel_rules(host) == nftrules.host_rules(
        [HostForward("tcp", 8080, "172.18.0.2", 8080)]
    )
    ingress = [
        [{"chain": "prerouting"}, match("tcp", "dport", 8080),
         {"dnat": {"family": "ip", "addr": numgen({"concat": ["10.0.0.3", 80]},
                                                  {"concat": ["10.0.0.4", 80]})}}],
        [{"chain": "postrouting"}, {"masquerade": None}],
    ]  # fmt: skip
    want = nftrules.ingress_rules([IngressPort("tcp", 8080, 80, ("10.0.0.3", "10.0.0.4"))])
    assert nftrules.kernel_rules(ingress, skip=("postrouting",)) == want


def test_a_rule_of_a_shape_ferry_never_writes_is_kept_verbatim_so_it_shows() -> None:
    odd = [[{"chain": "vip_nat"}, {"counter": {"packets": 0, "bytes": 0}}]]
    [summary] = nftrules.kernel_rules(odd)
    assert "counter" in summary


def test_differences_name_what_is_missing_unexpected_or_different() -> None:
    want = {"02:42:0a:00:00:07": "10.99.0.13", "02:42:0a:00:00:08": "10.99.0.12"}
    have = {"02:42:0a:00:00:07": "10.99.0.11", "02:42:0a:00:00:09": "10.99.0.12"}
    assert diff_maps("h2", "fdb", "sandbox x", want, have) == [
        Finding("h2", "fdb", "sandbox x", "02:42:0a:00:00:07", "10.99.0.13", "10.99.0.11"),
        Finding("h2", "fdb", "sandbox x", "02:42:0a:00:00:08", "10.99.0.12", MISSING),
        Finding("h2", "fdb", "sandbox x", "02:42:0a:00:00:09", UNEXPECTED, "10.99.0.12"),
    ]
    assert diff_maps("h2", "fdb", "sandbox x", want, dict(want)) == []


def test_findings_travel_as_json_and_back_unchanged() -> None:
    finding = Finding("h1", "dns", "c1", "web", "10.0.0.2", "NXDOMAIN")
    assert Finding.from_json(finding.to_json()) == finding


class _Uploads:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    async def upload(self, manager: str, path: str, body: Any) -> None:
        self.sent.append((manager, path, b"".join([chunk async for chunk in body])))


async def test_an_examination_that_fails_is_answered_all_the_same() -> None:
    """A container that vanished mid-examination once made a node's answer never come: the
    manager then reported the node as not examined (a flaky fault test)."""
    import json
    from typing import cast

    from ferry.agent.link import ManagerLink
    from ferry.doctor.answer import DoctorAnswerer
    from ferry.errors import KernelError
    from ferry.manager.store.schema import TYPES
    from ferry.manager.store.view import ClusterView
    from ferry.model.logs import DoctorRequest
    from ferry.model.mirror import Mirror

    async def broken() -> list[Finding]:
        raise KernelError("setns", "/run/netns/x", 2, "no such namespace")

    link = _Uploads()
    answerer = DoctorAnswerer(
        "node1", cast(ManagerLink, link), ClusterView(Mirror(TYPES)), broken, "h2"
    )
    await answerer._answer(DoctorRequest("req1", "node1", "10.0.0.1:2377"))
    [(manager, path, body)] = link.sent
    assert (manager, path) == ("10.0.0.1:2377", "/v1/doctor/req1")
    [finding] = [Finding.from_json(f) for f in json.loads(body)]
    assert (finding.node, finding.check, finding.expected) == ("h2", "doctor", "completed")
    assert "no such namespace" in finding.actual


def test_the_egress_masquerade_as_nft_lists_it_reads_as_the_host_s_egress_subnet() -> None:
    def oifname(op: str) -> dict[str, Any]:
        return {"match": {"op": op, "left": {"meta": {"key": "oifname"}},
                          "right": "ferry_gwbridge"}}  # fmt: skip

    def saddr(addr: str, length: int) -> dict[str, Any]:
        return match("ip", "saddr", {"prefix": {"addr": addr, "len": length}})

    listed = [  # nft -j list table ip ferry_egress, as nft 1.0.6 prints it
        [{"chain": "postrouting"}, saddr("10.123.1.0", 24), oifname("!="), {"masquerade": None}],
        [{"chain": "postrouting"}, oifname("=="), saddr("127.0.0.0", 8), {"masquerade": None}],
    ]
    have = nftrules.kernel_rules(listed)
    assert have == nftrules.egress_rules(EgressSubnet("10.123.1.0/24"))
    # a masquerade left naming another subnet (the old fixed one) is a difference
    assert have != nftrules.egress_rules(EgressSubnet("172.18.0.0/16"))
    assert "postrouting: ip saddr 10.123.1.0/24, oifname != ferry_gwbridge -> masquerade" in have
