// Best available seats (issue: the durable write path): BUYERS (2,000) buyers arrive at once at a
// 10,000-seat event (100 rows of 100) and each keeps asking for "2 best seats together" until the
// event is sold out or their limit (10 seats) is reached. When no two seats together are left, a
// buyer takes 2 apart, then 1 (what a buyer's page would offer). A 429 is waited out (Retry-After).
//
// Targets: sold out (the audit finds no seat available), zero conflicts answered to a buyer who
// asked for best-available (`seats_unavailable`), zero oversell, zero 5xx.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { BASE, audit, createEvent, token, withFigures } from './lib.js';

const BUYERS = Number(__ENV.BUYERS || 2000);
const ROWS = Number(__ENV.ROWS || 100);
const COLS = Number(__ENV.COLS || 100);

const conflicts = new Counter('best_conflicts');
const soldOut = new Counter('best_sold_out');
const notEnough = new Counter('best_not_enough');
const atLimit = new Counter('best_at_limit');
const seatsHeld = new Counter('best_seats_held');
const notAdjacent = new Counter('best_not_adjacent');
const seatsLeft = new Counter('seats_left_unsold');

export const options = {
  scenarios: {
    best_available: {
      executor: 'per-vu-iterations',
      vus: BUYERS,
      iterations: 1,
      maxDuration: __ENV.MAX_DURATION || '180s',
    },
  },
  thresholds: withFigures({
    best_conflicts: ['count==0'],
    best_not_adjacent: ['count==0'],
    seats_left_unsold: ['count==0'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 best available', ROWS, COLS, { hold_seconds: 900 }) };
}

const PARAMS = { tags: { name: 'hold' }, responseType: 'text' };
// A buyer at their limit (422 customer_limit_exceeded) is an expected answer here too.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409, 422, 429));

function ask(eventId, auth, body) {
  const params = Object.assign({}, PARAMS, {
    headers: { 'Content-Type': 'application/json', Authorization: auth },
  });
  return http.post(`${BASE}/api/events/${eventId}/holds`, JSON.stringify(body), params);
}

// Adjacent seats of one row, as a hold view lists them.
function together(view) {
  for (let i = 1; i < view.seats.length; i++) {
    const [a, b] = [view.seats[i - 1], view.seats[i]];
    if (a.row !== b.row || b.seat !== a.seat + 1) return false;
  }
  return true;
}

export default function (data) {
  const auth = `Bearer ${token(`best-${__VU}`)}`;
  let body = { quantity: 2, together: true };
  for (let tries = 0; tries < 200; tries++) {
    const res = ask(data.event.id, auth, body);
    if (res.status === 201) {
      const view = res.json();
      seatsHeld.add(view.seats.length);
      if (body.together && !together(view)) notAdjacent.add(1);
      continue;
    }
    if (res.status === 429) {
      sleep(Number(res.headers['Retry-After'] || 1));
      continue;
    }
    const code = res.status === 409 || res.status === 422 ? res.json().code : `http_${res.status}`;
    if (code === 'not_enough_seats') {
      notEnough.add(1);
      // Not two together: two apart, then one.
      if (body.together) body = { quantity: 2 };
      else if (body.quantity > 1) body = { quantity: 1 };
      else return;
      continue;
    }
    if (code === 'sold_out') soldOut.add(1);
    else if (code === 'customer_limit_exceeded') atLimit.add(1);
    else if (code === 'seats_unavailable') conflicts.add(1);
    return;
  }
}

export function teardown(data) {
  const { truth } = audit(data.event.id);
  seatsLeft.add(truth.available);
}

export function handleSummary(data) {
  const m = data.metrics;
  const v = (k, f) => (m[k] && m[k].values[f] !== undefined ? m[k].values[f] : 0);
  const seconds = (data.state.testRunDurationMs || 1) / 1000;
  const figures = {
    seconds,
    buyers: BUYERS,
    seats: ROWS * COLS,
    holds_ok: v('http_reqs{name:hold,status:201}', 'count'),
    seats_held: v('best_seats_held', 'count'),
    conflicts: v('best_conflicts', 'count'),
    not_adjacent: v('best_not_adjacent', 'count'),
    not_enough_together: v('best_not_enough', 'count'),
    sold_out_answers: v('best_sold_out', 'count'),
    at_limit: v('best_at_limit', 'count'),
    busy: v('http_reqs{name:hold,status:429}', 'count'),
    server_errors: v('server_errors', 'count'),
    seats_left: v('seats_left_unsold', 'count'),
    oversold_seats: v('oversold_seats', 'count'),
    unaccounted_seats: v('unaccounted_seats', 'count'),
    hold_p50_ms: v('http_req_duration{name:hold}', 'p(50)'),
    hold_p95_ms: v('http_req_duration{name:hold}', 'p(95)'),
    hold_p99_ms: v('http_req_duration{name:hold}', 'p(99)'),
  };
  const f = figures;
  const lines = [
    `scenario best_available: ${f.buyers} buyers, ${f.seats} seats, ${seconds.toFixed(1)} s`,
    `holds: ${f.holds_ok} ok (${(f.holds_ok / seconds).toFixed(0)}/s), ${f.seats_held} seats; ` +
      `conflicts (seats_unavailable): ${f.conflicts}, not adjacent: ${f.not_adjacent}`,
    `answers: not enough together ${f.not_enough_together}, sold out ${f.sold_out_answers}, ` +
      `at the customer limit ${f.at_limit}, busy (429) ${f.busy}, 5xx ${f.server_errors}`,
    `hold latency ms: p50 ${f.hold_p50_ms.toFixed(1)}, p95 ${f.hold_p95_ms.toFixed(1)}, p99 ${f.hold_p99_ms.toFixed(1)}`,
    `seats left unsold: ${f.seats_left}, oversold seats: ${f.oversold_seats}, unaccounted seats: ${f.unaccounted_seats}`,
  ];
  const out = { stdout: lines.join('\n') + '\n' };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(Object.assign({ figures }, data), null, 1);
  return out;
}
