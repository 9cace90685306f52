"""``ferry swarm ca``: display the swarm's root CA, or rotate it (``--rotate``), following
docker/cli's ``swarm ca``: its flags, its refusals, its progress and its output."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ferry.cli.common import client, fail, handles_errors
from ferry.cli.swarm import swarm_app
from ferry.model.root_rotation import Issuer, NodeTLS, progress
from ferry.model.runopts import parse_duration

POLL_S = 0.5


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        fail(f"invalid argument {str(path)!r} for --{flag}: {exc.strerror or exc}", 2)
        raise AssertionError from exc  # fail raised


@swarm_app.command("ca")
@handles_errors
def swarm_ca(
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Rotate the swarm CA - if no certificate or key are provided, new ones will "
            "be generated",
        ),
    ] = False,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            metavar="pem-file",
            help="Path to the PEM-formatted root CA certificate to use for the new cluster",
        ),
    ] = None,
    ca_key: Annotated[
        Path | None,
        typer.Option(
            "--ca-key",
            metavar="pem-file",
            help="Path to the PEM-formatted root CA key to use for the new cluster",
        ),
    ] = None,
    cert_expiry: Annotated[
        str | None,
        typer.Option(
            "--cert-expiry", help="Validity period for node certificates (ns|us|ms|s|m|h)"
        ),
    ] = None,
    external_ca: Annotated[
        str | None,
        typer.Option("--external-ca", help="Not supported: Ferry's managers sign certificates"),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            "-d",
            help="Exit immediately instead of waiting for the root rotation to converge",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress progress output")] = False,
) -> None:
    """Display and rotate the root CA."""
    given = {"ca-cert": ca_cert, "ca-key": ca_key, "cert-expiry": cert_expiry,
             "external-ca": external_ca}  # fmt: skip
    if not rotate:
        for flag, value in given.items():
            if value is not None:  # docker/cli's words
                fail(f"`--{flag}` flag requires the `--rotate` flag to update the CA", 2)
        _print_root(client().get("/swarm"))
        return
    if external_ca is not None:
        fail("Ferry does not support --external-ca: its managers sign node certificates", 2)
    if (ca_cert is None) != (ca_key is None):
        # docker/cli's words, less the external CA Ferry does not have
        fail("the --ca-cert flag requires that a --ca-key flag be provided as well", 2)
    api = client()
    swarm: dict[str, Any] = api.get("/swarm")
    ca_config = dict(swarm["Spec"].get("CAConfig") or {})
    if ca_cert is not None and ca_key is not None:
        ca_config["SigningCACert"] = _read(ca_cert, "ca-cert")
        ca_config["SigningCAKey"] = _read(ca_key, "ca-key")
    else:
        ca_config["ForceRotate"] = int(ca_config.get("ForceRotate") or 0) + 1
    if cert_expiry is not None:
        expiry = parse_duration(cert_expiry, "--cert-expiry")
        ca_config["NodeCertExpiry"] = round(expiry * 1_000_000_000)
    spec = {**swarm["Spec"], "CAConfig": ca_config}
    api.post("/swarm/update", spec, version=swarm["Version"]["Index"])
    if detach:
        return
    try:
        _wait(quiet)
    except KeyboardInterrupt:
        print("Operation continuing in background.")
        print("Use `ferry swarm ca` to check progress: it prints the new root once done.")
        return
    _print_root(api.get("/swarm"))


def _print_root(swarm: dict[str, Any]) -> None:
    root = str((swarm.get("TLSInfo") or {}).get("TrustRoot", ""))
    if not root:
        fail("No CA information available", 1)
    print(root.strip())


def _wait(quiet: bool) -> None:
    """Until the rotation has converged, as docker/cli decides it: no rotation in progress,
    every node holding a certificate of the swarm's root and trusting it alone. Prints the
    counts each time they change (unless ``quiet``)."""
    api = client()
    shown: tuple[object, ...] = ()
    while True:
        swarm = api.get("/swarm")
        nodes = api.get("/nodes")
        tls = swarm.get("TLSInfo") or {}
        in_progress = bool(swarm.get("RootRotationInProgress"))
        reports = [_report(n) for n in nodes]
        issuer = Issuer(
            str(tls.get("CertIssuerSubject", "")), str(tls.get("CertIssuerPublicKey", ""))
        )
        counts = progress(str(tls.get("TrustRoot", "")), issuer, reports)
        trust = counts.trust if counts.certificates == counts.total and not in_progress else 0
        now = (_digest(str(tls.get("TrustRoot", ""))), counts.certificates, trust, counts.total)
        if not quiet and now != shown:
            print(f"desired root digest: {now[0]}")
            print(f"  rotated TLS certificates:  {now[1]}/{now[3]} nodes")
            print(f"  rotated CA certificates:   {now[2]}/{now[3]} nodes", flush=True)
            shown = now
        if not in_progress and counts.certificates == counts.total == trust:
            return
        time.sleep(POLL_S)


def _report(node: dict[str, Any]) -> NodeTLS:
    tls = (node.get("Description") or {}).get("TLSInfo") or {}
    return NodeTLS(
        str(tls.get("TrustRoot", "")),
        str(tls.get("CertIssuerSubject", "")),
        str(tls.get("CertIssuerPublicKey", "")),
    )


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
