"""The files of a task's secrets and configs, handed to the node that runs the task.

Design notes. swarmkit's dispatcher sends a node the secrets and configs of the tasks assigned
to it, and nothing else. Ferry's node asks for them when it starts such a task
(``GET /v1/tasks/<id>/files`` on the cluster API, over the node's mutual TLS): a manager
answers only the node the task is assigned to, only while the task is meant to run, and only
the objects the task's own spec names. The answer lives in the node's memory and on a tmpfs in
the container's directory (``runtime/task_files.py``), never in the store's stream or on disk.
"""

from __future__ import annotations

import base64

from ferry.errors import Forbidden, NotFound
from ferry.manager.secrets import ObjectOps
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.service import Task, TaskState
from ferry.model.swarm_objects import SwarmObject
from ferry.model.task_files import FileKind, FileRef


class TaskFiles:
    def __init__(self, view: ClusterView, secrets: ObjectOps, configs: ObjectOps) -> None:
        self._view = view
        self._secrets = secrets
        self._configs = configs

    def for_node(self, node_id: str, task_id: str) -> dict[str, str]:
        """``{"<kind>/<object id>": data (base64)}`` for each secret and config task
        ``task_id`` names. Forbidden unless ``node_id`` runs it and it is meant to run;
        NotFound for a task or object that is gone; SwarmLocked (a secret) while locked."""
        task = self._view.mirror.obj(keys.TASKS + task_id, Task)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        if task.node_id != node_id or task.desired != TaskState.RUNNING:
            raise Forbidden(f"task {task_id} is not one this node is meant to run")
        options = task.template.options
        return {f"{ref.kind.value}/{ref.obj_id}": self._data(ref)
                for ref in (*options.secrets, *options.configs)}  # fmt: skip

    def _data(self, ref: FileRef) -> str:
        ops = self._secrets if ref.kind == FileKind.SECRET else self._configs
        prefix = keys.SWARM_SECRETS if ref.kind == FileKind.SECRET else keys.CONFIGS
        obj = self._view.mirror.obj(prefix + ref.obj_id, SwarmObject)
        if obj is None:
            raise NotFound(f"{ref.kind.value} {ref.obj_name} not found: it was removed")
        if ref.kind == FileKind.SECRET:
            return base64.b64encode(ops.secret_data(obj)).decode()
        return obj.data  # a config is kept as base64
