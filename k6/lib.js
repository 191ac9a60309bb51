// Shared by every SeatGrid k6 scenario: the API address, event set-up, the figures every summary
// prints, and the oversell audit that each scenario runs in teardown().
//
// Instrumentation policy: k6 shares the machine's two cores with the server, so the hot path adds
// no samples of its own. Latency and hold outcomes come from k6's built-in request metrics, split by
// the `name` and `status` tags (see `withFigures`); only rare events (5xx, the audit's findings) go
// to custom counters.
import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:5000';

// Bearer tokens, signed here with the server's development secret (HS256, as `seatgrid token`
// does): scripts/k6 and the benchmarks export AUTH_HS256_SECRET, the same one the server uses.
const SECRET = __ENV.AUTH_HS256_SECRET;
const JWT_HEADER = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');
export function token(sub, role) {
  if (!SECRET) throw new Error('set AUTH_HS256_SECRET (scripts/k6 does) to sign tokens');
  const now = Math.floor(Date.now() / 1000);
  const claims = encoding.b64encode(
    JSON.stringify({ sub, role: role || 'buyer', iat: now, exp: now + 3600 }), 'rawurl');
  const signature = crypto.hmac('sha256', SECRET, `${JWT_HEADER}.${claims}`, 'base64rawurl');
  return `${JWT_HEADER}.${claims}.${signature}`;
}
// The organizer every scenario's event belongs to (the audit reads its holds as them).
export const ORGANIZER = 'k6-organizer';
function authorized(params, sub, role) {
  return withBearer(params, `Bearer ${token(sub, role)}`);
}
function withBearer(params, authorization) {
  const headers = Object.assign({}, params.headers || {}, { Authorization: authorization });
  return Object.assign({}, params, { headers });
}
// A buyer's Authorization header: a name is signed now, a signed-in buyer (`signIn`) keeps theirs.
function bearerOf(customer) {
  return typeof customer === 'string' ? `Bearer ${token(customer)}` : customer.authorization;
}

// The seed's crash test (its tests/k6/crash_test.js) pauses 0.1 s after every iteration. With
// PAUSE_SECONDS=0 the same shape is a closed loop with no pause at all, which saturates the machine.
export const CRASH_TEST_PAUSE_SECONDS = Number(__ENV.PAUSE_SECONDS || 0.1);
export function crashTestPause() {
  if (CRASH_TEST_PAUSE_SECONDS > 0) sleep(CRASH_TEST_PAUSE_SECONDS);
}

// The seed's crash-test shape, shared by flash_sale.js and its /health/live baseline so the two
// always run the same load: ramp to PEAK_VUS (2,000) in 10 s, hold 20 s, ramp down 10 s.
export function flashSaleShape() {
  const peak = Number(__ENV.PEAK_VUS || 2000);
  return {
    executor: 'ramping-vus',
    startVUs: 0,
    stages: [
      { duration: '10s', target: peak },
      { duration: '20s', target: peak },
      { duration: '10s', target: 0 },
    ],
    gracefulRampDown: '5s',
  };
}
const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };
// Set-up and audit requests read their answers even when a scenario discards response bodies.
const READ_BODY = { responseType: 'text' };
const JSON_READ_BODY = Object.assign({}, JSON_HEADERS, READ_BODY);
const HOLD_PARAMS = Object.assign({ tags: { name: 'hold' } }, JSON_HEADERS);
const SEAT_MAP_PARAMS = { tags: { name: 'seat_map' } };

// 409 (seat taken) and 429 (too many waiting for the same seats: admission control, with
// Retry-After) are expected answers in a flash sale, not failures: `http_req_failed` counts every
// other answer outside 2xx. Summaries report the 429s by status (withFigures).
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409, 429));

export const serverErrors = new Counter('server_errors');
export const oversold = new Counter('oversold_seats');
export const unaccounted = new Counter('unaccounted_seats');

