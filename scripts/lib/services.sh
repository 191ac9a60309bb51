# Sourced by scripts/up and scripts/test: makes sure the local services SeatGrid needs are running,
# starting (and for ClickHouse, installing) whatever is missing. Safe to run any number of times.
# Data the project starts itself lives under .local/ in the project root.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$what did not come up within ${seconds}s"; return 1
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  else
    log "PostgreSQL is not installed: install it (apt-get install postgresql) or point DATABASE_URL at one"
    return 1
  fi
  wait_for 30 PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
  if ! command -v redis-server >/dev/null; then
    log "installing Redis (Debian package)"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade redis-server >/dev/null
  fi
  log "starting Redis"
  mkdir -p "$LOCAL/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$LOCAL/redis" --logfile "$LOCAL/redis/redis.log"
  wait_for 15 Redis redis-cli -h 127.0.0.1 -p 6379 ping
}

clickhouse_up() { curl -sf "http://127.0.0.1:8123/ping" 2>/dev/null | grep -q Ok; }

ensure_clickhouse() {
  local dir="$LOCAL/clickhouse"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/user_files" "$dir/format_schemas"
  sed "s#@DIR@#$dir#g" "$ROOT/scripts/clickhouse/config.xml" > "$dir/config.xml"
  # Users are re-read by a running server, so changes to them apply without a restart.
  cp "$ROOT/scripts/clickhouse/users.xml" "$dir/users.xml"
  if clickhouse_up; then return 0; fi
  if ! command -v clickhouse-server >/dev/null && [ ! -x /usr/bin/clickhouse ]; then
    log "installing ClickHouse (Debian's clickhouse-server package)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade clickhouse-server clickhouse-client >/dev/null
  fi
  log "starting ClickHouse (data in $dir)"
  (cd "$dir" && nohup clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &)
  wait_for 60 ClickHouse clickhouse_up
}

# The development token secret: AUTH_HS256_SECRET if set, else one made once for this checkout
# (.local/dev-secret, readable by its owner only). The server verifies tokens with it; `seatgrid
# token`, the k6 scenarios and the benchmarks sign with it.
ensure_dev_secret() {
  if [ -z "${AUTH_HS256_SECRET:-}" ]; then
    if [ ! -s "$LOCAL/dev-secret" ]; then
      (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$LOCAL/dev-secret")
    fi
    AUTH_HS256_SECRET=$(cat "$LOCAL/dev-secret")
  fi
  export AUTH_HS256_SECRET
}

# The development payment webhook secret, shared by the server and `seatgrid payments-mock`:
# PAYMENTS_WEBHOOK_SECRET if set, else one made once for this checkout (.local/webhook-secret).
ensure_webhook_secret() {
  if [ -z "${PAYMENTS_WEBHOOK_SECRET:-}" ]; then
    if [ ! -s "$LOCAL/webhook-secret" ]; then
      (umask 077; printf 'whsec_%s' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$LOCAL/webhook-secret")
    fi
    PAYMENTS_WEBHOOK_SECRET=$(cat "$LOCAL/webhook-secret")
  fi
  export PAYMENTS_WEBHOOK_SECRET
}

# Starts the mock payment provider (`seatgrid payments-mock`, its own process, on
# PAYMENTS_MOCK_LISTEN, default 127.0.0.1:5099) unless one answers there, and points the server at
# it (PAYMENTS_PROVIDER_URL). Its log is .local/payments-mock.log. $1: the seatgrid binary.
ensure_payments_mock() {
  local bin=$1 listen=${PAYMENTS_MOCK_LISTEN:-127.0.0.1:5099}
  ensure_webhook_secret
  export PAYMENTS_PROVIDER_URL=${PAYMENTS_PROVIDER_URL:-http://$listen}
  if curl -s -o /dev/null "http://$listen/v1/payment_intents/none"; then
    return 0
  fi
  log "starting the mock payment provider on $listen (log: $LOCAL/payments-mock.log)"
  PAYMENTS_MOCK_LISTEN=$listen nohup "$bin" payments-mock >"$LOCAL/payments-mock.log" 2>&1 &
  wait_for 20 "the payment mock" curl -s -o /dev/null "http://$listen/v1/payment_intents/none"
}

# Debian's Chromium, for the tests that load SeatGrid's pages in a real browser (headless; never a
# browser download).
ensure_chromium() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  log "installing Chromium and chromedriver (Debian's chromium, chromium-driver) for the browser tests"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade chromium chromium-driver >/dev/null
}

# Debian's HAProxy, for the local cluster (scripts/cluster) and its tests.
ensure_haproxy() {
  command -v haproxy >/dev/null && return 0
  log "installing HAProxy (Debian's haproxy package) for the local cluster"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade haproxy >/dev/null
}

ensure_patroni() {
  command -v patroni >/dev/null && command -v etcd >/dev/null && return 0
  log "installing Patroni and etcd (Debian's patroni, etcd-server) for the PostgreSQL failover pair"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade --no-install-recommends \
    patroni etcd-server >/dev/null
}

ensure_services() {
  ensure_postgres
  ensure_redis
  ensure_clickhouse
}

# Drops the per-test databases (`seatgrid_test_*`, in PostgreSQL and ClickHouse) earlier runs left.
drop_test_databases() {
  local dbs
  dbs=$(psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'seatgrid\_test\_%'" 2>/dev/null || true)
  for db in $dbs; do
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done
  dbs=$(curl -sf "http://127.0.0.1:8123/" --data-binary \
    "SELECT name FROM system.databases WHERE name LIKE 'seatgrid\\_test\\_%'" 2>/dev/null || true)
  for db in $dbs; do
    curl -sf "http://127.0.0.1:8123/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true
  done
}
