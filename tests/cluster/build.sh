#!/usr/bin/env bash
# Builds the test cluster's binaries from the official Go modules pinned in
# tests/cluster/go.mod (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kubelet, etcd, kwok) and the pod sandbox's `pause` program (compiled
# from the pause.c that k8s.io/kubernetes ships, build/pause/linux) into a cache
# outside the repo, once per version:
#   ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/k8s/<release>/
# A binary already in the cache (built from the same go.mod/go.sum and Go) is
# reused. Compiles run under `nice -n 19`. Prints the cache folder last. The
# shared steps: scripts/gobuild.sh.
set -euo pipefail
usage() {
    cat <<EOF
Usage: tests/cluster/build.sh [--force] [--print-dir]
Builds (or reuses) the test cluster's binaries and prints the folder holding them.
  --force      rebuild every binary even if cached
  --print-dir  only print the cache folder, build nothing
Environment: DSBUILD_CACHE_DIR (default \$HOME/.cache/dsbuild), GO (default: go on PATH,
else /usr/local/go/bin/go).
EOF
}
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/gobuild.sh
. "$here/../../scripts/gobuild.sh"
gobuild_args --print-dir "$@"
cd "$here"

release="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)"
cache="$(gobuild_cache k8s "$release")"
if [ "$GOBUILD_PRINT_ONLY" = 1 ]; then echo "$cache"; exit 0; fi
gobuild_go
# The stamp says which sources (go.mod less its comments, go.sum) and toolchain
# the cached binaries came from; a different stamp rebuilds them all.
stamp="$(gobuild_modstamp)"
gobuild_open "$cache" "$stamp" kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd kwok pause

major="${release#v}"; major="${major%%.*}"
minor="${release#v*.}"; minor="${minor%%.*}"
kver=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kver+=" -X $pkg.gitVersion=$release -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    kver+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
etcd_ver="$(awk '$1=="go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' go.mod)"
kwok_ver="$(awk '$1=="sigs.k8s.io/kwok" && $2 ~ /^v/ {print $2; exit}' go.mod)"

build() {  # build NAME PACKAGE [LDFLAGS]
    gobuild_binary "$cache" "$1" "$2" "-s -w ${3:-}"
}

build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kver"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kver"
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$kver"
build kubectl k8s.io/kubernetes/cmd/kubectl "$kver"
build kubelet k8s.io/kubernetes/cmd/kubelet "$kver"
build etcd go.etcd.io/etcd/server/v3 "-X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_ver}"
build kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_ver#v}"
# kwok's own stages (node initialize and lease heartbeat, pod ready/complete/delete),
# taken from the kwok module at the pinned version, for start.sh's --config.
kwok_dir="$("$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
mkdir -p "$cache/stages"
for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
         pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    install -m 644 "$kwok_dir/kustomize/stage/$f.yaml" "$cache/stages/"
done
# The pod sandbox's program, for the real node's locally built pause image
# (node.sh): Kubernetes' own pause.c, linked statically so the image needs nothing else.
if [ ! -x "$cache/pause" ]; then
    CC="${CC:-$(command -v cc || true)}"
    [ -n "$CC" ] || { echo "build.sh: no C compiler for pause.c (apt-get install gcc libc6-dev)" >&2; exit 1; }
    kube_dir="$("$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)"
    pause_tag="$(awk '$1=="TAG" && $2=="?=" {print $3; exit}' "$kube_dir/build/pause/Makefile")"
    "$CC" -Os -static -Wall -DVERSION="v$pause_tag-dsbuild" -o "$cache/.pause.tmp" "$kube_dir/build/pause/linux/pause.c"
    strip "$cache/.pause.tmp" 2>/dev/null || true
    mv "$cache/.pause.tmp" "$cache/pause"
    echo "$pause_tag" > "$cache/pause.version"
fi
gobuild_close "$cache" "$stamp"
echo "$cache"
