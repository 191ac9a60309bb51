# Sourced by scripts/cluster and the Patroni failover test: a local PostgreSQL pair managed by
# Debian's Patroni with one etcd (deploy/patroni/patroni.yml.template), on ports of its own.
# PostgreSQL refuses to run as root, so Patroni runs as the `postgres` user; DIR must be new.
# Pids: DIR/etcd.pid, DIR/<member>/patroni.pid, DIR/<member>/data/postmaster.pid.

PATRONI_PG_BIN=${PATRONI_PG_BIN:-$(dirname "$(readlink -f "$(command -v pg_ctl)")")}

# start_patroni DIR ETCD_PORT PG_PORT1 REST_PORT1 PG_PORT2 REST_PORT2 [ETCD_PEER_PORT]: starts
# etcd (peer port ETCD_PORT + 1 unless given) and two members (pg1, pg2), then waits until one
# leads and the other is its synchronous standby. On failure it prints the end of every log.
start_patroni() {
  local dir=$1 etcd=$2 peer=${7:-$(($2 + 1))}
  mkdir -p "$dir"
  etcd --name seatgrid --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd" --advertise-client-urls "http://127.0.0.1:$etcd" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "seatgrid=http://127.0.0.1:$peer" >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  chown postgres "$dir"
  if ! wait_for 30 "etcd" curl -sf "http://127.0.0.1:$etcd/health"; then
    patroni_logs "$dir"
    return 1
  fi
  start_patroni_member "$dir" pg1 "$etcd" "$3" "$4"
  start_patroni_member "$dir" pg2 "$etcd" "$5" "$6"
  # 11-14 s here, even during a build; the rest is room for a loaded CI machine.
  if ! wait_for 150 "a Patroni leader with a synchronous standby" patroni_has_sync_standby "$4"; then
    patroni_logs "$dir"
    return 1
  fi
}

# patroni_logs DIR: the last lines of etcd's and each member's log, to stderr.
patroni_logs() {
  local f
  for f in "$1/etcd.log" "$1"/pg*/patroni.log; do
    [ -f "$f" ] || continue
    echo "--- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

# start_patroni_member DIR NAME ETCD_PORT PG_PORT REST_PORT
start_patroni_member() {
  local dir=$1 name=$2
  mkdir -p "$dir/$name"
  sed -e "s|@NAME@|$name|g" -e "s|@DIR@|$dir|g" -e "s|@ETCD_PORT@|$3|g" \
    -e "s|@PG_PORT@|$4|g" -e "s|@REST_PORT@|$5|g" -e "s|@PG_BIN@|$PATRONI_PG_BIN|g" \
    "$ROOT/deploy/patroni/patroni.yml.template" >"$dir/$name/patroni.yml"
  chown -R postgres "$dir/$name"
  # setpriv execs Patroni itself, so the pid is Patroni's.
  HOME="$dir/$name" setpriv --reuid=postgres --regid=postgres --init-groups \
    patroni "$dir/$name/patroni.yml" >"$dir/$name/patroni.log" 2>&1 &
  echo $! >"$dir/$name/patroni.pid"
}

# patroni_has_sync_standby REST_PORT: the cluster has a running leader and a streaming sync standby.
patroni_has_sync_standby() {
  curl -sf "http://127.0.0.1:$1/cluster" | python3 -c '
import json, sys
roles = {(m["role"], m["state"]) for m in json.load(sys.stdin)["members"]}
ok = any(r == "leader" and s == "running" for r, s in roles) and \
     any(r in ("sync_standby", "synchronous_standby") and s in ("running", "streaming") for r, s in roles)
sys.exit(0 if ok else 1)'
}

# stop_patroni DIR: kills every process of the pair (members first, then etcd).
stop_patroni() {
  local dir=$1 f
  for f in "$dir"/pg*/patroni.pid "$dir"/pg*/data/postmaster.pid "$dir/etcd.pid"; do
    [ -f "$f" ] && kill -9 "$(head -1 "$f")" 2>/dev/null || true
  done
}
