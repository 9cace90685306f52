"""The fuzz test's hands on the lab: plain API calls through the relay, and the real objects
(containers, networks, a service) that half of the cases aim at, kept in existence."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import requests

API_PREFIX = "/v1.47"
REQUEST_TIMEOUT_S = 30.0


class Api:
    """Plain calls through the relay, for set-up, clean-up and the checks afterwards."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base = base_url + API_PREFIX
        self.session = session

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=REQUEST_TIMEOUT_S, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None


class Targets:
    """Real objects of the lab that half of the cases aim at, kept in existence."""

    CONTAINER = "fz-target"
    STOPPED = "fz-stopped"
    NETWORK = "fz-net"
    OVERLAY = "fz-ovl"
    SERVICE = "fz-svc"

    def __init__(self, api: Api) -> None:
        self.api = api

    def ensure_all(self) -> None:
        self.network()
        self.overlay()
        self.container()
        self.stopped()
        self.service()

    def _exists(self, path: str) -> bool:
        status = self.api.call("GET", path).status_code
        if status not in (200, 404):
            raise AssertionError(f"GET {path}: {status}")
        return status == 200

    def network(self) -> str:
        if not self._exists(f"/networks/{self.NETWORK}"):
            self.api.ok("POST", "/networks/create", json={"Name": self.NETWORK})
        return self.NETWORK

    def overlay(self) -> str:
        if not self._exists(f"/networks/{self.OVERLAY}"):
            body = {"Name": self.OVERLAY, "Driver": "overlay", "Attachable": True}
            self.api.ok("POST", "/networks/create", json=body)
        return self.OVERLAY

    def _create(self, name: str) -> None:
        body = {
            "Image": "tools",
            "Cmd": ["sleep", "3600"],
            "HostConfig": {"NetworkMode": self.network()},
        }
        self.api.ok("POST", "/containers/create", params={"name": name}, json=body)

    def container(self) -> str:
        """The running target (started again if a case stopped it)."""
        if not self._exists(f"/containers/{self.CONTAINER}/json"):
            self._create(self.CONTAINER)
        if not self.api.ok("GET", f"/containers/{self.CONTAINER}/json")["State"]["Running"]:
            self.api.ok("POST", f"/containers/{self.CONTAINER}/start")
        return self.CONTAINER

    def stopped(self) -> str:
        """A container that never runs: ``wait`` on it answers at once."""
        if not self._exists(f"/containers/{self.STOPPED}/json"):
            self._create(self.STOPPED)
        if self.api.ok("GET", f"/containers/{self.STOPPED}/json")["State"]["Running"]:
            self.api.ok("POST", f"/containers/{self.STOPPED}/kill")
        return self.STOPPED

    def service(self) -> str:
        if not self._exists(f"/services/{self.SERVICE}"):
            spec = {
                "Name": self.SERVICE,
                "TaskTemplate": {"ContainerSpec": {"Image": "tools", "Args": ["sleep", "3600"]}},
                "Mode": {"Replicated": {"Replicas": 1}},
            }
            self.api.ok("POST", "/services/create", json=spec)
        return self.SERVICE

    def task(self) -> str:
        tasks = self.api.ok("GET", "/tasks", params={"filters": '{"service":["fz-svc"]}'})
        return str(tasks[0]["ID"]) if tasks else "no-task-yet"

    def node(self) -> str:
        return str(self.api.ok("GET", "/info")["Swarm"]["NodeID"])

    def for_path(self, method: str, path: str) -> Callable[[], str] | None:
        """The real object a case of this operation may aim its path parameter at."""
        if path.startswith("/networks/{}") and method == "DELETE":
            return self.overlay
        kinds: dict[str, Callable[[], str]] = {
            "/containers/": self.container,
            "/networks/": self.network,
            "/services/": self.service,
            "/tasks/": self.task,
            "/nodes/": self.node,
            "/images/": lambda: FUZZ_IMAGE,
        }
        return next((f for prefix, f in kinds.items() if path.startswith(prefix + "{}")), None)


FUZZ_IMAGE = "fz-img"  # imported by the test: what image cases aim at, never "tools"


@contextlib.contextmanager
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    try:
        yield s
    finally:
        s.close()
