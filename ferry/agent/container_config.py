"""The config a container runs with: its create request merged with its image's config, as
Docker's daemon does at create (the rules are ``ferry.model.imageconfig``'s), plus what follows
from the merge: the image's volumes as anonymous volumes, and ``-P``'s ports.

Be aware: the merge happens once, at create, as in Docker: an image changed later (pulled
again under the same tag) does not change a container made from it.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ferry.agent.container_requests import CreateRequest
from ferry.model.imageconfig import (
    HealthConfig,
    RunConfig,
    ephemeral_port,
    merge,
    parse_image_config,
    publish_all,
)
from ferry.model.runopts import Healthcheck, MountSpec, MountType
from ferry.runtime.images import Image

_RNG = random.SystemRandom()


def _given_health(check: Healthcheck | HealthConfig | None) -> HealthConfig | None:
    """A service's task carries its spec's complete check; a container's create, Docker's
    HealthConfig as given (zeros unset)."""
    if isinstance(check, Healthcheck):
        return HealthConfig.of(check)
    return check


def effective_request(
    req: CreateRequest,
    image: Image,
    taken_ports: set[str],
    data_path_port: int,
    rng: random.Random = _RNG,
) -> CreateRequest:
    """``req`` with the image's config merged in (entrypoint and command resolved, env,
    working directory, user, stop signal, health check, labels, exposed ports), each of the
    image's ``Volumes`` not mounted otherwise as an anonymous volume (Docker's
    createContainerOSSpecificSettings), a port asked without a host port (published 0) and,
    with ``publish_all``, every exposed port not published yet on a free ephemeral host port
    (``taken_ports``: ``tcp/8080`` keys in use; nor one of Ferry's own, with the VXLAN pair of
    ``data_path_port``).
    Raises ``InvalidArgument``: Docker's ``No command specified``, a malformed image config,
    a health check without a test."""
    run = RunConfig(
        entrypoint=req.entrypoint,
        cmd=req.cmd,
        env=req.env,
        working_dir=req.working_dir,
        user=req.user,
        exposed_ports=req.exposed_ports,
        stop_signal=req.stop_signal,
        healthcheck=_given_health(req.healthcheck),
        labels=dict(req.labels or {}),
    )
    out = merge(run, parse_image_config(image.config), image.name)
    mounted = {m.target.rstrip("/") for m in req.mounts}
    volumes = tuple(
        MountSpec(MountType.VOLUME, target)
        for target in out.volumes
        if target.rstrip("/") not in mounted
    )
    taken = set(taken_ports) | {f"{p.protocol}/{p.published}" for p in req.ports}
    ports = tuple(
        replace(p, published=ephemeral_port(p.protocol, taken, rng, data_path_port))
        if not p.published
        else p
        for p in req.ports
    )
    if req.publish_all:
        bound = {f"{p.target}/{p.protocol}" for p in req.ports}
        ports += tuple(publish_all(out.exposed_ports, bound, taken, rng, data_path_port))
    return replace(
        req,
        entrypoint=out.entrypoint,
        cmd=out.cmd,
        env=out.env,
        working_dir=out.working_dir,
        user=out.user,
        exposed_ports=out.exposed_ports,
        stop_signal=out.stop_signal,
        healthcheck=out.healthcheck,
        labels=out.labels,
        mounts=req.mounts + volumes,
        ports=ports,
    )
