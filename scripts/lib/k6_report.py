"""Turns the k6 summaries and time series of `scripts/bench` into the markdown table and the PNG
plot recorded in docs/BENCHMARKS.md. Usage: k6_report.py OUT_DIR PNG PGBENCH_TPS"""
import csv
import json
import os
import sys
from collections import defaultdict

out_dir, png, pgbench_tps = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)


def load(name):
    path = os.path.join(out_dir, f"{name}.json")
    return json.load(open(path)) if os.path.exists(path) else None


def v(summary, metric, field):
    m = summary["metrics"].get(metric)
    return m["values"].get(field, 0) if m else 0


rows = []
health = load("health_baseline")
health_rps = v(health, "http_reqs", "rate") if health else 0
for name in ["flash_sale", "baseline", "checkout", "soak"]:
    s = load(name)
    if not s:
        continue
    seconds = s["state"]["testRunDurationMs"] / 1000
    rps = v(s, "http_reqs", "rate")
    thresholds_ok = all(
        t.get("ok", True) for m in s["metrics"].values() for t in m.get("thresholds", {}).values()
    )
    rows.append(
        f"| {name} | {seconds:.0f} | {v(s, 'http_reqs', 'count'):.0f} | {rps:.0f} | "
        f"{(f'{rps / health_rps:.2f}' if health_rps and name == 'flash_sale' else '-')} | "
        f"{v(s, 'holds_ok', 'count'):.0f} | {v(s, 'hold_conflicts', 'count'):.0f} | "
        f"{v(s, 'server_errors', 'count'):.0f} | {v(s, 'hold_duration', 'p(95)'):.1f} | "
        f"{v(s, 'hold_duration', 'p(99)'):.1f} | {v(s, 'seat_map_duration', 'p(95)'):.1f} | "
        f"{v(s, 'oversold_seats', 'count'):.0f} | {'pass' if thresholds_ok else 'FAIL'} |"
    )

print("| scenario | s | requests | req/s | ÷ /health/live | holds 201 | holds 409 | 5xx | hold p95 ms | hold p99 ms | seat map p95 ms | oversold | thresholds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
print()
if health:
    print(f"- HTTP ceiling: the flash_sale shape against `/health/live`: {health_rps:.0f} requests/s, "
          f"p95 {v(health, 'http_req_duration', 'p(95)'):.1f} ms")
if pgbench_tps:
    print(f"- Database ceiling: pgbench, one optimistic event append per transaction: {pgbench_tps:.0f} appends/s")
    fs = load("flash_sale")
    if fs:
        print(f"- flash_sale holds answered (201 + 409) per second: "
              f"{(v(fs, 'holds_ok', 'count') + v(fs, 'hold_conflicts', 'count')) / (fs['state']['testRunDurationMs'] / 1000):.0f}")

# Throughput and latency over the flash sale, per second, from k6's CSV output.
series = os.path.join(out_dir, "flash_sale.csv")
if os.path.exists(series):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reqs = defaultdict(int)
    lat = defaultdict(list)
    t0 = None
    with open(series) as f:
        for r in csv.DictReader(f):
            if r["metric_name"] != "http_req_duration":
                continue
            t = int(float(r["timestamp"]))
            t0 = t if t0 is None else min(t0, t)
            reqs[t] += 1
            lat[t].append(float(r["metric_value"]))
    xs = sorted(reqs)
    fig, ax1 = plt.subplots(figsize=(10, 5))
    ax1.plot([x - t0 for x in xs], [reqs[x] for x in xs], color="tab:blue", label="requests/s")
    ax1.set_xlabel("seconds into the flash sale")
    ax1.set_ylabel("requests per second", color="tab:blue")
    ax2 = ax1.twinx()

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(q * (len(values) - 1)))]

    ax2.plot([x - t0 for x in xs], [pct(lat[x], 0.95) for x in xs], color="tab:red", label="p95 latency")
    ax2.plot([x - t0 for x in xs], [pct(lat[x], 0.5) for x in xs], color="tab:orange", label="p50 latency")
    ax2.set_ylabel("latency (ms)", color="tab:red")
    fig.legend(loc="upper right")
    ax1.set_title("flash_sale: throughput and latency per second")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"\n![flash_sale throughput and latency]({os.path.basename(png)})")
