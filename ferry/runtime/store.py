"""Containers on disk: one directory each under ``<state>/containers/<id>/``.

``config.json`` (what was asked), ``state.json`` (what is), ``container.log`` (stdout and
stderr of the command, one record per line with its stream and time, written by the
monitor), ``bundle/`` (runc's ``config.json`` and the monitor's sockets and fifos), ``exit/``
(the exit status the monitor writes), ``upper``/``work``/``rootfs`` (the overlay of the
image) and the files bind-mounted over /etc. This directory is the only source of truth about
local containers: a restarted ferryd reads it and finds them again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ferry.daemon.files import read_json, write_json
from ferry.kernel import mounts
from ferry.kernel.inroot import remove_tree
from ferry.model.codec import decode_plain, to_plain
from ferry.model.container import Container, ContainerConfig, ContainerState


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, container_id: str) -> Path:
        return self.root / container_id

    def log_path(self, container_id: str) -> Path:
        return self.dir(container_id) / "container.log"

    def create(self, config: ContainerConfig) -> Container:
        directory = self.dir(config.container_id)
        directory.mkdir(parents=True, mode=0o700)
        for sub in ("upper", "work", "rootfs"):
            (directory / sub).mkdir()
        self.log_path(config.container_id).touch(mode=0o640)
        write_json(directory / "config.json", to_plain(config))
        state = ContainerState()
        self.save_state(config.container_id, state)
        return Container(config, state)

    def save_config(self, config: ContainerConfig) -> None:
        write_json(self.dir(config.container_id) / "config.json", to_plain(config))

    def save_state(self, container_id: str, state: ContainerState) -> None:
        write_json(self.dir(container_id) / "state.json", to_plain(state))

    def load_all(self) -> list[Container]:
        out: list[Container] = []
        if not self.root.is_dir():
            return out
        for directory in sorted(self.root.iterdir()):
            config = read_json(directory / "config.json")
            state = read_json(directory / "state.json")
            if config is None or state is None:
                continue  # half-created: removed by remove_incomplete
            out.append(
                Container(
                    decode_plain(ContainerConfig, config), decode_plain(ContainerState, state)
                )
            )
        return out

    def remove(self, container_id: str) -> None:
        # Never delete through a mounted root filesystem (the image's files are below it).
        mounts.unmount_under(self.dir(container_id))
        with contextlib.suppress(OSError):  # its writable layer is the container's: any depth
            remove_tree(self.dir(container_id))

    def remove_incomplete(self) -> None:
        if not self.root.is_dir():
            return
        for directory in self.root.iterdir():
            if not (directory / "state.json").exists():
                mounts.unmount_under(directory)
                with contextlib.suppress(OSError):
                    remove_tree(directory)
