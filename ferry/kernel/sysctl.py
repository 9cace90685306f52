"""Per-namespace sysctls. /proc/sys/net follows the netns of the thread that opens the file."""

from __future__ import annotations

from pathlib import Path

from ferry.kernel.nsfs import run_in_netns


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def write_sysctls(netns: Path | None, values: dict[str, str]) -> None:
    def write() -> None:
        for key, value in values.items():
            with open(_path(key), "w") as f:
                f.write(value)

    if netns is None:
        write()
    else:
        run_in_netns(netns, write)
