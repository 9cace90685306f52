#!/usr/bin/env bash
# Installs what Ferry needs on a Debian 12 machine, and nothing twice: the Debian packages that
# are missing (apt-get), then a virtualenv in .venv with Ferry and its test tools. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
    iproute2 nftables libnftables1 conntrack util-linux procps psmisc
    etcd-server etcd-client
    wireguard-go wireguard-tools
    iperf3 dnsutils dnsperf tcpdump iputils-ping curl busybox-static wrk
    runc conmon tini mmdebstrap
    systemd  # systemd-analyze: the test of packaging/systemd/ferryd.service
    skopeo docker-registry
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: missing Debian packages (${missing[*]}); run as root so apt-get can install them" >&2
        exit 1
    fi
    echo "bootstrap: installing ${missing[*]}"
    # No service may start from a package install: etcd-server would otherwise start a default
    # member on the machine's loopback, and docker-registry a registry on port 5000; Ferry
    # uses neither (each lab runs its own registry).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.ferry
    chmod +x /usr/sbin/policy-rc.d.ferry
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    [ "$had_policy" = 0 ] && cp /usr/sbin/policy-rc.d.ferry /usr/sbin/policy-rc.d
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$had_policy" = 0 ] && rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.ferry
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: Ferry needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Reinstall only when the project's declared dependencies changed.
stamp=.venv/.ferry-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    touch "$stamp"
fi

# The image tests, the demo and benchmarks run ("tools"): built once per recipe, cached.
if [ "$(id -u)" -eq 0 ]; then
    scripts/tools-image.sh >/dev/null
fi
