"""ferry version, ferry info."""

from __future__ import annotations

import platform
from typing import Any

import typer

from ferry import API_VERSION, __version__
from ferry.cli.common import FormatOption, client, handles_errors, print_inspected
from ferry.errors import FerryError
from ferry.model.ports import DEFAULT_DATA_PATH_PORT, vxlan_ports


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def version() -> None:
        """Show the Ferry version information."""
        print("Client:")
        print(f" Version:           {__version__}")
        print(f" API version:       {API_VERSION}")
        print(f" Python version:    {platform.python_version()}")
        print()
        try:
            server: dict[str, Any] = client(10.0).get("/version")
        except FerryError as exc:
            print(f"Server: (unavailable: {exc})")
            raise typer.Exit(1) from None
        print("Server: Ferry")
        print(" Engine:")
        print(f"  Version:          {server['Version']}")
        print(
            f"  API version:      {server['ApiVersion']} "
            f"(minimum version {server['MinAPIVersion']})"
        )
        print(f"  OS/Arch:          {server['Os']}/{server['Arch']}")
        print(f"  Kernel:           {server['KernelVersion']}")

    @app.command()
    @handles_errors
    def info(template: FormatOption = "") -> None:
        """Display system-wide information."""
        data: dict[str, Any] = client(10.0).get("/info")
        if template:
            print_inspected([data], template)
            return
        print("Server:")
        print(f" Containers: {data['Containers']}")
        print(f"  Running: {data['ContainersRunning']}")
        print(f"  Stopped: {data['ContainersStopped']}")
        print(f" Images: {data['Images']}")
        print(f" Server Version: {data['ServerVersion']}")
        _print_swarm(data.get("Swarm", {}))
        print(f" Kernel Version: {data['KernelVersion']}")
        print(f" Operating System: {data['OperatingSystem']}")
        print(f" CPUs: {data['NCPU']}")
        print(f" Total Memory: {data['MemTotal'] / 2**30:.2f}GiB")
        print(f" Name: {data['Name']}")
        print(f" Ferry Root Dir: {data['DockerRootDir']}")
        print(" Gossip: none (Ferry spreads endpoint state over the managers' watch streams;")
        print(f"   port 7946 is not used, only {_ports_used(data)})")


def _ports_used(data: dict[str, Any]) -> str:
    """Ferry's ports on the underlay, with the swarm's VXLAN pair where this node knows it
    (a manager), else the default's."""
    cluster = (data.get("Swarm") or {}).get("Cluster") or {}
    port = cluster.get("DataPathPort") or DEFAULT_DATA_PATH_PORT
    plain, encrypted = vxlan_ports(port)
    return f"2377/tcp, 2380/tcp, {plain}/udp ({encrypted}/udp inside WireGuard) and 51820/udp"


def _print_swarm(swarm: dict[str, Any]) -> None:
    print(f" Swarm: {swarm.get('LocalNodeState', 'inactive')}")
    if swarm.get("NodeID"):
        print(f"  NodeID: {swarm['NodeID']}")
        print(f"  Is Manager: {str(swarm.get('ControlAvailable', False)).lower()}")
        cluster = swarm.get("Cluster") or {}
        if cluster.get("ID"):
            print(f"  ClusterID: {cluster['ID']}")
            print(f"  Managers: {swarm.get('Managers', 0)}")
            print(f"  Nodes: {swarm.get('Nodes', 0)}")
            print(f"  Default Address Pool: {' '.join(cluster.get('DefaultAddrPool', []))}")
            print(f"  SubnetSize: {cluster.get('SubnetSize', 24)}")
            print(f"  Data Path Port: {cluster.get('DataPathPort', DEFAULT_DATA_PATH_PORT)}")
            autolock = (cluster.get("Spec") or {}).get("EncryptionConfig", {})
            print(f"  Autolock Managers: {str(autolock.get('AutoLockManagers', False)).lower()}")
        print(f"  Node Address: {swarm.get('NodeAddr', '')}")
        managers = swarm.get("RemoteManagers") or []
        if managers:
            print("  Manager Addresses:")
            for manager in managers:
                print(f"   {manager['Addr']}")
        if swarm.get("Error"):
            print(f"  Error: {swarm['Error']}")
