/** Inserting a task: one statement that also writes its first timeline row. Idempotent by key. */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import { sendDeferredEvents } from '../store/deferredEvents.js';
import { queryPrepared } from '../store/preparedQuery.js';
import type { Queryable } from '../store/pool.js';
import type { TaskParameters, TaskRow } from './taskRecord.js';

export interface NewTask {
  problemId: string;
  parameters: TaskParameters;
  maxAttempts: number;
  idempotencyKey?: string | null;
  experimentId?: string | null;
}

export function requestHash(problemId: string, parameters: TaskParameters): string {
  return createHash('sha256').update(JSON.stringify([problemId, parameters])).digest('hex');
}

/** Returns the task and whether it was created now (false: an idempotent replay). */
export async function submitTask(db: Queryable, t: NewTask): Promise<{ task: TaskRow; created: boolean }> {
  const hash = requestHash(t.problemId, t.parameters);
  // Events are sent after the commit (see deferredEvents.ts): the workers wake on the first.
  const inserted = await queryPrepared<TaskRow & { notify_task: string; notify_log: string | null }>(db, 'submit_task',
    `WITH defer AS (SELECT defer_notify()), t AS (
       INSERT INTO tasks (problem_id, priority, parameters, backend_type, timeout_minutes, max_steps, max_attempts,
                          idempotency_key, request_hash, experiment_id, callback_url)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM defer
       ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING *, task_event(tasks) AS notify_task
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'info', 'Task created', jsonb_build_object('phase', 'created', 'problem_id', problem_id, 'parameters', parameters) FROM t
       RETURNING task_log_event(task_logs) AS notify_log
     )
     SELECT t.*, (SELECT notify_log FROM l) AS notify_log FROM t`,
    [t.problemId, t.parameters.priority, JSON.stringify(t.parameters), t.parameters.backend_type ?? null,
      t.parameters.timeout_minutes, t.parameters.max_steps, t.maxAttempts, t.idempotencyKey ?? null, hash,
      t.experimentId ?? null, t.parameters.callback_url ?? null],
  );
  if (inserted.rows[0]) {
    const { notify_task, notify_log, ...task } = inserted.rows[0];
    await sendDeferredEvents(db, [['task_events', notify_task], ['task_log_events', notify_log]]);
    return { task: task as TaskRow, created: true };
  }
  const existing = await db.query<TaskRow>('SELECT * FROM tasks WHERE idempotency_key = $1', [t.idempotencyKey]);
  const row = existing.rows[0];
  if (!row) throw new Error('idempotent insert found neither a new nor an existing row');
  if (row.request_hash !== hash) {
    throw new AppError('idempotency_conflict', `Idempotency-Key "${t.idempotencyKey}" was already used for a different request (task ${row.id}).`, { task_id: row.id });
  }
  return { task: row, created: false };
}
