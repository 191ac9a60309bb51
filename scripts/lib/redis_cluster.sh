# Sourced by scripts/cluster and the Redis Cluster test: a local Redis Cluster of Debian's
# redis-server in cluster mode, three masters and a replica of each (so a master can fail over,
# 2 s after it stops answering), nothing kept on disk (Redis is SeatGrid's cache, so a replica
# takes over however long it was cut off: cluster-replica-validity-factor 0). Pids in
# DIR/<port>/pid.

# start_redis_cluster DIR PORT...: six ports; the first three become masters. Waits until every
# slot is served.
start_redis_cluster() {
  local dir=$1 p nodes=()
  shift
  for p in "$@"; do
    mkdir -p "$dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000 \
      --cluster-replica-validity-factor 0 \
      --dir "$dir/$p" --save "" --appendonly no >"$dir/$p/redis.log" 2>&1 &
    echo $! >"$dir/$p/pid"
    nodes+=("127.0.0.1:$p")
  done
  for p in "$@"; do wait_for 10 "redis-server on $p" redis-cli -p "$p" ping; done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
  wait_for 30 "the Redis Cluster to serve every slot" redis_cluster_ok "$@"
}

# redis_cluster_ok PORT...: every node says the cluster is ok, and every master has a replica
# that has finished copying it (so that it can take over).
redis_cluster_ok() {
  local p synced=0
  for p in "$@"; do
    redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || return 1
    redis-cli -p "$p" info replication | grep -q 'master_link_status:up' && synced=$((synced + 1))
  done
  [ "$synced" -ge $(($# / 2)) ]
}

# stop_redis_cluster DIR
stop_redis_cluster() {
  local f
  for f in "$1"/*/pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
}
