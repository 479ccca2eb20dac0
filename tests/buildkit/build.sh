#!/usr/bin/env bash
# Builds BuildKit's daemon and client, buildkitd and buildctl, from the official
# Go module pinned in tests/buildkit/go.mod (github.com/moby/buildkit) into a cache
# outside the repo, once per version:
#   ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/buildkit/<version>/
# Both are static (CGO_ENABLED=0). buildkitd runs builds with Debian's runc (its OCI
# worker); `apt-get install runc` provides it. A binary already in the cache (built
# from the same go.mod/go.sum and Go) is reused. Compiles run under `nice -n 19`.
# Prints the cache folder last. The shared steps: scripts/gobuild.sh.
set -euo pipefail
usage() {
    cat <<USAGE
Usage: tests/buildkit/build.sh [--force] [--print-dir]
Builds (or reuses) buildkitd and buildctl and prints the folder holding them.
  --force      rebuild both even if cached
  --print-dir  only print the cache folder, build nothing
Environment: DSBUILD_CACHE_DIR (default \$HOME/.cache/dsbuild), GO (default: go on PATH,
else /usr/local/go/bin/go).
USAGE
}
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/gobuild.sh
. "$here/../../scripts/gobuild.sh"
gobuild_args --print-dir "$@"
cd "$here"

version="$(awk '$1=="github.com/moby/buildkit" && $2 ~ /^v/ {print $2; exit}' go.mod)"
cache="$(gobuild_cache buildkit "$version")"
if [ "$GOBUILD_PRINT_ONLY" = 1 ]; then echo "$cache"; exit 0; fi
gobuild_go
stamp="$(gobuild_modstamp)"
gobuild_open "$cache" "$stamp" buildkitd buildctl
ldflags="-s -w -X github.com/moby/buildkit/version.Version=$version"
ldflags+=" -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
export CGO_ENABLED=0  # static
gobuild_binary "$cache" buildctl github.com/moby/buildkit/cmd/buildctl "$ldflags"
gobuild_binary "$cache" buildkitd github.com/moby/buildkit/cmd/buildkitd "$ldflags"
gobuild_close "$cache" "$stamp"
echo "$cache"
