# The test cluster's real node (sourced by start.sh and stop.sh, not run): a
# kubelet built from k8s.io/kubernetes (build.sh), Debian's containerd as its
# own instance (own root, state and socket under $NODE_DIR, never the one
# inside Docker) with Debian's runc, and pod networking from Debian's
# containernetworking-plugins on a bridge private to this machine. The sandbox
# (pause) image is built here from Kubernetes' pause.c and served, like every
# image the node runs, by the cluster's own registry (Debian's docker-registry,
# plain HTTP on 127.0.0.1). docs/cluster.md says why each setting is there.
#
# Machine-wide things it creates, all named for dsbuild's test node: the bridge
# $NODE_BRIDGE with $NODE_SUBNET, the cgroup tree $NODE_CGROUP_ROOT and the
# pods' network namespaces (/run/netns/cni-*, recognised by their address in
# $NODE_SUBNET). node_cleanup removes them, also after a kill -9 of everything.

NODE_DIR="$RUN_DIR/node"
NODE_NAME="dsbuild-real-node"
NODE_BRIDGE="dsbuild0"
NODE_SUBNET_PREFIX="10.123.0"
NODE_SUBNET="$NODE_SUBNET_PREFIX.0/24"
NODE_IP="$NODE_SUBNET_PREFIX.1"
NODE_CGROUP_ROOT="/dsbuild-test-node"
NODE_LABEL="dsbuild.io/node-pool=real"
NODE_TAINT_KEY="dsbuild.io/real-node"
NODE_OWNER_FILE="/run/dsbuild-test-node.owner"  # one real node per machine: which cluster has it
CONTAINERD_SOCK="$NODE_DIR/containerd.sock"
PAUSE_IMAGE_NAME="pause"

node_requirements() {  # why the node cannot start here, or nothing
    local tool
    for tool in /usr/bin/containerd /usr/bin/ctr /usr/lib/cni/bridge /usr/lib/cni/host-local \
                /usr/lib/cni/loopback /usr/lib/cni/portmap /usr/bin/docker-registry; do
        [ -x "$tool" ] || { echo "$tool is missing (scripts/setup.sh installs it)"; return; }
    done
    command -v runc >/dev/null || { echo "runc is missing (scripts/setup.sh installs it)"; return; }
    command -v ip >/dev/null || { echo "ip (iproute2) is missing"; return; }
    docker info >/dev/null 2>&1 || { echo "no Docker engine answers (docker info) to build the pause image with"; return; }
    [ "$(id -u)" = 0 ] || { echo "a kubelet needs root"; return; }
    if [ -f "$NODE_OWNER_FILE" ] && [ "$(cat "$NODE_OWNER_FILE")" != "$RUN_DIR" ]; then
        local other; other="$(cat "$NODE_OWNER_FILE")"
        if [ -f "$other/pids/kubelet.pid" ] && kill -0 "$(cat "$other/pids/kubelet.pid")" 2>/dev/null; then
            echo "the test cluster in $other runs this machine's real node (stop it first)"; return
        fi
    fi
}

node_certs() {  # in $PKI_DIR, with start.sh's cert function
    cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
    cert kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
}

node_registry() {  # node_registry PORT: the cluster's image registry
    mkdir -p "$RUN_DIR/registry"
    cat > "$RUN_DIR/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $RUN_DIR/registry/data}
  delete: {enabled: true}
http: {addr: "127.0.0.1:$1"}
EOF
    BIN=/usr/bin launch docker-registry serve "$RUN_DIR/registry/config.yml"
    wait_for docker-registry 30 curl -sf "http://127.0.0.1:$1/v2/"
}

node_pause_image() {  # node_pause_image REGISTRY: build the sandbox image, push it; print its name
    local version image context
    version="$(cat "$BIN/pause.version")"
    image="$1/$PAUSE_IMAGE_NAME:$version"
    context="$NODE_DIR/pause-image"
    mkdir -p "$context"
    install -m 755 "$BIN/pause" "$context/pause"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$context/Dockerfile"
    docker build -q -t "$image" "$context" >/dev/null 2>>"$LOG_DIR/pause-image.log"
    docker push -q "$image" >/dev/null
    docker rmi "$image" >/dev/null  # the registry keeps it; the engine keeps only its build cache
    echo "$image"
}

