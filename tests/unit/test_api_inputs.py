"""The one typed way the local API reads its input: query parameters (params), bodies (body),
names and values (model.rules), placement constraints and subnets, each by Docker's rules."""

from __future__ import annotations

import logging
import math
import signal
import sys

import pytest
from aiohttp.http_exceptions import LineTooLong

from ferry.api import body, params
from ferry.api.server import check_api_version
from ferry.daemon.logs import LogfmtFormatter, MalformedRequestFilter
from ferry.errors import Forbidden, InvalidArgument
from ferry.manager.scheduler import parse_constraint
from ferry.model import filters, rules
from ferry.model.node import Node, Role
from ferry.model.service import ContainerTemplate, Service, ServiceSpec
from ferry.network import ipam


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("True", True), ("yes", True), ("0", False), ("false", False), ("", False)],
)
def test_booleans_take_dockers_words(raw: str, expected: bool) -> None:
    assert params.boolean({"all": raw}, "all") is expected


def test_a_missing_boolean_is_its_default_and_a_stray_word_is_refused() -> None:
    assert params.boolean({}, "stream", True) is True
    with pytest.raises(InvalidArgument, match="invalid value for 'all': 'maybe'"):
        params.boolean({"all": "maybe"}, "all")


def test_integers_are_ascii_digits_within_their_range() -> None:
    assert params.integer({"limit": "-1"}, "limit", 0, minimum=-1) == -1
    assert params.integer({}, "limit", 7) == 7
    for raw in ("1.5", "1e3", "٣", "1_0", " 1", "99999999999999999999"):
        with pytest.raises(InvalidArgument, match="'limit'"):
            params.integer({"limit": raw}, "limit", 0)


def test_a_stop_timeout_is_whole_seconds_and_a_negative_one_has_no_limit() -> None:
    assert params.timeout_s({"t": "3"}, 10.0) == 3.0
    assert params.timeout_s({}, 10.0) == 10.0
    assert params.timeout_s({"t": "-1"}, 10.0) == math.inf
    with pytest.raises(InvalidArgument, match="'t'"):
        params.timeout_s({"t": "null"}, 10.0)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("9", 9),
        ("KILL", 9),
        ("SIGKILL", 9),
        ("sigterm", 15),
        ("hup", 1),
        ("RTMIN", int(signal.SIGRTMIN)),
        ("RTMIN+3", int(signal.SIGRTMIN) + 3),
        ("SIGRTMAX-1", int(signal.SIGRTMAX) - 1),
        ("64", 64),
    ],
)
def test_signals_go_by_number_or_by_name(raw: str, number: int) -> None:
    assert params.parse_signal(raw) == number


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "invalid signal: 0"),
        ("FOO", "invalid signal: FOO"),
        ("99", "does not support signal 99"),
        ("32", "does not support signal 32"),
        ("-1", "does not support signal -1"),
        ("RTMIN+16", "invalid signal: RTMIN+16"),
    ],
)
def test_a_signal_linux_does_not_have_is_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("+", r"\+")):
        params.parse_signal(raw)


def test_wait_conditions_are_dockers_three() -> None:
    assert params.wait_condition({}) == "not-running"
    assert params.wait_condition({"condition": "next-exit"}) == "next-exit"
    with pytest.raises(InvalidArgument, match='invalid condition: "bogus"'):
        params.wait_condition({"condition": "bogus"})


def test_an_object_version_is_a_required_unsigned_integer() -> None:
    assert params.object_version({"version": "12"}, "service") == 12
    for raw in ("", "abc", "-1", "+1", str(2**64)):
        with pytest.raises(InvalidArgument, match="invalid service version"):
            params.object_version({"version": raw}, "service")


def test_tail_is_all_or_a_count() -> None:
    assert params.tail({}) is None
    assert params.tail({"tail": "all"}) is None
    assert params.tail({"tail": "5"}) == 5
    assert params.tail({"tail": "-3"}) is None  # Docker: a negative tail is everything
    with pytest.raises(InvalidArgument, match="'tail'"):
        params.tail({"tail": "last"})


