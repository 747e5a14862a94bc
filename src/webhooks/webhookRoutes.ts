/**
 * HTTP side of webhooks: the submit-time SSRF guard on callback_url (a preHandler, so it runs
 * after schema validation on every endpoint that accepts one), and the deliveries of a task.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../api/appDeps.js';
import { AppError } from '../errors.js';
import { listDeliveriesForTask, deliveryToJson } from './deliveries.js';
import { checkWebhookTarget, systemResolver, targetPolicyFrom, type Resolver } from './targetPolicy.js';

/** Routes whose body may carry `callback_url` (top level or in `parameters`). */
const SUBMIT_ROUTES = new Set(['/api/v1/tasks', '/tasks', '/api/v1/experiments']);

export function callbackUrlGuard(config: AppDeps['config'], resolve: Resolver = systemResolver) {
  const policy = targetPolicyFrom(config);
  return async (req: FastifyRequest) => {
    if (req.method !== 'POST' || !SUBMIT_ROUTES.has(req.routeOptions.url ?? '')) return;
    const body = req.body as { callback_url?: unknown; parameters?: { callback_url?: unknown } } | null;
    if (!body || typeof body !== 'object') return;
    for (const u of [body.callback_url, body.parameters?.callback_url]) {
      if (typeof u === 'string') await checkWebhookTarget(u, policy, resolve);
    }
  };
}

export function webhookRoutes(deps: AppDeps) {
  return async function (app: FastifyInstance) {
    app.get('/tasks/:task_id/webhooks', {
      schema: {
        tags: ['tasks'], summary: 'Webhook deliveries of a task (one per terminal state when it has a callback_url): attempts, last response code and error, next attempt.',
        params: { type: 'object', required: ['task_id'], properties: { task_id: { type: 'string', format: 'uuid' } } },
      },
    }, async (req) => {
      const { task_id } = req.params as { task_id: string };
      const t = await deps.pool.query('SELECT 1 FROM tasks WHERE id = $1', [task_id]);
      if (t.rowCount === 0) throw new AppError('task_not_found', `Task ${task_id} not found`);
      const rows = await listDeliveriesForTask(deps.pool, task_id);
      return { deliveries: rows.map(deliveryToJson), total: rows.length };
    });
  };
}
