#!/usr/bin/env bash
# Starts dsbuild's test cluster: a real Kubernetes control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler) built from the official
# Go modules, with kwok playing the kubelets of simulated CPU and GPU nodes, and
# one real node (a kubelet with containerd, node.sh) that runs pods for real.
# Builds the binaries first if the cache lacks them (tests/cluster/build.sh).
# Writes an admin kubeconfig and prints its path. tests/cluster/stop.sh stops it all.
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() {
    cat <<EOF
Usage: tests/cluster/start.sh [--cpu-nodes N] [--a100-nodes N] [--t4-nodes N]
                              [--volumes-10gi N] [--volumes-50gi N] [--real-volumes N] [--no-node]
Starts the test cluster (or reuses a running one) and prints its kubeconfig path.
Defaults: 4 CPU nodes (16 CPU, 64Gi), 2 A100 nodes (8 GPUs), 2 T4 nodes (4 GPUs),
16 x 10Gi and 8 x 50Gi PersistentVolumes in the default StorageClass 'standard'.
The real node '$NODE_NAME' (label $NODE_LABEL, taint $NODE_TAINT_KEY:NoSchedule) with
12 local 10Gi volumes in the StorageClass 'real-local' (--real-volumes), and the
registry it pulls from (localhost:PORT, in cluster.env); --no-node leaves them out.
State, logs and pid files: \$DSBUILD_CLUSTER_DIR (default .run/cluster).
EOF
}
shape=() real_volumes=12 want_node=1
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-nodes|--a100-nodes|--t4-nodes|--volumes-10gi|--volumes-50gi)
            [ $# -ge 2 ] || die "$1 needs a number"; shape+=("$1" "$2"); shift 2 ;;
        --real-volumes) [ $# -ge 2 ] || die "$1 needs a number"; real_volumes="$2"; shift 2 ;;
        --no-node) want_node=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for tool in openssl curl; do command -v $tool >/dev/null || die "$tool is needed (apt-get install $tool)"; done
PY="$REPO_ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3

if alive kube-apiserver && [ -f "$KUBECONFIG_PATH" ] && \
   "$(cat "$RUN_DIR/bin")/kubectl" --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1 && \
   { ! grep -q '^DSBUILD_CLUSTER_NODE=' "$RUN_DIR/cluster.env" || { alive kubelet && alive containerd; }; }; then
    say "already running"; echo "$KUBECONFIG_PATH"; exit 0
