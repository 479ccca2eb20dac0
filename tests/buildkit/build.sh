#!/usr/bin/env bash
# Builds BuildKit's daemon and client, buildkitd and buildctl, from the official
# Go module pinned in tests/buildkit/go.mod (github.com/moby/buildkit) into a cache
# outside the repo, once per version:
#   ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/buildkit/<version>/
# Both are static (CGO_ENABLED=0). buildkitd runs builds with Debian's runc (its OCI
# worker); `apt-get install runc` provides it. A binary already in the cache (built
# from the same go.mod/go.sum and Go) is reused. Compiles run under `nice -n 19`.
# Prints the cache folder last.
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
force=0 print_only=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --print-dir) print_only=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "build.sh: no Go toolchain (set GO=/path/to/go)" >&2; exit 1; }

version="$(awk '$1=="github.com/moby/buildkit" && $2 ~ /^v/ {print $2; exit}' go.mod)"
cache="${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/buildkit/$version"
if [ "$print_only" = 1 ]; then echo "$cache"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time (a test may start this while another runs it)

# The stamp says which sources and toolchain the cached binaries came from.
stamp="$( (grep -v '^[[:space:]]*//' go.mod; cat go.sum; "$GO" version) | sha256sum | cut -c1-16)"
if [ "$force" = 1 ] || [ "$(cat "$cache/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$cache"/buildkitd "$cache"/buildctl
fi
ldflags="-s -w -X github.com/moby/buildkit/version.Version=$version"
ldflags+=" -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"

build() {  # build NAME PACKAGE
    local name="$1" pkg="$2"
    if [ -x "$cache/$name" ]; then return 0; fi
    echo "build.sh: building $name from $pkg ..." >&2
    local t0=$SECONDS
    # Build to a temporary name so an interrupted build never leaves a broken binary.
    CGO_ENABLED=0 nice -n 19 "$GO" build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$cache/.$name.tmp" "$pkg"
    mv "$cache/.$name.tmp" "$cache/$name"
    echo "build.sh: built $name in $((SECONDS - t0))s" >&2
    echo "$name $((SECONDS - t0))" >> "$cache/build-times.txt"
}

build buildctl github.com/moby/buildkit/cmd/buildctl
build buildkitd github.com/moby/buildkit/cmd/buildkitd
echo "$stamp" > "$cache/.stamp"
echo "$cache"
