"""The etcd member each manager runs: started, watched and restarted by ferryd.

Design notes: etcd (Debian's etcd-server, 3.4) serves clients on 127.0.0.1:2379 only — its only
client is the local ferryd — and peers on ``<advertise>:2380``; both sides demand certificates of
the store CA, which signs managers' store certificates only: a worker's node certificate (of the
cluster CA) opens neither port. The member's name is the node id.

A swarm formed by an older ferryd ran etcd on node certificates of the cluster CA (TLS phase 0);
``daemon/upgrade.py`` moves its members through the phases below, one etcd restart each, so that
at every step each member accepts what every other one presents:

| phase | client port (cert, trust) | peer cert | peer trust |
|---|---|---|---|
| 0 (older swarms) | node, cluster CA | node | cluster CA |
| 1 | store, store CA | node | cluster CA + store CA |
| 2 | store, store CA | store | cluster CA + store CA |
| 3 (new swarms) | store, store CA | store | store CA | The process runs in its own session so a
restart of ferryd does not take the store down: the new ferryd adopts the running member through
its pid file instead of starting a second one. If etcd exits while it should run, it is restarted
with a growing back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ferry.daemon.files import write_json
from ferry.daemon.logs import kv
from ferry.errors import Unavailable
from ferry.kernel import proc
from ferry.manager.ca import CertPaths
from ferry.model.ports import ETCD_CLIENT_PORT, ETCD_PEER_PORT

log = logging.getLogger("ferry.etcd")

CLIENT_PORT = ETCD_CLIENT_PORT
PEER_PORT = ETCD_PEER_PORT


FINAL_TLS_PHASE = 3
REMOVED_WORDS = b"the member has been permanently removed from the cluster"

# RAFT_TIMING. etcd's defaults, kept on purpose: a follower calls an election after
# ELECTION_TIMEOUT_MS without the leader's heartbeat (sent every HEARTBEAT_MS), so a dead
# leader is replaced in 1.1-1.5 s here, and Ferry's leader follows within a poll (leader.py):
# the API is back well inside the 3 s it is allowed (benchmarks/managers.py). Shorter would buy
# little and cost much: etcd's tuning guide asks for an election timeout of at least ten
# heartbeats, and a loaded 2-core host stalls a member's loop (fsync, CPU) for hundreds of
# milliseconds, which a shorter timeout turns into needless elections, each a change of leader.
# Pre-vote: a member back from a partition (its term raised by elections it could not win)
# asks first whether it could win before calling an election, instead of deposing the
# majority's healthy leader with its higher term (etcd 3.4's default is off).
HEARTBEAT_MS = 100
ELECTION_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EtcdConfig:
    name: str
    data_dir: Path
    advertise_addr: str
    certs: CertPaths
    initial_cluster: str
    initial_state: str  # "new" or "existing"
    tls_phase: int = FINAL_TLS_PHASE
    binary: str = "etcd"
    # ``swarm init --force-new-cluster``: this run makes the member the only one (etcd's own
    # flag); never recorded in member.json, so no later run forces again
    force_new_cluster: bool = False

    @property
    def peer_url(self) -> str:
        return f"https://{self.advertise_addr}:{PEER_PORT}"

    @property
    def client_endpoint(self) -> str:
        return f"127.0.0.1:{CLIENT_PORT}"

    @property
    def client_tls(self) -> TlsFiles:
        """The client port's certificate and trust, which ferryd's own client uses too."""
        c = self.certs
        if self.tls_phase == 0:
            return TlsFiles(c.ca, c.cert, c.key)
        return TlsFiles(c.store_ca, c.store_cert, c.store_key)

    @property
    def peer_tls(self) -> TlsFiles:
        c = self.certs
        ca = {0: c.ca, 1: c.store_trust, 2: c.store_trust}.get(self.tls_phase, c.store_ca)
        if self.tls_phase <= 1:
            return TlsFiles(ca, c.cert, c.key)
        return TlsFiles(ca, c.store_cert, c.store_key)

    def argv(self) -> list[str]:
        client, peer = self.client_tls, self.peer_tls
        return [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir / "data"),
            "--listen-client-urls", f"https://127.0.0.1:{CLIENT_PORT}",
            "--advertise-client-urls", f"https://127.0.0.1:{CLIENT_PORT}",
            "--listen-peer-urls", f"https://{self.advertise_addr}:{PEER_PORT}",
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            "--initial-cluster-state", self.initial_state,
            "--initial-cluster-token", "ferry",
            "--cert-file", str(client.cert), "--key-file", str(client.key),
            "--client-cert-auth", "--trusted-ca-file", str(client.ca),
            "--peer-cert-file", str(peer.cert), "--peer-key-file", str(peer.key),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(peer.ca),
            # Raft's timing, written out rather than left to defaults (see RAFT_TIMING)
            "--heartbeat-interval", str(HEARTBEAT_MS),
            "--election-timeout", str(ELECTION_TIMEOUT_MS),
            "--pre-vote=true",
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", "10000",
            "--logger", "zap",
            "--log-level", "warn",
            *(["--force-new-cluster"] if self.force_new_cluster else []),
        ]  # fmt: skip


class EtcdMember:
    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._ref: proc.ProcRef | None = None
        self._watcher: proc.ExitWatcher | None = None
        self._stopping = False
        self._restart_task: asyncio.Task[None] | None = None
        self._backoff_s = 0.2
        self.removed = False  # etcd stopped by itself, its cluster having removed this member

    @property
    def _pid_path(self) -> Path:
        return self.config.data_dir / "etcd.pid"

    @property
    def pid(self) -> int | None:
        return self._ref.pid if self._ref and self._ref.alive() else None

    def save_config(self) -> None:
        write_json(
            self.config.data_dir / "member.json",
            {
                "name": self.config.name,
                "advertise_addr": self.config.advertise_addr,
                "initial_cluster": self.config.initial_cluster,
                "initial_state": self.config.initial_state,
                "tls_phase": self.config.tls_phase,
            },
        )

    async def start(self) -> None:
        self._stopping = False
        self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        adopted = self._adopt()
        if adopted is None:
            self._spawn()
        else:
            self._ref = adopted
            self._watch()
            log.info("adopted running etcd", extra=kv(pid=adopted.pid))

    def _adopt(self) -> proc.ProcRef | None:
        try:
            record = json.loads(self._pid_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        ref = proc.ProcRef(record["pid"], record["start_time"])
        return ref if ref.alive() else None

    def _spawn(self) -> None:
        self.removed = False
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCD_UNSUPPORTED_ARCH": ""}
        self._ref = proc.spawn(
            self.config.argv(), env=env, log_path=self.config.data_dir / "etcd.log"
        )
        write_json(self._pid_path, {"pid": self._ref.pid, "start_time": self._ref.start_time})
        log.info("started etcd", extra=kv(pid=self._ref.pid, peer=self.config.peer_url))
        self._watch()

    def _watch(self) -> None:
        assert self._ref is not None
        self._watcher = proc.ExitWatcher(self._ref, self._exited)

    def _exited(self, code: int | None) -> None:
        if self._stopping:
            return
        if code == 0 and self._says_removed():
            # it will say so at every start: this node is no member of the store any more
            self.removed = True
            log.warning("etcd stopped: this member was removed from the store")
            return
        log.warning("etcd exited; restarting", extra=kv(code=code, backoff_s=self._backoff_s))
        self._restart_task = asyncio.get_running_loop().create_task(self._restart())

    def _says_removed(self) -> bool:
        """etcd's own last words when its cluster removed it (demoted, or recovered without
        it by ``--force-new-cluster``): "the member has been permanently removed"."""
        try:
            with (self.config.data_dir / "etcd.log").open("rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - 4096))
                tail = log_file.read()
        except OSError:
            return False
        return REMOVED_WORDS in tail

    async def _restart(self) -> None:
        await asyncio.sleep(self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, 5.0)
        if not self._stopping:
            self._spawn()

    async def restart(self, config: EtcdConfig) -> None:
        """Run the member again with ``config`` (same name, data and peer URL; other TLS)."""
        await self.stop()
        self.config = config
        self.save_config()
        await self.start()

    def healthy(self) -> None:
        self._backoff_s = 0.2

    async def stop(self) -> None:
        self._stopping = True
        if self._restart_task is not None:
            self._restart_task.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        ref = self._ref
        if ref is None:
            return
        proc.signal_process(ref, signal.SIGTERM)
        # A member without quorum may ignore SIGTERM: give it a moment, then kill it.
        if not await proc.wait_gone(ref, 5.0):
            proc.signal_process(ref, signal.SIGKILL)
            await proc.wait_gone(ref, 5.0)
        with contextlib.suppress(FileNotFoundError):
            self._pid_path.unlink()
        self._ref = None


def load_config(data_dir: Path, certs: CertPaths, binary: str) -> EtcdConfig | None:
    """The member this manager runs, as recorded; a record without ``tls_phase`` was written
    by an older ferryd (phase 0)."""
    try:
        record = json.loads((data_dir / "member.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise Unavailable(f"corrupt etcd member record in {data_dir}: {exc}") from exc
    return EtcdConfig(
        name=record["name"],
        data_dir=data_dir,
        advertise_addr=record["advertise_addr"],
        certs=certs,
        initial_cluster=record["initial_cluster"],
        initial_state=record["initial_state"],
        tls_phase=int(record.get("tls_phase", 0)),
        binary=binary,
    )
