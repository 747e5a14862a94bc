/** /api/v1/tasks: submit, list, read, cancel, logs, statistics. */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { cancelTask } from '../../queue/cancelTask.js';
import { findExperiment } from '../../experiments/experimentQueries.js';
import { submitTaskCoalesced } from '../../queue/submitBatch.js';
import { TASK_STATUSES, taskToJson, type TaskStatus } from '../../queue/taskRecord.js';
import { TASK_SORT_FIELDS, getTask, listTasks, taskStats, type TaskSortField } from '../../queue/taskQueries.js';
import { LOG_LEVELS, listTaskLogs } from '../../store/taskLogs.js';
import type { AppDeps } from '../appDeps.js';
import { notFound } from '../server.js';
import { createTaskBodySchema, normalizeTaskParameters, type CreateTaskBody } from '../taskRequest.js';

const uuidParam = { type: 'object', required: ['task_id'], properties: { task_id: { type: 'string', format: 'uuid' } } } as const;
const SORTS = TASK_SORT_FIELDS.flatMap((f) => [f, `-${f}`]);

export function taskRoutes(deps: AppDeps, opts: { hidden: boolean }) {
  const hide = opts.hidden;
  return async function (app: FastifyInstance) {
    app.post('/tasks', {
      schema: {
        hide, tags: ['tasks'], summary: 'Submit a task (nested `parameters` or flat fields). Idempotency-Key header: the same key returns the same task.',
        body: createTaskBodySchema,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } } },
      },
    }, async (req, reply) => {
      const body = req.body as CreateTaskBody;
      const parameters = normalizeTaskParameters(body, { model: deps.config.defaultModel });
      if (body.experiment_id && !(await findExperiment(deps.pool, body.experiment_id))) {
        throw new AppError('experiment_not_found', `Experiment ${body.experiment_id} not found`, [{ field: 'experiment_id', reason: 'no experiment has this id' }]);
      }
      if (deps.submitValidator) await deps.submitValidator.validate(body.problem_id, parameters.agent_config.model, parameters as unknown as Record<string, unknown>);
      const key = req.headers['idempotency-key'];
      const { task, created } = await submitTaskCoalesced(deps.pool, {
        problemId: body.problem_id,
        parameters,
        maxAttempts: deps.config.maxAttempts,
        idempotencyKey: typeof key === 'string' ? key : null,
        experimentId: body.experiment_id ?? null,
      });
      if (!created) reply.header('Idempotent-Replayed', 'true');
      reply.status(created ? 201 : 200).header('Location', `/api/v1/tasks/${task.id}`);
      return taskToJson(task);
    });

    app.get('/tasks', {
      schema: {
        hide, tags: ['tasks'], summary: 'List tasks. Pagination by page/page_size or limit/offset; sort by a field, `-` for descending.',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            status: { type: 'string', pattern: `^(${TASK_STATUSES.join('|')})(,(${TASK_STATUSES.join('|')}))*$`, description: 'One status or several, comma-separated.' },
            problem_id: { type: 'string', maxLength: 255 },
            q: { type: 'string', maxLength: 255, description: 'Substring of the problem id.' },
            worker_id: { type: 'string', maxLength: 255 },
            backend_type: { type: 'string', maxLength: 100 },
            experiment_id: { type: 'string', format: 'uuid' },
            created_after: { type: 'string', format: 'date-time' },
            created_before: { type: 'string', format: 'date-time' },
            page: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            page_size: { type: 'integer', minimum: 1, maximum: 100 },
            limit: { type: 'integer', minimum: 1, maximum: 100 },
            offset: { type: 'integer', minimum: 0, maximum: 100_000_000 },
            sort: { type: 'string', enum: SORTS, default: '-created_at' },
          },
        },
      },
    }, async (req) => {
      const q = req.query as Record<string, string | number | undefined>;
      if ((q.page !== undefined || q.page_size !== undefined) && (q.limit !== undefined || q.offset !== undefined)) {
        throw new AppError('validation_failed', 'Use either page/page_size or limit/offset, not both', [{ field: 'query.limit', reason: 'cannot be combined with page/page_size' }]);
      }
      const pageSize = (q.limit ?? q.page_size ?? 20) as number;
      const page = (q.page ?? 1) as number;
      const offset = q.offset !== undefined ? (q.offset as number) : (page - 1) * pageSize;
      const sort = String(q.sort ?? '-created_at');
      const { tasks, total, totalIsEstimate } = await listTasks(deps.pool, {
        status: q.status ? (String(q.status).split(',') as TaskStatus[]) : undefined,
        problemId: q.problem_id as string | undefined,
        search: q.q as string | undefined,
        workerId: q.worker_id as string | undefined,
        backendType: q.backend_type as string | undefined,
        experimentId: q.experiment_id as string | undefined,
        createdAfter: q.created_after ? new Date(String(q.created_after)) : undefined,
        createdBefore: q.created_before ? new Date(String(q.created_before)) : undefined,
        sort: sort.replace(/^-/, '') as TaskSortField,
        descending: sort.startsWith('-'),
        limit: pageSize,
        offset,
      });
      // total_is_estimate: true when `total` is the planner's estimate (more than 10,000 matches of a filter the kept counts do not cover).
      return { tasks: tasks.map(taskToJson), total, total_is_estimate: totalIsEstimate, page: Math.floor(offset / pageSize) + 1, page_size: pageSize, limit: pageSize, offset };
    });

    app.get('/tasks/stats', { schema: { hide, tags: ['tasks'], summary: 'Counts per status, average execution time (s), success rate, per problem and per worker.' } },
      async () => taskStats(deps.pool));

    app.get('/tasks/:task_id', {
      schema: {
        hide, tags: ['tasks'], summary: 'One task; include_logs=true adds its newest 100 log entries.', params: uuidParam,
        querystring: { type: 'object', additionalProperties: false, properties: { include_logs: { type: 'boolean', default: false } } },
      },
    }, async (req) => {
      const { task_id } = req.params as { task_id: string };
      const task = await getTask(deps.pool, task_id);
      if (!task) throw notFound('task_not_found', task_id);
      const out = taskToJson(task);
      if ((req.query as { include_logs?: boolean }).include_logs) out.logs = (await listTaskLogs(deps.pool, task_id, { limit: 100 })).logs;
      return out;
    });

    const cancel = async (req: { params: unknown }) => {
      const { task_id } = req.params as { task_id: string };
      return taskToJson(await cancelTask(deps.pool, task_id));
    };
    const cancelSchema = (summary: string) => ({ schema: { hide, tags: ['tasks'], summary, params: uuidParam } });
    app.post('/tasks/:task_id/cancel', cancelSchema('Cancel a pending or running task (a running one is stopped by its worker within seconds). 409 when already ended.'), cancel);
    app.put('/tasks/:task_id/cancel', cancelSchema('Alias of POST …/cancel.'), cancel);
    app.delete('/tasks/:task_id', cancelSchema('Alias of POST …/cancel (tasks are never deleted).'), cancel);

    app.get('/tasks/:task_id/logs', {
      schema: {
        hide, tags: ['tasks'], summary: 'The task timeline and captured AIOpsLab output: the newest `limit` entries in time order.',
        params: uuidParam,
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            level: { type: 'string', enum: [...LOG_LEVELS] },
            since: { type: 'string', format: 'date-time' },
            after_id: { type: 'integer', minimum: 0 },
            source: { type: 'string', enum: ['timeline', 'aiopslab'], description: 'Only the executor\'s timeline rows, or only AIOpsLab\'s captured output.' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
      },
    }, async (req) => {
      const { task_id } = req.params as { task_id: string };
      const q = req.query as { level?: (typeof LOG_LEVELS)[number]; since?: string; after_id?: number; source?: 'timeline' | 'aiopslab'; limit: number };
      if (!(await getTask(deps.pool, task_id))) throw notFound('task_not_found', task_id);
      const { logs, total } = await listTaskLogs(deps.pool, task_id, { level: q.level, since: q.since ? new Date(q.since) : undefined, afterId: q.after_id, source: q.source, limit: q.limit });
      return { logs, total, returned: logs.length };
    });
  };
}
