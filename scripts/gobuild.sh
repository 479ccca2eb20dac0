# The Go build scripts' one helper (sourced, not run): tests/cluster/build.sh,
# tests/buildkit/build.sh and deploy/helm/build.sh build official Go modules into a
# cache outside the repo, ${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/<tool>/<version>/,
# once per version. What they share lives here:
#   gobuild_args PRINT_FLAG "$@"   --force, PRINT_FLAG (--print-dir/--print-path), --help
#                                  (calls the script's own `usage`); sets GOBUILD_FORCE
#                                  and GOBUILD_PRINT_ONLY
#   gobuild_cache TOOL VERSION     the cache folder (printed)
#   gobuild_go                     sets GO: $GO, else go on PATH, else /usr/local/go/bin/go
#   gobuild_open CACHE STAMP FILE...  makes the folder, takes its lock (one build at a
#                                  time: tests in several worktrees may start one at once)
#                                  and removes FILEs built from another STAMP (or --force)
#   gobuild_modstamp               the stamp of ./go.mod (less comments), ./go.sum and Go
#   gobuild_binary CACHE NAME PACKAGE LDFLAGS   `go build` one package
#   gobuild_install CACHE NAME MODULE/CMD@VERSION LDFLAGS   `go install` with the
#                                  module's own go.mod/go.sum, into a temporary GOBIN
#   gobuild_close CACHE STAMP      records the stamp
# Compiles run under `nice -n 19`, to a temporary name first (an interrupted build never
# leaves a broken binary), and record their time in CACHE/build-times.txt.
# Environment: DSBUILD_CACHE_DIR, GO; CGO_ENABLED and the like pass through to go.

gobuild_args() {  # gobuild_args PRINT_FLAG "$@"
    local print_flag="$1" arg
    shift
    GOBUILD_FORCE=0 GOBUILD_PRINT_ONLY=0
    for arg in "$@"; do
        case "$arg" in
            --force) GOBUILD_FORCE=1 ;;
            -h|--help) usage; exit 0 ;;
            *) if [ "$arg" = "$print_flag" ]; then GOBUILD_PRINT_ONLY=1; else
                   echo "build.sh: unknown argument $arg (see --help)" >&2; exit 2; fi ;;
        esac
    done
}

gobuild_cache() {  # gobuild_cache TOOL VERSION
    echo "${DSBUILD_CACHE_DIR:-$HOME/.cache/dsbuild}/$1/$2"
}

gobuild_go() {
    GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
    [ -x "$GO" ] || { echo "build.sh: no Go toolchain (set GO=/path/to/go)" >&2; exit 1; }
}

gobuild_modstamp() {  # which sources and toolchain the cached binaries came from
    (grep -v '^[[:space:]]*//' go.mod; cat go.sum; "$GO" version) | sha256sum | cut -c1-16
}

gobuild_open() {  # gobuild_open CACHE STAMP FILE...
    local cache="$1" stamp="$2" name
    shift 2
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9  # held until the script exits
    if [ "$GOBUILD_FORCE" = 1 ] || [ "$(cat "$cache/.stamp" 2>/dev/null)" != "$stamp" ]; then
        for name in "$@"; do rm -f "${cache:?}/$name"; done
    fi
}

_gobuild_timed() {  # _gobuild_timed CACHE NAME WHAT COMMAND...
    local cache="$1" name="$2" what="$3" t0=$SECONDS
    shift 3
    echo "build.sh: building $name from $what ..." >&2
    "$@"
    echo "build.sh: built $name in $((SECONDS - t0))s" >&2
    echo "$name $((SECONDS - t0))" >> "$cache/build-times.txt"
}

gobuild_binary() {  # gobuild_binary CACHE NAME PACKAGE LDFLAGS
    local cache="$1" name="$2" pkg="$3" ldflags="$4"
    [ -x "$cache/$name" ] && return 0
    _gobuild_timed "$cache" "$name" "$pkg" \
        nice -n 19 "$GO" build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$cache/.$name.tmp" "$pkg"
    mv "$cache/.$name.tmp" "$cache/$name"
}

gobuild_install() {  # gobuild_install CACHE NAME MODULE/CMD@VERSION LDFLAGS
    local cache="$1" name="$2" target="$3" ldflags="$4" tmp
    [ -x "$cache/$name" ] && return 0
    tmp="$(mktemp -d "$cache/.gobin.XXXXXX")"
    # shellcheck disable=SC2064  # the folder's name now, not at exit
    trap "rm -rf '$tmp'" EXIT
    GOBIN="$tmp" _gobuild_timed "$cache" "$name" "$target" \
        nice -n 19 "$GO" install -trimpath -ldflags "$ldflags" "$target"
    mv "$tmp/$name" "$cache/$name"
    rm -rf "$tmp"
}

gobuild_close() {  # gobuild_close CACHE STAMP
    echo "$2" > "$1/.stamp"
}
