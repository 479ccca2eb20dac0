#!/usr/bin/env bash
# The main job, from a fresh clone: set everything up, build an example repository and
# launch JupyterLab on it. Prints the URL (with its token) when JupyterLab answers.
# Usage: scripts/quickstart.sh [REPO]   (default: examples/sketches with notebooks/ mounted)
# Stop it with scripts/stop.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ $# -gt 0 ]; then
    exec .venv/bin/dsbuild run --detach "$@"
fi
exec .venv/bin/dsbuild run --detach examples/sketches --volume "$PWD/notebooks:/home/jovyan/notebooks"