// The tagged sub-metrics the summary reads. k6 only keeps a sub-metric that a threshold names, so
// every scenario's thresholds go through here; `targets` adds the scenario's own pass marks.
const FIGURES = {
  holdsOk: 'http_reqs{name:hold,status:201}',
  conflicts: 'http_reqs{name:hold,status:409}',
  busy: 'http_reqs{name:hold,status:429}',
  holdDuration: 'http_req_duration{name:hold}',
  seatMapDuration: 'http_req_duration{name:seat_map}',
};
export function withFigures(targets) {
  const thresholds = {
    server_errors: ['count==0'],
    http_req_failed: ['rate==0'],
    oversold_seats: ['count==0'],
    unaccounted_seats: ['count==0'],
  };
  Object.values(FIGURES).forEach((metric) => {
    thresholds[metric] = [metric.startsWith('http_reqs') ? 'count>=0' : 'max>=0'];
  });
  return Object.assign(thresholds, targets || {});
}
export function createEvent(name, rows, cols, extra) {
  const body = Object.assign({ name, rows, cols, price_cents: 5000 }, extra || {});
  const res = http.post(`${BASE}/api/events`, JSON.stringify(body),
    authorized(JSON_READ_BODY, ORGANIZER, 'organizer'));
  if (res.status !== 201) {
    throw new Error(`cannot create the event: ${res.status} ${res.body}`);
  }
  return res.json();
}

function count(res) {
  if (res.status >= 500) serverErrors.add(1);
}

// NO_WORK=1 sends the seat-map reads and holds of a scenario to `/health/live` instead (same
// methods, headers, bodies and tags; the server answers without touching a store, after verifying
// the token): the most any server could reach with the scenario's own script on this machine,
// since k6 shares its cores (scripts/bench runs flash_sale this way too).
const NO_WORK = __ENV.NO_WORK === '1';
const seatMapUrl = (eventId) => (NO_WORK ? `${BASE}/health/live` : `${BASE}/api/events/${eventId}/seats`);
const holdUrl = (eventId) => (NO_WORK ? `${BASE}/health/live` : `${BASE}/api/events/${eventId}/holds`);

// The seat map's response (parse it with `.json()` when the seats are needed), or null if not 200.
export function readSeatMap(eventId) {
  const res = http.get(seatMapUrl(eventId), SEAT_MAP_PARAMS);
  count(res);
  return res.status === 200 ? res : null;
}

// A free seat of a seat map's `seats` (-1 if none), about evenly chosen: random tries, then the
// first free one after a random place (a scan of every seat in JavaScript, per iteration, cost k6
// more than the server's answer: see docs/BENCHMARKS.md, the checkout).
export function randomFreeSeat(seats) {
  for (let t = 0; t < 16; t++) {
    const i = Math.floor(Math.random() * seats.length);
    if (seats[i] === 'A') return i;
  }
  const after = seats.indexOf('A', Math.floor(Math.random() * seats.length));
  return after >= 0 ? after : seats.indexOf('A');
}

// Buyers `${prefix}-0`, `${prefix}-1`, ...: the first `n` with tokens signed ahead (call it in a
// VU's init, before the load starts: a buyer signs in once and keeps the token, so signing one per
// request would load k6, not the server), the rest by name (signed when held). Returns buyer `i`.
export function signedBuyers(prefix, n) {
  const signed = [];
  for (let i = 0; i < n; i++) signed.push(signIn(`${prefix}-${i}`));
  return (i) => (i < n ? signed[i] : `${prefix}-${i}`);
}

// A buyer who signs in once and sends the same token with each request of their visit (hold,
// order, every poll of the order): signing per request would cost k6 more than the server.
export function signIn(customer) {
  const authorization = `Bearer ${token(customer)}`;
  return { customer, authorization, params: withBearer(HOLD_PARAMS, authorization) };
}

// Holds `seats` for `customer`: a name (its token signed now) or one of `signedBuyers`.
export function hold(eventId, customer, seats) {
  const params = typeof customer === 'string' ? authorized(HOLD_PARAMS, customer) : customer.params;
  const res = http.post(holdUrl(eventId), JSON.stringify({ seats }), params);
  count(res);
  return res;
}

// Books a hold without payment: a complimentary ticket, which only the event's organizer may give
// (buyers pay through orders: see placeOrder).
export function book(holdId) {
  const res = http.post(`${BASE}/api/holds/${holdId}/book`, null,
    authorized({ tags: { name: 'book' } }, ORGANIZER, 'organizer'));
  count(res);
  return res;
}

// Places an order for a buyer's holds (a fresh idempotency key per checkout, kept for retries).
export function placeOrder(holdIds, customer, key) {
  const params = withBearer({ tags: { name: 'place_order' } }, bearerOf(customer));
  params.headers = Object.assign({}, params.headers, JSON_HEADERS.headers, { 'Idempotency-Key': key });
  const res = http.post(`${BASE}/api/orders`, JSON.stringify({ hold_ids: holdIds }), params);
  count(res);
  return res;
}

// An order as its buyer reads it.
export function readOrder(orderId, customer) {
  const res = http.get(`${BASE}/api/orders/${orderId}`,
    withBearer(Object.assign({ tags: { name: 'read_order' } }, READ_BODY), bearerOf(customer)));
  count(res);
  return res;
}

