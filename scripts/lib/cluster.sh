# Sourced by scripts/cluster and scripts/bench-cluster: the processes of a local cluster.
# Each started process's pid is appended to CLUSTER_PIDS; stop_cluster stops them all.
CLUSTER_PIDS=()

# start_role BIN LOG PORT ROLES: `seatgrid serve` with ROLES on 127.0.0.1:PORT, output in LOG.
start_role() {
  SEATGRID_LISTEN="127.0.0.1:$3" SEATGRID_ROLES=$4 "$1" serve >"$2" 2>&1 &
  CLUSTER_PIDS+=($!)
}

# start_haproxy DIR LISTEN_PORT API_PORT...: HAProxy on 127.0.0.1:LISTEN_PORT in front of the API
# processes, from deploy/haproxy/haproxy.cfg.template (config and log in DIR); waits until it
# answers /health/ready.
start_haproxy() {
  local dir=$1 listen=$2 servers="" i=0; shift 2
  for p in "$@"; do
    i=$((i + 1))
    servers+="    server api$i 127.0.0.1:$p"$'\n'
  done
  python3 - "$dir/haproxy.cfg" "127.0.0.1:$listen" "$servers" <<'PY'
import sys
out, listen, servers = sys.argv[1:4]
text = open("deploy/haproxy/haproxy.cfg.template").read()
open(out, "w").write(text.replace("@LISTEN@", listen).replace("@SERVERS@", servers.rstrip("\n")))
PY
  haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  wait_for 20 "HAProxy" curl -sf "http://127.0.0.1:$listen/health/ready"
}

# wait_ready PORT...: every process answers /health/ready.
wait_ready() {
  for p in "$@"; do wait_for 60 "the process on port $p" curl -sf "http://127.0.0.1:$p/health/ready"; done
}

stop_cluster() {
  kill "${CLUSTER_PIDS[@]}" 2>/dev/null || true
  wait "${CLUSTER_PIDS[@]}" 2>/dev/null || true
  CLUSTER_PIDS=()
}
