"""Root CA rotation (``docker swarm ca --rotate``): every node moves to the new root, nothing
of the old root opens anything afterwards, and the swarm's work goes on meanwhile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cryptography import x509

from ferry.lab import lab as labmod
from ferry.manager import ca
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    new_lab,
    probe,
    task_ids,
    wait_for_value,
    wait_until,
)

HEARTBEAT = json.dumps([["POST", "/v1/heartbeat", {}]])


def certs(lab: LabRig, host: str) -> Path:
    return lab.topo.node(host).state_dir / "certs"


def _issuer_is(cert_pem: bytes, root_pem: bytes) -> bool:
    try:
        ca.verify_signed_by(cert_pem, root_pem)
    except Exception:
        return False
    return True


def _calls_with(lab: LabRig, host: str, files: Path, manager: str) -> bool:
    """Whether ``host`` gets through to ``manager``'s cluster API with the files in
    ``files`` (ca.pem, node.pem, node.key)."""
    try:
        answers = probe(lab, host, "cluster_call.py", str(files), manager, HEARTBEAT)
    except Exception:
        return False
    return bool(answers) and answers[0]["status"] == 200


def test_rotation_moves_every_node_to_the_new_root_and_the_old_one_opens_nothing(
    tmp_path: Path,
) -> None:
    with new_lab(hosts=4) as lab:
        h1 = lab.topo.node("h1").addr
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1)
        manager_token = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        worker_token = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        lab.exec("h2", "ferry", "swarm", "join", "--token", manager_token, f"{h1}:2377")
        lab.exec("h3", "ferry", "swarm", "join", "--token", worker_token, f"{h1}:2377")
        lab.ferry("h1", "service", "create", "--name", "keep", "--replicas", "3", TOOLS,
                  "sleep", "600")  # fmt: skip
        wait_until(lambda: len(task_ids(lab, "keep")) == 3, 60, "the service's three tasks")
        before = task_ids(lab, "keep")
        old_root = lab.exec("h1", "docker", "swarm", "ca").stdout.strip().encode() + b"\n"
        stolen = tmp_path / "stolen"  # a worker's credentials, as a thief would hold them
        shutil.copytree(certs(lab, "h3"), stolen)

        out = lab.exec("h1", "docker", "swarm", "ca", "--rotate").stdout
        assert "desired root digest: sha256:" in out, out
        new_root = lab.exec("h1", "docker", "swarm", "ca").stdout.strip().encode() + b"\n"
        assert new_root != old_root
        assert new_root.strip() in out.encode(), out  # it printed the root it converged on

        # every node trusts the new root alone and holds a certificate of it
        for host in ("h1", "h2", "h3"):
            files = certs(lab, host)
            assert files.joinpath("ca.pem").read_bytes().strip() == new_root.strip(), host
            assert _issuer_is(files.joinpath("node.pem").read_bytes(), new_root), host
            identity = ca.identity_of(
                x509.load_pem_x509_certificate(files.joinpath("node.pem").read_bytes())
            )
            assert identity.role == ("worker" if host == "h3" else "manager")
        statuses = lab.exec(
            "h2", "docker", "node", "ls", "--format", "{{.Hostname}} {{.TLSStatus}}"
        ).stdout.split("\n")
        assert sorted(s for s in statuses if s) == ["h1 Ready", "h2 Ready", "h3 Ready"]
        inspect = lab.api("h1", "/swarm")
        assert inspect["RootRotationInProgress"] is False
        assert inspect["Spec"]["CAConfig"]["ForceRotate"] == 1

        # the old root opens nothing: a stolen worker certificate is refused even by a client
        # that trusts the new root; the worker's own new one gets through (the control)
        stolen.joinpath("ca.pem").write_bytes(new_root)
        assert not _calls_with(lab, "h3", stolen, h1)
        assert _calls_with(lab, "h3", certs(lab, "h3"), h1)

        # the old tokens named the old root: a join with one is refused, a new one joins
        refused = lab.exec(
            "h4", "ferry", "swarm", "join", "--token", worker_token, f"{h1}:2377", check=False
        )
        assert refused.returncode != 0
        assert "does not hold this token's CA" in refused.stderr, refused.stderr
        token = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        assert token != worker_token
        lab.exec("h4", "ferry", "swarm", "join", "--token", token, f"{h1}:2377")
        assert _issuer_is(certs(lab, "h4").joinpath("node.pem").read_bytes(), new_root)

        # the swarm's work went on: the same tasks, and new work is placed
        assert task_ids(lab, "keep") == before
        lab.ferry("h2", "service", "scale", "keep=4")
        wait_until(lambda: len(task_ids(lab, "keep")) == 4, 60, "a fourth task")


def test_a_given_root_a_down_node_and_refusals(tmp_path: Path) -> None:
    with new_lab(hosts=3) as lab:
        lab.form_swarm()
        given = ca.create_ca("anything", "operator-root")
        cert, key = tmp_path / "root.pem", tmp_path / "root.key"
        cert.write_bytes(given.cert_pem)
        key.write_bytes(given.key_pem)
        not_ca = tmp_path / "leaf.pem"
        leaf_key = ca.new_key_pem()
        identity = ca.Identity("n1", "worker", "c1")
        not_ca.write_bytes(ca.sign_node(given, ca.make_csr(leaf_key), identity, ["10.0.0.1"]))

        # the flags need --rotate, a certificate needs its key (docker/cli's rules)
        alone = lab.ferry("h1", "swarm", "ca", "--ca-cert", str(cert), check=False)
        assert alone.returncode == 2
        assert "`--ca-cert` flag requires the `--rotate` flag" in alone.stderr
        half = lab.ferry("h1", "swarm", "ca", "--rotate", "--ca-cert", str(cert), check=False)
        assert "requires that a --ca-key flag be provided" in half.stderr
        external = lab.ferry(
            "h1", "swarm", "ca", "--rotate", "--external-ca", "protocol=cfssl,url=x", check=False
        )
        assert "--external-ca" in external.stderr
        leaf_key_path = leaf_key_file(tmp_path, leaf_key)
        leaf = lab.ferry(
            "h1", "swarm", "ca", "--rotate", "--ca-cert", str(not_ca), "--ca-key",
            str(leaf_key_path), check=False,
        )  # fmt: skip
        assert "it is not a CA" in leaf.stderr, leaf.stderr
        mismatch = lab.ferry(
            "h1", "swarm", "ca", "--rotate", "--ca-cert", str(cert), "--ca-key",
            str(leaf_key_path), check=False,
        )  # fmt: skip
        assert "the CA key does not match the CA certificate" in mismatch.stderr

        # a node that is down holds the rotation back until it returns (Docker's rule)
        labmod.stop_ferryd(lab.topo, "h3")
        lab.ferry("h1", "swarm", "ca", "--rotate", "--ca-cert", str(cert), "--ca-key", str(key),
                  "--detach")  # fmt: skip
        assert lab.api("h1", "/swarm")["RootRotationInProgress"] is True
        again = lab.exec("h1", "docker", "swarm", "ca", "--rotate", "-d", check=False)
        assert "a root CA rotation is already in progress" in again.stderr, again.stderr
        labmod.start_ferryd(lab.topo, "h3")
        wait_for_value(
            lambda: lab.api("h1", "/swarm")["RootRotationInProgress"], False, 90,
            "the rotation finished once h3 is back",
        )  # fmt: skip
        root = lab.ferry("h1", "swarm", "ca").stdout.strip()
        assert root == given.cert_pem.decode().strip()
        for host in ("h1", "h2", "h3"):
            assert _issuer_is(certs(lab, host).joinpath("node.pem").read_bytes(), given.cert_pem)
        # the key stays secret: nothing shows it
        assert "PRIVATE KEY" not in json.dumps(lab.api("h1", "/swarm"))


def leaf_key_file(tmp_path: Path, key_pem: bytes) -> Path:
    path = tmp_path / "leaf.key"
    path.write_bytes(key_pem)
    return path