def test_filters_take_both_of_dockers_forms_and_only_known_keys() -> None:
    accepted = ("name", "label")
    assert params.filters({"filters": '{"name": {"web": true}}'}, accepted) == {"name": ["web"]}
    assert params.filters({"filters": '{"name": ["a", "b"]}'}, accepted) == {"name": ["a", "b"]}
    # a key without values filters nothing, as in Docker
    assert params.filters({"filters": '{"name": [], "label": null}'}, accepted) == {}
    with pytest.raises(InvalidArgument, match="invalid filter 'driver': use label, name"):
        params.filters({"filters": '{"driver": ["x"]}'}, accepted)
    for raw in ("[]", "1", '"x"', "null", '{"name": "web"}', '{"name": [1]}'):
        with pytest.raises(InvalidArgument, match="invalid filter"):
            params.filters({"filters": raw}, accepted)


def test_label_filters_match_keys_and_key_values() -> None:
    labels = {"tier": "front", "team": ""}
    assert filters.labels(["tier"], labels)
    assert filters.labels(["tier=front", "team"], labels)
    assert not filters.labels(["tier=back"], labels)
    assert not filters.labels(["owner"], labels)


def test_api_versions_are_those_ferry_serves() -> None:
    check_api_version("1.47")
    check_api_version("1.24")
    with pytest.raises(InvalidArgument, match=r"client version 1\.48 is too new"):
        check_api_version("1.48")
    with pytest.raises(InvalidArgument, match=r"client version 1\.23 is too old"):
        check_api_version("1.23")
    with pytest.raises(InvalidArgument, match="invalid API version"):
        check_api_version("latest")


def test_json_is_checked_for_depth_range_and_nul_before_any_model() -> None:
    assert body.loads(b'{"a": [1, {"b": "c"}]}') == {"a": [1, {"b": "c"}]}
    with pytest.raises(InvalidArgument, match="nested deeper than 32"):
        body.loads(b"[" * 33 + b"]" * 33)
    with pytest.raises(InvalidArgument, match="nested deeper"):
        body.loads(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidArgument, match=r"a\[1\] is out of range"):
        body.loads(b'{"a": [0, 9223372036854775808]}')
    with pytest.raises(InvalidArgument, match="a NUL byte in the key"):
        body.loads(b'{"a\\u0000": 1}')
    with pytest.raises(InvalidArgument, match="Infinity is not a JSON number"):
        body.loads(b'{"a": Infinity}')


@pytest.mark.parametrize("name", ["ab", "/ab", "a.b-c_d", "x" * 253])
def test_container_names_follow_docker(name: str) -> None:
    assert rules.check_container_name(name) == name.removeprefix("/")


@pytest.mark.parametrize("name", ["a", "-ab", "a b", "ab/c", "", "x" * 254, "é1"])
def test_container_names_docker_refuses_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="container name"):
        rules.check_container_name(name)


@pytest.mark.parametrize("hostname", ["web", "web-1.example.org", "a" * 63, "a." * 31 + "bc"])
def test_hostnames_are_rfc_1123_and_at_most_64_bytes(hostname: str) -> None:
    rules.check_hostname(hostname)


@pytest.mark.parametrize("hostname", ["a" * 64, "a b", "-a", "a-", "a..b", "a_b", "h" * 300])
def test_hostnames_that_break_hosts_files_or_dns_are_refused(hostname: str) -> None:
    with pytest.raises(InvalidArgument, match="hostname"):
        rules.check_hostname(hostname)


def test_environment_entries_need_a_name() -> None:
    assert rules.parse_env(["A=1", "B", "C="]) == ("A=1", "B=", "C=")
    for pair in ("=novalue", "=", " =x"):
        with pytest.raises(InvalidArgument, match="invalid environment variable"):
            rules.parse_env([pair])
    with pytest.raises(InvalidArgument, match=r'"=x\\ny"'):
        rules.parse_env(["=x\ny"])  # shown escaped: the error stays one line


