"""A corpus of hostile requests to ferryd's local API, each with the answer it must get.

Every entry is one request (method, path with its query, body) and the status and a piece of
the message the answer must carry. ``finding`` ties an entry to issue 9 (5: a 5xx before;
6: accepted before, and damaging) or names the kind it guards. All of them run in-process
(``test_hostile_requests.py``) against the real routes with no swarm and no kernel, so every
refusal here happens before anything is looked up or changed.

Docker's words where Docker has them: moby's version middleware, ``opts.ValidateEnv``, the
filters package, ``moby/sys/signal``, the wait route, swarmkit's constraint parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

V = "/v1.47"


@dataclass(frozen=True)
class Hostile:
    case_id: str
    method: str
    path: str
    status: int
    message: str  # a piece of the answer's "message"
    body: Any = None  # sent as JSON
    raw: bytes | None = None  # sent as is
    finding: str = ""
    headers: dict[str, str] | None = None


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _container(**fields: Any) -> dict[str, Any]:
    return {"Image": "tools", "Cmd": ["sleep", "1"], **fields}


def _service(**container: Any) -> dict[str, Any]:
    spec = {"Image": "tools", "Args": ["sleep", "60"], **container}
    return {"Name": "web", "TaskTemplate": {"ContainerSpec": spec}}


def _service_with(**fields: Any) -> dict[str, Any]:
    return {**_service(), **fields}


def _placement(*constraints: str) -> dict[str, Any]:
    body = _service()
    body["TaskTemplate"]["Placement"] = {"Constraints": list(constraints)}
    return body


def _network(**fields: Any) -> dict[str, Any]:
    return {"Name": "hostile", **fields}


def _subnet(subnet: str, **more: str) -> dict[str, Any]:
    return _network(IPAM={"Config": [{"Subnet": subnet, **more}]})


def _filters(value: Any) -> str:
    from urllib.parse import quote

    return "filters=" + quote(value if isinstance(value, str) else json.dumps(value))


FINDING_5 = [
    Hostile("100 MB body", "POST", f"{V}/containers/create", 400, "request body too large",
            raw=b"{" + b" " * (100 * 1024 * 1024) + b"}", finding="5"),
    Hostile("JSON nested 100 000 deep", "POST", f"{V}/containers/create", 400,
            "nested deeper than", raw=_nested(100_000), finding="5"),
    Hostile("kill signal 99", "POST", f"{V}/containers/x/kill?signal=99", 400,
            "the linux daemon does not support signal 99", finding="5"),
    Hostile("filters a list on containers", "GET", f"{V}/containers/json?{_filters([])}", 400,
            "invalid filter", finding="5"),
    Hostile("filters a number on networks", "GET", f"{V}/networks?{_filters(1)}", 400,
            "invalid filter", finding="5"),
    Hostile("filters a string on services", "GET", f"{V}/services?{_filters(json.dumps('x'))}", 400,
            "invalid filter", finding="5"),
    Hostile("filters null on tasks", "GET", f"{V}/tasks?{_filters('null')}", 400,
            "invalid filter", finding="5"),
    Hostile("filters a list on nodes", "GET", f"{V}/nodes?{_filters([1])}", 400,
            "invalid filter", finding="5"),
    Hostile("stop t=null", "POST", f"{V}/containers/x/stop?t=null", 400,
            "invalid value for 't'", finding="5"),
    Hostile("restart t=null", "POST", f"{V}/containers/x/restart?t=null", 400,
            "invalid value for 't'", finding="5"),
]  # fmt: skip

FINDING_6 = [
    Hostile("container env =novalue", "POST", f"{V}/containers/create", 400,
            'invalid environment variable: "=novalue"', body=_container(Env=["=novalue"]),
            finding="6"),
    Hostile("service env =novalue", "POST", f"{V}/services/create", 400,
            'invalid environment variable: "=novalue"', body=_service(Env=["=novalue"]),
            finding="6"),
    Hostile("subnet 127.0.0.0/24 (bridge)", "POST", f"{V}/networks/create", 400,
            "overlaps 127.0.0.0/8, loopback", body=_subnet("127.0.0.0/24"), finding="6"),
    Hostile("subnet 127.0.0.0/24 (overlay)", "POST", f"{V}/networks/create", 400,
            "overlaps 127.0.0.0/8, loopback",
            body={**_subnet("127.0.0.0/24"), "Driver": "overlay"}, finding="6"),
    Hostile("constraint node.hostname===h1", "POST", f"{V}/services/create", 400,
            "value '=h1' is invalid", body=_placement("node.hostname===h1"), finding="6"),
    Hostile("300-character hostname", "POST", f"{V}/containers/create", 400,
            "is too long (maximum 64 bytes)", body=_container(Hostname="h" * 300), finding="6"),
    Hostile("service update version=abc", "POST", f"{V}/services/web/update?version=abc", 400,
            "invalid service version 'abc'", body=_service(), finding="6"),
    Hostile("node update version=abc", "POST", f"{V}/nodes/n1/update?version=abc", 400,
            "invalid node version 'abc'", body={"Availability": "active"}, finding="6"),
    Hostile("swarm update version=abc", "POST", f"{V}/swarm/update?version=abc", 400,
            "invalid swarm version 'abc'", body={}, finding="6"),
    Hostile("API version too new", "GET", "/v9.99/info", 400,
            "client version 9.99 is too new. Maximum supported API version is 1.47",
            finding="6"),
    Hostile("wait condition=bogus", "POST", f"{V}/containers/x/wait?condition=bogus", 400,
            'invalid condition: "bogus"', finding="6"),
]  # fmt: skip

VERSIONS = [
    Hostile("API version too old", "GET", "/v1.0/info", 400,
            "client version 1.0 is too old. Minimum supported API version is 1.24"),
    Hostile("API version not a number", "GET", "/vabc/info", 400, "invalid API version 'abc'"),
    Hostile("API version empty parts", "GET", "/v1../info", 400, "invalid API version"),
]  # fmt: skip

QUERIES = [
    Hostile("boolean that is none", "GET", f"{V}/containers/json?all=maybe", 400,
            "invalid value for 'all'"),
    Hostile("limit not a number", "GET", f"{V}/containers/json?limit=abc", 400,
            "invalid value for 'limit'"),
    Hostile("limit unicode digits", "GET", f"{V}/containers/json?limit=%D9%A3", 400,
            "invalid value for 'limit'"),
    Hostile("t out of int64", "POST", f"{V}/containers/x/stop?t=99999999999999999999", 400,
            "invalid value for 't'"),
    Hostile("t a float", "POST", f"{V}/containers/x/stop?t=1.5", 400, "invalid value for 't'"),
    Hostile("signal 0", "POST", f"{V}/containers/x/kill?signal=0", 400, "invalid signal: 0"),
    Hostile("signal unknown name", "POST", f"{V}/containers/x/kill?signal=SIGFOO", 400,
            "invalid signal: SIGFOO"),
    Hostile("signal 32 (glibc's own)", "POST", f"{V}/containers/x/kill?signal=32", 400,
            "does not support signal 32"),
    Hostile("signal negative", "POST", f"{V}/containers/x/kill?signal=-9", 400,
            "does not support signal -9"),
    Hostile("signal by name reaches the lookup", "POST", f"{V}/containers/x/kill?signal=sigkill",
            404, "No such container: x"),
    Hostile("signal RTMIN+3 reaches the lookup", "POST",
            f"{V}/containers/x/kill?signal=RTMIN%2B3", 404, "No such container: x"),
    Hostile("stop signal unknown", "POST", f"{V}/containers/x/stop?signal=nope", 400,
            "invalid signal: nope"),
    Hostile("negative t waits without limit", "POST", f"{V}/containers/x/stop?t=-1", 404,
            "No such container: x"),
    Hostile("tail not a number", "GET", f"{V}/containers/x/logs?tail=abc", 400,
            "invalid value for 'tail'"),
    Hostile("logs with details", "GET", f"{V}/containers/x/logs?details=1", 400,
            "no details"),
    Hostile("resize height not a number", "POST", f"{V}/containers/x/resize?h=tall", 400,
            "invalid value for 'h'"),
    Hostile("filter key unknown", "GET", f"{V}/containers/json?{_filters({'bogus': ['x']})}", 400,
            "invalid filter 'bogus'"),
    Hostile("filter value a string", "GET", f"{V}/networks?{_filters({'name': 'x'})}", 400,
            "invalid filter 'name'"),
    Hostile("filter value map of strings", "GET",
            f"{V}/networks?{_filters({'name': {'x': 'yes'}})}", 400, "invalid filter 'name'"),
    Hostile("filters nested deep", "GET", f"{V}/networks?{_filters('[' * 1200 + ']' * 1200)}",
            400, "invalid JSON in filters"),
    Hostile("filters not JSON", "GET", f"{V}/networks?{_filters('{name')}", 400,
            "invalid JSON in filters"),
    Hostile("container status filter unknown", "GET",
            f"{V}/containers/json?{_filters({'status': ['zombie']})}", 400,
            "invalid filter 'status=zombie'"),
    Hostile("network prune filters", "POST", f"{V}/networks/prune?{_filters({'dangling': ['1']})}",
            400, "invalid filter 'dangling'"),
    Hostile("service version negative", "POST", f"{V}/services/web/update?version=-1", 400,
            "invalid service version '-1'"),
    Hostile("service version missing", "POST", f"{V}/services/web/update", 400,
            "invalid service version ''"),
    Hostile("service rollback to a stranger", "POST",
            f"{V}/services/web/update?version=1&rollback=next", 400,
            'invalid rollback: use "previous"'),
    Hostile("container sizes", "GET", f"{V}/containers/json?size=1", 400,
            "does not measure container sizes"),
    Hostile("remove with links", "DELETE", f"{V}/containers/x?link=1", 400, "no links"),
    Hostile("attach stream maybe", "POST", f"{V}/containers/x/attach?stream=maybe", 400,
            "invalid value for 'stream'"),
    Hostile("exec without a command", "POST", f"{V}/containers/x/exec", 400,
            "No exec command specified", body={"Cmd": []}),
    Hostile("node label key empty", "POST", f"{V}/nodes/n1/update?version=1", 400,
            "key cannot be empty", body={"Labels": {"": "x"}}),
]  # fmt: skip

BODIES = [
    Hostile("body not JSON", "POST", f"{V}/containers/create", 400, "invalid JSON in request body",
            raw=b"Image=host"),
    Hostile("body invalid UTF-8", "POST", f"{V}/containers/create", 400,
            "invalid JSON in request body", raw=b'{"Image": "\xff\xfe"}'),
    Hostile("body NaN", "POST", f"{V}/containers/create", 400, "NaN is not a JSON number",
            raw=b'{"Image": "tools", "Cmd": ["x"], "StopTimeout": NaN}'),
    Hostile("body 5000-digit number", "POST", f"{V}/containers/create", 400,
            "invalid JSON in request body", raw=b'{"Image": "tools", "X": ' + b"9" * 5000 + b"}"),
    Hostile("body number past int64", "POST", f"{V}/services/create", 400,
            "TaskTemplate.ContainerSpec.StopGracePeriod is out of range",
            body=_service(StopGracePeriod=2**64)),
    Hostile("body NUL in an argument", "POST", f"{V}/containers/create", 400,
            "Cmd[1] holds a NUL byte", body=_container(Cmd=["sleep", "1\x002"])),
    Hostile("body NUL in env", "POST", f"{V}/services/create", 400, "holds a NUL byte",
            body=_service(Env=["A=\x00"])),
    Hostile("body a list", "POST", f"{V}/containers/create", 400,
            "invalid request body: the body", body=[]),
    Hostile("body field of the wrong type", "POST", f"{V}/containers/create", 400,
            "invalid request body: Cmd", body=_container(Cmd="sleep 1")),
    Hostile("body too large for exec start", "POST", f"{V}/exec/x/start", 400,
            "request body too large", raw=b'{"Detach": true, "x": "' + b"a" * 70000 + b'"}'),
    Hostile("nested 40 deep", "POST", f"{V}/networks/create", 400, "nested deeper than 32",
            body=_network(Labels=json.loads("[" * 40 + "]" * 40))),
]  # fmt: skip

CONTAINER_SPECS = [
    Hostile("name one character", "POST", f"{V}/containers/create?name=a", 400,
            "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            body=_container()),
    Hostile("name with a space", "POST", f"{V}/containers/create?name=a%20b", 400,
            "Invalid container name (a b)", body=_container()),
    Hostile("name with a newline", "POST", f"{V}/containers/create?name=a%0Ab", 400,
            "Invalid container name (a\\nb)", body=_container()),
    Hostile("name too long", "POST", f"{V}/containers/create?name={'a' * 254}", 400,
            "at most 253", body=_container()),
    Hostile("hostname with a space", "POST", f"{V}/containers/create", 400,
            "invalid hostname 'a b'", body=_container(Hostname="a b")),
    Hostile("hostname with a newline", "POST", f"{V}/containers/create", 400,
            "invalid hostname", body=_container(Hostname="a\n10.0.0.1 evil")),
    Hostile("hostname label of 64", "POST", f"{V}/containers/create", 400, "invalid hostname",
            body=_container(Hostname="a" * 64)),
    Hostile("hostname starting with -", "POST", f"{V}/containers/create", 400,
            "invalid hostname '-a'", body=_container(Hostname="-a")),
    Hostile("alias with a space", "POST", f"{V}/containers/create", 400,
            "invalid network alias 'a b'",
            body=_container(NetworkingConfig={"EndpointsConfig": {"n": {"Aliases": ["a b"]}}})),
    Hostile("working dir relative", "POST", f"{V}/containers/create", 400,
            "the working directory 'tmp' is invalid, it needs to be an absolute path",
            body=_container(WorkingDir="tmp")),
    Hostile("no command", "POST", f"{V}/containers/create", 400, "No command specified",
            body={"Image": "tools"}),
    Hostile("env name blank", "POST", f"{V}/containers/create", 400,
            'invalid environment variable: " =x"', body=_container(Env=[" =x"])),
    Hostile("label key empty", "POST", f"{V}/containers/create", 400, "key cannot be empty",
            body=_container(Labels={"": "x"})),
    Hostile("host port superscript", "POST", f"{V}/containers/create", 400,
            "invalid host port", body=_container(HostConfig={"PortBindings": {"80/tcp": [
                {"HostPort": "\u00b2"}]}})),
    Hostile("host port 99999", "POST", f"{V}/containers/create", 400,
            "invalid host port '99999'", body=_container(HostConfig={"PortBindings": {
                "80/tcp": [{"HostPort": "99999"}]}})),
    Hostile("host IP that is nft text", "POST", f"{V}/containers/create", 400,
            "invalid host IP", body=_container(HostConfig={"PortBindings": {"80/tcp": [
                {"HostIp": "1.2.3.4 accept; flush ruleset", "HostPort": "80"}]}})),
    Hostile("host IP IPv6", "POST", f"{V}/containers/create", 400, "IPv6 is not supported",
            body=_container(HostConfig={"PortBindings": {"80/tcp": [{"HostIp": "::1"}]}})),
    Hostile("exec working dir relative", "POST", f"{V}/containers/x/exec", 400,
            "needs to be an absolute path", body={"Cmd": ["true"], "WorkingDir": "rel"}),
    Hostile("exec env =x", "POST", f"{V}/containers/x/exec", 400,
            'invalid environment variable: "=x"', body={"Cmd": ["true"], "Env": ["=x"]}),
]  # fmt: skip

SERVICE_SPECS = [
    Hostile("service image with a bad digest", "POST", f"{V}/services/create", 400,
            "a digest is sha256:<64 hex>", body={"Name": "web", "TaskTemplate": {
                "ContainerSpec": {"Image": "tools@sha256:abc"}}}),
    Hostile("service registry auth not base64", "POST", f"{V}/services/create", 400,
            "X-Registry-Auth is not base64url-encoded JSON", body=_service(),
            headers={"X-Registry-Auth": "!!"}),
    Hostile("service name ending in _", "POST", f"{V}/services/create", 400,
            "invalid service name 'ab_'", body={**_service(), "Name": "ab_"}),
    Hostile("service name of 64", "POST", f"{V}/services/create", 400,
            "invalid service name", body={**_service(), "Name": "a" * 64}),
    Hostile("service image upper case", "POST", f"{V}/services/create", 400,
            "repository name must be lowercase", body=_service(Image="NGINX")),
    Hostile("constraint without operator", "POST", f"{V}/services/create", 400,
            "constraint expected one operator from ==, !=", body=_placement("node.role")),
    Hostile("constraint unknown key", "POST", f"{V}/services/create", 400,
            "unknown key 'node.colour'", body=_placement("node.colour==red")),
    Hostile("constraint bad key", "POST", f"{V}/services/create", 400,
            "key 'node hostname' is invalid", body=_placement("node hostname==h1")),
    Hostile("constraint role boss", "POST", f"{V}/services/create", 400,
            "a role is manager or worker", body=_placement("node.role==boss")),
    Hostile("constraint value with <", "POST", f"{V}/services/create", 400,
            "value '<h1' is invalid", body=_placement("node.hostname==<h1")),
    Hostile("both modes", "POST", f"{V}/services/create", 400,
            "cannot specify both replicated mode and global mode",
            body=_service_with(Mode={"Replicated": {"Replicas": 1}, "Global": {}})),
    Hostile("job mode", "POST", f"{V}/services/create", 400, "job modes are not supported",
            body=_service_with(Mode={"ReplicatedJob": {}})),
    Hostile("replicas negative", "POST", f"{V}/services/create", 400,
            "invalid replicas value -1", body=_service_with(Mode={"Replicated": {"Replicas": -1}})),
    Hostile("replicas a thousand and one", "POST", f"{V}/services/create", 400,
            "at most 1000", body=_service_with(Mode={"Replicated": {"Replicas": 1001}})),
    Hostile("published port 70000", "POST", f"{V}/services/create", 400,
            "invalid published port 70000", body=_service_with(
                EndpointSpec={"Ports": [{"TargetPort": 80, "PublishedPort": 70000}]})),
    Hostile("publish mode bogus", "POST", f"{V}/services/create", 400,
            "invalid publish mode 'bogus'", body=_service_with(EndpointSpec={"Ports": [
                {"TargetPort": 80, "PublishedPort": 80, "PublishMode": "bogus"}]})),
    Hostile("stop grace negative", "POST", f"{V}/services/create", 400, "cannot be negative",
            body=_service(StopGracePeriod=-1)),
    Hostile("service label key empty", "POST", f"{V}/services/create", 400,
            "key cannot be empty", body=_service_with(Labels={" ": "x"})),
]  # fmt: skip

NETWORK_SPECS = [
    Hostile("network name empty", "POST", f"{V}/networks/create", 400, "invalid network name",
            body=_network(Name="")),
    Hostile("network name with /", "POST", f"{V}/networks/create", 400,
            "invalid network name 'a/b'", body=_network(Name="a/b")),
    Hostile("network driver unknown", "POST", f"{V}/networks/create", 400,
            "unknown network driver 'weave'", body=_network(Driver="weave")),
    Hostile("subnet everything", "POST", f"{V}/networks/create", 400, "overlaps 0.0.0.0/8",
            body=_subnet("0.0.0.0/0")),
    Hostile("subnet multicast", "POST", f"{V}/networks/create", 400, "multicast",
            body=_subnet("224.1.0.0/24")),
    Hostile("subnet link-local", "POST", f"{V}/networks/create", 400, "link-local",
            body=_subnet("169.254.0.0/16")),
    Hostile("subnet class E", "POST", f"{V}/networks/create", 400, "reserved and broadcast",
            body=_subnet("250.0.0.0/24")),
    Hostile("subnet with host bits", "POST", f"{V}/networks/create", 400, "has host bits set",
            body=_subnet("10.9.0.1/24")),
    Hostile("subnet IPv6", "POST", f"{V}/networks/create", 400, "only IPv4",
            body=_subnet("fd00::/64")),
    Hostile("gateway outside", "POST", f"{V}/networks/create", 400, "not a usable address",
            body=_subnet("10.9.0.0/24", Gateway="10.9.1.1")),
    Hostile("ip-range outside", "POST", f"{V}/networks/create", 400, "is not inside subnet",
            body=_subnet("10.9.0.0/24", IPRange="10.8.0.0/25")),
    Hostile("IPAM driver other", "POST", f"{V}/networks/create", 400,
            "IPAM driver 'dhcp' is not supported", body=_network(IPAM={"Driver": "dhcp"})),
    Hostile("two subnets", "POST", f"{V}/networks/create", 400, "one IPv4 subnet",
            body=_network(IPAM={"Config": [{"Subnet": "10.9.0.0/24"},
                                           {"Subnet": "10.8.0.0/24"}]})),
    Hostile("swarm init pool loopback", "POST", f"{V}/swarm/init", 400,
            "overlaps 127.0.0.0/8", body={"DefaultAddrPool": ["127.0.0.0/8"]}),
    Hostile("swarm init subnet size 31", "POST", f"{V}/swarm/init", 400,
            "subnet size /31 does not fit", body={"SubnetSize": 31}),
    Hostile("swarm init data path port 80", "POST", f"{V}/swarm/init", 400,
            "VXLAN UDP port number is not in valid range (1024-49151): 80",
            body={"DataPathPort": 80}),
    Hostile("swarm init data path port 2380", "POST", f"{V}/swarm/init", 400,
            "data path port 2380 clashes with port 2380/tcp", body={"DataPathPort": 2380}),
    Hostile("swarm init data path companion 2376", "POST", f"{V}/swarm/init", 400,
            "needs 2377/udp for encrypted overlays", body={"DataPathPort": 2376}),
]  # fmt: skip

ROUTING = [
    Hostile("unknown path", "GET", f"{V}/no/such/path", 404, "page not found"),
    Hostile("wrong method", "DELETE", f"{V}/info", 405, "method not allowed"),
]

CASES = [
    *FINDING_5,
    *FINDING_6,
    *VERSIONS,
    *QUERIES,
    *BODIES,
    *CONTAINER_SPECS,
    *SERVICE_SPECS,
    *NETWORK_SPECS,
    *ROUTING,
]
