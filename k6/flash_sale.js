// The seed's crash-test shape: 100 seats (10 x 10); ramp to 2,000 virtual users in 10 s, hold 20 s,
// ramp down 10 s; every iteration reads the seat map, tries to hold one random seat, and pauses
// 0.1 s as the seed's test does. A fan keeps trying until one seat is held (at most one each).
// Response bodies are discarded (k6's advice for load runs: the load generator shares the
// machine) since nothing here reads them; KEEP_BODIES=1 keeps them.
import {
  audit, createEvent, crashTestPause, flashSaleShape, hold, readSeatMap, signedBuyers, summary,
  withFigures,
} from './lib.js';

export const options = {
  scenarios: { flash_sale: flashSaleShape() },
  thresholds: withFigures({
    'http_reqs{name:hold,status:201}': ['count==100'],
    'http_req_duration{name:seat_map}': ['p(95)<50'],
    'http_req_duration{name:hold}': ['p(95)<500'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  discardResponseBodies: __ENV.KEEP_BODIES !== '1',
};

export function setup() {
  return { event: createEvent('k6 flash sale', 10, 10, { max_seats_per_customer: 1 }) };
}

// Each virtual user is a fan who signed in before the sale (tokens signed in the VU's init, before
// the load starts) and keeps trying seats until one is held; then the next fan takes the place.
const fanAt = signedBuyers(`vu${__VU}`, 4);
let fan = 0;

export default function (data) {
  readSeatMap(data.event.id);
  const seat = Math.floor(Math.random() * 100);
  if (hold(data.event.id, fanAt(fan), [seat]).status === 201) fan += 1;
  crashTestPause();
}

export function teardown(data) {
  audit(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'flash_sale');
}
