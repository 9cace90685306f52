"""A root CA rotation (``docker swarm ca --rotate``) as plain data: where it stands, and what
moves it on.

Swarm's rule (docker/cli's ``swarm ca`` docs): "The root CA rotation will not be completed
until all registered nodes have rotated their TLS certificates." Ferry moves every node in two
steps, each waiting for all nodes, down ones included (a node that never returns is removed
with ``node rm --force``, then no longer counts):

1. **trust**: every node trusts the old and the new root at once;
2. **signing**: certificates come from the new root (joins, renewals), and every node renews
   its own at once;

then the rotation **finishes**: the new root is the swarm's root, nodes trust it alone, the
old root's key is gone, and the join tokens are new (their digest names the root). A node
trusts both roots before any certificate of the new root exists, so no node ever meets a
certificate it cannot verify; nothing old is trusted once the rotation is over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class RootRotation:
    """A rotation under way: the new root (PEM), the new root certified by the old one (how a
    node joining meanwhile learns to trust it), and whether node certificates come from the
    new root yet (step 2)."""

    ca_cert_pem: str
    cross_signed_pem: str
    signing: bool = False


@dataclass(frozen=True)
class NodeTLS:
    """What a node reports of its TLS state, as Docker's node ``Description.TLSInfo``: the
    roots it trusts (PEM bundle), its certificate's issuer's subject and public key (DER,
    base64). Empty: not reported yet."""

    trust_root: str = ""
    issuer_subject: str = ""
    issuer_key: str = ""


@dataclass(frozen=True)
class Issuer:
    """Who signs a certificate, as Docker names it: subject and public key (DER, base64).
    Both count: a new certificate for the same key under another name is another issuer to
    TLS, and the same name with another key is too."""

    subject: str
    key: str

    def issued(self, report: NodeTLS) -> bool:
        return (report.issuer_subject, report.issuer_key) == (self.subject, self.key)


class Step(Enum):
    WAIT = "wait"  # some node has not done this step's part yet
    SIGN = "sign"  # every node trusts both roots: sign with the new one from now on
    FINISH = "finish"  # every node holds a certificate of the new root


def bundle(*roots_pem: str) -> str:
    """Roots as one PEM bundle, each once, in the order given (the trust a node is to hold)."""
    seen: list[str] = []
    for root in roots_pem:
        text = root.strip() + "\n"
        if root.strip() and text not in seen:
            seen.append(text)
    return "".join(seen)


def wanted_trust(root_pem: str, rotation: RootRotation | None) -> str:
    """The roots every node is to trust: the swarm's root, and the new one during a rotation."""
    return bundle(root_pem, rotation.ca_cert_pem) if rotation else bundle(root_pem)


def trusts(report: NodeTLS, root_pem: str) -> bool:
    return root_pem.strip() in report.trust_root


def next_step(rotation: RootRotation, new_issuer: Issuer, reports: Iterable[NodeTLS]) -> Step:
    """What moves the rotation on, given every registered node's report (``new_issuer``: the
    new root as reports name it)."""
    reports = list(reports)
    if not rotation.signing:
        done = all(trusts(r, rotation.ca_cert_pem) for r in reports)
        return Step.SIGN if done else Step.WAIT
    done = all(new_issuer.issued(r) for r in reports)
    return Step.FINISH if done else Step.WAIT


@dataclass(frozen=True)
class Progress:
    """Nodes counted as ``docker swarm ca --rotate`` shows them: holding a certificate of the
    desired issuer, trusting exactly the desired root."""

    certificates: int
    trust: int
    total: int


def progress(desired_root: str, desired_issuer: Issuer, reports: Iterable[NodeTLS]) -> Progress:
    reports = list(reports)
    return Progress(
        certificates=sum(desired_issuer.issued(r) for r in reports),
        trust=sum(bundle(r.trust_root) == bundle(desired_root) for r in reports),
        total=len(reports),
    )
