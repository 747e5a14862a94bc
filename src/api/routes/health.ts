/** Root, liveness/readiness and queue statistics (unprefixed, as in the earlier executor). */
import type { FastifyInstance } from 'fastify';
import { countByStatus, queueStats } from '../../queue/taskQueries.js';
import type { AppDeps } from '../appDeps.js';

async function databaseProbe(deps: AppDeps): Promise<{ connected: boolean; latency_ms?: number; error?: string }> {
  const t0 = performance.now();
  try {
    await deps.pool.query('SELECT 1');
    return { connected: true, latency_ms: Math.round((performance.now() - t0) * 100) / 100 };
  } catch (e) {
    return { connected: false, error: e instanceof Error ? e.message.split('\n')[0] : 'unreachable' };
  }
}

export function healthRoutes(deps: AppDeps) {
  return async function (app: FastifyInstance) {
    app.get('/', { schema: { hide: true } }, async (req, reply) => {
      const wantsHtml = (req.headers.accept ?? '').includes('text/html');
      if (wantsHtml && deps.dashboard) return deps.dashboard.sendIndex(reply);
      return { name: 'AIOpsLab Task Executor', version: deps.version, docs: '/docs', health: '/health', dashboard: deps.dashboard ? '/' : null };
    });

    app.get('/health', {
      schema: { tags: ['health'], summary: 'Liveness and a summary of the database, workers and queue; 503 when the database is unreachable.' },
    }, async (_req, reply) => {
      const database = await databaseProbe(deps);
      let workers: Record<string, unknown> = { error: 'database unavailable' };
      let queue: Record<string, unknown> = { error: 'database unavailable' };
      if (database.connected) {
        try {
          const w = await deps.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM workers GROUP BY status');
          const get = (s: string) => w.rows.find((r) => r.status === s)?.n ?? 0;
          workers = { total: w.rows.reduce((a, r) => a + r.n, 0), idle: get('idle'), busy: get('busy'), offline: get('offline') };
          queue = await countByStatus(deps.pool);
        } catch (e) {
          workers = { error: (e as Error).message };
        }
      }
      const live = typeof workers.idle === 'number' ? (workers.idle as number) + (workers.busy as number) : 0;
      const status = !database.connected ? 'unhealthy' : live === 0 ? 'degraded' : 'healthy';
      reply.status(database.connected ? 200 : 503);
      return { status, version: deps.version, timestamp: new Date().toISOString(), database, workers, queue };
    });

    app.get('/ready', {
      schema: { tags: ['health'], summary: 'Readiness: 200 when the API can take tasks (database reachable, schema migrated); also lists what real runs still need.' },
    }, async (_req, reply) => {
      const database = await databaseProbe(deps);
      let migrated = false;
      if (database.connected) {
        try {
          await deps.pool.query('SELECT 1 FROM schema_migrations LIMIT 1');
          migrated = true;
        } catch { migrated = false; }
      }
      const checks = deps.doctor ? await deps.doctor() : [];
      const ready = database.connected && migrated;
      reply.status(ready ? 200 : 503);
      return {
        ready,
        database,
        migrations_applied: migrated,
        workers_in_process: deps.workers ? deps.workers.status().num_workers : 0,
        real_runs_ready: checks.every((c) => c.ok || c.neededFor === 'service'),
        checks,
      };
    });

    app.get('/queue/stats', { schema: { tags: ['health'], summary: 'Counts per status, success rate, average wait and execution time (seconds).' } },
      async () => queueStats(deps.pool));
  };
}
