"""What the API fuzz test needs besides the relay (unixrelay.py) and the lab's objects
(fuzztargets.py): Docker's API description cut down to the operations Ferry serves, and a
bounded runner that drives schemathesis over them and keeps the figures.

Design notes. The operations are found by registering Ferry's route classes on a bare aiohttp
application (the same ``register`` ferryd calls), so a route added to Ferry is fuzzed without
touching this file. Random path parameters mostly miss (404), so half of the cases of an
operation with ``{id}`` aim at a real object of the lab (``Targets``), which is recreated when
a case removed it. Every case is one request; the cases' clean-up (removing what a create made)
is counted apart.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from aiohttp import web

from ferry.api.routes.not_served import NOT_SERVED
from tests.integration.fuzztargets import REQUEST_TIMEOUT_S, Api, Targets

# ``../shared/docker-api/`` beside the repository, as the design note names it
SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "docker-api" / "engine-api-v1.47.yaml"
SLOW_S = 2.0
# A pull, push, login or distribution call for a name of Docker Hub's (the lab cannot reach
# it): ferryd's Unavailable (503), not a fault of ferryd's
UNREACHABLE_REGISTRY = "cannot reach the registry for "

# Values schemathesis' random strings rarely produce, which the issue's findings were made of:
# one of these replaces one query parameter in a third of the cases.
HOSTILE_VALUES = (
    "", "null", "-1", "0", "99", "abc", "1.5", "1e309", "99999999999999999999", "true",
    "SIGKILL", "RTMIN+3", "%00", "\x00", "[]", "{}", '{"name":"x"}', '{"name":[1]}',
    '{"bogus":["x"]}', '{"label":["a=b"]}', "../../etc/passwd", "a" * 300, "\u00b2", "=x",
)  # fmt: skip

# Operations left out, each for a reason. Everything else Ferry serves is fuzzed.
EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/images/load"): (
        "its body is a tar archive, which schemathesis cannot generate (hostile archives are "
        "tests/unit/test_archive.py's corpus; load itself test_image_api and test_registry)"
    ),
    ("POST", "/images/prune"): (
        "with dangling=false it removes every unused image, the tools image the checks after "
        "fuzzing need included (covered by test_image_api)"
    ),
    ("POST", "/containers/{}/attach"): (
        "hijacks the connection and streams until the container ends: it blocks by design"
    ),
    ("POST", "/exec/{}/start"): (
        "hijacks the connection and streams the command's output until it ends: an exec of a "
        "generated command may run forever by design (random exec ids only reach the 404 path, "
        "covered by the hostile-input corpus)"
    ),
    ("POST", "/swarm/leave"): (
        "with force it dissolves the one-manager swarm every other swarm operation needs "
        "(covered by test_cluster)"
    ),
}


def _canonical(path: str) -> str:
    """``/images/{name:.+}/json`` and ``/images/{name}/json`` → ``/images/{}/json``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def ferry_operations() -> set[tuple[str, str]]:
    """(METHOD, canonical path) of every route ferryd serves, without the version prefix."""
    from ferry.api.routes.containers import ContainerRoutes
    from ferry.api.routes.image_transfer import TransferRoutes
    from ferry.api.routes.images import ImageRoutes
    from ferry.api.routes.networks import NetworkRoutes
    from ferry.api.routes.services import ServiceRoutes
    from ferry.api.routes.swarm import SwarmRoutes
    from ferry.api.routes.system import SystemRoutes

    app = web.Application()
    classes: list[type[Any]] = [
        SystemRoutes, SwarmRoutes, NetworkRoutes, ContainerRoutes, ImageRoutes, TransferRoutes,
        ServiceRoutes,
    ]  # fmt: skip
    for cls in classes:
        # register() only binds the class's own handlers: no service object is needed
        cls.register(cls.__new__(cls), app)
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "*" or "{api_version" in path:
            continue
        out.add((route.method, _canonical(path)))
    # what Ferry refuses by design (501, Docker's not implemented) is not served: every one of
    # them is checked by tests/unit/test_not_served.py
    return out - {(method, _canonical(path)) for method, path in NOT_SERVED}


