#!/usr/bin/env bash
# Builds the Helm chart's hub image from deploy/hub/Dockerfile with this checkout's
# dsbuild (as a wheel), tags it dsbuild-hub:<16 hex of its inputs>, and with
# --registry HOST:PORT pushes it there. Prints the image's name last. An image already
# built from the same inputs is reused. The machine's CA bundle and package index
# settings come from dsbuild's own host settings (builder/host.py) as build secrets,
# never as layers. The image is labelled with this checkout (a hash of its path); the
# dsbuild-hub tags this checkout made before are removed once the new one exists (each
# is about 1.2 GB), unless a container uses one. Other checkouts' tags, and any other
# image, are never touched.
set -euo pipefail
usage() {
    cat <<USAGE
Usage: deploy/hub/build.sh [--registry HOST:PORT] [--base IMAGE]
  --registry HOST:PORT  push the image there (name HOST:PORT/dsbuild-hub:TAG)
  --base IMAGE          the base image (default dsbuild-base:bookworm, made by dsbuild base)
Environment: PYTHON (default .venv/bin/python of this checkout), DSBUILD_DOCKER (the docker CLI).
USAGE
}
registry="" base="dsbuild-base:bookworm"
while [ $# -gt 0 ]; do
    case "$1" in
        --registry) [ $# -ge 2 ] || { echo "build.sh: --registry needs HOST:PORT" >&2; exit 2; }; registry="$2"; shift 2 ;;
        --base) [ $# -ge 2 ] || { echo "build.sh: --base needs an image" >&2; exit 2; }; base="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
root="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
[ -x "$PYTHON" ] || { echo "build.sh: no $PYTHON (run scripts/setup.sh)" >&2; exit 1; }
# The docker CLI dsbuild builds with (DSBUILD_DOCKER, else Debian's, which needs no buildx).
DOCKER="$("$PYTHON" -c 'from dsbuild.builder.engine import find_docker_cli; print(find_docker_cli())')"
docker() { command "$DOCKER" "$@"; }
docker image inspect "$base" >/dev/null 2>&1 || { echo "build.sh: no base image $base (dsbuild base)" >&2; exit 1; }

# The tag: a hash of everything that goes in (the package's sources, the Dockerfile, the base).
inputs="$(cd "$root" && find builder spawner launch cli templates deploy/hub pyproject.toml -type f \
    ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; docker image inspect -f '{{.Id}}' "$base")"
tag="$(printf '%s' "$inputs" | sha256sum | cut -c1-16)"
image="dsbuild-hub:$tag"
checkout="$(printf '%s' "$root" | sha256sum | cut -c1-16)"
if ! docker image inspect "$image" >/dev/null 2>&1; then
    ctx="$(mktemp -d /tmp/dsbuild-hub-image.XXXXXX)"
    trap 'rm -rf "$ctx"' EXIT
    mkdir "$ctx/context"
    cp "$root/deploy/hub/Dockerfile" "$ctx/context/Dockerfile"
    "$PYTHON" -m uv build --quiet --wheel --out-dir "$ctx/context/dist" "$root" >&2
    "$PYTHON" - "$ctx" <<'PY'
import shutil
import sys
from pathlib import Path

from dsbuild.builder.host import index_secret, read_host_settings

ctx = Path(sys.argv[1])
settings = read_host_settings()
(ctx / "secrets").mkdir(mode=0o700)
(ctx / "secrets" / "index").write_text(index_secret(settings))
ca = ctx / "secrets" / "ca.crt"
if settings.ca_bundle:
    shutil.copyfile(settings.ca_bundle, ca)
else:
    ca.write_text("")
PY
    echo "build.sh: building $image ..." >&2
    # The context is Dockerfile and dist/ only; the secrets stay beside it.
    DOCKER_BUILDKIT=1 docker build --progress=plain --build-arg "BASE=$base" \
        --secret "id=ca,src=$ctx/secrets/ca.crt" --secret "id=dsbuild-index,src=$ctx/secrets/index" \
        --label io.dsbuild.hub-image="$tag" --label io.dsbuild.hub-checkout="$checkout" -t "$image" "$ctx/context" >"$ctx/build.log" 2>&1 \
        || { tail -30 "$ctx/build.log" >&2; echo "build.sh: docker build failed" >&2; exit 1; }
fi
# The tags this checkout made for earlier inputs: replaced by this one.
docker image ls --filter "reference=dsbuild-hub" --filter "label=io.dsbuild.hub-checkout=$checkout" \
        --format '{{.Repository}}:{{.Tag}}' | while read -r old; do
    if [ "$old" != "$image" ]; then
        docker image rm "$old" >/dev/null 2>&1 && echo "build.sh: removed $old (replaced by $image)" >&2 \
            || echo "build.sh: kept $old (in use)" >&2
    fi
done
if [ -n "$registry" ]; then
    docker tag "$image" "$registry/$image"
    docker push --quiet "$registry/$image" >&2
    docker image rm "$registry/$image" >/dev/null  # the engine keeps the local name only
    image="$registry/$image"
fi
echo "$image"
