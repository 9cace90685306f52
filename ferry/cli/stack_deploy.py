"""``ferry stack deploy``'s steps, in Docker's order and words (docker/cli
``cli/command/stack/swarm/deploy_composefile.go``): read the compose files with the docker CLI's
loader, prune, ensure the networks, secrets and configs, then create or update the services."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ferry.api.client import ApiClient
from ferry.cli.common import fail
from ferry.cli.registry_auth import registry_auth_header
from ferry.errors import (
    Conflict,
    FerryError,
    Forbidden,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from ferry.model.stack import (
    LABEL_IMAGE,
    LABEL_NAMESPACE,
    FileObject,
    StackPlan,
    with_object_ids,
)

_KINDS: tuple[type[FerryError], ...] = (InvalidArgument, NotFound, Conflict, Forbidden, Unavailable)


@contextmanager
def failed(action: str, name: str) -> Iterator[None]:
    """An API error of one step as the docker CLI words it (``failed to create service
    app_web: …``), of the same kind."""
    try:
        yield
    except FerryError as exc:
        kind = next((k for k in _KINDS if isinstance(exc, k)), FerryError)
        raise kind(f"failed to {action} {name}: {exc}") from exc


def compose_text(files: list[str], skip_interpolation: bool = False) -> str:
    """``files`` merged, as the docker CLI's loader normalises them: what ``docker stack
    config`` prints (offline). Exits 1 in one line when the docker CLI is missing or refuses
    the files."""
    docker = shutil.which("docker")
    if docker is None:
        fail(
            "ferry stack reads compose files with the docker CLI's loader (docker stack config), "
            "and no docker is on PATH: install the docker CLI (Debian: docker.io or docker-ce-cli)"
        )
        raise AssertionError  # fail exits
    argv = [docker, "stack", "config"]
    for name in files:
        argv += ["--compose-file", name]
    if skip_interpolation:
        argv.append("--skip-interpolation")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        fail(done.stderr or done.stdout or f"docker stack config exited {done.returncode}")
    return done.stdout


def load_compose(files: list[str]) -> dict[str, Any]:
    """The compose model of ``files`` (``compose_text``, read as YAML)."""
    model = yaml.safe_load(compose_text(files)) or {}
    if not isinstance(model, dict):
        fail("docker stack config printed no compose model")
    return model


def stack_filter(namespace: str) -> dict[str, list[str]]:
    return {"label": [f"{LABEL_NAMESPACE}={namespace}"]}


def by_name(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(o.get("Spec", o).get("Name") or o.get("Name")): o for o in found}


# deploy ------------------------------------------------------------------------------------
def prune_services(api: ApiClient, plan: StackPlan) -> None:
    """Docker's ``pruneServices``: the stack's services the files no longer name."""
    wanted = set(plan.services)
    for svc in sorted(api.get("/services", filters=stack_filter(plan.namespace)),
                      key=lambda s: str(s["Spec"]["Name"])):  # fmt: skip
        if svc["Spec"]["Name"] not in wanted:
            print(f"Removing service {svc['Spec']['Name']}")
            api.delete(f"/services/{svc['ID']}")


def ensure_networks(api: ApiClient, plan: StackPlan) -> None:
    for name in plan.external_networks:
        try:
            net = api.get(f"/networks/{name}")
        except NotFound:
            fail(
                f'network "{name}" is declared as external, but could not be found. You need '
                "to create a swarm-scoped network before the stack is deployed"
            )
        if net.get("Scope") != "swarm":
            fail(
                f'network "{name}" is declared as external, but it is not in the right scope: '
                f'"{net.get("Scope")}" instead of "swarm"'
            )
    existing = by_name(api.get("/networks", filters=stack_filter(plan.namespace)))
    for name, body in plan.networks.items():
        if name not in existing:
            print(f"Creating network {name}")
            with failed("create network", name):
                api.post("/networks/create", body)


def ensure_objects(api: ApiClient, kind: str, objects: tuple[FileObject, ...]) -> None:
    """Docker's ``createSecrets``/``createConfigs``: update one that exists by name (only its
    labels may change), create the others from their files."""
    for obj in objects:
        try:
            data = Path(obj.file).read_bytes()
        except OSError as exc:
            fail(f"cannot read {obj.file} for {kind} {obj.name}: {exc.strerror}")
        body = {"Name": obj.name, "Labels": obj.labels, "Data": base64.b64encode(data).decode()}
        try:
            current = api.get(f"/{kind}s/{obj.name}")
        except NotFound:
            print(f"Creating {kind} {obj.name}")
            with failed(f"create {kind}", obj.name):
                api.post(f"/{kind}s/create", body)
            continue
        version = current["Version"]["Index"]
        with failed(f"update {kind}", obj.name):
            api.call("POST", f"/{kind}s/{current['ID']}/update", query={"version": version},
                 body=body)  # fmt: skip


def _object_ids(api: ApiClient, kind: str, plan: StackPlan) -> dict[str, str]:
    """Name → id of every secret (or config) a service of ``plan`` names."""
    names = {
        ref[f"{kind.capitalize()}Name"]
        for spec in plan.services.values()
        for ref in spec["TaskTemplate"]["ContainerSpec"].get(f"{kind.capitalize()}s") or []
    }
    if not names:
        return {}
    found = api.get(f"/{kind}s", filters={"name": sorted(names)})
    return {o["Spec"]["Name"]: o["ID"] for o in found if o["Spec"]["Name"] in names}


def deploy_services(
    api: ApiClient, plan: StackPlan, resolve_image: str, with_registry_auth: bool
) -> list[str]:
    """Docker's ``deployServices``: update the stack's services in place (at their current
    version, keeping a pinned image that did not change), create the missing ones."""
    existing = by_name(api.get("/services", filters=stack_filter(plan.namespace)))
    ids = (_object_ids(api, "secret", plan), _object_ids(api, "config", plan))
    svc_ids = []
    for name, planned in plan.services.items():
        spec = with_object_ids(planned, *ids)
        image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        auth = {"X-Registry-Auth": registry_auth_header(image)} if with_registry_auth else None
        svc = existing.get(name)
        if svc is None:
            print(f"Creating service {name}")
            query = {"queryRegistry": resolve_image != "never"}
            with failed("create service", name):
                answer = api.call("POST", "/services/create", query=query, body=spec, headers=auth)
            svc_id = answer["ID"]
        else:
            print(f"Updating service {name} (id: {svc['ID']})")
            unchanged = image == (svc["Spec"].get("Labels") or {}).get(LABEL_IMAGE)
            query = {"queryRegistry": resolve_image == "always" or not unchanged}
            if resolve_image == "never":
                query["queryRegistry"] = False
            if unchanged and resolve_image != "always":  # keep the digest pinned last time
                spec["TaskTemplate"]["ContainerSpec"]["Image"] = svc["Spec"]["TaskTemplate"][
                    "ContainerSpec"
                ]["Image"]
            spec["TaskTemplate"]["ForceUpdate"] = svc["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
            query["version"] = svc["Version"]["Index"]
            path = f"/services/{svc['ID']}/update"
            with failed("update service", name):
                answer = api.call("POST", path, query=query, body=spec, headers=auth)
            svc_id = svc["ID"]
        for warning in (answer or {}).get("Warnings") or []:
            print(warning.rstrip("\n"), file=sys.stderr)
        svc_ids.append(svc_id)
    return svc_ids
