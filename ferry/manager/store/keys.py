"""The only place etcd key paths are spelled.

Layout under ``/ferry/v1/``:

- ``cluster``                 public cluster facts (id, CA certificate, address pool)
- ``secrets``                 CA key and join-token secrets: never streamed to agents
- ``nodes/<node_id>``         node spec (hostname, role, availability, address)
- ``sessions/<node_id>``      lease-bound: present while the node's agent is connected
- ``leader``                  lease-bound: the manager running the orchestrator
- ``networks/<net_id>``       swarm-scoped networks
- ``ipam/<net_id>/<ip>``      address reservations (owner = endpoint id)
- ``endpoints/<net_id>/<ep_id>``
- ``services/<svc_id>``, ``tasks/<task_id>``
- ``locks/networks``          optimistic lock serialising subnet and VNI allocation
- ``logreqs/<node_id>/<id>``  lease-bound: a manager asks a node for its tasks' logs
- ``doctorreqs/<node_id>/<id>``  lease-bound: a manager asks a node to examine itself (doctor)
- ``storetls/<node_id>``      a manager's etcd TLS phase (manager/etcd_member.py): 3 = store CA
- ``swarmsecrets/<id>``       swarm secrets (``docker secret``), data sealed: never streamed
- ``configs/<id>``            swarm configs (``docker config``): never streamed
- ``secretnames/<name>``, ``confignames/<name>``  the id holding a name: names are unique
  because creating one is a create-if-absent of its name key
"""

from __future__ import annotations

ROOT = "/ferry/v1/"

CLUSTER = ROOT + "cluster"
SECRETS = ROOT + "secrets"
LEADER = ROOT + "leader"
NODES = ROOT + "nodes/"
SESSIONS = ROOT + "sessions/"
NETWORKS = ROOT + "networks/"
IPAM = ROOT + "ipam/"
ENDPOINTS = ROOT + "endpoints/"
SERVICES = ROOT + "services/"
TASKS = ROOT + "tasks/"
NETWORK_LOCK = ROOT + "locks/networks"
LOG_REQUESTS = ROOT + "logreqs/"
DOCTOR_REQUESTS = ROOT + "doctorreqs/"
STORE_TLS = ROOT + "storetls/"
# not "secrets/": that would share a prefix with SECRETS, the cluster's own
SWARM_SECRETS = ROOT + "swarmsecrets/"
CONFIGS = ROOT + "configs/"
SECRET_NAMES = ROOT + "secretnames/"
CONFIG_NAMES = ROOT + "confignames/"
# bumped by every service spec that names the secret or config <id>: its removal expects it
# unchanged since it found no service using the object (object_refs.py)
OBJECT_USES = ROOT + "objectuses/"

# What the dispatcher streams to agents: everything they reconcile from, no secrets.
STREAMED = (
    CLUSTER, LEADER, NODES, SESSIONS, NETWORKS, ENDPOINTS, SERVICES, TASKS, LOG_REQUESTS,
    DOCTOR_REQUESTS,
)  # fmt: skip


def node(node_id: str) -> str:
    return NODES + node_id


def session(node_id: str) -> str:
    return SESSIONS + node_id


def network(net_id: str) -> str:
    return NETWORKS + net_id


def ipam(net_id: str, ip: str) -> str:
    return f"{IPAM}{net_id}/{ip}"


def ipam_prefix(net_id: str) -> str:
    return f"{IPAM}{net_id}/"


def endpoint(net_id: str, ep_id: str) -> str:
    return f"{ENDPOINTS}{net_id}/{ep_id}"


def endpoints_of(net_id: str) -> str:
    return f"{ENDPOINTS}{net_id}/"


def log_request(node_id: str, req_id: str) -> str:
    return f"{LOG_REQUESTS}{node_id}/{req_id}"


def doctor_request(node_id: str, req_id: str) -> str:
    return f"{DOCTOR_REQUESTS}{node_id}/{req_id}"


def store_tls(node_id: str) -> str:
    return STORE_TLS + node_id


def service(svc_id: str) -> str:
    return SERVICES + svc_id


def task(task_id: str) -> str:
    return TASKS + task_id


def swarm_secret(secret_id: str) -> str:
    return SWARM_SECRETS + secret_id


def config(config_id: str) -> str:
    return CONFIGS + config_id


def last_part(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def is_streamed(key: str) -> bool:
    return key.startswith(STREAMED)
