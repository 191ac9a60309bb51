// The seed's crash-test shape: 100 seats (10 x 10); ramp to 2,000 virtual users in 10 s, hold 20 s,
// ramp down 10 s; every iteration reads the seat map and tries to hold one random seat.
import { audit, createEvent, flashSaleShape, hold, readSeatMap, summary } from './lib.js';

export const options = {
  scenarios: { flash_sale: flashSaleShape() },
  thresholds: {
    server_errors: ['count==0'],
    oversold_seats: ['count==0'],
    unaccounted_seats: ['count==0'],
    holds_ok: ['count==100'],
    seat_map_duration: ['p(95)<50'],
    hold_duration: ['p(95)<500'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 flash sale', 10, 10, { max_seats_per_customer: 1 }) };
}

export default function (data) {
  readSeatMap(data.event.id);
  const seat = Math.floor(Math.random() * 100);
  hold(data.event.id, `vu${__VU}-${__ITER}`, [seat]);
}

export function teardown(data) {
  audit(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'flash_sale');
}
