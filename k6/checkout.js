// Hold, think, then book: the full checkout (payment joins here once it exists).
import { sleep } from 'k6';
import { audit, book, createEvent, hold, readSeatMap, summary, withFigures } from './lib.js';

export const options = {
  scenarios: {
    checkout: {
      executor: 'ramping-vus',
      stages: [
        { duration: '10s', target: Number(__ENV.VUS || 200) },
        { duration: __ENV.DURATION || '30s', target: Number(__ENV.VUS || 200) },
        { duration: '5s', target: 0 },
      ],
    },
  },
  thresholds: withFigures({
    'http_req_duration{name:hold}': ['p(95)<500'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 checkout', 50, 40, { max_seats_per_customer: 4 }) };
}

export default function (data) {
  const read = readSeatMap(data.event.id);
  const map = read && read.json();
  if (!map) return;
  const free = [];
  for (let i = 0; i < map.seats.length; i++) if (map.seats[i] === 'A') free.push(i);
  if (free.length === 0) {
    sleep(1);
    return;
  }
  const first = free[Math.floor(Math.random() * free.length)];
  const seats = [first];
  if (first + 1 < map.seats.length && map.seats[first + 1] === 'A') seats.push(first + 1);
  const customer = `vu${__VU}-${__ITER}`;
  const res = hold(data.event.id, customer, seats);
  sleep(1 + Math.random() * 2); // think time: filling in details
  if (res.status === 201 && Math.random() < 0.8) book(res.json().hold_id, customer);
}

export function teardown(data) {
  audit(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'checkout');
}