// GraphQL as the scenarios' organizer (the audit reads the event's holds).
function graphql(query, variables) {
  const res = http.post(`${BASE}/graphql`, JSON.stringify({ query, variables }),
    authorized(JSON_READ_BODY, ORGANIZER, 'organizer'));
  return res.json();
}

// Releases a hold as its customer.
export function release(holdId, customer) {
  const res = http.del(`${BASE}/api/holds/${holdId}`, null,
    withBearer({ tags: { name: 'release' } }, bearerOf(customer)));
  count(res);
  return res;
}

// The audit, through the API only: every live hold (held or booked) of the event, from the read
// side once it has caught up with the authoritative REST seat map. No seat may be in two live holds,
// and the seats in live holds must be exactly the seats the map shows as taken.
export function audit(eventId) {
  const truth = http.get(`${BASE}/api/events/${eventId}/seats?consistency=strong`, READ_BODY).json();
  // Up to 30 s for the read side to catch up (a projector in another process, on a busy machine,
  // can be that far behind right after the load); the holds listed before it has are not all there.
  const waited = Date.now();
  let caughtUp = false;
  for (let i = 0; i < 300 && !caughtUp; i++) {
    const read = graphql('query($e: UUID!) { seatMap(eventId: $e) { seats } }', { e: eventId });
    caughtUp = Boolean(read.data && read.data.seatMap && read.data.seatMap.seats === truth.seats);
    if (!caughtUp) sleep(0.1);
  }
  console.log(caughtUp
    ? `audit: the read side caught up ${((Date.now() - waited) / 1000).toFixed(1)} s after the load`
    : 'audit: the read side did not catch up within 30 s; holds not yet projected count as unaccounted');
  const holds = [];
  let after = null;
  for (;;) {
    const page = graphql(
      `query($e: UUID!, $after: String) { event(id: $e) { holds(first: 100, after: $after, live: true) {
         edges { cursor node { id status seats { seatId } } } pageInfo { hasNextPage endCursor } } } }`,
      { e: eventId, after },
    );
    const conn = page.data.event.holds;
    conn.edges.forEach((e) => holds.push(e.node));
    if (!conn.pageInfo.hasNextPage) break;
    after = conn.pageInfo.endCursor;
  }
  const owners = {};
  let doubles = 0;
  holds.forEach((h) => h.seats.forEach((s) => {
    owners[s.seatId] = (owners[s.seatId] || 0) + 1;
    if (owners[s.seatId] > 1) doubles += 1;
  }));
  let mismatched = 0;
  for (let seat = 0; seat < truth.seats.length; seat++) {
    const taken = truth.seats[seat] !== 'A';
    if (taken !== Boolean(owners[seat])) mismatched += 1;
  }
  oversold.add(doubles);
  unaccounted.add(mismatched);
  console.log(`audit: ${holds.length} live holds, ${truth.held} held + ${truth.booked} booked + ` +
    `${truth.available} available = ${truth.seat_count} seats; oversold ${doubles}, unaccounted ${mismatched}`);
  return { doubles, mismatched, truth };
}

