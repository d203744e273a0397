import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one control-plane process, served at /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'yunhai_' });
  const requests = new Counter({
    name: 'yunhai_http_requests_total',
    help: 'HTTP requests by listener, route, method and status',
    labelNames: ['listener', 'route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'yunhai_http_request_duration_seconds',
    help: 'HTTP request latency by listener and route',
    labelNames: ['listener', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'yunhai_auth_failures_total',
    help: 'Failed authentications by listener and error code',
    labelNames: ['listener', 'code'] as const,
    registers: [registry],
  });
  return { registry, requests, duration, authFailures };
}

export type Metrics = ReturnType<typeof createMetrics>;
