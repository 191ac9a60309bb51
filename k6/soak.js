// Moderate steady load for a configurable duration (SOAK_DURATION, default 5m): watch memory and
// projection lag on /metrics while it runs. Holds are released again so the event never sells out.
import http from 'k6/http';
import { sleep } from 'k6';
import { Trend } from 'k6/metrics';
import { audit, BASE, createEvent, hold, readSeatMap, release, summary, withFigures } from './lib.js';

// Sampled from the server's /metrics while the soak runs.
const projectionLag = new Trend('projection_lag_ms');
const serverMemory = new Trend('server_resident_mb');

function sampleServer() {
  const text = http.get(`${BASE}/metrics`, { tags: { name: 'metrics' } }).body || '';
  for (const line of text.split('\n')) {
    if (line.startsWith('seatgrid_projection_lag_ms{projection="read_models"}')) {
      projectionLag.add(Number(line.split(' ').pop()));
    } else if (line.startsWith('seatgrid_process_resident_memory_bytes')) {
      serverMemory.add(Number(line.split(' ').pop()) / 1048576);
    }
  }
}

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 50),
      timeUnit: '1s',
      duration: __ENV.SOAK_DURATION || '5m',
      preAllocatedVUs: 50,
      maxVUs: 200,
    },
  },
  thresholds: withFigures({
    'http_req_duration{name:seat_map}': ['p(95)<50'],
    'http_req_duration{name:hold}': ['p(95)<500'],
    projection_lag_ms: ['p(95)<1000'],
  }),
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { event: createEvent('k6 soak', 40, 50) };
}

export default function (data) {
  if (__ITER % 100 === 0) sampleServer();
  readSeatMap(data.event.id);
  const customer = `vu${__VU}-${__ITER}`;
  const res = hold(data.event.id, customer, [Math.floor(Math.random() * 2000)]);
  if (res.status === 201) {
    sleep(0.2);
    release(res.json().hold_id, customer);
  }
}

export function teardown(data) {
  audit(data.event.id);
}

export function handleSummary(data) {
  return summary(data, 'soak');
}
