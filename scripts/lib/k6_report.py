"""Turns the k6 summaries, CPU accounts and per-second server samples of `scripts/bench` into the
markdown tables and the PNG plot recorded in docs/BENCHMARKS.md.
Usage: k6_report.py OUT_DIR PNG PGBENCH_TPS"""
import json
import os
import sys

out_dir, png, pgbench_tps = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)


def load(name):
    path = os.path.join(out_dir, f"{name}.json")
    return json.load(open(path)) if os.path.exists(path) else None


def v(summary, metric, field):
    m = summary["metrics"].get(metric)
    return m["values"].get(field, 0) if m else 0


rows = []
health = load("health_baseline")
ceiling = load("health_ceiling")


def rate(summary):
    return v(summary, "http_reqs", "rate") if summary else 0


# Each flash-sale run is compared with /health/live under the same load shape.
same_shape = {"flash_sale": rate(health), "flash_sale_no_pause": rate(ceiling)}
for name in ["flash_sale", "flash_sale_no_pause", "baseline", "checkout", "soak"]:
    s = load(name)
    if not s:
        continue
    f = s["figures"]  # named by summary() in k6/lib.js
    rps = f["requests_per_second"]
    thresholds_ok = all(
        t.get("ok", True) for m in s["metrics"].values() for t in m.get("thresholds", {}).values()
    )
    rows.append(
        f"| {name} | {f['seconds']:.0f} | {f['requests']:.0f} | {rps:.0f} | "
        f"{(f'{rps / same_shape[name]:.2f}' if same_shape.get(name) else '-')} | "
        f"{f['holds_ok']:.0f} | {f['hold_conflicts']:.0f} | {f['server_errors']:.0f} | "
        f"{f['hold_p95_ms']:.1f} | {f['hold_p99_ms']:.1f} | {f['seat_map_p95_ms']:.1f} | "
        f"{f['oversold_seats']:.0f} | {'pass' if thresholds_ok else 'FAIL'} |"
    )

print("| scenario | s | requests | req/s | ÷ /health/live | holds 201 | holds 409 | 5xx | hold p95 ms | hold p99 ms | seat map p95 ms | oversold | thresholds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
print()
for label, summary in [("with the seed's 0.1 s pause", health), ("without a pause (the HTTP ceiling)", ceiling)]:
    if summary:
        print(f"- `/health/live`, flash_sale shape {label}: {rate(summary):.0f} requests/s, "
              f"p95 {v(summary, 'http_req_duration', 'p(95)'):.1f} ms")
# flash_sale's own script with every request sent to /health/live (k6/lib.js NO_WORK): k6's share
# of the cores for this script, so the most any server could reach with it on this machine.
for label, name, base in [("with the pause", "flash_sale_no_work", health),
                          ("without a pause", "flash_sale_no_work_no_pause", ceiling)]:
    s = load(name)
    if s and base:
        print(f"- flash_sale's own script against `/health/live` {label} (no store touched; what any "
              f"server could reach with this script here): {rate(s):.0f} requests/s = "
              f"{rate(s) / rate(base):.2f}x of `/health/live` under the same shape; "
              f"\"hold\" p95 {v(s, 'http_req_duration{name:hold}', 'p(95)'):.1f} ms, "
              f"\"seat map\" p95 {v(s, 'http_req_duration{name:seat_map}', 'p(95)'):.1f} ms")
if pgbench_tps:
    print(f"- Database ceiling: pgbench, one optimistic event append per transaction: {pgbench_tps:.0f} appends/s")
    fs = load("flash_sale")
    if fs:
        f = fs["figures"]
        print(f"- flash_sale holds answered (201 + 409) per second: "
              f"{(f['holds_ok'] + f['hold_conflicts']) / f['seconds']:.0f}")

co = load("checkout")
if co and co["figures"].get("checkouts_confirmed") is not None:
    f = co["figures"]
    print(f"- checkout: {f['checkouts_confirmed']:.0f} checkouts confirmed "
          f"({f['checkouts_confirmed'] / f['seconds']:.1f}/s over the run, think time included), "
          f"{f['checkouts_failed']:.0f} not paid (the mock fails 10 %), {f['checkouts_unsettled']:.0f} unsettled; "
          f"order placed to confirmed (as the buyer polls, every 0.2 s): p50 {f['order_to_confirmed_p50_ms']:.0f} ms, "
          f"p95 {f['order_to_confirmed_p95_ms']:.0f} ms (the mock answers after 200 ms)")

# Where the two cores went: CPU seconds by program during each scenario (scripts/lib/cpu_by_process.py).
cpu_rows = []
for name in ["flash_sale", "health_baseline", "flash_sale_no_work", "flash_sale_no_pause", "health_ceiling",
             "flash_sale_no_work_no_pause", "baseline", "checkout", "soak"]:
    s, path = load(name), os.path.join(out_dir, f"{name}.cpu.json")
    if not s or not os.path.exists(path):
        continue
    used = json.load(open(path))
    seconds = s["state"]["testRunDurationMs"] / 1000
    requests = v(s, "http_reqs", "count") or 1
    cells = [
        f"{used.get(p, 0) / seconds:.2f} ({1e6 * used.get(p, 0) / requests:.0f})"
        for p in ["k6", "seatgrid", "postgres", "redis-server", "clickhouse-serv", "other"]
    ]
    cpu_rows.append(f"| {name} | {sum(used.values()) / seconds:.2f} | " + " | ".join(cells) + " |")
if cpu_rows:
    print()
    print("CPU by program: cores used on average during the scenario (CPU µs per request):")
    print()
    print("| scenario | all | k6 | seatgrid | postgres | redis | clickhouse | other |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(cpu_rows))

# Throughput and latency over the flash sale, per second, from the server's /metrics sampled once a
# second (scripts/lib/sample_metrics.py).
def quantile(q, before, after):
    """Prometheus' histogram_quantile over the difference of two cumulative bucket snapshots."""
    bounds = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after)
    total = bounds[-1][1] if bounds else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if upper == float("inf"):
                return lower * 1000
            return 1000 * (lower + (upper - lower) * (rank - below) / max(count - below, 1e-9))
        lower, below = upper, count
    return None


series = os.path.join(out_dir, "flash_sale.metrics.jsonl")
samples = [json.loads(line) for line in open(series)] if os.path.exists(series) else []
if len(samples) > 2:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = samples[0]["time"]
    xs, rps, hold_p95, map_p95 = [], [], [], []
    for a, b in zip(samples, samples[1:]):
        dt = b["time"] - a["time"]
        xs.append(b["time"] - t0)
        rps.append((b["requests"] - a["requests"]) / dt)
        hold_p95.append(quantile(0.95, a["buckets"]["hold"], b["buckets"]["hold"]))
        map_p95.append(quantile(0.95, a["buckets"]["seat_map"], b["buckets"]["seat_map"]))
    fig, ax1 = plt.subplots(figsize=(10, 5))
    ax1.plot(xs, rps, color="tab:blue", label="requests/s")
    ax1.set_xlabel("seconds into the flash sale")
    ax1.set_ylabel("requests answered per second", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(xs, hold_p95, color="tab:red", label="hold p95 (server)")
    ax2.plot(xs, map_p95, color="tab:orange", label="seat map p95 (server)")
    ax2.set_ylabel("latency inside the server, ms", color="tab:red")
    fig.legend(loc="upper right")
    ax1.set_title("flash_sale: throughput and server-side p95 latency per second")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"\n![flash_sale throughput and latency]({os.path.basename(png)})")
