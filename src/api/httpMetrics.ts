/**
 * Prometheus metrics (names kept from the earlier executor). Endpoint labels are route
 * patterns, never raw paths, so task ids cannot explode label cardinality. Queue and worker
 * gauges are read from the database at scrape time.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { countByStatus } from '../queue/taskQueries.js';
import type { AppDeps } from './appDeps.js';

export function createHttpMetrics(app: FastifyInstance, deps: AppDeps): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests', labelNames: ['method', 'endpoint', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'endpoint'], registers: [registry] });
  new Gauge({
    name: 'task_queue_size', help: 'Tasks by status', labelNames: ['status'], registers: [registry],
    async collect() {
      try {
        const counts = await countByStatus(deps.pool);
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      } catch { /* database down: keep the last values; /health reports it */ }
    },
  });
  new Gauge({
    name: 'worker_count', help: 'Workers by status', labelNames: ['status'], registers: [registry],
    async collect() {
      try {
        const r = await deps.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM workers GROUP BY status');
        for (const s of ['idle', 'busy', 'offline']) this.set({ status: s }, r.rows.find((x) => x.status === s)?.n ?? 0);
      } catch { /* as above */ }
    },
  });
  new Gauge({
    name: 'llm_cost_usd_total', help: 'LLM spend recorded, by model', labelNames: ['model'], registers: [registry],
    async collect() {
      try {
        const r = await deps.pool.query<{ model_name: string; cost: number }>('SELECT model_name, sum(cost_usd)::float AS cost FROM llm_conversations GROUP BY model_name');
        for (const row of r.rows) this.set({ model: row.model_name }, row.cost);
      } catch { /* as above */ }
    },
  });

  app.addHook('onResponse', async (req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, endpoint, status: String(reply.statusCode) });
    duration.observe({ method: req.method, endpoint }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('Content-Type', registry.contentType);
    return registry.metrics();
  });
  return registry;
}
