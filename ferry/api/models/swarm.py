"""/swarm and /nodes: Docker's swarm and node shapes."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from ferry.api.models.base import DockerModel, ObjectVersion
from ferry.errors import InvalidArgument
from ferry.model.ports import check_data_path_port

# The swarm settings Ferry runs with, as Docker's SwarmSpec names them (`docker info`, `swarm
# inspect`): a client that sends them back unchanged asks for nothing new.
RUNNING_SPEC: dict[str, dict[str, Any]] = {
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "Raft": {"SnapshotInterval": 10000, "HeartbeatTick": 1, "ElectionTick": 10},
    "Dispatcher": {"HeartbeatPeriod": 2_000_000_000},
    "CAConfig": {"NodeCertExpiry": 365 * 24 * 3600 * 1_000_000_000},
    "TaskDefaults": {},
}


class EncryptionConfig(DockerModel):
    AutoLockManagers: bool = False


_EncryptionConfig = EncryptionConfig


HONOURED = ("Orchestration", "TaskHistoryRetentionLimit")  # swarm update changes it
CERT_EXPIRY = ("CAConfig", "NodeCertExpiry")  # and this one (nanoseconds)
# a root CA rotation (docker swarm ca --rotate [--ca-cert --ca-key]): rotation.py reads them
ROOT_ROTATION = frozenset({"ForceRotate", "SigningCACert", "SigningCAKey"})
NS = 1_000_000_000
# what the docker CLI flag behind a setting is, where it helps to say it
_WHAT = {("CAConfig", "ExternalCAs"): " (--external-ca: Ferry's managers sign node certificates)"}


def _scalar(value: object) -> bool:
    return isinstance(value, int | float | bool) or (isinstance(value, str) and len(value) < 64)


def _go(value: object) -> str:
    """A JSON value as a Go client wrote it (JSON's spelling, not Python's); a long one (a PEM
    where a number belongs, say) is named by its kind and size, not echoed."""
    text = json.dumps(value)
    if len(text) <= 40 and "\\n" not in text:
        return text
    kinds: dict[type, str] = {str: "text", list: "list", dict: "object"}
    kind = kinds.get(type(value), "value")
    return f"(a {kind} of {len(text)} characters)"


class SwarmSpec(DockerModel):
    """Docker's SwarmSpec: ``EncryptionConfig.AutoLockManagers`` and
    ``Orchestration.TaskHistoryRetentionLimit`` are what Ferry changes; the other sections are
    Ferry's fixed settings (``RUNNING_SPEC``), see ``unsupported``."""

    Name: str = "default"
    Labels: dict[str, str] | None = None
    Orchestration: dict[str, Any] | None = None
    Raft: dict[str, Any] | None = None
    Dispatcher: dict[str, Any] | None = None
    CAConfig: dict[str, Any] | None = None
    TaskDefaults: dict[str, Any] | None = None
    EncryptionConfig: _EncryptionConfig = Field(default_factory=EncryptionConfig)

    def unsupported(self) -> list[str]:
        """Settings asked for that Ferry does not run: neither left empty nor what it runs."""
        asked: list[str] = []
        if self.Name not in ("", "default"):
            asked.append(f"Name={self.Name}")
        asked += [f"Labels.{k}" for k in sorted(self.Labels or {})]
        for section, running in RUNNING_SPEC.items():
            for key, value in sorted((getattr(self, section) or {}).items()):
                if (section, key) in (HONOURED, CERT_EXPIRY):
                    continue
                if section == "CAConfig" and key in ROOT_ROTATION:
                    continue
                if value not in (None, 0, "", [], {}, False) and value != running.get(key):
                    shown = f"={value}" if _scalar(value) else ""  # not a PEM or a list's repr
                    asked.append(f"{section}.{key}{shown}{_WHAT.get((section, key), '')}")
        return asked

    def task_history(self) -> int | None:
        """The TaskHistoryRetentionLimit asked for (None: not given); InvalidArgument unless
        an integer (Go's int64)."""
        value = (self.Orchestration or {}).get(HONOURED[1])
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid Orchestration.TaskHistoryRetentionLimit: {_go(value)}")
        return value

    def cert_expiry_s(self) -> int | None:
        """CAConfig.NodeCertExpiry asked for, in whole seconds (None: not given or 0, which
        Docker reads as unchanged); InvalidArgument unless a number of nanoseconds."""
        value = (self.CAConfig or {}).get(CERT_EXPIRY[1])
        if value in (None, 0):
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid CAConfig.NodeCertExpiry: {_go(value)}")
        if value < 0:  # swarmkit's words for anything under its minimum
            raise InvalidArgument("minimum certificate expiry time is: 1h0m0s")
        return value // NS

    def root_rotation(self, current_force_rotate: int) -> tuple[int, bytes, bytes] | None:
        """The root CA rotation asked for, as (ForceRotate, SigningCACert, SigningCAKey; PEM,
        empty for a root Ferry makes), or None. A rotation is asked by a ForceRotate above the
        current one (what ``docker swarm ca --rotate`` sends), or by a signing CA certificate
        and key; a spec that leaves ForceRotate out (0) asks none, so that a client building
        its own spec for another change does not rotate the root by accident.
        InvalidArgument for a certificate without its key (Ferry has no external CA)."""
        config = self.CAConfig or {}
        force = config.get("ForceRotate") or 0
        if not isinstance(force, int) or isinstance(force, bool) or force < 0:
            raise InvalidArgument(
                f"invalid CAConfig.ForceRotate: {_go(force)} (a counter: a whole number, 0 or more)"
            )
        cert, key = config.get("SigningCACert") or "", config.get("SigningCAKey") or ""
        if not isinstance(cert, str) or not isinstance(key, str):
            raise InvalidArgument("CAConfig.SigningCACert and SigningCAKey are PEM text")
        if key and not cert:
            raise InvalidArgument("a signing CA key needs its certificate (--ca-cert)")
        if cert and not key:
            raise InvalidArgument(
                "a signing CA certificate needs its key (--ca-key): Ferry has no external CA"
            )
        if not cert and force <= current_force_rotate:
            return None
        return force, cert.encode(), key.encode()

    @classmethod
    def running(
        cls, autolock: bool, task_history: int, cert_expiry_s: int, force_rotate: int = 0
    ) -> SwarmSpec:
        orchestration = {**RUNNING_SPEC["Orchestration"], HONOURED[1]: task_history}
        return cls.model_validate(
            {
                **RUNNING_SPEC,
                "Orchestration": orchestration,
                # ForceRotate is omitted while 0, as Docker's JSON does (omitempty)
                "CAConfig": {CERT_EXPIRY[1]: cert_expiry_s * NS}
                | ({"ForceRotate": force_rotate} if force_rotate else {}),
                "Labels": {},
                "EncryptionConfig": {"AutoLockManagers": autolock},
            }
        )


