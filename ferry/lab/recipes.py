"""The lab's images as plain data: which Debian packages, which files, which image config.

The tutorials name ``alpine``, ``nginx``, ``httpd:latest`` and ``mysql:5.7``; the lab builds
each from Debian packages with ``mmdebstrap`` (no other network than the Debian mirror is
reachable here), with the official image's config (``Cmd``, ``Entrypoint``, ``ExposedPorts``,
``StopSignal`` …) so that a container of it behaves the same way, and labels saying what it
really is. ``ferrylab/tools`` is the tool box tests and benchmarks run.

Be aware: ``alpine`` and ``mysql:5.7`` are stand-ins (Debian userland; MariaDB from Debian whose
entrypoint honours the official image's ``MYSQL_*`` variables); their labels say so.

A recipe's hash covers everything that shapes the image (packages, files, hooks, config,
labels, :data:`BUILDER_VERSION`): the cache keeps one artefact per hash, and a changed recipe
builds anew.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUITE = "bookworm"
DEBIAN_ARCHIVE = "https://deb.debian.org/debian"
BUILDER_VERSION = "1"  # bump when the build itself (not a recipe) changes what it makes
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Docs, manuals and translations are not needed in a lab image and are a third of its size.
DPKG_EXCLUDES = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")


@dataclass(frozen=True)
class ImageFile:
    """A file the recipe writes into the root filesystem after the packages are installed."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    """One image: ``repo`` is the registry repository (Docker Hub's name, ``library/nginx``)."""

    repo: str
    tag: str
    description: str
    packages: tuple[str, ...]
    config: Mapping[str, Any]
    files: tuple[ImageFile, ...] = ()
    commands: tuple[str, ...] = ()  # run with /bin/sh inside the root filesystem, in order
    stand_in_for: str = ""  # what the real image is, when this is not it
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``library/nginx:latest``: the name a mirror of Docker Hub serves it under."""
        return f"{self.repo}:{self.tag}"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the reference (``library-nginx-latest``)."""
        return self.ref.replace("/", "-").replace(":", "-")

    def labels(self) -> dict[str, str]:
        """The OCI labels (annotation keys of the image spec) saying what the image is built
        from; ``io.ferry.lab.*`` for what the spec has no key for."""
        labels = {
            "org.opencontainers.image.title": self.ref,
            "org.opencontainers.image.description": self.description,
            "org.opencontainers.image.source": DEBIAN_ARCHIVE,
            "io.ferry.lab.debian.suite": SUITE,
            "io.ferry.lab.debian.packages": ",".join(self.packages),
            "io.ferry.lab.built-by": "ferry lab images (mmdebstrap, ferry/lab/recipes.py)",
        }
        if self.stand_in_for:
            labels["io.ferry.lab.stand-in-for"] = self.stand_in_for
        labels.update(self.extra_labels)
        return labels

    def image_config(self) -> dict[str, Any]:
        """The image config's ``config`` object (Docker's image-inspect ``Config``)."""
        return {**self.config, "Labels": self.labels()}

    def recipe_hash(self) -> str:
        """12 hex digits over everything that shapes the image."""
        shape = {
            "builder": BUILDER_VERSION,
            "suite": SUITE,
            "excludes": DPKG_EXCLUDES,
            "packages": self.packages,
            "files": [(f.path, f.content, f.mode) for f in self.files],
            "commands": self.commands,
            "config": self.image_config(),
        }
        encoded = json.dumps(shape, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:12]


def setup_script(recipe: Recipe) -> str:
    """The shell script run inside the root filesystem after the packages are installed: it
    writes the recipe's files (each as a quoted here-document, so nothing in them expands)
    and runs its commands; ``set -e`` makes any failure fail the build."""
    lines = ["set -eu"]
    for number, item in enumerate(recipe.files):
        marker = f"FERRY_EOF_{number}"
        if marker in item.content:
            raise ValueError(f"{item.path}: content holds the here-document marker {marker}")
        directory = item.path.rsplit("/", 1)[0] or "/"
        lines.append(f"mkdir -p {shlex.quote(directory)}")
        lines.append(f"cat > {shlex.quote(item.path)} <<'{marker}'")
        lines.append(item.content.rstrip("\n"))
        lines.append(marker)
        lines.append(f"chmod {item.mode:o} {shlex.quote(item.path)}")
    lines.extend(recipe.commands)
    return "\n".join(lines) + "\n"


def mmdebstrap_argv(recipe: Recipe, script: str, output: str) -> list[str]:
    """``mmdebstrap`` building ``recipe`` into the tarball ``output`` (its name picks the
    format); ``script`` is the path of :func:`setup_script`'s text, run by a customize hook."""
    argv = [
        "mmdebstrap",
        "--quiet",
        "--variant=essential",
        f"--include={','.join(recipe.packages)}",
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    # the hook runs outside with the root filesystem as $1 (mmdebstrap(1), HOOKS)
    argv.append(f'--customize-hook=chroot "$1" /bin/sh < {shlex.quote(script)}')
    argv += [SUITE, output]
    return argv


_MYSQL_ENTRYPOINT = r"""#!/bin/bash
# Stand-in for the official mysql image's docker-entrypoint.sh, on MariaDB from Debian: a first
# start initialises /var/lib/mysql with MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD or
# MYSQL_RANDOM_ROOT_PASSWORD), MYSQL_DATABASE and MYSQL_USER/MYSQL_PASSWORD, then runs the server.
set -eo pipefail
if [ "${1:0:1}" = '-' ]; then
    set -- mysqld "$@"
fi
if [ "$1" != mysqld ] && [ "$1" != mariadbd ]; then
    exec "$@"
fi
datadir=/var/lib/mysql
mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld "$datadir"
sql_string() {  # a value as a quoted SQL string literal
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\\\'}"
}
if [ ! -d "$datadir/mysql" ]; then
    if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] \
        && [ -z "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
        echo >&2 'error: database is uninitialized and password option is not specified'
        echo >&2 '  You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD' \
            'and MYSQL_RANDOM_ROOT_PASSWORD'
        exit 1
    fi
    if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
        MYSQL_ROOT_PASSWORD=$(head -c 18 /dev/urandom | base64)
        echo "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    fi
    echo 'Initializing database'
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=normal > /dev/null
    socket=/run/mysqld/init.sock
    "$@" --skip-networking --socket="$socket" &
    pid=$!
    for _ in $(seq 120); do
        if mariadb-admin --socket="$socket" ping > /dev/null 2>&1; then break; fi
        if ! kill -0 "$pid" 2> /dev/null; then echo >&2 'error: the server ended'; exit 1; fi
        sleep 0.25
    done
    root_pw=$(sql_string "${MYSQL_ROOT_PASSWORD:-}")
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        # root@127.0.0.1, root@::1, root@<hostname> come without a password: only
        # root@localhost (the socket) and root@'%' remain, as in the official image
        echo "DELETE FROM mysql.global_priv WHERE Host <> 'localhost';"
        echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
        echo "FLUSH PRIVILEGES;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY $root_pw;"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "${MYSQL_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE//\`/\`\`}\`;"
        fi
        if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
            user=$(sql_string "$MYSQL_USER")
            echo "CREATE USER $user@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
            if [ -n "${MYSQL_DATABASE:-}" ]; then
                echo "GRANT ALL ON \`${MYSQL_DATABASE//\`/\`\`}\`.* TO $user@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --protocol=socket --socket="$socket" -uroot
    kill "$pid"
    wait "$pid" || true
    echo 'Database initialized; starting the server'
fi
exec "$@"
"""

_MYSQL_CNF = """[mysqld]
# as the official image: reachable from other containers, no DNS lookups of clients
user = mysql
bind-address = 0.0.0.0
skip-name-resolve
"""

_HTTPD_FOREGROUND = """#!/bin/sh
# Apache in the foreground, as the official httpd image's httpd-foreground (Debian's layout).
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f "$APACHE_PID_FILE"
exec apache2 -DFOREGROUND "$@"
"""

ALPINE = Recipe(
    repo="library/alpine",
    tag="latest",
    description="Stand-in for alpine: a small Debian userland with sh, ping, wget, curl, "
    "nslookup and nc (BusyBox-like tools from Debian packages)",
    packages=("iputils-ping", "wget", "curl", "bind9-dnsutils", "netcat-openbsd", "iproute2"),
    config={"Cmd": ["/bin/sh"], "Env": [PATH_ENV], "WorkingDir": "/"},
    stand_in_for="docker.io/library/alpine:latest (Alpine Linux)",
)

NGINX = Recipe(
    repo="library/nginx",
    tag="latest",
    description="nginx from Debian (nginx-light) serving its welcome page on port 80",
    packages=("nginx-light",),
    config={
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": [PATH_ENV],
        "ExposedPorts": {"80/tcp": {}},
        "WorkingDir": "/",
        "StopSignal": "SIGQUIT",
    },
    # as the official image: the logs go to the container's output
    commands=(
        "ln -sf /dev/stdout /var/log/nginx/access.log",
        "ln -sf /dev/stderr /var/log/nginx/error.log",
    ),
)

HTTPD = Recipe(
    repo="library/httpd",
    tag="latest",
    description="Apache HTTP Server from Debian (apache2) in the foreground on port 80",
    packages=("apache2",),
    config={
        "Cmd": ["httpd-foreground"],
        "Env": [PATH_ENV],
        "ExposedPorts": {"80/tcp": {}},
        "WorkingDir": "/etc/apache2",
        "StopSignal": "SIGWINCH",  # Apache's graceful stop, as the official image
    },
    files=(ImageFile("/usr/local/bin/httpd-foreground", _HTTPD_FOREGROUND, 0o755),),
    commands=(
        "ln -sf /proc/self/fd/1 /var/log/apache2/access.log",
        "ln -sf /proc/self/fd/2 /var/log/apache2/error.log",
        "ln -sf /proc/self/fd/1 /var/log/apache2/other_vhosts_access.log",
    ),
)

MYSQL = Recipe(
    repo="library/mysql",
    tag="5.7",
    description="Stand-in for mysql:5.7: MariaDB from Debian on port 3306, whose entrypoint "
    "honours MYSQL_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD; with the "
    "mysql client",
    packages=("mariadb-server", "mariadb-client"),
    config={
        "Entrypoint": ["docker-entrypoint.sh"],
        "Cmd": ["mysqld"],
        "Env": [PATH_ENV],
        "ExposedPorts": {"3306/tcp": {}, "33060/tcp": {}},
        "Volumes": {"/var/lib/mysql": {}},  # as the official image: the data outlives a container
        "WorkingDir": "/",
    },
    files=(
        ImageFile("/usr/local/bin/docker-entrypoint.sh", _MYSQL_ENTRYPOINT, 0o755),
        ImageFile("/etc/mysql/mariadb.conf.d/99-docker.cnf", _MYSQL_CNF),
    ),
    # the package's install made a database whose root logs in by socket only: the
    # entrypoint makes a fresh one on the first start, with the container's passwords
    commands=("rm -rf /var/lib/mysql/*",),
    stand_in_for="docker.io/library/mysql:5.7 (Oracle MySQL 5.7)",
)

TOOLS = Recipe(
    repo="ferrylab/tools",
    tag="latest",
    description="Ferry's lab tool box for tests and benchmarks: python3, curl, iperf3, "
    "ping, dig, nc, ip, ps",
    packages=(
        "python3",
        "curl",
        "iproute2",
        "iputils-ping",
        "procps",
        "iperf3",
        "dnsutils",
        "netcat-openbsd",
    ),
    config={"Cmd": ["/bin/bash"], "Env": [PATH_ENV], "WorkingDir": "/root"},
)

RECIPES: tuple[Recipe, ...] = (ALPINE, NGINX, HTTPD, MYSQL, TOOLS)
