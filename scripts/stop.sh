#!/usr/bin/env bash
# Stop what dsbuild's scripts started: the local hub of `dsbuild hub up` (and its servers),
# JupyterLab containers from `dsbuild run`, and dockerd if scripts/setup.sh started it.
# Images and caches are kept.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -f .run/hub/jupyterhub.pid ] || [ -f .run/hub/proxy.pid ]; then
    .venv/bin/dsbuild hub down --state-dir .run/hub
fi
if /usr/bin/docker info >/dev/null 2>&1; then
    ids=$(/usr/bin/docker ps -aq --filter label=io.dsbuild.run=1)
    [ -n "$ids" ] && /usr/bin/docker rm -f $ids >/dev/null && echo "removed dsbuild run containers" >&2
fi
if [ -f .run/dockerd.pid ]; then
    pid=$(cat .run/dockerd.pid)
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        echo "stopped dockerd ($pid)" >&2
    fi
    rm -f .run/dockerd.pid
fi