class SwarmInitRequest(DockerModel):
    ListenAddr: str = "0.0.0.0:2377"
    AdvertiseAddr: str = ""
    DefaultAddrPool: list[str] = Field(default_factory=list)
    SubnetSize: int = 0
    Availability: str = "active"
    ForceNewCluster: bool = False
    DataPathAddr: str = ""
    DataPathPort: int = 0
    Spec: SwarmSpec = Field(default_factory=SwarmSpec)

    def refused(self) -> list[str]:
        """What Ferry does not do of an init, by its docker CLI flag: a separate data-path
        address."""
        return data_path_refused(self.DataPathAddr)

    def data_path_port(self) -> int:
        """The DataPathPort asked for (0: not given, the host's default applies); raises
        InvalidArgument for a port Docker or Ferry refuses (``model.ports.check_data_path_port``).
        """
        return check_data_path_port(self.DataPathPort) if self.DataPathPort else 0


class SwarmJoinRequest(DockerModel):
    ListenAddr: str = "0.0.0.0:2377"
    AdvertiseAddr: str = ""
    RemoteAddrs: list[str]
    JoinToken: str
    Availability: str = "active"
    DataPathAddr: str = ""


def data_path_refused(addr: str) -> list[str]:
    if not addr:
        return []
    return [f"--data-path-addr {addr} (DataPathAddr: data traffic uses the advertise address)"]


def refuse(names: list[str]) -> None:
    """InvalidArgument naming each, or nothing."""
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(names)}")


class JoinTokens(DockerModel):
    Worker: str = ""
    Manager: str = ""


_JoinTokens = JoinTokens


class UnlockKey(DockerModel):
    UnlockKey: str = ""


class TLSInfo(DockerModel):
    """The root CA nodes trust (``docker swarm ca`` prints TrustRoot): its certificate, and its
    subject and public key in base64 DER, as Docker gives them."""

    TrustRoot: str = ""
    CertIssuerSubject: str = ""
    CertIssuerPublicKey: str = ""


_TLSInfo = TLSInfo


class SwarmInspect(DockerModel):
    ID: str
    Version: ObjectVersion
    CreatedAt: str
    UpdatedAt: str
    Spec: SwarmSpec = Field(default_factory=SwarmSpec)
    DefaultAddrPool: list[str]
    SubnetSize: int
    DataPathPort: int
    JoinTokens: _JoinTokens
    RootRotationInProgress: bool = False
    TLSInfo: _TLSInfo = Field(default_factory=_TLSInfo)


class NodeSpec(DockerModel):
    Name: str = ""
    Labels: dict[str, str] = Field(default_factory=dict)
    Role: str = ""  # required in an update, as Docker's is: "" is refused (invalid Role)
    Availability: str = ""  # required too: "" is refused (invalid Availability)


class EngineDescription(DockerModel):
    EngineVersion: str = ""


class NodePlatform(DockerModel):
    Architecture: str = "x86_64"
    OS: str = "linux"


class NodeResources(DockerModel):
    NanoCPUs: int = 0
    MemoryBytes: int = 0


class NodeDescription(DockerModel):
    Hostname: str
    Platform: NodePlatform = Field(default_factory=NodePlatform)
    Resources: NodeResources = Field(default_factory=NodeResources)
    Engine: EngineDescription = Field(default_factory=EngineDescription)
    TLSInfo: _TLSInfo = Field(default_factory=_TLSInfo)


class NodeStatus(DockerModel):
    State: str
    Message: str = ""
    Addr: str = ""


class ManagerStatus(DockerModel):
    Leader: bool = False
    Reachability: str = "reachable"
    Addr: str = ""


_ManagerStatus = ManagerStatus


class NodeObject(DockerModel):
    ID: str
    Version: ObjectVersion
    CreatedAt: str
    UpdatedAt: str
    Spec: NodeSpec
    Description: NodeDescription
    Status: NodeStatus
    ManagerStatus: _ManagerStatus | None = None
