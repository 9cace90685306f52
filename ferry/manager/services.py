"""Services as a manager serves them: create, update, scale, remove, and task reports.

Creation validates everything first (name, replicas, networks, image, constraints) and then
commits the service with one virtual IP per network (endpoint-mode vip): nothing is half-made.
Tasks are not created here: the leader's reconciler sees the new desired state and acts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ferry.errors import Conflict, Forbidden, InvalidArgument, NotFound, Unavailable
from ferry.manager import object_refs
from ferry.manager.admission import endpoint_labels
from ferry.manager.feed import StoreFeed
from ferry.manager.networks import MAX_ATTEMPTS, AttachRequest, NetworkOps, release_ops
from ferry.manager.orchestrator import Progress, progress
from ferry.manager.pinning import (
    DigestResolver,
    decode_auth,
    no_registry,
    normalise_ref,
    pin_image,
)
from ferry.manager.scheduler import candidates, parse_constraint
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.ids import lookup, new_object_id
from ferry.model.network import EndpointKind
from ferry.model.ports import check_publishable
from ferry.model.rules import check_aliases, check_labels, parse_env
from ferry.model.service import (
    MAX_REPLICAS,
    ContainerTemplate,
    EndpointMode,
    Mode,
    PortSpec,
    PublishMode,
    RestartCondition,
    Service,
    ServiceSpec,
    TaskOptions,
    TaskState,
)
from ferry.model.times import now_iso
from ferry.model.update_policy import UpdatePolicy

MAX_RESTART_DELAY_S = 24 * 3600.0  # a bound, so a typo cannot park a slot for years
# swarmkit's isValidDNSName: letters and digits, with runs of '-' or '_' between them; at most
# 63 characters (stacks name every service STACK_SERVICE)
NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
NAME_MAX = 63


@dataclass(frozen=True)
class ServiceRequest:
    name: str
    image: str
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ()
    mode: str = "replicated"
    replicas: int | None = None
    networks: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] | None = None  # by the network as ``networks`` names it
    endpoint_mode: str = "vip"
    constraints: tuple[str, ...] = ()
    restart: str = "any"
    restart_delay_s: float = 5.0  # RestartPolicy.Delay
    init: bool = False
    stop_grace_s: float = 10.0
    ports: tuple[PortSpec, ...] = ()
    labels: dict[str, str] | None = None
    options: TaskOptions = field(default_factory=TaskOptions)
    entrypoint: tuple[str, ...] | None = None  # ContainerSpec.Command; cmd is its Args
    query_registry: bool = False  # pin the image to its registry's digest (not --no-resolve-image)
    registry_auth: str = ""  # X-Registry-Auth (--with-registry-auth): the nodes pull with it
    update: UpdatePolicy = field(default_factory=UpdatePolicy)  # UpdateConfig
    rollback: UpdatePolicy = field(default_factory=UpdatePolicy)  # RollbackConfig


def check_ports(ports: tuple[PortSpec, ...], data_path_port: int | None) -> tuple[PortSpec, ...]:
    """Published ports as Docker takes them, none of them Ferry's own: with the swarm's VXLAN
    pair where ``data_path_port`` is known (a manager's check), the fixed ones where not."""
    seen: set[tuple[str, int]] = set()
    for port in ports:
        if port.protocol not in ("tcp", "udp"):
            raise InvalidArgument(f"invalid protocol {port.protocol!r}: use tcp or udp")
        if not 1 <= port.target <= 65535:
            raise InvalidArgument(f"invalid target port {port.target}: use 1 to 65535")
        if not 1 <= port.published <= 65535:
            raise InvalidArgument(
                f"invalid published port {port.published}: give a port from 1 to 65535 "
                "(Ferry does not pick one for you)"
            )
        check_publishable(port.protocol, port.published, data_path_port)
        if (port.protocol, port.published) in seen:
            raise InvalidArgument(f"port {port.published}/{port.protocol} is published twice")
        seen.add((port.protocol, port.published))
    return ports


def check_request(req: ServiceRequest) -> None:
    """What a service request must satisfy whatever the cluster holds: its name, options,
    image reference, command, environment (moby's ValidateEnv), labels and constraints (the
    route checks it before anything else, the managers again in ``_spec``)."""
    if len(req.name) > NAME_MAX or not NAME_RE.match(req.name):
        raise InvalidArgument(
            f"invalid service name {req.name!r}: name must be valid as a DNS name component "
            "(letters and digits, with '-' or '_' between them, at most 63)"
        )
    try:
        mode = Mode(req.mode)
        EndpointMode(req.endpoint_mode)
        RestartCondition(req.restart)
    except ValueError as exc:
        raise InvalidArgument(f"invalid service option: {exc}") from exc
    if not 0 <= req.restart_delay_s <= MAX_RESTART_DELAY_S:
        raise InvalidArgument(
            f"invalid restart delay {req.restart_delay_s:g}s: give 0s to 24h (--restart-delay)"
        )
    if mode == Mode.GLOBAL and req.replicas is not None:
        raise InvalidArgument("replicas can only be used with replicated mode")
    if req.replicas is not None:
        check_replicas(req.replicas)
    if not req.image:
        raise InvalidArgument("a service needs an image")
    normalise_ref(req.image)
    # No command is fine: the image's Cmd runs (an image without one fails its tasks with
    # Docker's "No command specified", retried after the restart delay).
    decode_auth(req.registry_auth)
    parse_env(req.env)
    check_labels(req.labels)
    for text in req.constraints:
        parse_constraint(text)
    if req.stop_grace_s < 0:
        raise InvalidArgument("--stop-grace-period cannot be negative")
    check_ports(req.ports, None)  # the swarm's VXLAN ports: in ``_spec``


def check_replicas(replicas: int) -> int:
    if replicas < 0:
        raise InvalidArgument(f"invalid replicas value {replicas}: it cannot be negative")
    if replicas > MAX_REPLICAS:
        raise InvalidArgument(
            f"invalid replicas value {replicas}: at most {MAX_REPLICAS} per service"
        )
    return replicas


class ServiceOps:
    def __init__(
        self,
        store: Store,
        view: ClusterView,
        feed: StoreFeed,
        networks: NetworkOps,
        resolve: DigestResolver = no_registry,
    ) -> None:
        """``resolve``: the image store's ``resolve_digest(ref, auth)``."""
        self._resolve = resolve
        self._store = store
        self._view = view
        self._feed = feed
        self._networks = networks

    # lookups ---------------------------------------------------------------------------------
    def find(self, ref: str) -> Service:
        svc = lookup(self._view.services(), ref, lambda s: (s.svc_id, s.spec.name), "service")
        if svc is None:
            raise NotFound(f"service {ref} not found")
        return svc

    def all(self) -> list[Service]:
        return sorted(self._view.services(), key=lambda s: s.spec.name)

    def version(self, svc: Service) -> int:
        return self._view.entity_version(keys.service(svc.svc_id))

    def progress(self, svc: Service) -> Progress:
        nodes = candidates(self._view.nodes(), self._view.status)
        return progress(svc, self._view.tasks(svc.svc_id), nodes)

    # validation ------------------------------------------------------------------------------
    def _spec(self, req: ServiceRequest) -> ServiceSpec:
        check_request(req)
        cluster = self._view.cluster()
        if cluster is None:
            raise Unavailable("the cluster record is not loaded yet; retry")
        check_ports(req.ports, cluster.data_path_port)
        try:
            mode = Mode(req.mode)
            endpoint_mode = EndpointMode(req.endpoint_mode)
            restart = RestartCondition(req.restart)
        except ValueError as exc:
            raise InvalidArgument(f"invalid service option: {exc}") from exc
        if mode == Mode.GLOBAL and req.replicas is not None:
            raise InvalidArgument("replicas can only be used with replicated mode")
        replicas = check_replicas(1 if req.replicas is None else req.replicas)
        nets = []
        aliases: dict[str, tuple[str, ...]] = {}
        for ref in req.networks:
            network = self._networks.find(ref)
            if network.ingress:
                raise InvalidArgument(
                    "the ingress network is managed by the routing mesh: publish ports with -p"
                )
            if network.net_id in nets:
                raise InvalidArgument(f"network {network.name} is given twice")
            nets.append(network.net_id)
            named = tuple((req.aliases or {}).get(ref, ()))
            if named:
                check_aliases(named)
                aliases[network.net_id] = named
        unknown = set(req.aliases or {}) - set(req.networks)
        if unknown:
            raise InvalidArgument(
                f"aliases given for network {min(unknown)}, which is not one of the service's"
            )
        image = normalise_ref(req.image)
        env = parse_env(req.env)
        req.options.check()
        req.update.check()
        req.rollback.check(rollback=True)
        template = ContainerTemplate(
            image, req.cmd, env, req.init, req.stop_grace_s, req.options, req.entrypoint,
            req.registry_auth,
        )  # fmt: skip
        # its secrets and configs are checked where it is committed (object_refs.claims)
        return ServiceSpec(
            name=req.name,
            template=template,
            mode=mode,
            replicas=0 if mode == Mode.GLOBAL else replicas,
            networks=tuple(nets),
            aliases=aliases,
            endpoint_mode=endpoint_mode,
            constraints=req.constraints,
            restart=restart,
            restart_delay_s=req.restart_delay_s,
            update=req.update,
            rollback=req.rollback,
            ports=req.ports,
            labels=dict(req.labels or {}),
        )

    async def pin(self, req: ServiceRequest) -> tuple[ServiceRequest, list[str]]:
        """The request with its image pinned to the registry's digest when it asks for it
        (``query_registry``), and Docker's warning when the registry cannot tell (see
        pinning.py). Nodes need not have the image: each pulls it for its tasks."""
        if not req.query_registry:
            return req, []
        image, warning = await pin_image(req.image, decode_auth(req.registry_auth), self._resolve)
        return replace(req, image=image), [warning] if warning else []

    def _check_ports_free(self, ports: tuple[PortSpec, ...], svc_id: str = "") -> None:
        """Ingress ports are open on every node: no other service and no node may hold them."""
        ingress = [p for p in ports if p.mode == PublishMode.INGRESS]
        if ingress and self._networks.ingress() is None:
            raise NotFound(
                "the swarm has no ingress network for the routing mesh: create one with "
                "'ferry network create -d overlay --ingress ingress', or publish with mode=host"
            )
        for other in self._view.services():
            if other.svc_id == svc_id:
                continue
            for mine in ports:
                for theirs in other.spec.ports:
                    same = (mine.protocol, mine.published) == (theirs.protocol, theirs.published)
                    if same and PublishMode.INGRESS in (mine.mode, theirs.mode):
                        raise Conflict(
                            f"port {mine.published}/{mine.protocol} is already published by "
                            f"service {other.spec.name}"
                        )
        for node in self._view.nodes():
            if node.left or not self._view.is_up(node.node_id):
                continue
            for port in ingress:
                if f"{port.protocol}/{port.published}" in node.ports:
                    raise Conflict(
                        f"port {port.published}/{port.protocol} is already in use on node "
                        f"{node.hostname}"
                    )

    def _check_name_free(self, spec: ServiceSpec, svc_id: str = "") -> None:
        name = spec.name
        for svc in self._view.services():
            if svc.spec.name == name and svc.svc_id != svc_id:
                raise Conflict(f"service {name} already exists")
        # the names a container holds in DNS (admission.py keeps containers off services'):
        # the service's everywhere, its aliases on their networks
        wanted = {name.lower(), f"tasks.{name.lower()}"}
        for endpoint in self._view.endpoints():
            if endpoint.kind != EndpointKind.CONTAINER:
                continue
            held = {label.lower() for label in endpoint_labels(endpoint)}
            here = {a.lower() for a in spec.aliases.get(endpoint.net_id, ())}
            taken = (wanted | here) & held
            if taken:
                raise Conflict(
                    f"name {min(taken)} is taken by a container ({endpoint.name}) on network "
                    f"{endpoint.net_id[:12]}: service and container names share the DNS namespace"
                )

    # changes ---------------------------------------------------------------------------------
    async def create(self, req: ServiceRequest) -> Service:
        spec = self._spec(req)
        self._check_name_free(spec)
        self._check_ports_free(spec.ports)
        svc = Service(new_object_id(), spec, created_at=now_iso(), updated_at=now_iso())
        # The VIPs' addresses may race the leader reserving tasks' on the same networks: on a
        # lost race, plan again from the store itself (the mirror may lag behind the winner).
        for attempt in range(MAX_ATTEMPTS):
            uses, use_expect = object_refs.claims(self._view, spec, svc.svc_id)
            ops: list[Put | Delete] = [Put(keys.service(svc.svc_id), encode(svc)), *uses]
            expect = [Expect(keys.service(svc.svc_id), 0), *use_expect]
            if spec.endpoint_mode == EndpointMode.VIP:
                for net_id in spec.networks:
                    vip_ops, vip_expect = await self._plan_vip(svc, net_id, fresh=attempt > 0)
                    ops += vip_ops
                    expect += vip_expect
            revision = await self._store.commit(ops, expect)
            if revision is not None:
                await self._feed.wait_for(revision)
                return svc
            if use_expect:  # a secret or config may be gone: look again once the mirror knows
                _, now = await self._store.list_prefix(keys.OBJECT_USES)
                await self._feed.wait_for(now)
        raise Conflict("the cluster keeps changing while the service is created; retry")

    async def _plan_vip(
        self, svc: Service, net_id: str, *, fresh: bool
    ) -> tuple[list[Put | Delete], list[Expect]]:
        network = self._networks.find(net_id)
        if fresh:
            taken = await self._networks.read_taken_ips(net_id)
        else:
            taken = self._networks.taken_ips(net_id)
        vip_req = AttachRequest(
            net=net_id, node_id="", owner_id=svc.svc_id, name=svc.spec.name,
            kind=EndpointKind.VIP, service=svc.spec.name,
            aliases=svc.spec.aliases.get(net_id, ()),
        )  # fmt: skip
        _ep, ops, expect = self._networks.plan_endpoint(network, vip_req, taken)
        return ops, expect

    async def update(
        self, ref: str, version: int | None, wanted: ServiceRequest, force_update: int | None
    ) -> Service:
        """Replace a service's spec with ``wanted`` (the whole spec, as Docker sends it); the
        spec it replaces becomes the previous one (swarmkit keeps PreviousSpec on every
        update, a scale too).

        What cannot change in place is refused rather than ignored. A change to what the tasks
        run (the template, or where they may run) rolls them over, one at a time."""
        svc = self.find(ref)
        current = self._check_version(svc, version)
        old = svc.spec
        if wanted.name and wanted.name != old.name:
            raise InvalidArgument("renaming a service is not supported")
        if (wanted.mode == Mode.GLOBAL.value) != (old.mode == Mode.GLOBAL):
            raise InvalidArgument("a service's mode cannot change")
        if wanted.mode == Mode.GLOBAL.value:
            wanted = replace(wanted, replicas=None)  # Docker sends none; tolerate a stray one
        spec = self._spec(replace(wanted, name=old.name))
        # the spec is whole, as Docker's: no networks named is none (the docker CLI's
        # --network-rm of the last one omits the field); a change of networks or aliases
        # rolls the tasks over and moves the VIPs (_replace_spec)
        if (spec.networks, spec.aliases) != (old.networks, old.aliases):
            self._check_name_free(spec, svc.svc_id)
        if spec.endpoint_mode != old.endpoint_mode:
            raise InvalidArgument("a service's endpoint mode cannot change")
        if spec.ports != old.ports:
            self._check_ports_free(spec.ports, svc.svc_id)
        forced = force_update is not None and force_update != svc.force_update
        force = svc.force_update if force_update is None else force_update
        return await self._replace_spec(svc, current, spec, force, forced=forced)

    async def rollback(self, ref: str, version: int | None) -> Service:
        """Swarm's rollback (swarmkit ``UpdateService`` with ``Rollback: PREVIOUS``): the
        previous spec becomes the spec and the spec it replaces the previous one, so a second
        rollback returns. Conflict when there is none, in Docker's words ("service NAME does
        not have a previous spec"). Networks and endpoint mode never change in an update, so
        the previous spec has the service's own."""
        svc = self.find(ref)
        current = self._check_version(svc, version)
        if svc.previous is None:
            raise Conflict(f"service {svc.spec.name} does not have a previous spec")
        if svc.previous.ports != svc.spec.ports:
            self._check_ports_free(svc.previous.ports, svc.svc_id)
        return await self._replace_spec(
            svc, current, svc.previous, svc.force_update, forced=False, rollback=True
        )

    def _check_version(self, svc: Service, version: int | None) -> int:
        current = self.version(svc)
        if version is not None and version != current:
            raise Conflict(
                f"update out of sequence: service {svc.spec.name} changed (version {current}, "
                f"not {version}); inspect it again and retry"
            )
        return current

    async def _replace_spec(
        self,
        svc: Service,
        current: int,
        spec: ServiceSpec,
        force_update: int,
        *,
        forced: bool,
        rollback: bool = False,
    ) -> Service:
        """Commit ``spec`` over the service's (at store version ``current``), the old spec
        kept as the previous one; tasks roll over when what they run changes. A rollback
        always reports its UpdateStatus, as swarmkit does, even when no task changes."""
        old = svc.spec
        moved = (spec.networks, spec.aliases) != (old.networks, old.aliases)
        rolled = (spec.template != old.template or spec.constraints != old.constraints
                  or forced or moved)  # fmt: skip
        now = now_iso()
        updated = replace(
            svc,
            spec=spec,
            spec_version=svc.spec_version + (1 if rolled else 0),
            force_update=force_update,
            updated_at=now,
            previous=old,
            rolled_at=now if rolled or rollback else svc.rolled_at,
            rolled_back=rollback,
            update_paused=False,  # a new change resumes a paused roll-over, as in swarmkit
            update_halted="",
        )
        # new VIPs may race the leader reserving tasks' addresses: on a lost race, plan again
        # from the store itself, as create does
        for attempt in range(MAX_ATTEMPTS):
            uses, use_expect = object_refs.claims(self._view, spec, svc.svc_id)
            vip_ops, vip_expect = await self._moved_vips(updated, old, fresh=attempt > 0)
            revision = await self._store.commit(
                [Put(keys.service(svc.svc_id), encode(updated)), *uses, *vip_ops],
                [Expect(keys.service(svc.svc_id), current), *use_expect, *vip_expect],
            )
            if revision is not None:
                await self._feed.wait_for(revision)
                return updated
            if self.version(svc) != current:
                break  # the service itself changed: the caller must look again
        raise Conflict(f"service {svc.spec.name} changed meanwhile; retry")

    async def _moved_vips(
        self, svc: Service, old: ServiceSpec, *, fresh: bool
    ) -> tuple[list[Put | Delete], list[Expect]]:
        """The VIP changes of a change of networks (``service update --network-add|rm``, a
        rollback across one): a VIP on each network added, released on each removed, and on a
        kept network the same address with the new aliases."""
        spec = svc.spec
        if spec.endpoint_mode != EndpointMode.VIP or (spec.networks, spec.aliases) == (
            old.networks, old.aliases
        ):  # fmt: skip
            return [], []
        vips = {e.net_id: e for e in self._view.endpoints()
                if e.kind == EndpointKind.VIP and e.owner_id == svc.svc_id}  # fmt: skip
        ops: list[Put | Delete] = []
        expect: list[Expect] = []
        for net_id, endpoint in vips.items():
            if net_id not in spec.networks:
                ops += release_ops(endpoint)
            elif spec.aliases.get(net_id, ()) != endpoint.aliases:
                renamed = replace(endpoint, aliases=spec.aliases.get(net_id, ()))
                ops.append(Put(keys.endpoint(net_id, endpoint.ep_id), encode(renamed)))
        for net_id in spec.networks:
            if net_id not in vips:
                more_ops, more_expect = await self._plan_vip(svc, net_id, fresh=fresh)
                ops += more_ops
                expect += more_expect
        return ops, expect

    async def remove(self, ref: str) -> Service:
        svc = self.find(ref)
        ops: list[Put | Delete] = [Delete(keys.service(svc.svc_id))]
        for endpoint in self._view.endpoints():
            if endpoint.kind == EndpointKind.VIP and endpoint.owner_id == svc.svc_id:
                ops += release_ops(endpoint)
        for task in self._view.tasks(svc.svc_id):  # agents stop them; the leader forgets them
            if task.desired == TaskState.RUNNING:
                stopped = replace(task, desired=TaskState.SHUTDOWN, updated_at=now_iso())
                ops.append(Put(keys.task(task.task_id), encode(stopped)))
        revision = await self._store.commit(ops)
        if revision is not None:
            await self._feed.wait_for(revision)
        return svc

    # reports from agents ---------------------------------------------------------------------
    async def task_status(
        self,
        node_id: str,
        task_id: str,
        state: TaskState,
        *,
        message: str = "",
        error: str = "",
        container_id: str = "",
        exit_code: int | None = None,
    ) -> None:
        key = keys.task(task_id)
        for _ in range(10):
            task = self._view.task(task_id)
            if task is None:
                raise NotFound(f"task {task_id} not found")
            if task.node_id != node_id:
                raise Forbidden(f"task {task_id} is not assigned to this node")
            if task.state.terminal and task.state != state:
                return  # a finished task stays finished (a late report lost the race)
            updated = replace(
                task,
                state=state,
                message=message or task.message,
                error=error,
                container_id=container_id or task.container_id,
                exit_code=exit_code if exit_code is not None else task.exit_code,
                updated_at=now_iso(),
            )
            if state == TaskState.RUNNING and not task.started_at:
                updated = replace(updated, started_at=updated.updated_at)
            ops: list[Put | Delete] = [Put(key, encode(updated))]
            if state.terminal:  # its addresses go back to the networks
                ops += [
                    op
                    for ep in self._view.endpoints()
                    if ep.kind == EndpointKind.TASK and ep.owner_id == task_id
                    for op in release_ops(ep)
                ]
            revision = await self._store.commit(ops, [Expect(key, self._view.entity_version(key))])
            if revision is not None:
                await self._feed.wait_for(revision)
                return
        raise Conflict(f"task {task_id} keeps changing; retry")
