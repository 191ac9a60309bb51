// The checkout: look at the seat map, hold, think, order, and wait while the payment provider
// (the server's PAYMENTS_PROVIDER_URL: `seatgrid payments-mock`, which scripts/up and scripts/bench
// start) takes the money and the order process books the seats. Each checkout ends confirmed, or
// not paid (the mock fails 10 % of payments), within 30 s.
//
// Teardown audits twice: the live holds against the seat map (audit), and the orders against the
// booked seats (auditOrders): every seat ends booked for a confirmed order or available.
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import {
  audit, auditOrders, createEvent, hold, placeOrder, randomFreeSeat, readOrder, readSeatMap, signIn,
  summary, withFigures,
} from './lib.js';

const confirmed = new Counter('checkouts_confirmed');
const failed = new Counter('checkouts_failed');
const unsettled = new Counter('checkouts_unsettled');
// From the order's 201 to the buyer seeing it confirmed (polled every 0.2 s).
const toConfirmed = new Trend('order_to_confirmed_ms', true);

export const options = {
  scenarios: {
    checkout: {
      executor: 'ramping-vus',
      stages: [
        { duration: '10s', target: Number(__ENV.VUS || 200) },
        { duration: __ENV.DURATION || '30s', target: Number(__ENV.VUS || 200) },
        { duration: '5s', target: 0 },
      ],
      gracefulRampDown: '35s',
    },
  },
  thresholds: withFigures({
    'http_req_duration{name:hold}': ['p(95)<500'],
    'http_req_duration{name:place_order}': ['max>=0'],
    order_to_confirmed_ms: ['p(95)>=0'],
    checkouts_confirmed: ['count>0'],
    checkouts_unsettled: ['count==0'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 checkout', 50, 40, { max_seats_per_customer: 4 }) };
}

const SETTLED = { confirmed: true, payment_failed: true, expired: true, refunded: true, refund_pending: true };

export default function (data) {
  const read = readSeatMap(data.event.id);
  const seats = read && read.json('seats');
  if (!seats) return;
  const first = randomFreeSeat(seats);
  if (first < 0) {
    sleep(1);
    return;
  }
  const chosen = [first];
  if (first + 1 < seats.length && seats[first + 1] === 'A') chosen.push(first + 1);
  const buyer = signIn(`vu${__VU}-${__ITER}`);
  const held = hold(data.event.id, buyer, chosen);
  if (held.status !== 201) return;
  sleep(1 + Math.random() * 2); // think time: filling in details
  const placed = placeOrder([held.json('hold_id')], buyer, `${buyer.customer}-order`);
  if (placed.status !== 201) return;
  const orderId = placed.json('order_id');
  const started = Date.now();
  while (Date.now() - started < 30000) {
    sleep(0.2);
    const res = readOrder(orderId, buyer);
    if (res.status !== 200) continue;
    const status = res.json('status');
    if (!SETTLED[status]) continue;
    if (status === 'confirmed') {
      confirmed.add(1);
      toConfirmed.add(Date.now() - started);
    } else {
      failed.add(1);
    }
    return;
  }
  unsettled.add(1);
}

export function teardown(data) {
  audit(data.event.id);
  auditOrders(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'checkout');
}
