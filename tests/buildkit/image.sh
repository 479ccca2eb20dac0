#!/usr/bin/env bash
# Builds the build daemons' and build pods' image for `dsbuild serve --build-on kubernetes` from files on
# this machine, and pushes it to a registry (no image registry outside can be reached):
# buildkitd and buildctl (tests/buildkit/build.sh, from the Go module), Debian's runc,
# the CNI plugins buildkitd's bridge network uses, iptables (for the bridge's NAT), the
# shared libraries these need, and the host's CA bundle. `docker import` of that folder,
# like the test cluster's pause image (tests/cluster/node.sh). Prints the image name.
#   tests/buildkit/image.sh REGISTRY      e.g. localhost:5000
set -euo pipefail
[ $# = 1 ] && [ "$1" != -h ] && [ "$1" != --help ] || {
    echo "Usage: tests/buildkit/image.sh REGISTRY   (HOST:PORT; prints REGISTRY/dsbuild-buildkit:VERSION)" >&2
    exit 2
}
registry="$1"
here="$(cd "$(dirname "$0")" && pwd)"
bin="$("$here/build.sh" | tail -1)"
version="$(basename "$bin")"
image="$registry/dsbuild-buildkit:$version"
root="$(mktemp -d /tmp/dsbuild-buildkit-image.XXXXXX)"
trap 'rm -rf "$root"' EXIT

copy() {  # copy FILE...: each file and the shared libraries it loads, at the same paths
    local file lib
    for file in "$@"; do
        install -D -m 755 "$(readlink -f "$file")" "$root$file"
        for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
            [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
        done
    done
}
install -D -m 755 "$bin/buildkitd" "$root/usr/local/bin/buildkitd"
install -D -m 755 "$bin/buildctl" "$root/usr/local/bin/buildctl"
copy /bin/sleep  # what a build pod runs: it only holds the build's CPU, memory and cgroup
copy /usr/sbin/runc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/firewall
# iptables (the nf_tables build Debian uses) and its extensions, for the bridge's NAT.
copy /usr/sbin/xtables-nft-multi
for tool in iptables ip6tables iptables-save iptables-restore ip6tables-save ip6tables-restore; do
    ln -s xtables-nft-multi "$root/usr/sbin/$tool"
done
for ext in /usr/lib/x86_64-linux-gnu/xtables/*.so; do copy "$ext"; done
copy /bin/cp  # the Helm chart's launch pod copies buildctl out of this image (its init container)
install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
mkdir -p "$root/tmp" "$root/run" "$root/var/lib/buildkit" "$root/etc/buildkit" "$root/root"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENTRYPOINT ["/usr/local/bin/buildkitd"]' - "$image" >/dev/null
docker push -q "$image" >/dev/null
docker rmi "$image" >/dev/null  # the registry keeps it
echo "$image"
