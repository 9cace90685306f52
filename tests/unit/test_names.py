from ferry.agent.names import NameTable
from ferry.model.network import Endpoint, EndpointKind


def ep(net: str, ip: str, name: str, aliases: tuple[str, ...] = (), hostname: str = "") -> Endpoint:
    return Endpoint(
        f"e-{ip}",
        net,
        "n1",
        ip,
        "02:42:00:00:00:00",
        EndpointKind.CONTAINER,
        name,
        name,
        aliases,
        hostname,
    )


ENDPOINTS = [
    ep("blue", "10.0.0.2", "app1", ("web",), "app1host"),
    ep("blue", "10.0.0.3", "app2"),
    ep("red", "10.0.1.2", "r1"),
    ep("red", "10.0.1.3", "web"),
]
NAMES = {"blue": "blue", "red": "red"}
ATTACHED = {"c-blue": ("blue",), "c-red": ("red",), "c-both": ("blue", "red")}


def table() -> NameTable:
    return NameTable(lambda: ENDPOINTS, lambda: NAMES, lambda key: ATTACHED.get(key, ()))


def test_a_container_resolves_names_aliases_and_hostnames_of_its_networks() -> None:
    names = table()
    assert names.lookup("c-blue", "app2") == ("10.0.0.3",)
    assert names.lookup("c-blue", "web") == ("10.0.0.2",)
    assert names.lookup("c-blue", "app1host") == ("10.0.0.2",)
    assert names.lookup("c-blue", "app2.blue") == ("10.0.0.3",)


def test_names_of_other_networks_are_invisible() -> None:
    names = table()
    assert names.lookup("c-blue", "r1") is None
    assert names.lookup("c-red", "app1") is None
    assert names.lookup("c-red", "web") == ("10.0.1.3",)


def test_a_container_on_two_networks_sees_both() -> None:
    assert table().lookup("c-both", "web") == ("10.0.0.2", "10.0.1.3")


def test_reverse_lookups_name_the_endpoint_and_its_network() -> None:
    names = table()
    assert names.reverse("c-blue", "10.0.0.3") == "app2.blue"
    assert names.reverse("c-red", "10.0.0.3") is None


def test_invalidate_picks_up_changes() -> None:
    endpoints = list(ENDPOINTS)
    names = NameTable(lambda: endpoints, lambda: NAMES, lambda key: ATTACHED.get(key, ()))
    assert names.lookup("c-blue", "late") is None
    endpoints.append(ep("blue", "10.0.0.9", "late"))
    assert names.lookup("c-blue", "late") is None  # cached until told
    names.invalidate()
    assert names.lookup("c-blue", "late") == ("10.0.0.9",)


def test_services_resolve_to_the_vip_or_in_dnsrr_mode_to_running_tasks() -> None:
    endpoints = [
        Endpoint(
            "v",
            "blue",
            "",
            "10.0.0.20",
            "m",
            EndpointKind.VIP,
            "svc",
            "api",
            aliases=("backend",),
            service="api",
        ),
        Endpoint(
            "t1",
            "blue",
            "n1",
            "10.0.0.21",
            "m",
            EndpointKind.TASK,
            "task1",
            "api.1.task1",
            service="api",
        ),
        Endpoint(
            "t2",
            "blue",
            "n2",
            "10.0.0.22",
            "m",
            EndpointKind.TASK,
            "task2",
            "api.2.task2",
            service="api",
        ),
        Endpoint(
            "t3",
            "blue",
            "n2",
            "10.0.0.23",
            "m",
            EndpointKind.TASK,
            "task3",
            "rr.1.task3",
            service="rr",
        ),
    ]
    names = NameTable(lambda: endpoints, lambda: NAMES, lambda key: ATTACHED.get(key, ()),
                      lambda: {"task1", "task3"}, lambda: {"rr"})  # fmt: skip
    assert names.lookup("c-blue", "api") == ("10.0.0.20",)
    assert names.lookup("c-blue", "tasks.api") == ("10.0.0.21",)  # task2 is not running
    # a service alias (a stack's short name): the VIP, and tasks.<alias> its running tasks
    assert names.lookup("c-blue", "backend") == ("10.0.0.20",)
    assert names.lookup("c-blue", "tasks.backend") == ("10.0.0.21",)
    assert names.lookup("c-blue", "tasks.backend.blue") == ("10.0.0.21",)
    assert names.lookup("c-blue", "api.2.task2") is None
    assert names.lookup("c-blue", "rr") == ("10.0.0.23",)
    assert names.lookup("c-blue", "tasks.rr") == ("10.0.0.23",)


def test_a_services_name_is_answered_by_the_service_alone_never_mixed_with_a_container() -> None:
    # "web": a service's VIP on the overlay, and a container on a local bridge that holds the
    # same name (made before the service, or under another host's rule): never both together
    endpoints = [
        Endpoint("v", "ovl", "", "10.0.1.2", "m", EndpointKind.VIP, "s-web", "web", service="web"),
        Endpoint("c", "br", "", "172.17.0.5", "m", EndpointKind.CONTAINER, "c-web", "web"),
        Endpoint("x", "br", "", "172.17.0.6", "m", EndpointKind.CONTAINER, "c-x", "x", ("api",)),
        Endpoint("t", "ovl", "n2", "10.0.1.3", "m", EndpointKind.TASK, "t1", "api.1.t1",
                 service="api"),
    ]  # fmt: skip
    attached = {"both": ("ovl", "br"), "bridge-only": ("br",), "overlay-only": ("ovl",)}
    nets = {"ovl": "mnet", "br": "bridge"}
    names = NameTable(lambda: endpoints, lambda: nets, lambda key: attached.get(key, ()),
                      lambda: {"t1"}, lambda: {"api"})  # fmt: skip
    assert names.lookup("both", "web") == ("10.0.1.2",)
    assert names.lookup("both", "api") == ("10.0.1.3",)  # dnsrr: its tasks, not the alias
    assert names.lookup("overlay-only", "web") == ("10.0.1.2",)
    # where no service holds the name, the container keeps it; qualified names are apart
    assert names.lookup("bridge-only", "web") == ("172.17.0.5",)
    assert names.lookup("both", "web.bridge") == ("172.17.0.5",)
    assert names.lookup("both", "web.mnet") == ("10.0.1.2",)
    assert names.reverse("both", "172.17.0.5") == "web.bridge"
