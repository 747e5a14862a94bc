/**
 * /api/v1/workers: reading workers, the worker-host protocol (register, heartbeat, claim,
 * complete, fail) for workers that reach the service over HTTP, and control of the internal pool.
 */
import type { FastifyInstance } from 'fastify';
import { AppError, isErrorCode } from '../../errors.js';
import { claimTask } from '../../queue/claimTask.js';
import { finishTask, releaseWorker } from '../../queue/finishTask.js';
import { taskToJson } from '../../queue/taskRecord.js';
import { getTask } from '../../queue/taskQueries.js';
import { getWorker, heartbeat, listWorkers, markWorkerOffline, registerWorker, workerStats, workerToJson } from '../../queue/workerRegistry.js';
import type { AppDeps } from '../appDeps.js';
import { notFound } from '../server.js';

export const WORKER_ID_PATTERN = '^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$';
const workerParam = { type: 'object', required: ['worker_id'], properties: { worker_id: { type: 'string', maxLength: 48 } } } as const;
const workerTaskParams = {
  type: 'object', required: ['worker_id', 'task_id'],
  properties: { worker_id: { type: 'string', maxLength: 48 }, task_id: { type: 'string', format: 'uuid' } },
} as const;
const heartbeatBody = {
  type: 'object', additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['idle', 'busy', 'offline'] },
    current_task_id: { type: ['string', 'null'], format: 'uuid' },
  },
} as const;

