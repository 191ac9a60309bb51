// The HTTP ceiling: the flash_sale load shape against /health/live (no database, no work), so the
// flash sale's throughput can be read as a share of what this machine's HTTP stack can do at all.
import http from 'k6/http';
import { BASE, flashSaleShape } from './lib.js';

export const options = {
  scenarios: { health: flashSaleShape() },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  http.get(`${BASE}/health/live`);
}

export function handleSummary(data) {
  const out = {
    stdout: `scenario health_baseline: ${data.metrics.http_reqs.values.count} requests, ` +
      `${data.metrics.http_reqs.values.rate.toFixed(0)}/s, p95 ${data.metrics.http_req_duration.values['p(95)'].toFixed(1)} ms\n`,
  };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 1);
  return out;
}
