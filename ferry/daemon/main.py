"""ferryd's command line: flags and the config file (daemon.json) make one DaemonConfig.

A setting comes from a flag or from the file, never both: dockerd refuses a directive given
both ways ("the following directives are specified both as a flag and in the configuration
file"), and so does ferryd, rather than let one silently win."""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from pathlib import Path
from typing import Any

from ferry import __version__
from ferry.daemon import logs
from ferry.daemon.config import (
    DEFAULT_CONFIG_FILE,
    FILE_KEYS,
    LOG_LEVELS,
    DaemonConfig,
    read_config_file,
)
from ferry.daemon.daemon import Daemon
from ferry.errors import FerryError, InvalidArgument

# flags that set what a daemon.json key sets: (flag's dest, the key)
SHARED_SETTINGS = (("state_dir", "data-root"), ("log_level", "log-level"))


def _parser() -> argparse.ArgumentParser:
    defaults = DaemonConfig()
    parser = argparse.ArgumentParser(prog="ferryd", description="Ferry's per-host daemon")
    parser.add_argument(
        "--data-root",
        "--state-dir",
        dest="state_dir",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"where ferryd keeps its state (default: {defaults.state_dir}; daemon.json: "
        "data-root)",
    )
    parser.add_argument("--run-dir", type=Path, default=defaults.run_dir)
    parser.add_argument("--hostname", default="", help="node name (default: the host name)")
    parser.add_argument(
        "--netns-prefix",
        default=defaults.netns_prefix,
        help="prefix of the network namespaces this ferryd creates",
    )
    parser.add_argument("--etcd-binary", default=defaults.etcd_binary)
    parser.add_argument(
        "--log-level",
        default=None,
        choices=LOG_LEVELS,
        help=f"default: {defaults.log_level}; daemon.json: log-level",
    )
    parser.add_argument(
        "--config-file",
        "--config",
        dest="config",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"a daemon.json file (default: {DEFAULT_CONFIG_FILE} when it exists, as dockerd "
        f"reads /etc/docker/daemon.json); keys: {', '.join(FILE_KEYS)}",
    )
    parser.add_argument("--version", action="version", version=f"ferryd {__version__}")
    return parser


def parse(argv: list[str], default_file: Path = DEFAULT_CONFIG_FILE) -> DaemonConfig:
    """The settings of ``argv`` and its config file (``--config-file``, else ``default_file``
    when it exists). Raises InvalidArgument naming a bad key or value of the file, or a
    setting given both as a flag and in the file."""
    args = _parser().parse_args(argv)
    config_file = args.config
    if config_file is None and default_file.exists():
        config_file = default_file
    from_file = read_config_file(config_file) if config_file is not None else {}
    from_flags: dict[str, Any] = {}
    both: list[str] = []
    for dest, key in SHARED_SETTINGS:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest in from_file:
            both.append(f"{key}: (from flag: {value}, from file: {from_file[dest]})")
        from_flags[dest] = value
    if both:
        raise InvalidArgument(
            "the following directives are specified both as a flag and in the configuration "
            f"file {config_file}: {', '.join(both)}"
        )
    return DaemonConfig(
        run_dir=args.run_dir,
        hostname=args.hostname,
        netns_prefix=args.netns_prefix,
        etcd_binary=args.etcd_binary,
        **from_flags,
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
