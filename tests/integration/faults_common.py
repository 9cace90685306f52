"""What the fault suite's modules share (issue 8; ``test_faults*.py``): the image the tasks
serve, the repeat count (``make faults`` sets FERRY_FAULT_REPEAT=5), and small readers of a
lab's state. The suite is three modules, each with its own lab, so that ``make test`` runs
them side by side."""

from __future__ import annotations

import os

from tests.integration.lablib import TOOLS, LabRig

SERVE = (TOOLS, "python3", "-m", "http.server", "80")
REPEAT = int(os.environ.get("FERRY_FAULT_REPEAT", "1"))


def node_id(lab: LabRig, host: str) -> str:
    return str(lab.nodes()[host]["ID"])


def interface_ip(lab: LabRig, host: str, container: str) -> str:
    out = lab.ferry(host, "exec", container, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    return out.split()[3].split("/")[0] if out.strip() else ""


def container_of(lab: LabRig, host: str, service: str) -> str:
    names = lab.ferry(host, "ps", "--format", "{{.Names}}").stdout.split()
    [name] = [n for n in names if n.startswith(f"{service}.")]
    return name


def remove_services(lab: LabRig, *names: str) -> None:
    lab.ferry("h1", "service", "rm", *names, check=False)
