"""The cluster API's messages (port 2377, Ferry's own protocol between agents and managers)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferry.model.ports import DEFAULT_DATA_PATH_PORT


class JoinRequest(BaseModel):
    token: str
    csr_pem: str
    hostname: str
    advertise_addr: str = ""
    availability: str = "active"
    engine_version: str = ""
    ncpu: int = 0
    memory_bytes: int = 0
    store_csr_pem: str = ""  # signed only for a manager token: its etcd certificate
    # the joiner's daemon.json ``data-path-port`` (0: not set): one that is not the swarm's
    # is refused before the node is admitted
    data_path_port: int = 0


class JoinResponse(BaseModel):
    node_id: str
    cluster_id: str
    role: str
    addr: str
    cert_pem: str
    ca_pem: str
    managers: list[str]
    etcd_initial_cluster: str | None = None
    # a manager's only: the store CA, its etcd certificate, the KEK and whether to keep it off
    # its disk (autolock)
    store_ca_pem: str = ""
    store_cert_pem: str = ""
    unlock_key: str = ""
    autolock: bool = False
    data_path_port: int = (
        DEFAULT_DATA_PATH_PORT  # the swarm's VXLAN UDP port (the cluster record's)
    )


class RoleRequest(BaseModel):
    """A node taking the role its record asks for (``node promote`` / ``node demote``): the
    requests for its new certificates, as a join sends them."""

    role: str
    csr_pem: str
    store_csr_pem: str = ""  # a manager's only: its etcd certificate


class RenewRequest(BaseModel):
    """A node's request for a new certificate before its current one lapses."""

    csr_pem: str


class NodeTLSBody(BaseModel):
    """A node's TLS state as it reports it (``model/root_rotation.NodeTLS``)."""

    trust_root: str = ""
    issuer_subject: str = ""
    issuer_key: str = ""


class Heartbeat(BaseModel):
    images: list[str] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    wg_key: str = ""
    tls: NodeTLSBody = Field(default_factory=NodeTLSBody)


class HeartbeatReply(BaseModel):
    ttl_s: int
    managers: list[str] = Field(default_factory=list)
    role: str = ""  # the role the node is to have (its record's Spec.Role); "": unknown
    # the roots the node is to trust (PEM bundle) and the subject and public key (base64 DER)
    # its certificate's issuer is to have: a root CA rotation's steps (daemon/trust.py)
    trust_pem: str = ""
    issuer_subject: str = ""
    issuer_key: str = ""


class TaskStatusBody(BaseModel):
    state: str
    message: str = ""
    error: str = ""
    container_id: str = ""
    exit_code: int | None = None


class AttachBody(BaseModel):
    net: str
    owner_id: str
    name: str
    kind: str = "container"
    aliases: list[str] = Field(default_factory=list)
    hostname: str = ""
    ip: str = ""
