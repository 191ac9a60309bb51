// The seed's baseline shape: a few users browsing the seat map and holding now and then.
import { sleep } from 'k6';
import {
  audit, createEvent, hold, randomFreeSeat, readSeatMap, summary, withFigures,
} from './lib.js';

export const options = {
  vus: Number(__ENV.VUS || 5),
  duration: __ENV.DURATION || '30s',
  thresholds: withFigures({
    'http_req_duration{name:seat_map}': ['p(95)<50'],
    'http_req_duration{name:hold}': ['p(95)<500'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 baseline', 20, 25) };
}

export default function (data) {
  const res = readSeatMap(data.event.id);
  const seats = res && res.json('seats');
  sleep(0.5 + Math.random());
  if (seats && Math.random() < 0.3) {
    const seat = randomFreeSeat(seats);
    if (seat >= 0) hold(data.event.id, `vu${__VU}-${__ITER}`, [seat]);
  }
}

export function teardown(data) {
  audit(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'baseline');
}
