#!/usr/bin/env python3
"""Heap allocations per request, by kind of request, for scripts/bench-allocs.

    allocs.py BASE_URL SERVER_PID ORGANIZER_TOKEN BUYER_TOKEN OTHER_BUYER_TOKEN OUT.md

Counts calls of mimalloc's `_mi_page_malloc_zero` in the server (a perf uprobe named
probe_seatgrid:_mi_page_malloc_zero, added by the caller): every allocation ends there, the slow
path (`_mi_malloc_generic`) after finding a page. One keep-alive client sends N requests of one
kind, one after another; background work (the projector's and ingester's polls) is measured alone
the same way and subtracted. Writes a Markdown table to OUT.md.
"""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse

N = 2000
EVENTS = "probe_seatgrid:_mi_page_malloc_zero"

base, pid, organizer, buyer, other, out = sys.argv[1:7]
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port)


def request(method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def counted(send, n=N):
    for _ in range(200):  # warm: caches, pools, metric handles
        send()
    counting_since = time.monotonic()
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", EVENTS, "-p", pid],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # perf attached before the first request
    for _ in range(n):
        send()
    time.sleep(0.2)
    perf.send_signal(2)
    counted_for = time.monotonic() - counting_since
    lines = perf.communicate()[1].strip().splitlines()
    total = sum(int(line.split(",")[0]) for line in lines if line[:1].isdigit())
    return total, counted_for


status, body = request("POST", "/api/events", json.dumps(
    {"name": "allocations", "rows": 10, "cols": 10, "max_seats_per_customer": 1}), organizer)
assert status == 201, (status, body)
event = json.loads(body)["id"]
status, body = request("POST", f"/api/events/{event}/holds", json.dumps({"seats": [3]}), buyer)
assert status == 201, (status, body)
time.sleep(1)

# Background allocations per second, measured with the client idle.
idle, idle_seconds = counted(lambda: time.sleep(0.001), n=1000)
per_second = idle / idle_seconds
kinds = [
    ("`GET /health/live`", lambda: request("GET", "/health/live")),
    ("`GET /health/live` with a buyer's token", lambda: request("GET", "/health/live", token=other)),
    ("`GET /api/events/{id}/seats` (seat map)", lambda: request("GET", f"/api/events/{event}/seats")),
    ("`POST /api/events/{id}/holds`, seat taken (409)",
     lambda: request("POST", f"/api/events/{event}/holds", json.dumps({"seats": [3]}), other)),
]
rows = []
for name, send in kinds:
    total, seconds = counted(send)
    rows.append((name, (total - per_second * seconds) / N))
with open(out, "w") as f:
    f.write(f"{N} requests of each kind, one keep-alive client, one after another "
            f"(background work: {per_second:.0f} allocations/s, subtracted)\n\n")
    f.write("| request | allocations per request |\n|---|---|\n")
    for name, per in rows:
        f.write(f"| {name} | {per:.0f} |\n")
print(open(out).read())
