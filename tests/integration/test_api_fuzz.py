"""The local API under schemathesis: Docker's own API description, cut down to the operations
Ferry serves, positive and negative cases, through a loopback relay to a lab host's socket.

Bounded: FERRY_FUZZ_REQUESTS requests (2 000 by default, a few minutes at most on two cores;
``make fuzz`` runs a bigger budget). It passes when no request got a 5xx, ferryd logged no
traceback, and afterwards the node still answers, lists its networks, runs a new container and
a new service. The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import io
import os
import random
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.fuzzlib import Figures, Runner, ferry_operations, load_spec
from tests.integration.fuzztargets import FUZZ_IMAGE, Api, Targets, session
from tests.integration.lablib import LabRig, new_lab, wait_until
from tests.integration.unixrelay import UnixRelay

pytestmark = pytest.mark.integration

BUDGET = int(os.environ.get("FERRY_FUZZ_REQUESTS", "2000"))
# a fresh seed each run finds more over time; FERRY_FUZZ_SEED repeats a run that failed
SEED = int(os.environ.get("FERRY_FUZZ_SEED") or random.randrange(2**32))


@pytest.fixture(scope="module")
def one_host() -> Iterator[LabRig]:
    """One host, swarm initialised, so the swarm endpoints answer."""
    with new_lab(hosts=1) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.ferry("h1", "swarm", "init", "--advertise-addr", lab.topo.node("h1").addr)
        # the image cases aim at (a fuzz case may remove it): never the one the checks run
        tiny = Path(tmp) / "fz-img.tar"
        with tarfile.open(tiny, "w") as tar:
            info = tarfile.TarInfo("etc/fz")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"fz"))
        lab.ferry("h1", "image", "import", str(tiny), FUZZ_IMAGE)
        yield lab


def test_every_served_operation_is_in_dockers_description() -> None:
    _spec, missing = load_spec(ferry_operations())
    assert missing == []


# about 45 ms a request here, with room for a loaded machine; the suite's timeout is 300 s
@pytest.mark.timeout(max(300, BUDGET // 5))
def test_fuzzing_the_api_gets_no_server_error_and_leaves_the_node_whole(
    one_host: LabRig,
) -> None:
    import schemathesis

    spec, _missing = load_spec(ferry_operations())
    schema = schemathesis.openapi.from_dict(spec)
    node = one_host.topo.node("h1")
    log_path = node.run_dir / "ferryd.log"
    log_start = log_path.stat().st_size
    figures = Figures()
    with UnixRelay(node.socket) as base_url, session() as http:
        api = Api(base_url, http)
        targets = Targets(api)
        targets.ensure_all()
        Runner(api, targets, figures, SEED).run(schema, BUDGET)
        print(f"\nfuzz (FERRY_FUZZ_SEED={SEED}): {figures.summary()}")
        for label, count in sorted(figures.per_operation.items()):
            print(f"  {count:5d}  {figures.seconds[label]:6.1f} s  {label}")
        for line in figures.slow:
            print(f"  slow: {line}")
        _restore(api)
    log_tail = log_path.read_bytes()[log_start:].decode(errors="replace")
    assert figures.server_errors == [], "\n".join(figures.server_errors[:20])
    assert figures.transport_errors == [], "\n".join(figures.transport_errors[:20])
    assert "Traceback" not in log_tail, _tracebacks(log_tail)
    _node_is_whole(one_host)


def _restore(api: Api) -> None:
    """What a fuzz case may rightly change on the node (its availability) is set back."""
    node_id = api.ok("GET", "/info")["Swarm"]["NodeID"]
    node = api.ok("GET", f"/nodes/{node_id}")
    spec = {**node["Spec"], "Availability": "active"}
    api.ok("POST", f"/nodes/{node_id}/update", params={"version": node["Version"]["Index"]},
           json=spec)  # fmt: skip


def _tracebacks(log: str) -> str:
    lines = log.splitlines()
    hits = [i for i, line in enumerate(lines) if "Traceback" in line]
    return "\n---\n".join("\n".join(lines[max(0, i - 2) : i + 25]) for i in hits[:3])


def _node_is_whole(lab: LabRig) -> None:
    info = lab.api("h1", "/info")
    assert info["Swarm"]["LocalNodeState"] == "active"
    assert lab.ferry("h1", "network", "ls").returncode == 0
    assert "fz-net" in lab.ferry("h1", "network", "ls", "--format", "{{.Name}}").stdout
    lab.ferry("h1", "run", "-d", "--name", "after-fuzz", "--network", "fz-net", "tools",
              "sleep", "600")  # fmt: skip
    ps = lab.ferry("h1", "ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert any(line.startswith("after-fuzz Up") for line in ps.splitlines()), ps
    assert lab.ferry("h1", "exec", "after-fuzz", "true").returncode == 0
    lab.ferry("h1", "service", "create", "-d", "--name", "after-fuzz-svc", "tools",
              "sleep", "600")  # fmt: skip
    wait_until(
        lambda: any(
            t["Status"]["State"] == "running"
            for t in lab.api("h1", "/tasks", filters={"service": ["after-fuzz-svc"]})
        ),
        30,
        "a new service's task to run after the fuzz",
    )
