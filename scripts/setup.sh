#!/usr/bin/env bash
# Install and start what dsbuild needs on a fresh Debian machine (as root, no systemd):
# system packages, the Python environment in .venv, a Docker engine, the default base image,
# configurable-http-proxy (for `dsbuild hub up`) and Chromium (for the browser tests).
# Safe to run again: each step is skipped when already done.
# What this script starts (dockerd) is recorded in .run/ so scripts/stop.sh can stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1  # the browser tests use Debian's chromium, never a download
say() { printf '\033[1;36m[setup]\033[0m %s\n' "$*" >&2; }

need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/bin/docker ] && command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)  # the registry the tests push to
python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || need+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
command -v npm >/dev/null || need+=(npm)                     # configurable-http-proxy, JupyterHub's proxy
[ -x /usr/bin/chromium ] || need+=(chromium)                  # the browser tests drive Debian's Chromium
# The test cluster's real node (tests/cluster/node.sh): a CRI runtime, its OCI runtime, pod networking.
[ -x /usr/bin/containerd ] || need+=(containerd)
[ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v cc >/dev/null && dpkg -s libc6-dev >/dev/null 2>&1 || need+=(gcc libc6-dev)  # the pause program
if ((${#need[@]})); then
    say "installing Debian packages: ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
    .venv/bin/pip install -q uv
fi
say "installing dsbuild (editable) with its test dependencies"
.venv/bin/uv pip install --python .venv/bin/python -q -e '.[test]'

chp=.run/node/node_modules/.bin/configurable-http-proxy
if [ ! -x "$chp" ]; then
    # configurable-http-proxy 5 needs Node.js 20; Debian bookworm's is 18, which 4.6 supports.
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    version=5; [ "$node_major" -ge 20 ] || version=4.6
    say "installing configurable-http-proxy@$version into .run/node (npm)"
    mkdir -p .run/node
    npm install --no-audit --no-fund --prefix .run/node "configurable-http-proxy@$version" >.run/node/npm.log 2>&1 || true
    [ -x "$chp" ] || { say "npm could not install configurable-http-proxy; see .run/node/npm.log"; exit 1; }
fi

if ! /usr/bin/docker info >/dev/null 2>&1; then
    # BuildKit's cache (layers, per-source package caches) grows with every repository
    # built: the engine we start keeps it to 20 GB (scripts/dockerd.json); an operator's
    # own /etc/docker/daemon.json wins. `dsbuild gc` trims it by age and size too.
    config=(); [ -f /etc/docker/daemon.json ] || config=(--config-file "$PWD/scripts/dockerd.json")
    say "starting dockerd (log: .run/dockerd.log)"
    nohup dockerd "${config[@]}" >.run/dockerd.log 2>&1 &
    echo $! >.run/dockerd.pid
    for _ in $(seq 1 60); do
        /usr/bin/docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    /usr/bin/docker info >/dev/null 2>&1 || { say "dockerd did not start; see .run/dockerd.log"; exit 1; }
fi

say "default base image (built once from Debian packages)"
.venv/bin/dsbuild base >/dev/null