export function workerRoutes(deps: AppDeps, opts: { hidden: boolean }) {
  const hide = opts.hidden;
  return async function (app: FastifyInstance) {
    const requireWorker = async (id: string) => {
      const w = await getWorker(deps.pool, id);
      if (!w) throw notFound('worker_not_found', id);
      return w;
    };

    app.get('/workers', {
      schema: {
        hide, tags: ['workers'], summary: 'All workers (internal and on other hosts) with status, heartbeat age, current task and cluster.',
        querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['idle', 'busy', 'offline'] }, backend_type: { type: 'string', maxLength: 100 } } },
      },
    }, async (req) => {
      const q = req.query as { status?: string; backend_type?: string };
      const rows = await listWorkers(deps.pool, { status: q.status, backendType: q.backend_type });
      return { workers: rows.map((w) => workerToJson(w)), total: rows.length };
    });

    // Internal pool control; declared before /workers/:worker_id so "internal" is not an id.
    const internal = () => {
      if (!deps.workers) throw new AppError('workers_disabled', 'This process runs no internal workers (started with `serve`, or AUTO_START_WORKERS=false).');
      return deps.workers;
    };
    app.get('/workers/internal/status', { schema: { hide, tags: ['workers'], summary: 'The internal worker pool of this process.' } }, async () => {
      if (!deps.workers) return { enabled: false, running: false, num_workers: 0, workers: {}, message: 'Internal workers are not enabled in this process' };
      return { enabled: true, ...deps.workers.status() };
    });
    app.post('/workers/internal/scale', {
      schema: {
        hide, tags: ['workers'], summary: 'Scale the internal pool (query num_workers or JSON body {num_workers}). Scaling down lets busy workers finish their task first.',
        querystring: { type: 'object', additionalProperties: false, properties: { num_workers: { type: 'integer', minimum: 0, maximum: 50 } } },
        body: { type: ['object', 'null'], additionalProperties: false, properties: { num_workers: { type: 'integer', minimum: 0, maximum: 50 } } },
      },
    }, async (req) => {
      const n = (req.query as { num_workers?: number }).num_workers ?? (req.body as { num_workers?: number } | null)?.num_workers;
      if (n === undefined) throw new AppError('validation_failed', 'num_workers is required (query or body)', [{ field: 'num_workers', reason: 'is required' }]);
      const r = await internal().scale(n);
      return { ...r, status: 'scaled' };
    });
    app.post('/workers/internal/stop', { schema: { hide, tags: ['workers'], summary: 'Stop the internal workers (running tasks are stopped and requeued).' } }, async () => {
      await internal().stop();
      return { status: 'stopped', message: 'Internal workers stopped' };
    });
    app.post('/workers/internal/start', { schema: { hide, tags: ['workers'], summary: 'Start the internal workers again.' } }, async () => {
      const n = await internal().start();
      return { status: 'started', workers: n };
    });

    app.post('/workers/register', {
      schema: {
        hide, tags: ['worker hosts'], summary: 'Register (or re-register) a worker that runs on another host.',
        body: {
          type: 'object', additionalProperties: false, required: ['worker_id', 'backend_type'],
          properties: {
            worker_id: { type: 'string', pattern: WORKER_ID_PATTERN, description: 'Lowercase letters, digits and "-", at most 48 characters (its Kind cluster is aiopslab-<worker_id>).' },
            backend_type: { type: 'string', minLength: 1, maxLength: 100 },
            capabilities: { type: 'object', properties: { supported_problems: { type: 'array', items: { type: 'string', maxLength: 255 } }, max_parallel_tasks: { type: 'integer', minimum: 1 } } },
            metadata: { type: 'object' },
          },
        },
      },
    }, async (req, reply) => {
      const b = req.body as { worker_id: string; backend_type: string; capabilities?: Record<string, unknown>; metadata?: Record<string, unknown> };
      const w = await registerWorker(deps.pool, {
        id: b.worker_id, backendType: b.backend_type, capabilities: b.capabilities ?? {}, metadata: b.metadata ?? {},
        instanceId: null, offlineAfterSeconds: deps.config.workerOfflineAfter,
      });
      reply.status(201);
      return workerToJson(w!);
    });

    const doHeartbeat = async (workerId: string, body: { status?: string; current_task_id?: string | null } | null) => {
      await requireWorker(workerId);
      if (body?.status === 'offline') {
        await markWorkerOffline(deps.pool, workerId);
        return workerToJson((await getWorker(deps.pool, workerId))!);
      }
      const r = await heartbeat(deps.pool, workerId, deps.config.leaseSeconds);
      if (!r) throw notFound('worker_not_found', workerId);
      if (body?.current_task_id && body.current_task_id !== r.worker.current_task_id) {
        throw new AppError('task_not_held', `Worker ${workerId} does not hold task ${body.current_task_id}`, { held_task_id: r.worker.current_task_id });
      }
      return { ...workerToJson(r.worker), current_task_status: r.heldTaskStatus };
    };
    app.post('/workers/:worker_id/heartbeat', {
      schema: { hide, tags: ['worker hosts'], summary: 'Liveness; renews the lease of the task the worker holds and reports that task\'s status (cancelled/timeout means stop it).', params: workerParam, body: { ...heartbeatBody, type: ['object', 'null'] } },
    }, async (req) => doHeartbeat((req.params as { worker_id: string }).worker_id, req.body as never));
    app.post('/workers/heartbeat', {
      schema: {
        hide: true, tags: ['worker hosts'],
        body: { ...heartbeatBody, required: ['worker_id'], properties: { ...heartbeatBody.properties, worker_id: { type: 'string', maxLength: 48 } } },
      },
    }, async (req) => doHeartbeat((req.body as { worker_id: string }).worker_id, req.body as never));

    app.post('/workers/:worker_id/claim', {
      schema: { hide, tags: ['worker hosts'], summary: 'Claim the best pending task for this worker: 200 with the task, 204 when none is available.', params: workerParam },
    }, async (req, reply) => {
      const { worker_id } = req.params as { worker_id: string };
      const w = await requireWorker(worker_id);
      if (w.current_task_id) {
        const held = await getTask(deps.pool, w.current_task_id);
        if (held?.status === 'running' && held.worker_id === worker_id) {
          throw new AppError('worker_busy', `Worker ${worker_id} already holds task ${w.current_task_id}`, { task_id: w.current_task_id });
        }
        await releaseWorker(deps.pool, worker_id, w.current_task_id);
      }
      const supported = Array.isArray(w.capabilities.supported_problems) ? (w.capabilities.supported_problems as string[]) : [];
      const task = await claimTask(deps.pool, { workerId: worker_id, backendType: w.backend_type, supportedProblems: supported, leaseSeconds: deps.config.leaseSeconds });
      if (!task) return reply.status(204).send();
      return taskToJson(task);
    });

    const finish = (kind: 'complete' | 'fail') => async (req: { params: unknown; body: unknown }) => {
      const { worker_id, task_id } = req.params as { worker_id: string; task_id: string };
      await requireWorker(worker_id);
      const body = (req.body ?? {}) as Record<string, unknown>;
      let errorType: string | null = null;
      let errorDetails: string | null = null;
      let result: Record<string, unknown> | null = body;
      if (kind === 'fail') {
        const given = typeof body.error_type === 'string' ? body.error_type : null;
        if (given !== null && !isErrorCode(given)) {
          throw new AppError('validation_failed', `error_type "${given}" is not a known error code`, [{ field: 'error_type', reason: 'unknown error code' }]);
        }
        errorType = given ?? 'worker_failed';
        const d = body.error_details ?? body.error ?? body.message ?? null;
        errorDetails = d === null ? null : typeof d === 'string' ? d : JSON.stringify(d);
        result = body.result && typeof body.result === 'object' ? (body.result as Record<string, unknown>) : null;
      }
      const done = await finishTask(deps.pool, { taskId: task_id, workerId: worker_id, status: kind === 'complete' ? 'completed' : 'failed', result, errorType, errorDetails });
      if (done) return taskToJson(done);
      const t = await getTask(deps.pool, task_id);
      if (!t) throw notFound('task_not_found', task_id);
      await releaseWorker(deps.pool, worker_id, task_id);
      throw new AppError('task_not_held', `Worker ${worker_id} does not hold task ${task_id} (status ${t.status}${t.worker_id && t.worker_id !== worker_id ? `, held by ${t.worker_id}` : ''})`, { status: t.status, worker_id: t.worker_id });
    };
    app.post('/workers/:worker_id/tasks/:task_id/complete', {
      schema: { hide, tags: ['worker hosts'], summary: 'Complete a task this worker holds; the body is stored as the result.', params: workerTaskParams, body: { type: ['object', 'null'] } },
    }, finish('complete'));
    app.post('/workers/:worker_id/tasks/:task_id/fail', {
      schema: {
        hide, tags: ['worker hosts'], summary: 'Fail a task this worker holds: {error_type?, error_details?, result?}.', params: workerTaskParams,
        body: { type: ['object', 'null'], properties: { error_type: { type: 'string' }, error_details: {}, result: { type: 'object' } } },
      },
    }, finish('fail'));

    app.get('/workers/:worker_id', { schema: { hide, tags: ['workers'], summary: 'One worker.', params: workerParam } },
      async (req) => workerToJson(await requireWorker((req.params as { worker_id: string }).worker_id)));
    app.get('/workers/:worker_id/stats', { schema: { hide, tags: ['workers'], summary: 'Totals, success rate, average task duration and uptime of one worker.', params: workerParam } },
      async (req) => {
        const id = (req.params as { worker_id: string }).worker_id;
        const s = await workerStats(deps.pool, id);
        if (!s) throw notFound('worker_not_found', id);
        return s;
      });
  };
}
