"""Docker's default seccomp profile, turned into the OCI ``linux.seccomp`` of one container
(pure; moby's profiles/seccomp ``setupSeccomp`` is the rule followed).

Docker's profile (``data/seccomp-default.json``, the file Docker ships as its default) is a
template: a rule applies only when its ``includes`` hold (every capability listed is in the
container's set, the architecture is listed, the kernel is at least ``minKernel``) and none of
its ``excludes`` do. So ``--cap-add SYS_ADMIN`` also opens ``mount`` and ``unshare``, as in
Docker, and a container without it cannot call them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# Go's runtime.GOARCH names (what Docker's profile spells) to the libseccomp native arch.
NATIVE_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}


@cache
def docker_default_profile() -> dict[str, Any]:
    """Docker's default profile, as shipped with Ferry."""
    text = resources.files("ferry.runtime").joinpath("data/seccomp-default.json").read_text()
    profile: dict[str, Any] = json.loads(text)
    return profile


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _applies(
    rule: dict[str, Any], caps: frozenset[str], arch: str, kernel: tuple[int, ...]
) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(cap not in caps for cap in includes.get("caps") or ()):
        return False
    if includes.get("minKernel") and kernel < _version(includes["minKernel"]):
        return False
    if arch in (excludes.get("arches") or ()):
        return False
    return not any(cap in caps for cap in excludes.get("caps") or ())


def _oci_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
    if rule.get("args"):
        out["args"] = [
            {
                "index": arg["index"],
                "value": arg["value"],
                "valueTwo": arg.get("valueTwo", 0),
                "op": arg["op"],
            }
            for arg in rule["args"]
        ]
    if "errnoRet" in rule:
        out["errnoRet"] = rule["errnoRet"]
    return out


def plan_seccomp(
    profile: dict[str, Any], caps: tuple[str, ...], arch: str, kernel: tuple[int, ...]
) -> dict[str, Any]:
    """The OCI seccomp section for a container with capability set ``caps`` on ``arch``
    (Go's names: amd64) under kernel ``kernel`` (e.g. (6, 18))."""
    native = NATIVE_ARCH.get(arch, "")
    architectures: list[str] = []
    for entry in profile.get("archMap") or ():
        if entry["architecture"] == native:
            architectures = [native, *entry.get("subArchitectures", ())]
    held = frozenset(caps)
    out: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": [
            _oci_rule(rule) for rule in profile["syscalls"] if _applies(rule, held, arch, kernel)
        ],
    }
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return out
