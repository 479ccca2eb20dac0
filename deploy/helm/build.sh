#!/usr/bin/env bash
# Builds (or reuses) the `helm` client from its official Go module, at the
# version pinned below, into a cache outside the repo:
#   ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/helm/<version>/helm
# `go install module/cmd@version` builds with helm's own go.mod and go.sum
# (checked against the Go checksum database), so the repo holds no copy of
# helm's dependency list. The compile runs under `nice -n 19`. Prints the
# binary's path last. The shared steps: scripts/gobuild.sh.
set -euo pipefail
HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
usage() {
    cat <<USAGE
Usage: deploy/helm/build.sh [--force] [--print-path]
Builds (or reuses) helm $HELM_VERSION from $HELM_MODULE and prints the binary's path.
  --force       rebuild even if cached
  --print-path  only print where the binary is (or would be), build nothing
Environment: DSBUILD_CACHE_DIR (default \$HOME/.cache/dsbuild), GO (default: go on PATH,
else /usr/local/go/bin/go).
USAGE
}
# shellcheck source=scripts/gobuild.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/scripts/gobuild.sh"
gobuild_args --print-path "$@"
cache="$(gobuild_cache helm "$HELM_VERSION")"
if [ "$GOBUILD_PRINT_ONLY" = 1 ]; then echo "$cache/helm"; exit 0; fi
gobuild_go
# The stamp: the module, Go, and this script's ldflags lines (below, from `ldflags` to `done`).
stamp="$( (printf '%s@%s %s\n' "$HELM_MODULE" "$HELM_VERSION" "$("$GO" version)"; sed -n '/^    ldflags/,/^    done/p' "$0") \
    | sha256sum | cut -c1-16)"
gobuild_open "$cache" "$stamp" helm
if [ ! -x "$cache/helm" ]; then
    # What helm's Makefile sets: its version (internal/version), and the Kubernetes
    # version `helm template` and `helm lint` assume (1.N for the k8s.io/client-go
    # v0.N it is built with; without it they assume 1.20 and refuse newer charts).
    gomod="$("$GO" mod download -json "$HELM_MODULE@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
    client_go="$(awk '$1=="k8s.io/client-go" {print $2; exit}' "$gomod")"
    k8s_minor="$(echo "$client_go" | cut -d. -f2)"
    [ -n "$k8s_minor" ] || { echo "build.sh: no k8s.io/client-go version in $gomod" >&2; exit 1; }
    ldflags="-s -w -X $HELM_MODULE/internal/version.version=$HELM_VERSION"
    ldflags+=" -X $HELM_MODULE/internal/version.gitTreeState=clean"
    for pkg in pkg/lint/rules pkg/chartutil; do
        ldflags+=" -X $HELM_MODULE/$pkg.k8sVersionMajor=1 -X $HELM_MODULE/$pkg.k8sVersionMinor=$k8s_minor"
    done
    gobuild_install "$cache" helm "$HELM_MODULE/cmd/helm@$HELM_VERSION" "$ldflags"
fi
gobuild_close "$cache" "$stamp"
echo "$cache/helm"
