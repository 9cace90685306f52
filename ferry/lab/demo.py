"""``ferry lab demo``: the seed tutorials, step by step, on a fresh 3-host lab with a client.

Every step is a command a person could type (``ferry lab exec HOST -- docker …``), printed
before it runs, with its output and an OK or FAILED after it; the demo stops at the first
failure. The images come from the lab's registry (``ferry lab images`` builds them first, once).
The lab stays up at the end, with hints to explore it and to tear it down.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ferry.lab import images, records
from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology
from ferry.lab.tutorials import Step, all_steps

FERRY = str(Path(sys.executable).parent / "ferry")
STEP_TIMEOUT_S = 300  # a service's first task pulls its image; mysql initialises its database


def _run(topo: LabTopology, step: Step, number: int, total: int) -> bool:
    flag = "" if topo.name == "ferry" else f" --name {topo.name}"
    typed = f"ferry lab exec{flag} {step.host} -- {shlex.join(step.command)}"
    # every step shows its number: a step without a title continues the one above it
    title = f"\n[{number}/{total}] {step.title}\n" if step.title else f"[{number}/{total}] "
    print(f"{title}$ {typed}", flush=True)
    result = subprocess.run(
        [FERRY, "lab", "exec", "--name", topo.name, step.host, "--", *step.command],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    output = (result.stdout + result.stderr).rstrip()
    if output:
        print("  " + output.replace("\n", "\n  "))
    ok = result.returncode == 0 and step.check(result.stdout)
    print("  OK" if ok else f"  FAILED (exit {result.returncode})", flush=True)
    return ok


def _query(name: str) -> Callable[[str, str], str]:
    def query(host: str, command: str) -> str:
        return subprocess.run(
            [FERRY, "lab", "exec", "--name", name, host, "--", *shlex.split(command)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    return query


def run_demo(name: str, subnet: str) -> bool:
    print("Building the tutorials' images (once; cached) …", flush=True)
    images.build_all()
    if name in records.list_labs():
        print(f"Removing the previous lab {name!r} first …", flush=True)
        labmod.down(name)
    print(
        f"Creating lab {name!r}: 3 hosts (h1 h2 h3) and a client (c1) on the isolated underlay "
        f"{subnet} …",
        flush=True,
    )
    topo = labmod.up(name, 3, 1, subnet)

    def token() -> str:
        return _query(name)("h1", "docker swarm join-token -q worker").strip()

    plan = all_steps(topo, token, _query(name))
    for number, item in enumerate(plan, start=1):
        try:  # a step made when it runs asks the lab first (a join token, a task's container)
            step = item if isinstance(item, Step) else item()
        except (subprocess.CalledProcessError, IndexError) as exc:
            print(f"\n[{number}/{len(plan)}] FAILED to prepare the step: {exc}")
            _hints(name)
            return False
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
    registry = records.load(name).registry_address
    print(
        f"""
  {x} h1 -- docker service ls
  {x} h1 -- docker service ps web
  {x} h1 -- docker network create -d overlay --attachable appnet
  {x} h2 -- docker run -it --rm --network appnet alpine sh   # a shell on the overlay
  {x} h1 -- skopeo inspect --tls-verify=false docker://{registry}/library/nginx
  ip netns list | grep {name}-                      # every namespace the lab made
  {down}                                   # remove it all"""
    )
