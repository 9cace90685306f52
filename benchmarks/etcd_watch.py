"""A probe of one manager's etcd member, run inside that manager's lab namespace.

etcd serves clients on 127.0.0.1:2379 of each manager's own namespace, so the managers
benchmark runs this script there (``ferry lab exec HOST -- python etcd_watch.py ...``) rather
than reaching a lab address from the root namespace.

- ``watch CERTDIR``: ask the member for its Status every POLL_S and print one JSON line per
  change of what it says: ``{"t": <CLOCK_MONOTONIC s>, "member": hex, "leader": hex,
  "term": raft term}`` (leader "0": the member knows no leader), or ``{"t": ..., "error": str}``
  while it does not answer. CLOCK_MONOTONIC is one clock for every process of the machine, so
  the benchmark compares these times with its own. Runs until killed.
- ``move-leader CERTDIR MEMBER_HEX``: hand etcd's leadership to that member (etcd's
  MoveLeader, which only the current leader accepts: run it on the leader's host).

CERTDIR is the manager's certificate directory (``state/certs``): the store CA, certificate
and key, the credentials ferryd's own client uses.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aetcd import rpc

from ferry.errors import FerryError
from ferry.manager.ca import CertPaths
from ferry.manager.store.etcd import EtcdStore

POLL_S = 0.02
CALL_TIMEOUT_S = 0.5
ENDPOINT = "127.0.0.1:2379"


def _store(cert_dir: str) -> EtcdStore:
    certs = CertPaths(Path(cert_dir))
    return EtcdStore(
        ENDPOINT,
        certs.store_ca.read_bytes(),
        certs.store_cert.read_bytes(),
        certs.store_key.read_bytes(),
    )


async def _status(store: EtcdStore) -> dict[str, object]:
    try:
        resp = await store.maintenance.Status(rpc.StatusRequest(), timeout=CALL_TIMEOUT_S)
    except Exception as exc:  # a dead member: any failure is the state to report
        return {"error": type(exc).__name__}
    return {
        "member": f"{resp.header.member_id:x}",
        "leader": f"{resp.leader:x}",
        "term": int(resp.raftTerm),
    }


async def watch(cert_dir: str) -> None:
    store = _store(cert_dir)
    last: dict[str, object] | None = None
    while True:
        state = await _status(store)
        if state != last:
            print(json.dumps({"t": time.monotonic(), **state}), flush=True)
            last = state
        await asyncio.sleep(POLL_S)


async def move_leader(cert_dir: str, target_hex: str) -> None:
    store = _store(cert_dir)
    try:
        await store.maintenance.MoveLeader(
            rpc.MoveLeaderRequest(targetID=int(target_hex, 16)), timeout=10
        )
    except Exception as exc:
        raise FerryError(f"move-leader to {target_hex} failed: {exc}") from exc
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "watch":
        asyncio.run(watch(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "move-leader":
        asyncio.run(move_leader(argv[1], argv[2]))
        return 0
    print("usage: etcd_watch.py watch CERTDIR | move-leader CERTDIR MEMBER_HEX", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
