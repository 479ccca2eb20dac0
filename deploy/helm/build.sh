#!/usr/bin/env bash
# Builds (or reuses) the `helm` client from its official Go module, at the
# version pinned below, into a cache outside the repo:
#   ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/helm/<version>/helm
# `go install module/cmd@version` builds with helm's own go.mod and go.sum
# (checked against the Go checksum database), so the repo holds no copy of
# helm's dependency list. The compile runs under `nice -n 19`. Prints the
# binary's path last.
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
force=0 print_only=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --print-path) print_only=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done
cache="${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/helm/$HELM_VERSION"
if [ "$print_only" = 1 ]; then echo "$cache/helm"; exit 0; fi
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "build.sh: no Go toolchain (set GO=/path/to/go)" >&2; exit 1; }
mkdir -p "$cache"
stamp="$( (printf '%s@%s %s\n' "$HELM_MODULE" "$HELM_VERSION" "$("$GO" version)"; sed -n '/^    ldflags/,/^    done/p' "$0") \
    | sha256sum | cut -c1-16)"
if [ "$force" = 1 ] || [ "$(cat "$cache/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$cache/helm"
fi
if [ ! -x "$cache/helm" ]; then
    echo "build.sh: building helm $HELM_VERSION from $HELM_MODULE ..." >&2
    t0=$SECONDS
    tmp="$(mktemp -d "$cache/.gobin.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
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
    GOBIN="$tmp" nice -n 19 "$GO" install -trimpath -ldflags "$ldflags" "$HELM_MODULE/cmd/helm@$HELM_VERSION"
    mv "$tmp/helm" "$cache/helm"
    echo "build.sh: built helm in $((SECONDS - t0))s" >&2
    echo "helm $((SECONDS - t0))" >> "$cache/build-times.txt"
    echo "$stamp" > "$cache/.stamp"
fi
echo "$cache/helm"
