#!/usr/bin/env bash
# Stops dsbuild's test cluster: every process tests/cluster/start.sh started (by
# the pids it recorded, newest first), then removes the cluster's folder
# (etcd data, certificates, kubeconfigs, logs). The real node's pods are deleted
# first (a clean teardown); whatever a crash left behind (containers, mounts,
# network namespaces, the bridge, cgroups) goes after. Safe to run when nothing runs.
set -uo pipefail
source "$(dirname "$0")/common.sh"
keep_logs=0
case "${1:-}" in
    --keep-logs) keep_logs=1 ;;
    -h|--help) echo "Usage: tests/cluster/stop.sh [--keep-logs]"
               echo "Stops the test cluster and removes $RUN_DIR (--keep-logs keeps $LOG_DIR)."; exit 0 ;;
    "") ;;
    *) die "unknown argument $1 (see --help)" ;;
esac

stop_one() {
    local name="$1" pidfile="$PID_DIR/$1.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
        say "stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}
node_drain
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_one "${COMPONENTS[$i]}"; done
node_cleanup

if [ -d "$RUN_DIR" ]; then
    if [ "$keep_logs" = 1 ] && [ -d "$LOG_DIR" ]; then
        find "$RUN_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
        say "removed the cluster's state; logs kept in $LOG_DIR"
    else
        rm -rf "$RUN_DIR"
        say "removed $RUN_DIR"
    fi
fi