def load_spec(served: set[tuple[str, str]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Docker's API description with only the operations Ferry serves (less the excluded),
    and the list of served operations the description lacks (expected empty)."""
    spec = yaml.safe_load(SPEC_PATH.read_text())
    paths: dict[str, Any] = {}
    found = set()
    for path, item in spec["paths"].items():
        kept = {}
        for method, operation in item.items():
            key = (method.upper(), _canonical(path))
            if method == "parameters":
                kept[method] = operation
            elif key in served and key not in EXCLUDED:
                kept[method] = operation
                found.add(key)
        if set(kept) - {"parameters"}:
            paths[path] = kept
    spec["paths"] = paths
    missing = sorted(served - found - set(EXCLUDED))
    return spec, missing


@dataclass
class Figures:
    """What a fuzz run did: requests per operation, statuses, and what went wrong."""

    requests: int = 0
    cleanup_requests: int = 0
    per_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)  # per operation, set-up included
    slow: list[str] = field(default_factory=list)  # requests that took over SLOW_S
    server_error_operations: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        top = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.requests} requests over {len(self.per_operation)} operations "
            f"(+{self.cleanup_requests} clean-up); statuses {top}; "
            f"5xx: {len(self.server_errors)} {dict(self.server_error_operations)}; "
            f"transport errors: {len(self.transport_errors)}"
        )


class Runner:
    """Runs schemathesis' cases of each operation, positive and negative, within a budget."""

    def __init__(self, api: Api, targets: Targets, figures: Figures, seed: int) -> None:
        self.api = api
        self.targets = targets
        self.figures = figures
        self.seed = seed  # each operation's cases come from seed + its index: a run repeats

    def run(self, schema: Any, budget: int) -> None:
        from schemathesis import GenerationMode

        operations = [result.ok() for result in schema.get_all_operations()]
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        per_run = max(3, budget // (len(operations) * len(modes)))
        for index, operation in enumerate(operations):
            for mode_n, mode in enumerate(modes):
                if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
                    # nothing to make invalid: no parameter, no body
                    self.figures.no_negative.append(f"{operation.method.upper()} {operation.path}")
                    continue
                self._run_operation(operation, mode, per_run, self.seed + 2 * index + mode_n)

    def _run_operation(self, operation: Any, mode: Any, examples: int, seed: int) -> None:
        started = time.monotonic()
        try:
            self._generate(operation, mode, examples, seed)
        finally:
            label = f"{operation.method.upper()} {_canonical(operation.path)}"
            self.figures.seconds[label] += time.monotonic() - started

    def _generate(self, operation: Any, mode: Any, examples: int, seed: int) -> None:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as with_seed
        from hypothesis import strategies as st
        from hypothesis.errors import Unsatisfiable

        names = [p.name for p in operation.query]
        tweaks = st.none() | st.tuples(st.sampled_from(names), st.sampled_from(HOSTILE_VALUES))

        @with_seed(seed)
        @given(
            case=operation.as_strategy(generation_mode=mode),
            aim=st.booleans(),
            tweak=tweaks if names else st.none(),
            pick=st.integers(0, 9999),
        )
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # every example is one request: no shrinking rounds
            suppress_health_check=list(HealthCheck),
        )
        def one(case: Any, aim: bool, tweak: tuple[str, str] | None, pick: int) -> None:
            if tweak is not None and isinstance(case.query, dict):
                case.query[tweak[0]] = tweak[1]
            elif tweak is not None:
                case.query = {tweak[0]: tweak[1]}
            self._one(case, aim, pick)

        try:
            one()
        except Unsatisfiable:
            # no invalid request can be built (an operation without parameters or body)
            self.figures.no_negative.append(f"{operation.method.upper()} {operation.path}")

    def _one(self, case: Any, aim: bool, pick: int) -> None:
        from schemathesis.checks import not_a_server_error
        from schemathesis.errors import FailureGroup

        method, path = case.operation.method.upper(), _canonical(case.operation.path)
        if not self._prepare(case, method, path, aim, pick):
            return
        label = f"{method} {path}"
        try:
            response = case.call(base_url=self.api.base, session=self.api.session,
                                 timeout=REQUEST_TIMEOUT_S)  # fmt: skip
        except requests.RequestException as exc:
            self.figures.requests += 1
            self.figures.per_operation[label] += 1
            self.figures.transport_errors.append(f"{label}: {exc!r} ({_describe(case)})")
            return
        self.figures.requests += 1
        self.figures.per_operation[label] += 1
        self.figures.statuses[response.status_code] += 1
        if response.elapsed > SLOW_S:
            self.figures.slow.append(
                f"{label} {response.elapsed:.1f} s → {response.status_code} ({_describe(case)})"
            )
        if response.status_code == 503 and UNREACHABLE_REGISTRY in response.text:
            self._clean_up(method, path, response)
            return  # the lab has no route to Docker Hub: Unavailable is the right answer
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:  # recorded, and the run goes on to find the others
            self.figures.server_error_operations[label] += 1
            self.figures.server_errors.append(
                f"{label} → {response.status_code} {response.text[:200]!r} ({_describe(case)})"
            )
        self._clean_up(method, path, response)

    def _prepare(self, case: Any, method: str, path: str, aim: bool, pick: int) -> bool:
        """Aim the case at a real object, and keep it from what blocks or overloads by design.
        False: skip the case."""
        query = case.query if isinstance(case.query, dict) else {}
        body = case.body if isinstance(case.body, dict) else None
        if path.endswith("/logs") and "follow" in query:
            query["follow"] = False  # following a live log streams until it ends
        if path.endswith("/wait"):
            self._keep_wait_short(case, query, aim)
            aim = False
        if path in ("/containers/{}/stop", "/containers/{}/restart"):
            _keep_stop_short(query)
        if path == "/swarm/join" and self.api.ok("GET", "/info")["Swarm"]["LocalNodeState"] != (
            "active"
        ):
            return False  # refused before any connection only while the node is a member
        if aim and body is not None and path in CREATES:
            case.body = body = _focused(path, body, pick)
            if path == "/containers/create":
                query["name"] = f"fz-c{pick}"
        if body is not None and path == "/services/create":
            _clamp_replicas(body)
        target = self.targets.for_path(method, path)
        if aim and target is not None and case.path_parameters:
            name = next(iter(case.path_parameters))
            case.path_parameters[name] = target()
        return True

    def _keep_wait_short(self, case: Any, query: dict[str, Any], aim: bool) -> None:
        """``wait`` answers when a container ends: on a running one it blocks by design. A
        random id can still name one (ids match by prefix, so "a" may be a real container);
        such a case, and an aimed one, waits on the container that never runs instead, and
        only for the condition that is met at once."""
        name = next(iter(case.path_parameters), "id")
        ref = case.path_parameters.get(name, "")
        found = self.api.call("GET", f"/containers/{ref}/json") if ref else None
        if aim or (found is not None and found.status_code == 200):
            case.path_parameters[name] = self.targets.stopped()
            if query.get("condition") in ("next-exit", "removed"):
                query["condition"] = "not-running"

    def _clean_up(self, method: str, path: str, response: requests.Response) -> None:
        """Remove what a create made, so the lab's pools and load stay as they were."""
        if method != "POST" or response.status_code not in (200, 201):
            return
        try:
            created = response.json()
        except ValueError:
            return
        if not isinstance(created, dict):
            return
        removers = {
            "/containers/create": ("Id", "/containers/{}?force=1"),
            "/networks/create": ("Id", "/networks/{}"),
            "/services/create": ("ID", "/services/{}"),
            "/images/create": ("status", "/images/{}"),
        }
        if path not in removers:
            return
        key, template = removers[path]
        if isinstance(created.get(key), str):
            self.figures.cleanup_requests += 1
            self.api.call("DELETE", template.format(created[key]))


# A create aimed at success: a body that works, plus one field of the generated one (picked
# by the case), so each field is fuzzed on a request that otherwise passes.
CREATES: dict[str, Callable[[int], dict[str, Any]]] = {
    "/containers/create": lambda n: {"Image": "tools", "Cmd": ["sleep", "30"]},
    "/services/create": lambda n: {
        "Name": f"fz-s{n}",
        "TaskTemplate": {"ContainerSpec": {"Image": "tools", "Args": ["sleep", "30"]}},
    },
    "/networks/create": lambda n: {"Name": f"fz-n{n}"},
}


def _focused(path: str, generated: dict[str, Any], pick: int) -> dict[str, Any]:
    body = CREATES[path](pick)
    if generated:
        key = sorted(generated)[pick % len(generated)]
        if key not in ("Name", "Image"):
            body[key] = generated[key]
    return body


def _keep_stop_short(query: dict[str, Any]) -> None:
    """``stop`` and ``restart`` wait ``t`` seconds for the container to end, and without limit
    for a negative ``t`` (Docker's rule): the target's ``sleep`` ignores SIGTERM as PID 1, so such
    a case would block by design. A well-formed ``t`` outside 0..2 becomes 1; a malformed one is
    kept, as it is refused before any wait."""
    raw = query.get("t")
    try:
        seconds = int(str(raw))
    except ValueError:
        return
    if not 0 <= seconds <= 2:
        query["t"] = "1"


def _clamp_replicas(body: dict[str, Any]) -> None:
    """At most 2 replicas: a thousand tasks on one lab host is a load test, not a fuzz case."""
    mode = body.get("Mode")
    replicated = mode.get("Replicated") if isinstance(mode, dict) else None
    replicas = replicated.get("Replicas") if isinstance(replicated, dict) else None
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas > 2:
        replicated["Replicas"] = 2  # type: ignore[index]


def _has_inputs(operation: Any) -> bool:
    parameters = [*operation.query, *operation.path_parameters, *operation.headers]
    return bool(parameters) or bool(list(operation.body))


def _describe(case: Any) -> str:
    return f"path={case.path_parameters!r} query={case.query!r} body={str(case.body)[:200]!r}"
