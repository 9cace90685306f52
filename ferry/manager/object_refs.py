"""Services' references to secrets and configs, kept true against their removal.

Design notes. swarmkit checks, in one store transaction, that a service's secrets and configs
exist (create, update) and that no service names one being removed (``secret rm``: "secret
'X' is in use by the following service: web"). Ferry's store is etcd, so the two sides meet
on a key instead: a service spec naming object ``<id>`` commits with a write to
``objectuses/<id>`` and expects the object itself unchanged, and a removal expects
``objectuses/<id>`` unchanged since it found no service naming the object. Whichever commits
second fails its precondition and looks again; neither can slip past the other. Only the
current specs count, as in swarmkit: a previous spec naming a removed secret cannot be rolled
back to ("secret not found").
"""

from __future__ import annotations

from ferry.errors import InvalidArgument
from ferry.manager.store import Expect, Put, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.service import Service, ServiceSpec
from ferry.model.swarm_objects import Kind, SwarmObject
from ferry.model.task_files import FileKind, FileRef

_PREFIX = {FileKind.SECRET: keys.SWARM_SECRETS, FileKind.CONFIG: keys.CONFIGS}


def refs_of(spec: ServiceSpec) -> tuple[FileRef, ...]:
    return spec.template.options.secrets + spec.template.options.configs


def check_exist(view: ClusterView, spec: ServiceSpec) -> None:
    """InvalidArgument in swarmkit's words ("secret not found: a", "configs not found: a, b")
    unless each reference names an object by its id *and* its current name."""
    for kind in FileKind:
        missing = []
        for ref in refs_of(spec):
            if ref.kind != kind:
                continue
            obj = view.mirror.obj(_PREFIX[kind] + ref.obj_id, SwarmObject)
            if obj is None or obj.name != ref.obj_name:
                missing.append(ref.obj_name)
        if missing:
            noun = kind.value if len(missing) == 1 else f"{kind.value}s"
            raise InvalidArgument(f"{noun} not found: {', '.join(missing)}")


def claims(view: ClusterView, spec: ServiceSpec, svc_id: str) -> tuple[list[Put], list[Expect]]:
    """What a commit of ``spec`` (service ``svc_id``) adds: a write to each named object's
    use key, and the expectation that the object is as the mirror holds it now. Checks again
    that each exists (InvalidArgument as ``check_exist``): a commit retried after a lost race
    must not expect a removed object's key to be absent, which would pass."""
    check_exist(view, spec)
    ops: list[Put] = []
    expect: list[Expect] = []
    for obj_id, kind in sorted({(r.obj_id, r.kind) for r in refs_of(spec)}):
        key = _PREFIX[kind] + obj_id
        ops.append(Put(keys.OBJECT_USES + obj_id, encode(svc_id)))
        expect.append(Expect(key, view.entity_version(key)))
    return ops, expect


def users(services: list[Service], obj_id: str) -> list[str]:
    """The names of the services whose current spec names object ``obj_id``, sorted."""
    return sorted(s.spec.name for s in services if any(r.obj_id == obj_id for r in refs_of(s.spec)))


def in_use(kind: Kind, name: str, names: list[str]) -> InvalidArgument:
    """swarmkit's refusal to remove an object a service names (InvalidArgument, 400)."""
    plural = "s" if len(names) > 1 else ""
    return InvalidArgument(
        f"rpc error: code = InvalidArgument desc = {kind.value} '{name}' is in use by the "
        f"following service{plural}: {', '.join(names)}"
    )
