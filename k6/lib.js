// Shared by every SeatGrid k6 scenario: the API address, event set-up, and the oversell audit that
// each scenario runs in teardown().
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:5000';

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

// 409 (seat taken) is an expected answer in a flash sale, not a failure.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const holdsOk = new Counter('holds_ok');
export const conflicts = new Counter('hold_conflicts');
export const serverErrors = new Counter('server_errors');
export const oversold = new Counter('oversold_seats');
export const unaccounted = new Counter('unaccounted_seats');
export const seatMapDuration = new Trend('seat_map_duration', true);
export const holdDuration = new Trend('hold_duration', true);

export function createEvent(name, rows, cols, extra) {
  const body = Object.assign({ name, rows, cols, price_cents: 5000 }, extra || {});
  const res = http.post(`${BASE}/api/events`, JSON.stringify(body), JSON_HEADERS);
  if (res.status !== 201) {
    throw new Error(`cannot create the event: ${res.status} ${res.body}`);
  }
  return res.json();
}

function count(res) {
  if (res.status >= 500) serverErrors.add(1);
}

export function readSeatMap(eventId) {
  const res = http.get(`${BASE}/api/events/${eventId}/seats`, { tags: { name: 'seat_map' } });
  count(res);
  seatMapDuration.add(res.timings.duration);
  check(res, { 'seat map 200': (r) => r.status === 200 });
  return res.status === 200 ? res.json() : null;
}

export function hold(eventId, customer, seats) {
  const res = http.post(
    `${BASE}/api/events/${eventId}/holds`,
    JSON.stringify({ customer_id: customer, seats }),
    Object.assign({ tags: { name: 'hold' } }, JSON_HEADERS),
  );
  count(res);
  holdDuration.add(res.timings.duration);
  if (res.status === 201) holdsOk.add(1);
  else if (res.status === 409) conflicts.add(1);
  check(res, { 'hold 201 or 409': (r) => r.status === 201 || r.status === 409 });
  return res;
}

export function book(holdId, customer) {
  const res = http.post(`${BASE}/api/holds/${holdId}/book`, null, {
    headers: { 'X-Customer-Id': customer },
    tags: { name: 'book' },
  });
  count(res);
  check(res, { 'book 200 or 409': (r) => r.status === 200 || r.status === 409 });
  return res;
}

function graphql(query, variables) {
  const res = http.post(`${BASE}/graphql`, JSON.stringify({ query, variables }), JSON_HEADERS);
  return res.json();
}

// The audit, through the API only: every live hold (held or booked) of the event, from the read
// side once it has caught up with the authoritative REST seat map. No seat may be in two live holds,
// and the seats in live holds must be exactly the seats the map shows as taken.
export function audit(eventId) {
  const truth = http.get(`${BASE}/api/events/${eventId}/seats?consistency=strong`).json();
  for (let i = 0; i < 100; i++) {
    const read = graphql('query($e: UUID!) { seatMap(eventId: $e) { seats } }', { e: eventId });
    if (read.data && read.data.seatMap && read.data.seatMap.seats === truth.seats) break;
    sleep(0.1);
  }
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

// The summary every scenario prints: throughput, conflicts, latency, oversell.
export function summary(data, name) {
  const m = data.metrics;
  const v = (k, f) => (m[k] && m[k].values[f] !== undefined ? m[k].values[f] : 0);
  const seconds = (data.state.testRunDurationMs || 1) / 1000;
  const lines = [
    `scenario ${name}: ${seconds.toFixed(1)} s`,
    `requests: ${v('http_reqs', 'count')} (${v('http_reqs', 'rate').toFixed(0)}/s), 5xx: ${v('server_errors', 'count')}`,
    `holds: ${v('holds_ok', 'count')} ok (${(v('holds_ok', 'count') / seconds).toFixed(1)}/s), conflicts: ${v('hold_conflicts', 'count')}`,
    `hold latency ms: p95 ${v('hold_duration', 'p(95)').toFixed(1)}, p99 ${v('hold_duration', 'p(99)').toFixed(1)}`,
    `seat map latency ms: p95 ${v('seat_map_duration', 'p(95)').toFixed(1)}, p99 ${v('seat_map_duration', 'p(99)').toFixed(1)}`,
    `all requests ms: p95 ${v('http_req_duration', 'p(95)').toFixed(1)}, p99 ${v('http_req_duration', 'p(99)').toFixed(1)}`,
    `oversold seats: ${v('oversold_seats', 'count')}, unaccounted seats: ${v('unaccounted_seats', 'count')}`,
  ];
  if (m.projection_lag_ms) {
    lines.push(`projection lag ms (sampled): p95 ${v('projection_lag_ms', 'p(95)').toFixed(0)}, max ${v('projection_lag_ms', 'max').toFixed(0)}; ` +
      `server memory MB: max ${v('server_resident_mb', 'max').toFixed(1)}`);
  }
  const out = { stdout: lines.join('\n') + '\n' };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 1);
  return out;
}
