"""Named network namespaces as Ferry's sandboxes use them.

A sandbox is born with its loopback up. It is removed links first: a namespace outlives its
file while any process or open handle still holds it, and its veths would live on with it.
"""

from __future__ import annotations

from pathlib import Path

from ferry.kernel import nsfs
from ferry.kernel.netlink import Netlink


def make_sandbox(name: str, *, reuse: bool = False) -> Path:
    """Create the namespace ``name`` with loopback up; ``reuse`` accepts an existing one."""
    path = nsfs.netns_path(name)
    if not (reuse and path.exists()):
        nsfs.create_netns(name)
    with Netlink(path) as nl:
        nl.set_link("lo", up=True)
    return path


def remove_sandbox(name: str) -> None:
    """Delete every link but loopback, then the namespace (idempotent). The namespace file
    goes even when emptying it failed; the failure is raised after."""
    path = nsfs.netns_path(name)
    try:
        if path.exists():
            with Netlink(path) as nl:
                for link in nl.links():
                    if link.name != "lo":
                        nl.delete_link(link.name)
    finally:
        nsfs.delete_netns(name)