node_containerd() {  # node_containerd REGISTRY PAUSE-IMAGE
    mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/certs.d/$1" "$NODE_DIR/containerd"
    cat > "$NODE_DIR/cni/net.d/10-dsbuild.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "dsbuild-test", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
            "ranges": [[{"subnet": "$NODE_SUBNET", "gateway": "$NODE_IP"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF
    # The registry speaks plain HTTP on the loopback address.
    printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$1" "$1" \
        > "$NODE_DIR/certs.d/$1/hosts.toml"
    cat > "$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$2"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$NODE_DIR/certs.d"
EOF
    BIN=/usr/bin launch containerd --config "$NODE_DIR/containerd.toml"
    wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

node_network() {  # the bridge, made before the kubelet so that it can listen on the node's address
    ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
    ip addr replace "$NODE_IP/24" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
}

node_cgroups() {  # the kubelet's cgroup root, in every v1 hierarchy (kubelet makes its children)
    local hierarchy
    for hierarchy in /sys/fs/cgroup/*/; do
        [ "$hierarchy" = /sys/fs/cgroup/unified/ ] && continue
        mkdir -p "$hierarchy${NODE_CGROUP_ROOT#/}"
    done
    local cpuset="/sys/fs/cgroup/cpuset"
    if [ -d "$cpuset$NODE_CGROUP_ROOT" ]; then  # a v1 cpuset starts empty: give it its parent's
        cat "$cpuset/cpuset.cpus" > "$cpuset$NODE_CGROUP_ROOT/cpuset.cpus"
        cat "$cpuset/cpuset.mems" > "$cpuset$NODE_CGROUP_ROOT/cpuset.mems"
    fi
}

node_kubelet() {  # node_kubelet PORT HEALTHZ-PORT
    mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
    node_cgroups
    kubeconfig "$RUN_DIR/kubelet.kubeconfig" kubelet-client
    cat > "$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP_ROOT
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $2
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
registerWithTaints:
- {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
failSwapOn: false
systemReserved: {cpu: 500m, memory: 4Gi}
evictionHard: {memory.available: 256Mi, nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 32
podLogsDir: $NODE_DIR/pod-logs
resolvConf: /etc/resolv.conf
serializeImagePulls: false
nodeStatusReportFrequency: 10s
EOF
    launch kubelet --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$RUN_DIR/kubelet.kubeconfig" \
        --root-dir="$NODE_DIR/kubelet" --cert-dir="$NODE_DIR/kubelet/pki" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --node-labels="$NODE_LABEL" --v=1
    wait_for kubelet 90 curl -sf "http://127.0.0.1:$2/healthz"
}

node_start() {  # node_start KUBELET-PORT KUBELET-HEALTHZ-PORT REGISTRY-PORT
    local registry="localhost:$3" pause
    echo "$RUN_DIR" > "$NODE_OWNER_FILE"
    say "the real node: registry $registry, containerd, kubelet ($NODE_NAME on $NODE_IP)"
    node_registry "$3"
    pause="$(node_pause_image "$registry")"
    node_network
    node_containerd "$registry" "$pause"
    node_kubelet "$1" "$2"
    wait_for kubelet 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
}

node_volume_dirs() {  # node_volume_dirs COUNT: the directories of the real node's local volumes
    local i
    for i in $(seq 1 "$1"); do mkdir -p "$NODE_DIR/volumes/$(printf 'real-10gi-%04d' "$i")"; done
}

node_drain() {  # delete the node's pods while kubelet and API server run: a clean teardown
    alive kubelet && alive kube-apiserver || return 0
    local kubectl_bin; kubectl_bin="$(cat "$RUN_DIR/bin" 2>/dev/null)/kubectl"
    [ -x "$kubectl_bin" ] || return 0
    "$kubectl_bin" --kubeconfig "$KUBECONFIG_PATH" delete pods -A --field-selector "spec.nodeName=$NODE_NAME" \
        --grace-period=5 --wait=true --timeout=60s >/dev/null 2>&1 || true
}

node_cleanup() {  # after the processes stopped (or died): what they left on the machine
    local pid mnt ns cg
    # The real node is machine-wide: while another cluster runs it, a cluster started
    # with --no-node (or while the other had it) leaves it alone.
    if [ -f "$NODE_OWNER_FILE" ] && [ "$(cat "$NODE_OWNER_FILE")" != "$RUN_DIR" ]; then
        local other; other="$(cat "$NODE_OWNER_FILE")"
        for pid in "$other/pids/kubelet.pid" "$other/pids/containerd.pid"; do
            [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && return 0
        done
    fi
    # Shims of our containerd (by its socket), and the processes of the node's pods (by cgroup).
    for pid in $(grep -l -s -F -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        kill -KILL "$pid" 2>/dev/null && say "killed a leftover containerd shim ($pid)"
    done
    for cg in /sys/fs/cgroup/*"$NODE_CGROUP_ROOT"; do
        [ -d "$cg" ] || continue
        find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    done
    sleep 0.2
    # Mounts under the node's folder, deepest first (overlay roots, pod volumes, shm).
    while read -r mnt; do umount -l "$mnt" 2>/dev/null; done < <(
        awk -v d="$NODE_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    # Pod network namespaces with an address of ours; then the bridge.
    for ns in /run/netns/cni-*; do
        [ -e "$ns" ] || continue
        if ip netns exec "$(basename "$ns")" ip -4 -o addr 2>/dev/null | grep -qF " $NODE_SUBNET_PREFIX."; then
            ip netns delete "$(basename "$ns")" 2>/dev/null
        fi
    done
    ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && ip link delete "$NODE_BRIDGE"
    for cg in /sys/fs/cgroup/*"$NODE_CGROUP_ROOT"; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    if [ -f "$NODE_OWNER_FILE" ] && [ "$(cat "$NODE_OWNER_FILE")" = "$RUN_DIR" ]; then rm -f "$NODE_OWNER_FILE"; fi
    return 0
}
