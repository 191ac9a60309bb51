#!/usr/bin/env python3
"""Samples a SeatGrid server's /metrics once a second, for the load benchmark's plot.

    sample_metrics.py METRICS_URL OUT.jsonl     # runs until killed (SIGTERM)

Each line is one scrape: the time and the running totals the plot needs, summed over methods and
statuses: requests answered, and the request-duration histogram's cumulative bucket counts
(`le` -> count) for the hold and seat-map routes. The plot takes differences between lines, so a
second's throughput and p95 are the server's own view of that second. One scrape a second costs the server next to nothing, unlike
k6's per-request CSV output, which costs k6 a fifth of its throughput and would make the flash sale
look slower than its /health/live baseline for a reason that has nothing to do with the server.
"""
import json
import re
import signal
import sys
import time
import urllib.request

ROUTES = {"hold": "/api/events/:event_id/holds", "seat_map": "/api/events/:event_id/seats"}
LINE = re.compile(r'^(\w+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(url):
    requests, buckets = 0.0, {key: {} for key in ROUTES}
    with urllib.request.urlopen(url, timeout=5) as res:
        text = res.read().decode()
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), dict(LABEL.findall(m.group(2))), float(m.group(3))
        if name == "seatgrid_http_requests_total":
            requests += value
        elif name == "seatgrid_http_request_duration_seconds_bucket":
            for key, route in ROUTES.items():
                if labels.get("route") == route:
                    le = labels["le"]
                    buckets[key][le] = buckets[key].get(le, 0.0) + value
    return requests, buckets


def main():
    url, out = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(out, "w") as f:
        while True:
            started = time.time()
            try:
                requests, buckets = scrape(url)
                f.write(json.dumps({"time": started, "requests": requests, "buckets": buckets}) + "\n")
                f.flush()
            except OSError:
                pass  # the server is starting or busy; the next second tries again
            time.sleep(max(0.0, 1.0 - (time.time() - started)))


if __name__ == "__main__":
    main()
