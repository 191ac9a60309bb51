// The HTTP baseline: the flash_sale load shape, pause included, against /health/live (no database,
// no work), so the flash sale's throughput can be read as a share of what the same load gets from
// this machine's HTTP stack alone. With PAUSE_SECONDS=0 it is the HTTP ceiling: a closed loop that
// saturates the machine.
import http from 'k6/http';
import { BASE, CRASH_TEST_PAUSE_SECONDS, crashTestPause, flashSaleShape } from './lib.js';

export const options = {
  scenarios: { health: flashSaleShape() },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  discardResponseBodies: __ENV.KEEP_BODIES !== '1', // as flash_sale.js does
};

export default function () {
  http.get(`${BASE}/health/live`);
  crashTestPause();
}

export function handleSummary(data) {
  const out = {
    stdout: `scenario health_baseline (pause ${CRASH_TEST_PAUSE_SECONDS} s): ${data.metrics.http_reqs.values.count} requests, ` +
      `${data.metrics.http_reqs.values.rate.toFixed(0)}/s, p95 ${data.metrics.http_req_duration.values['p(95)'].toFixed(1)} ms\n`,
  };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 1);
  return out;
}
