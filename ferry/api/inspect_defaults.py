"""The fields Docker's container inspect always carries, with the values Docker gives a
container that did not set them (``docker run IMAGE`` on a cgroup v1 host, API v1.47).

Clients read them without checking (``docker inspect -f '{{.HostConfig.BlkioWeight}}'`` fails
with "map has no entry for key" when one is missing); the values Ferry keeps are laid over
these (``render.inspect``). A field here that a create body sets to anything else is refused
at create (``run_options``), so these defaults are what each container really has.
"""

from __future__ import annotations

from typing import Any

from ferry.runtime.oci import MASKED_PATHS, READONLY_PATHS

# Ferry keeps each container's output on its node and serves it back through /logs with
# Docker's --timestamps/--since/--until/--tail (runtime/logs.py): what json-file gives. Clients
# decide by this name whether logs can be read back (docker-py's containers.run() returns the
# output only for json-file or journald), so it is the name Ferry reports and accepts.
LOG_DRIVER = "json-file"


def host_config_defaults() -> dict[str, Any]:
    """Docker's HostConfig of a container created without options (fresh lists each call)."""
    return {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": LOG_DRIVER, "Config": {}},
        "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no",
        "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None,
        "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 64 << 20,
        "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
        "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": list(MASKED_PATHS), "ReadonlyPaths": list(READONLY_PATHS), "Init": None,
        "Tmpfs": None, "Sysctls": None,
    }  # fmt: skip


def config_defaults() -> dict[str, Any]:
    """Docker's Config fields of a container created without them."""
    return {
        "Domainname": "", "AttachStdin": False, "Volumes": None, "OnBuild": None,
    }  # fmt: skip
