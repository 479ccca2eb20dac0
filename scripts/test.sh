#!/usr/bin/env bash
# The test command, from a fresh clone: set everything up, run the whole suite (with
# real image builds), then stop what this script started.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not docker" -x
set -euo pipefail
cd "$(dirname "$0")/.."
had_dockerd=0
[ -f .run/dockerd.pid ] && kill -0 "$(cat .run/dockerd.pid)" 2>/dev/null && had_dockerd=1
scripts/setup.sh
cleanup() {
    # Stop dockerd only if this run started it.
    if [ "$had_dockerd" = 0 ] && [ -f .run/dockerd.pid ]; then scripts/stop.sh; fi
}
trap cleanup EXIT
.venv/bin/ruff check --quiet .  # no unused imports or dead names (pyproject.toml [tool.ruff])
.venv/bin/pytest "$@"
