"""``ferry lab demo``: the seed tutorial, step by step, on a fresh 3-host lab.

Every step is a command a person could type (``ferry lab exec HOST -- …``), printed before it
runs, with its output and an OK or FAILED after it; the demo stops at the first failure. The
lab stays up at the end, with hints to explore it and to tear it down.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology

FERRY = str(Path(sys.executable).parent / "ferry")
TOOLS = "tools"
TOOLS_TAR = Path(os.environ.get("FERRY_TOOLS_IMAGE", "/var/cache/ferry/tools.tar"))


@dataclass(frozen=True)
class Step:
    title: str
    host: str
    command: tuple[str, ...]
    check: Callable[[str], bool] = lambda _out: True


def steps(topo: LabTopology, token: Callable[[], str]) -> list[Step | Callable[[], Step]]:
    h1 = topo.node("h1").addr
    return [*image_steps(topo), *swarm_steps(h1, token), *macvlan_steps(topo)]


def image_steps(topo: LabTopology) -> list[Step | Callable[[], Step]]:
    """The image the demo runs: a Debian root filesystem (python3, curl, ping, ip, …) built
    once by scripts/tools-image.sh (make demo runs it), imported into each host."""
    return [
        Step(
            f"Import the {TOOLS} image on {host.name}" if i == 0 else "",
            host.name,
            ("ferry", "image", "import", str(TOOLS_TAR), TOOLS),
        )
        for i, host in enumerate(topo.hosts)
    ]


def swarm_steps(h1: str, token: Callable[[], str]) -> list[Step | Callable[[], Step]]:
    """Seed 000, first half: an overlay across hosts."""
    return [
        Step(
            "Initialise the swarm on h1", "h1", ("ferry", "swarm", "init", "--advertise-addr", h1)
        ),
        lambda: Step(
            "Join h2 as a worker",
            "h2",
            ("ferry", "swarm", "join", "--token", token(), f"{h1}:2377"),
        ),
        lambda: Step(
            "Join h3 as a worker",
            "h3",
            ("ferry", "swarm", "join", "--token", token(), f"{h1}:2377"),
        ),
        Step(
            "List the nodes: three Ready, h1 the leader",
            "h1",
            ("ferry", "node", "ls"),
            lambda out: out.count("Ready") == 3 and "Leader" in out,
        ),
        Step(
            "Create an attachable overlay network",
            "h1",
            ("ferry", "network", "create", "-d", "overlay", "--attachable", "my_overlay"),
        ),
        Step(
            "List the networks", "h1", ("ferry", "network", "ls"), lambda out: "my_overlay" in out
        ),
        Step(
            "Run app1 on h2",
            "h2",
            (
                "ferry",
                "run",
                "-d",
                "--network",
                "my_overlay",
                "--name",
                "app1",
                TOOLS,
                "sleep",
                "3600",
            ),
        ),
        Step(
            "Run app2 on h3",
            "h3",
            (
                "ferry",
                "run",
                "-d",
                "--network",
                "my_overlay",
                "--name",
                "app2",
                TOOLS,
                "sleep",
                "3600",
            ),
        ),
        Step(
            "Ping app2 (on h3) by name from app1 (on h2): across hosts, over VXLAN",
            "h2",
            ("ferry", "exec", "app1", "ping", "-c", "3", "app2"),
            lambda out: " 0% packet loss" in out,
        ),
        Step(
            "Inspect the network: both containers, the VNI and the peers",
            "h1",
            ("ferry", "network", "inspect", "my_overlay"),
            lambda out: '"app1"' in out and '"app2"' in out,
        ),
        Step(
            "Clean up the tutorial's containers (the swarm stays)",
            "h2",
            ("ferry", "rm", "-f", "app1"),
        ),
        Step("", "h3", ("ferry", "rm", "-f", "app2")),
        Step("Remove the tutorial's network", "h1", ("ferry", "network", "rm", "my_overlay")),
    ]


def macvlan_steps(topo: LabTopology) -> list[Step | Callable[[], Step]]:
    """Seed 000, second half: MACVLAN. The lab's underlay plays the LAN, c1 a machine on it."""
    lan = topo.subnet
    base = lan.rsplit(".", 1)[0]
    web = f"{base}.100"
    return [
        Step(
            "MACVLAN: a network on h1's LAN (parent eth0), no bridge and no NAT",
            "h1",
            (
                "ferry",
                "network",
                "create",
                "-d",
                "macvlan",
                f"--subnet={lan}",
                f"--gateway={base}.1",
                "-o",
                "parent=eth0",
                "my_macvlan",
            ),
        ),
        Step(
            f"Run web-macvlan with its own LAN address {web}",
            "h1",
            (
                "ferry",
                "run",
                "-d",
                "--name",
                "web-macvlan",
                "--network",
                "my_macvlan",
                "--ip",
                web,
                TOOLS,
                "python3",
                "-m",
                "http.server",
                "80",
            ),
        ),
        Step(
            "Reach it from c1, another machine on the LAN, at its own address",
            "c1",
            (
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "HTTP %{http_code}",
                "--retry",
                "5",
                "--retry-connrefused",
                "--retry-delay",
                "1",
                f"http://{web}/",
            ),
            lambda out: "HTTP 200" in out,
        ),
        Step("Clean up", "h1", ("ferry", "rm", "-f", "web-macvlan")),
        Step("", "h1", ("ferry", "network", "rm", "my_macvlan")),
    ]


