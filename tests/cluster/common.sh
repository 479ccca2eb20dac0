# Shared by start.sh and stop.sh (sourced, not run): where the test cluster keeps
# its state. Everything it starts has a pid file in $RUN_DIR/pids; everything it
# writes (certificates, etcd data, logs, kubeconfigs) is under $RUN_DIR.
CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_SRC/../.." && pwd)"
RUN_DIR="${DSBUILD_CLUSTER_DIR:-$REPO_ROOT/.run/cluster}"
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
PKI_DIR="$RUN_DIR/pki"
KUBECONFIG_PATH="$RUN_DIR/kubeconfig"
# Components in start order; stop.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok docker-registry containerd kubelet)

say() { printf '\033[1;35m[cluster]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[cluster]\033[0m %s\n' "$*" >&2; exit 1; }

source "$CLUSTER_SRC/node.sh"

# Is the component whose pid file is $1 alive?
alive() { [ -f "$PID_DIR/$1.pid" ] && kill -0 "$(cat "$PID_DIR/$1.pid")" 2>/dev/null; }
