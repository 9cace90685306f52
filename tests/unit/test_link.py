"""The agent's session stream survives what a busy swarm sends: a snapshot line far over
aiohttp's own 128 KiB line limit (issue 8, input 3: agents that stopped hearing anything)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ferry.agent.link import ManagerLink, client_context
from ferry.errors import Unavailable
from ferry.manager import ca
from ferry.manager.cluster_api import server_context

LOOPBACK = "127.0.0.1"


def write_certs(directory: Path) -> tuple[Path, Path, Path]:
    authority = ca.create_ca("cluster0")
    key = ca.new_key_pem()
    cert = ca.sign_node(
        authority, ca.make_csr(key), ca.Identity("n1", "manager", "cluster0"), [LOOPBACK]
    )
    paths = (directory / "ca.pem", directory / "node.pem", directory / "node.key")
    for path, data in zip(paths, (authority.cert_pem, cert, key), strict=True):
        path.write_bytes(data)
    return paths


async def serve(lines: list[bytes], tmp_path: Path) -> AsyncIterator[ManagerLink]:
    ca_path, cert, key = write_certs(tmp_path)

    async def session(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for line in lines:
            await response.write(line)
        return response

    app = web.Application()
    app.router.add_get("/v1/session", session)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=server_context(ca_path, cert, key))
    await site.start()
    port = runner.addresses[0][1]
    link = ManagerLink(client_context(ca_path, cert, key), [f"{LOOPBACK}:{port}"])
    try:
        yield link
    finally:
        await link.close()
        await runner.cleanup()


@pytest.fixture
def big_snapshot() -> bytes:
    items = [{"k": f"/ferry/v1/tasks/{i}", "r": 5, "v": {"pad": "x" * 500}} for i in range(1000)]
    return json.dumps({"t": "snapshot", "rev": 5, "items": items}).encode() + b"\n"


async def test_a_snapshot_line_far_over_aiohttps_limit_arrives_whole(
    tmp_path: Path, big_snapshot: bytes
) -> None:
    assert len(big_snapshot) > 4 * 128 * 1024
    event = b'{"t":"event","rev":6,"items":[]}\n'
    async for link in serve([big_snapshot[:70000], big_snapshot[70000:] + event], tmp_path):
        got = [message async for message in link.stream("/v1/session")]
    assert [m["t"] for m in got] == ["snapshot", "event"]
    assert len(got[0]["items"]) == 1000


async def test_a_line_that_is_not_json_ends_the_stream_as_unavailable(tmp_path: Path) -> None:
    async for link in serve([b'{"t":"ping"}\n', b"not json\n"], tmp_path):
        stream = link.stream("/v1/session")
        assert (await anext(stream))["t"] == "ping"
        with pytest.raises(Unavailable, match="not JSON"):
            await anext(stream)


async def test_managers_of_a_root_this_node_does_not_trust_are_named_with_the_way_out(
    tmp_path: Path,
) -> None:
    """A node away during a root CA rotation (or removed) meets managers whose certificates
    it cannot verify: the error says why and what to do, not only OpenSSL's words."""
    server_dir, node_dir = tmp_path / "server", tmp_path / "node"
    server_dir.mkdir()
    node_dir.mkdir()
    ca_path, cert, key = write_certs(server_dir)

    async def info(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v1/info", info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=server_context(ca_path, cert, key))
    await site.start()
    port = runner.addresses[0][1]
    old_root, node_cert, node_key = write_certs(node_dir)  # another root: the node's old one
    link = ManagerLink(client_context(old_root, node_cert, node_key), [f"{LOOPBACK}:{port}"])
    try:
        with pytest.raises(Unavailable, match="not of a root CA this node trusts") as raised:
            await link.call("GET", "/v1/info")
        assert "docker swarm leave --force" in str(raised.value)
    finally:
        await link.close()
        await runner.cleanup()