// The orders audit, after every checkout settled: the booked seats are exactly the seats of
// confirmed orders (nobody got seats without paying, no payer lost theirs, no seat sold twice), and
// no seat is left held. Waits up to 60 s for the order process and the projection to finish.
export function auditOrders(eventId) {
  let truth = null;
  for (let i = 0; i < 600; i++) {
    truth = http.get(`${BASE}/api/events/${eventId}/seats?consistency=strong`, READ_BODY).json();
    if (truth.held === 0) break;
    sleep(0.1);
  }
  let orders = [];
  for (let i = 0; i < 100; i++) {
    orders = [];
    let after = null;
    for (;;) {
      const page = graphql(
        `query($e: UUID!, $after: String) { event(id: $e) { orders(first: 100, after: $after) {
           edges { node { id status seats { seatId } } } pageInfo { hasNextPage endCursor } } } }`,
        { e: eventId, after },
      );
      const conn = page.data.event.orders;
      conn.edges.forEach((e) => orders.push(e.node));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    if (!orders.some((o) => o.status === 'PENDING_PAYMENT' || o.status === 'PAID')) break;
    sleep(0.1);
  }
  const byStatus = {};
  const paidFor = {};
  let doubles = 0;
  orders.forEach((o) => {
    byStatus[o.status] = (byStatus[o.status] || 0) + 1;
    if (o.status !== 'CONFIRMED') return;
    o.seats.forEach((s) => {
      if (paidFor[s.seatId]) doubles += 1;
      paidFor[s.seatId] = true;
    });
  });
  let mismatched = 0;
  for (let seat = 0; seat < truth.seats.length; seat++) {
    if ((truth.seats[seat] === 'B') !== Boolean(paidFor[seat])) mismatched += 1;
  }
  mismatched += truth.held;
  oversold.add(doubles);
  unaccounted.add(mismatched);
  console.log(`orders audit: ${orders.length} orders ${JSON.stringify(byStatus)}; ${truth.booked} booked, ` +
    `${truth.held} held; seats sold twice ${doubles}, seats not matching a confirmed order ${mismatched}`);
}

// The summary every scenario prints: throughput, conflicts, latency, oversell.
// `figures` (also written into SUMMARY_JSON for scripts/lib/k6_report.py) names them plainly.
export function summary(data, name) {
  const m = data.metrics;
  const v = (k, f) => (m[k] && m[k].values[f] !== undefined ? m[k].values[f] : 0);
  const seconds = (data.state.testRunDurationMs || 1) / 1000;
  const figures = {
    seconds,
    requests: v('http_reqs', 'count'),
    requests_per_second: v('http_reqs', 'rate'),
    server_errors: v('server_errors', 'count'),
    unexpected_statuses: v('http_req_failed', 'passes'),
    holds_ok: v(FIGURES.holdsOk, 'count'),
    hold_conflicts: v(FIGURES.conflicts, 'count'),
    hold_busy: v(FIGURES.busy, 'count'),
    hold_p95_ms: v(FIGURES.holdDuration, 'p(95)'),
    hold_p99_ms: v(FIGURES.holdDuration, 'p(99)'),
    seat_map_p95_ms: v(FIGURES.seatMapDuration, 'p(95)'),
    seat_map_p99_ms: v(FIGURES.seatMapDuration, 'p(99)'),
    oversold_seats: v('oversold_seats', 'count'),
    unaccounted_seats: v('unaccounted_seats', 'count'),
    checkouts_confirmed: v('checkouts_confirmed', 'count'),
    checkouts_failed: v('checkouts_failed', 'count'),
    checkouts_unsettled: v('checkouts_unsettled', 'count'),
    order_to_confirmed_p50_ms: v('order_to_confirmed_ms', 'p(50)'),
    order_to_confirmed_p95_ms: v('order_to_confirmed_ms', 'p(95)'),
  };
  const f = figures;
  const lines = [
    `scenario ${name}: ${seconds.toFixed(1)} s`,
    `requests: ${f.requests} (${f.requests_per_second.toFixed(0)}/s), 5xx: ${f.server_errors}, other unexpected statuses: ${f.unexpected_statuses - f.server_errors}`,
    `holds: ${f.holds_ok} ok (${(f.holds_ok / seconds).toFixed(1)}/s), conflicts: ${f.hold_conflicts}, busy (429): ${f.hold_busy}`,
    `hold latency ms: p95 ${f.hold_p95_ms.toFixed(1)}, p99 ${f.hold_p99_ms.toFixed(1)}`,
    `seat map latency ms: p95 ${f.seat_map_p95_ms.toFixed(1)}, p99 ${f.seat_map_p99_ms.toFixed(1)}`,
    `all requests ms: p95 ${v('http_req_duration', 'p(95)').toFixed(1)}, p99 ${v('http_req_duration', 'p(99)').toFixed(1)}`,
    `oversold seats: ${f.oversold_seats}, unaccounted seats: ${f.unaccounted_seats}`,
  ];
  if (m.checkouts_confirmed || m.checkouts_failed) {
    lines.push(`checkouts: ${f.checkouts_confirmed} confirmed (${(f.checkouts_confirmed / seconds).toFixed(1)}/s), ` +
      `${f.checkouts_failed} not paid, ${f.checkouts_unsettled} unsettled after 30 s; ` +
      `order placed to confirmed ms: p50 ${f.order_to_confirmed_p50_ms.toFixed(0)}, p95 ${f.order_to_confirmed_p95_ms.toFixed(0)}`);
  }
  if (m.projection_lag_ms) {
    lines.push(`projection lag ms (sampled): p95 ${v('projection_lag_ms', 'p(95)').toFixed(0)}, max ${v('projection_lag_ms', 'max').toFixed(0)}; ` +
      `server memory MB: max ${v('server_resident_mb', 'max').toFixed(1)}`);
  }
  const out = { stdout: lines.join('\n') + '\n' };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(Object.assign({ figures }, data), null, 1);
  return out;
}
