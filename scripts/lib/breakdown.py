"""The measurement of scripts/bench-breakdown: HOLDS buyers each hold two seats of a row of their
own (8 at a time), then statements per hold by caller from pg_stat_statements and Redis commands per
hold from INFO commandstats, as markdown.
Usage: breakdown.py URL HOLDS PG_PORT REDIS_PORT  (AUTH_HS256_SECRET signs the tokens)"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

url, holds, pg_port, redis_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
SECRET = os.environ["AUTH_HS256_SECRET"].encode()
ROWS, COLS, WARMUP = 1000, 100, 20


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub, role="buyer"):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "role": role, "iat": now, "exp": now + 3600}).encode())
    sig = b64(hmac.new(SECRET, f"{head}.{claims}".encode(), hashlib.sha256).digest())
    return f"{head}.{claims}.{sig}"


def post(path, body, sub, role="buyer", headers=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "authorization": "Bearer " + token(sub, role),
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def psql(sql):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", pg_port, "-U", "postgres", "-d", "seatgrid",
                           "-AtF", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout


def redis(*args):
    return subprocess.run(["redis-cli", "-p", redis_port, *args], check=True, capture_output=True,
                          text=True).stdout


status, event = post("/api/events", {"name": "Breakdown", "rows": ROWS, "cols": COLS, "price_cents": 5000},
                     "breakdown-organizer", "organizer")
assert status == 201, status
event_id = event["id"]


def hold(i, keyed=False):
    row = i % ROWS
    headers = {"idempotency-key": f"breakdown-{i}"} if keyed else {}
    return post(f"/api/events/{event_id}/holds", {"seats": [row * COLS, row * COLS + 1]}, f"buyer-{i}",
                headers=headers)[0]


CALLERS = [  # (caller, pattern over the statement), first match wins
    ("transaction control", r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)"),
    ("command: append events", r"INSERT INTO events"),
    ("command: load aggregates and snapshots", r"FROM (events|snapshots)\b.*aggregate_id|INTO snapshots|UPDATE snapshots"),
    ("command: idempotency keys", r"idempotency_keys"),
    ("runners: event log reads", r"FROM events"),
    ("runners: checkpoints", r"projection_checkpoints"),
    ("projector: read models", r"rm_(events|seat_maps|holds|orders|applied)|read_model_version"),
    ("sweeper", r"hold_sweeper_watermark|rm_orders"),
    ("wake-ups (LISTEN/NOTIFY)", r"LISTEN|pg_notify|NOTIFY"),
]


def measure(first, count, keyed):
    """Runs `count` holds from buyer `first` on, and prints what each successful one cost."""
    time.sleep(3)
    psql("SELECT pg_stat_statements_reset()")
    redis("CONFIG", "RESETSTAT")
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: hold(i, keyed), range(first, first + count)))
    elapsed = time.time() - started
    ok = statuses.count(201)
    time.sleep(5)  # the projector, the ingester and the sweeper catch up
    by_caller, rows = {}, []
    for line in psql("SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
                     "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'seatgrid') ORDER BY calls DESC").splitlines():
        calls, ms, query = line.split("\t", 2)
        calls, ms = int(calls), float(ms)
        if "pg_stat_statements" in query:
            continue
        caller = next((c for c, p in CALLERS if re.search(p, query, re.I | re.S)), "other")
        c = by_caller.setdefault(caller, [0, 0.0])
        c[0] += calls
        c[1] += ms
        rows.append((calls, ms, caller, query))
    redis_calls = {}
    for line in redis("INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_(\S+):calls=(\d+)", line)
        if m and not m.group(1).startswith("config"):
            redis_calls[m.group(1)] = int(m.group(2))
    per = lambda n: n / max(ok, 1)
    print(f"### {'With' if keyed else 'Without'} an `Idempotency-Key`")
    print()
    print(f"{ok} of {count} holds answered 201 in {elapsed:.1f} s ({ok / elapsed:.0f}/s, 8 at a time, "
          f"release build). Per successful hold:")
    print()
    print("| caller | statements per hold | PostgreSQL execution ms per hold |")
    print("|---|---|---|")
    total_calls = sum(c for c, _ in by_caller.values())
    total_ms = sum(ms for _, ms in by_caller.values())
    for caller, (calls, ms) in sorted(by_caller.items(), key=lambda kv: -kv[1][0]):
        print(f"| {caller} | {per(calls):.1f} | {per(ms):.2f} |")
    print(f"| **all** | **{per(total_calls):.1f}** | **{per(total_ms):.2f}** |")
    print()
    print("The most frequent statements:")
    print()
    print("| per hold | mean ms | caller | statement |")
    print("|---|---|---|---|")
    for calls, ms, caller, query in rows[:12]:
        q = query[:100].replace("|", "\\|")
        print(f"| {per(calls):.2f} | {ms / max(calls, 1):.3f} | {caller} | `{q}` |")
    print()
    cmds = ", ".join(f"{k} {per(v):.1f}" for k, v in sorted(redis_calls.items(), key=lambda kv: -kv[1]))
    print(f"Redis commands per hold (INFO commandstats): {cmds or 'none'} "
          f"({per(sum(redis_calls.values())):.1f} in all).")
    print()


with ThreadPoolExecutor(8) as pool:
    list(pool.map(hold, range(WARMUP)))
half = holds // 2
print(f"{WARMUP} warm-up holds first; then two passes of {half} holds, each buyer in a row of its own.")
print()
measure(WARMUP, half, keyed=False)
measure(WARMUP + half, half, keyed=True)