def _run(topo: LabTopology, step: Step, number: int, total: int) -> bool:
    flag = "" if topo.name == "ferry" else f" --name {topo.name}"
    typed = f"ferry lab exec{flag} {step.host} -- {shlex.join(step.command)}"
    title = f"\n[{number}/{total}] {step.title}\n" if step.title else ""
    print(f"{title}$ {typed}", flush=True)
    result = subprocess.run(
        [FERRY, "lab", "exec", "--name", topo.name, step.host, "--", *step.command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (result.stdout + result.stderr).rstrip()
    if output:
        print("  " + output.replace("\n", "\n  "))
    ok = result.returncode == 0 and step.check(result.stdout)
    print("  OK" if ok else f"  FAILED (exit {result.returncode})", flush=True)
    return ok


def run_demo(name: str, subnet: str) -> bool:
    if name in labmod.list_labs():
        print(f"Removing the previous lab {name!r} first …", flush=True)
        labmod.down(name)
    print(
        f"Creating lab {name!r}: 3 hosts (h1 h2 h3) and a client (c1) on the isolated underlay "
        f"{subnet} …",
        flush=True,
    )
    topo = labmod.up(name, 3, 1, subnet)

    def token() -> str:
        return subprocess.run(
            [
                FERRY,
                "lab",
                "exec",
                "--name",
                name,
                "h1",
                "--",
                "ferry",
                "swarm",
                "join-token",
                "-q",
                "worker",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    plan = steps(topo, token)
    for number, item in enumerate(plan, start=1):
        step = item if isinstance(item, Step) else item()
        if not _run(topo, step, number, len(plan)):
            print(f"\nThe demo stopped at step {number}. The lab is still up for a look:")
            _hints(name)
            return False
    print("\nEvery step passed. The swarm is still up: do the tutorial by hand, or explore.")
    _hints(name)
    return True


def _hints(name: str) -> None:
    x = ".venv/bin/ferry lab exec" + ("" if name == "ferry" else f" --name {name}")
    down = ".venv/bin/ferry lab down" + ("" if name == "ferry" else f" --name {name}")
    print(
        f"""
  {x} h1 -- ferry network create -d overlay --attachable my_overlay
  {x} h2 -- ferry run -d --network my_overlay --name app1 tools sleep 3600
  {x} h3 -- ferry run -d --network my_overlay --name app2 tools sleep 3600
  {x} h2 -- ferry exec app1 ping -c 3 app2
  {x} h2 -- ferry exec -it app1 bash                # a shell inside app1
  {x} h1 -- docker node ls                          # the docker CLI works too
  ip netns list | grep {name}-                      # every namespace the lab made
  {down}                                   # remove it all"""
    )