def test_aliases_are_dns_names() -> None:
    rules.check_aliases(["web", "web.front", "w_1"])
    for alias in ("a b", "", "a\nb", "x" * 64, "a..b"):
        with pytest.raises(InvalidArgument, match="invalid network alias"):
            rules.check_aliases([alias])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node.hostname===h1", "value '=h1' is invalid"),
        ("node.hostname", "expected one operator from ==, !="),
        ("node.hostname<h1", "expected one operator"),
        ("node host==h1", "key 'node host' is invalid"),
        ("node.hostname==", "value '' is invalid"),
        ("node.ip==10.0.0.1", "unknown key 'node.ip'"),
        ("node.labels.==x", "unknown key"),
        ("node.role==boss", "a role is manager or worker"),
    ],
)
def test_constraints_follow_swarmkits_grammar(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_constraint(text)


def test_constraints_match_values_without_regard_to_case() -> None:
    node = Node("n1", "H1", Role.MANAGER, "10.0.0.1", labels={"zone": "East"})
    assert parse_constraint("node.hostname==h1").matches(node)
    assert parse_constraint("Node.Role == MANAGER").matches(node)
    assert parse_constraint("node.labels.zone!=west").matches(node)
    assert not parse_constraint("node.labels.Zone==east").matches(node)  # label keys are exact


def test_a_constraint_stored_before_the_character_rules_is_still_placed() -> None:
    # the old grammar took any non-blank value; the scheduler reads stored specs leniently
    with pytest.raises(InvalidArgument, match="value 'eu@west' is invalid"):
        parse_constraint("node.labels.zone==eu@west")
    node = Node("n1", "h1", Role.WORKER, "10.0.0.1", labels={"zone": "eu@west"})
    assert parse_constraint("node.labels.zone==eu@west", strict=False).matches(node)


@pytest.mark.parametrize(
    "subnet", ["127.0.0.0/24", "0.0.0.0/0", "169.254.1.0/24", "224.0.0.0/24", "255.255.255.0/30"]
)
def test_special_purpose_blocks_are_no_network_subnet(subnet: str) -> None:
    with pytest.raises(InvalidArgument, match="no network can use"):
        ipam.parse_subnet(subnet)


def test_private_and_public_ranges_are_subnets_and_pools_are_checked() -> None:
    for subnet in ("10.0.0.0/8", "172.16.0.0/12", "192.168.1.0/24", "100.64.0.0/10"):
        ipam.parse_subnet(subnet)
    assert str(ipam.check_pool("10.0.0.0/8", 24)) == "10.0.0.0/8"
    with pytest.raises(InvalidArgument, match="subnet size /7 does not fit"):
        ipam.check_pool("10.0.0.0/8", 7)


def _service(name: str, *net_ids: str) -> Service:
    spec = ServiceSpec(name, ContainerTemplate("host", ("sleep", "1")), networks=net_ids)
    return Service(f"svc-{name}", spec)


def test_a_container_name_alias_or_hostname_is_no_services_on_any_network() -> None:
    services = [_service("web", "n-front")]
    rules.check_no_service_name(("app", "web2", "", "tasks", "webx"), "front", services)
    # local networks too, and overlays the service is not on: one host's DNS serves them all
    for net_name in ("front", "back", "bridge"):
        for name in ("web", "WEB", "tasks.web", f"web.{net_name}"):
            with pytest.raises(Forbidden, match=r"name \S+ belongs to service web: "):
                rules.check_no_service_name((name,), net_name, services)


def test_a_request_aiohttp_cannot_parse_is_logged_as_one_warning_line() -> None:
    try:
        raise LineTooLong("request line", "65536", "100000")
    except LineTooLong:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (),
            sys.exc_info(),
        )  # fmt: skip
    assert MalformedRequestFilter().filter(record)
    line = LogfmtFormatter().format(record)
    assert "level=warning" in line and "malformed HTTP request refused" in line
    assert "Traceback" not in line and "\n" not in line
