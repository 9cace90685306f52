"""What ``ferry doctor`` reports: one finding per difference between what must exist and what
the kernel (or the node) has. Pure data and pure comparisons, unit-tested without a kernel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One difference. ``check`` names the family (interface, fdb, neighbour, vip, dns, port,
    egress, ingress, task, container, orphan, node), ``subject`` the object it is about (a
    container, a sandbox, a table), ``item`` the entry within it; ``expected`` and ``actual``
    say it in a few words ("" for missing)."""

    node: str
    check: str
    subject: str
    item: str
    expected: str
    actual: str

    def to_json(self) -> dict[str, str]:
        return {
            "Node": self.node,
            "Check": self.check,
            "Subject": self.subject,
            "Item": self.item,
            "Expected": self.expected,
            "Actual": self.actual,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> Finding:
        return cls(
            raw["Node"], raw["Check"], raw["Subject"], raw["Item"], raw["Expected"], raw["Actual"]
        )


MISSING = "(missing)"
UNEXPECTED = "(none wanted)"


def diff_maps(
    node: str, check: str, subject: str, want: Mapping[str, str], have: Mapping[str, str]
) -> list[Finding]:
    """Entries missing, unexpected or different between two key → value maps."""
    out = []
    for key in sorted(want.keys() | have.keys()):
        wanted, actual = want.get(key), have.get(key)
        if wanted == actual:
            continue
        out.append(
            Finding(
                node,
                check,
                subject,
                key,
                UNEXPECTED if wanted is None else wanted,
                MISSING if actual is None else actual,
            )
        )
    return out


def diff_sets(
    node: str, check: str, subject: str, want: Iterable[str], have: Iterable[str]
) -> list[Finding]:
    """Members missing from ``have`` or not in ``want``."""
    return diff_maps(
        node, check, subject, dict.fromkeys(want, "present"), dict.fromkeys(have, "present")
    )
