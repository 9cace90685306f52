"""ferryd's command line."""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from pathlib import Path

from ferry import __version__
from ferry.daemon import logs
from ferry.daemon.config import DaemonConfig, read_config_file
from ferry.daemon.daemon import Daemon
from ferry.errors import FerryError


def parse(argv: list[str]) -> DaemonConfig:
    defaults = DaemonConfig()
    parser = argparse.ArgumentParser(prog="ferryd", description="Ferry's per-host daemon")
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--run-dir", type=Path, default=defaults.run_dir)
    parser.add_argument("--hostname", default="", help="node name (default: the host name)")
    parser.add_argument(
        "--netns-prefix",
        default=defaults.netns_prefix,
        help="prefix of the network namespaces this ferryd creates",
    )
    parser.add_argument("--etcd-binary", default=defaults.etcd_binary)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a daemon.json-style file: registry-mirrors, insecure-registries "
        "(default: <state-dir>/daemon.json when it exists, as Docker reads its daemon.json)",
    )
    parser.add_argument("--version", action="version", version=f"ferryd {__version__}")
    args = parser.parse_args(argv)
    config_file = args.config
    if config_file is None and (args.state_dir / "daemon.json").exists():
        config_file = args.state_dir / "daemon.json"
    from_file = read_config_file(config_file) if config_file is not None else {}
    return DaemonConfig(
        state_dir=args.state_dir,
        run_dir=args.run_dir,
        hostname=args.hostname,
        netns_prefix=args.netns_prefix,
        etcd_binary=args.etcd_binary,
        log_level=args.log_level,
        **from_file,
    )


def main(argv: list[str] | None = None) -> None:
    try:
        config = parse(sys.argv[1:] if argv is None else argv)
    except FerryError as exc:
        print(f"ferryd: {exc}", file=sys.stderr)
        sys.exit(2)
    logs.setup(config.log_level)
    # one socket per container for DNS, plus netlink handles: raise the soft limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    try:
        asyncio.run(Daemon(config).run())
    except FerryError as exc:
        print(f"ferryd: {exc}", file=sys.stderr)
        sys.exit(1)
