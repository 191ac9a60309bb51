"""The report of scripts/bench-holds: durable holds against the lower of two ceilings measured in
the same run (pgbench appends/s; half of /health/live's rate under the same k6 shape), the latency
ratio, and CPU seconds by program.

Usage: holds_report.py OUT_DIR PGBENCH_TPS"""
import json
import os
import sys
from pathlib import Path

out, tps = Path(sys.argv[1]), float(sys.argv[2] or 0)


def load(name):
    return json.loads((out / f"{name}.json").read_text())["metrics"]


def seconds(text):
    # The scenario's length (k6's own rates also count set-up and the teardown audit).
    text = text.strip()
    return float(text[:-1]) * (60 if text.endswith("m") else 1)


holds, health = load("durable_holds"), load("durable_holds_health")
took = seconds(os.environ.get("DURATION", "20s"))
ok = holds.get("http_reqs{name:hold,status:201}", {}).get("values", {}).get("count", 0)
hold_lat = holds["http_req_duration{name:hold}"]["values"]
statuses = {k.split("status:")[1].rstrip("}"): v["values"]["count"]
            for k, v in holds.items() if k.startswith("http_reqs{name:hold,status:")}
health_rate = health["http_reqs"]["values"]["count"] / took
health_lat = health["http_req_duration"]["values"]
rate = ok / took if took else 0
ceiling = min(tps, health_rate / 2) if tps else health_rate / 2
which = "pgbench" if tps and tps <= health_rate / 2 else "half of /health/live"


def cpu(name):
    path = out / f"{name}.cpu.json"
    if not path.exists():
        return "n/a"
    data = json.loads(path.read_text())
    return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(data.items(), key=lambda kv: -kv[1])[:5])


met = lambda ok: "met" if ok else "**not met**"


def crowd_rows():
    """The crowd run's figures, if it ran."""
    if not (out / "durable_holds_crowd.json").exists():
        return ""
    crowd = load("durable_holds_crowd")
    lat = crowd["http_req_duration{name:hold}"]["values"]
    by_status = {k.split("status:")[1].rstrip("}"): int(v["values"]["count"])
                 for k, v in crowd.items() if k.startswith("http_reqs{name:hold,status:")}
    by_status = {s: n for s, n in by_status.items() if n}
    ok = by_status.get("201", 0)
    # k6 counts every answer but 2xx, 409 and 429 as failed (k6/lib.js).
    unexpected = int(crowd["http_req_failed"]["values"].get("passes", 0))
    only_expected = unexpected == 0
    fives = int(crowd.get("server_errors", {}).get("values", {}).get("count", 0))
    return f"""
Crowding a few rows (`SHAPE=crowd`: every 2 s the next 5 rows, 2 consecutive seats at random):

| figure | value |
|---|---|
| answers by status | {by_status}, other {unexpected} ({ok / took:,.0f} holds/s) |
| every answer 201, 409 or 429; zero 5xx | {met(only_expected and fives == 0)} |
| hold p50 / p95 / p99 (target p99 < 500 ms) | {lat['p(50)']:.0f} / {lat['p(95)']:.0f} / {lat['p(99)']:.0f} ms, {met(lat['p(99)'] < 500)} |"""
# Buyers who got round their 200 seats meet their own holds (409): the event ran out, not the
# system, so the rate is a floor.
sold_out = statuses.get("409", 0) > 0
floor = " (**a floor**: buyers ran out of seats, 409s; run with a shorter DURATION)" if sold_out else ""
print(f"""| figure | value |
|---|---|
| successful holds/s | {rate:,.0f}{floor} ({ok:,.0f} in {took:.0f} s; answers by status: {statuses}) |
| hold p50 / p95 / p99 | {hold_lat['p(50)']:.0f} / {hold_lat['p(95)']:.0f} / {hold_lat['p(99)']:.0f} ms |
| /health/live, same shape | {health_rate:,.0f} req/s, p99 {health_lat['p(99)']:.1f} ms |
| pgbench, one append per transaction, 16 clients | {tps:,.0f} tps |
| lower ceiling ({which}) | {ceiling:,.0f}/s |
| holds / lower ceiling (target >= 1.0x) | {rate / ceiling if ceiling else 0:.2f}x, {met(ceiling and rate >= ceiling)} |
| hold p99 / /health/live p99 (target <= 2x) | {hold_lat['p(99)'] / health_lat['p(99)'] if health_lat['p(99)'] else 0:.1f}x, {met(hold_lat['p(99)'] <= 2 * health_lat['p(99)'])} |

{crowd_rows()}

CPU by program during the holds run: {cpu('durable_holds')}.
CPU by program during the /health/live run: {cpu('durable_holds_health')}.""")