fi
if ls "$PID_DIR"/*.pid >/dev/null 2>&1; then
    say "cleaning up a previous cluster that is not healthy"; "$CLUSTER_SRC/stop.sh"
fi

BIN="$("$CLUSTER_SRC/build.sh")"
mkdir -p "$PID_DIR" "$LOG_DIR" "$PKI_DIR"
mkdir -m 700 -p "$RUN_DIR/etcd"
echo "$BIN" > "$RUN_DIR/bin"
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# -- ports: free ones on the loopback address, recorded for the tests -------------
read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT \
    REGISTRY_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
cat > "$RUN_DIR/cluster.env" <<EOF
KUBECONFIG=$KUBECONFIG_PATH
DSBUILD_CLUSTER_API=https://127.0.0.1:$API_PORT
DSBUILD_CLUSTER_BIN=$BIN
EOF
if [ "$want_node" = 1 ]; then
    why_not="$(node_requirements)"
    if [ -n "$why_not" ]; then
        say "no real node: $why_not"; want_node=0
        printf 'DSBUILD_CLUSTER_NO_NODE=%s\n' "$why_not" >> "$RUN_DIR/cluster.env"  # for the tests' skip reason
    fi
fi
if [ "$want_node" = 1 ]; then
    printf 'DSBUILD_CLUSTER_NODE=%s\nDSBUILD_CLUSTER_REGISTRY=localhost:%s\n' "$NODE_NAME" "$REGISTRY_PORT" \
        >> "$RUN_DIR/cluster.env"
fi

# -- certificates and service-account keys, new for every cluster -----------------
say "certificates in $PKI_DIR"
cd "$PKI_DIR"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -days 2 -subj "/CN=dsbuild-test-cluster-ca" -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
cert() {  # [CA=name] cert NAME SUBJECT USAGE [SANS]: a key and a certificate signed by $CA (ca)
    key "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"; [ -n "${4:-}" ] && echo "subjectAltName=$4"; } > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "${CA:-ca}.crt" -CAkey "${CA:-ca}.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
local_sans="IP:127.0.0.1,DNS:localhost"
cert etcd-server "/CN=etcd" serverAuth,clientAuth "$local_sans"
cert apiserver "/CN=kube-apiserver" serverAuth "$local_sans,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
cert admin "/O=system:masters/CN=dsbuild-test-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kwok "/O=system:masters/CN=kwok-controller" clientAuth
cert kcm-serving "/CN=kube-controller-manager" serverAuth "$local_sans"
cert scheduler-serving "/CN=kube-scheduler" serverAuth "$local_sans"
node_certs
# The aggregation layer's front proxy (as kubeadm sets it up): its own CA and client.
key front-proxy-ca
openssl req -x509 -new -key front-proxy-ca.key -days 2 -subj "/CN=front-proxy-ca" -out front-proxy-ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
CA=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" clientAuth
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
chmod 600 ./*.key
cd - >/dev/null

kubeconfig() {  # kubeconfig FILE CERT-NAME
    cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: dsbuild-test
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI_DIR/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$PKI_DIR/$2.crt", client-key: "$PKI_DIR/$2.key"}
contexts:
- name: dsbuild-test
  context: {cluster: dsbuild-test, user: $2, namespace: default}
current-context: dsbuild-test
EOF
}
kubeconfig "$KUBECONFIG_PATH" admin
kubeconfig "$RUN_DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$RUN_DIR/scheduler.kubeconfig" scheduler
kubeconfig "$RUN_DIR/kwok.kubeconfig" kwok

launch() {  # launch NAME ARGS...: start in its own session, log and pid under $RUN_DIR
    local name="$1"; shift
    setsid "$BIN/$name" "$@" > "$LOG_DIR/$name.log" 2>&1 < /dev/null &
    echo $! > "$PID_DIR/$name.pid"
}
wait_for() {  # wait_for NAME SECONDS COMMAND...: until COMMAND succeeds or NAME dies
    local name="$1" limit="$2" t0=$SECONDS; shift 2
    until "$@" >/dev/null 2>&1; do
        alive "$name" || { tail -n 15 "$LOG_DIR/$name.log" >&2; die "$name exited; log: $LOG_DIR/$name.log"; }
        [ $((SECONDS - t0)) -lt "$limit" ] || { tail -n 15 "$LOG_DIR/$name.log" >&2; die "$name not ready after ${limit}s; log: $LOG_DIR/$name.log"; }
        sleep 0.3
    done
}
healthz() { curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" "$1"; }

say "etcd on 127.0.0.1:$ETCD_PORT"
launch etcd --name=dsbuild-test --data-dir="$RUN_DIR/etcd" \
    --listen-client-urls="https://127.0.0.1:$ETCD_PORT" --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="dsbuild-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --cert-file="$PKI_DIR/etcd-server.crt" --key-file="$PKI_DIR/etcd-server.key" \
    --client-cert-auth --trusted-ca-file="$PKI_DIR/ca.crt" \
    --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level=warn
wait_for etcd 60 curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/apiserver-etcd-client.crt" \
    --key "$PKI_DIR/apiserver-etcd-client.key" "https://127.0.0.1:$ETCD_PORT/health"

say "kube-apiserver on https://127.0.0.1:$API_PORT"
launch kube-apiserver --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --etcd-servers="https://127.0.0.1:$ETCD_PORT" --etcd-cafile="$PKI_DIR/ca.crt" \
    --etcd-certfile="$PKI_DIR/apiserver-etcd-client.crt" --etcd-keyfile="$PKI_DIR/apiserver-etcd-client.key" \
    --tls-cert-file="$PKI_DIR/apiserver.crt" --tls-private-key-file="$PKI_DIR/apiserver.key" \
    --client-ca-file="$PKI_DIR/ca.crt" \
    --requestheader-client-ca-file="$PKI_DIR/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI_DIR/front-proxy-client.crt" --proxy-client-key-file="$PKI_DIR/front-proxy-client.key" \
    --kubelet-client-certificate="$PKI_DIR/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI_DIR/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI_DIR/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$PKI_DIR/sa.pub" --service-account-signing-key-file="$PKI_DIR/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
    --authorization-mode=Node,RBAC --anonymous-auth=false \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,ResourceQuota,NodeRestriction,PodSecurity,Priority,StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,TaintNodesByCondition,PodNodeSelector,PodTolerationRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --allow-privileged=true --profiling=false  # privileged only where PodSecurity allows it (rootful build pods)
wait_for kube-apiserver 120 healthz "https://127.0.0.1:$API_PORT/readyz"

say "kube-controller-manager and kube-scheduler"
launch kube-controller-manager --kubeconfig="$RUN_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$RUN_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$RUN_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --tls-cert-file="$PKI_DIR/kcm-serving.crt" --tls-private-key-file="$PKI_DIR/kcm-serving.key" \
    --client-ca-file="$PKI_DIR/ca.crt" --root-ca-file="$PKI_DIR/ca.crt" \
    --service-account-private-key-file="$PKI_DIR/sa.key" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI_DIR/ca.crt" --cluster-signing-key-file="$PKI_DIR/ca.key" \
    --service-cluster-ip-range=10.96.0.0/16 --leader-elect=false \
    --controllers='*,-bootstrapsigner,-tokencleaner' --kube-api-qps=200 --kube-api-burst=400
launch kube-scheduler --kubeconfig="$RUN_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$RUN_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$RUN_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
    --tls-cert-file="$PKI_DIR/scheduler-serving.crt" --tls-private-key-file="$PKI_DIR/scheduler-serving.key" \
    --client-ca-file="$PKI_DIR/ca.crt" --leader-elect=false --kube-api-qps=200 --kube-api-burst=400
wait_for kube-controller-manager 60 healthz "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler 60 healthz "https://127.0.0.1:$SCHED_PORT/healthz"

say "kwok (simulated kubelets) with kwok's own stages"
stages="$(ls "$BIN"/stages/*.yaml | paste -sd, -)"
launch kwok --kubeconfig="$RUN_DIR/kwok.kubeconfig" --config="$stages" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=10.240.0.1 \
    --server-address="127.0.0.1:$KWOK_PORT"
wait_for kwok 60 curl -sf "http://127.0.0.1:$KWOK_PORT/healthz"

say "nodes, the 'standard' StorageClass and PersistentVolumes"
wait_for kube-apiserver 60 kubectl get serviceaccount default -n default
"$PY" "$CLUSTER_SRC/objects.py" "${shape[@]}" | kubectl apply -f - >/dev/null
wait_for kwok 60 kubectl wait --for=condition=Ready node -l type=kwok --timeout=5s
if [ "$want_node" = 1 ]; then
    node_start "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$REGISTRY_PORT"
    node_volume_dirs "$real_volumes"
    "$PY" "$CLUSTER_SRC/objects.py" --only-real-node "$NODE_NAME" --real-volume-dir "$NODE_DIR/volumes" \
        --real-volumes "$real_volumes" | kubectl apply -f - >/dev/null
fi
say "ready: $(kubectl get nodes --no-headers | wc -l) nodes, $(kubectl get pv --no-headers | wc -l) volumes; KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
