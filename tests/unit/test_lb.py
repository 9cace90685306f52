from ferry.model.network import Endpoint, EndpointKind
from ferry.network.lb import VipBackends, plan_vips, render


def ep(kind: EndpointKind, net: str, ip: str, owner: str, service: str) -> Endpoint:
    return Endpoint(f"e{ip}", net, "n1", ip, "m", kind, owner, "x", service=service)


ENDPOINTS = [
    ep(EndpointKind.VIP, "net1", "10.0.0.2", "svc-a", "a"),
    ep(EndpointKind.TASK, "net1", "10.0.0.10", "t1", "a"),
    ep(EndpointKind.TASK, "net1", "10.0.0.9", "t2", "a"),
    ep(EndpointKind.TASK, "net1", "10.0.0.11", "t3", "a"),
    ep(EndpointKind.VIP, "net1", "10.0.0.3", "svc-b", "b"),
    ep(EndpointKind.VIP, "net2", "10.0.1.2", "svc-c", "c"),
    ep(EndpointKind.TASK, "net2", "10.0.1.5", "t9", "c"),
]


def test_a_vip_balances_only_running_tasks_of_its_service_on_that_network() -> None:
    vips = plan_vips(["net1"], ENDPOINTS, running_tasks={"t1", "t2", "t9"})
    assert vips == [VipBackends("10.0.0.2", ("10.0.0.9", "10.0.0.10")), VipBackends("10.0.0.3", ())]


def test_the_table_dnats_round_robin_and_rejects_vips_without_tasks() -> None:
    body = render([VipBackends("10.0.0.2", ("10.0.0.9", "10.0.0.10")), VipBackends("10.0.0.3", ())])
    assert "ip daddr 10.0.0.2 dnat to numgen inc mod 2 map { 0 : 10.0.0.9, 1 : 10.0.0.10 }" in body
    assert "ip daddr 10.0.0.3 reject" in body
    assert "type nat hook output priority -100" in body


def test_no_vips_means_no_table() -> None:
    assert render(plan_vips(["net3"], ENDPOINTS, set())) == ""
