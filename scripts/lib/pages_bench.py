"""First render of the pages in Chromium (scripts/bench-pages): the event list and event pages of
1,000-, 10,000- and 100,000-seat events, each loaded RUNS times in a fresh navigation by Debian's
headless Chromium through chromedriver; then the cost of live seat changes on the 100,000-seat map.
Prints a Markdown report. Usage: pages_bench.py BASE_URL RUNS"""

import gzip
import json
import statistics
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BASE, RUNS = sys.argv[1], int(sys.argv[2])


def call(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or "null")


token = call("POST", "/api/dev/token", {"name": "bench-organizer", "role": "organizer"})["token"]
events = {}
for seats, rows, cols in [(1_000, 10, 100), (10_000, 100, 100), (100_000, 100, 1000)]:
    e = call("POST", "/api/events", {"name": f"{seats:,} seats", "rows": rows, "cols": cols,
                                     "price_cents": 4500}, token)
    events[seats] = e["id"]
for seats, eid in events.items():  # the read side has each seat map
    for _ in range(200):
        try:
            if len(call("GET", f"/api/events/{eid}/seats").get("seats", "")) == seats:
                break
        except Exception:
            pass
        time.sleep(0.1)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def load(path, ready_js):
    """Milliseconds from the navigation's start until the page said it was ready."""
    driver.get("about:blank")
    driver.get(BASE + path)
    for _ in range(600):
        value = driver.execute_script(ready_js)
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"{path} never became ready")


rows = []
list_ms = [load("/", "return window.seatgridPage && window.seatgridPage.path === '/' && window.seatgridPage.readyAt")
           for _ in range(RUNS)]
rows.append(("event list (`/`)", "-", list_ms, None))
for seats, eid in events.items():
    ready, drawn = [], []
    for _ in range(RUNS):
        ready.append(load(f"/events/{eid}", "return window.seatgridPage && window.seatgridPage.readyAt"))
        drawn.append(driver.execute_script("return window.seatgrid.firstRenderMs"))
    rows.append((f"event page, {seats:,}-seat map", f"{seats:,}", ready, drawn))

# Live changes on the 100,000-seat map: each repaints one seat.
live = driver.execute_script("""
  const m = window.seatgrid.map, n = 20000, t0 = performance.now();
  for (let i = 0; i < n; i++) m.apply((i * 7919) % m.status.length, i % 2 ? 'AVAILABLE' : 'HELD', m.version + 1);
  const t1 = performance.now();
  m.drawAll();
  const t2 = performance.now();
  return { perChangeUs: (t1 - t0) * 1000 / n, fullRedrawMs: t2 - t1 };""")
heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null")
driver.quit()

# What a page downloads: every script, compressed as sent.
scripts = ["/app/app.js", "/app/api.js", "/app/dom.js", "/app/buyer.js", "/app/organizer.js", "/app/seatmap.js"]
shell = urllib.request.urlopen(BASE + "/").read().decode()
scripts += [p.split('"')[0] for p in shell.split('<script src="')[1:]]
total = 0
for path in scripts:
    req = urllib.request.Request(BASE + path, headers={"accept-encoding": "gzip"})
    with urllib.request.urlopen(req) as res:
        body = res.read()
        total += len(body) if res.headers.get("content-encoding") == "gzip" else len(gzip.compress(body))


def fmt(xs):
    return f"{statistics.median(xs):.0f} / {max(xs):.0f}"


print(f"{RUNS} fresh loads of each page in headless Chromium 1280x900 (ms from the navigation's start):\n")
print("| page | ready, median / max | seat map drawn, median / max (from the module's start) | target < 1 s |")
print("|---|---|---|---|")
for name, _, ready, drawn in rows:
    met = "met" if max(ready) < 1000 else "**not met**"
    print(f"| {name} | {fmt(ready)} | {fmt(drawn) if drawn else '-'} | {met} |")
print()
print(f"- live changes on the 100,000-seat map: {live['perChangeUs']:.1f} µs per seat change (one cell repainted); "
      f"a full redraw {live['fullRedrawMs']:.0f} ms")
if heap:
    print(f"- JavaScript heap with the 100,000-seat page open: {heap / 1e6:.1f} MB")
print(f"- JavaScript shipped, gzipped: {total / 1024:.1f} KB ({len(scripts)} files; budget 200 KB: "
      f"{'met' if total < 200 * 1024 else '**not met**'})")
