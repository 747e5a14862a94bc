/** Inserting a task: one statement that also writes its first timeline row. Idempotent by key. */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
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
  // Announced by the triggers at commit, with no round trip after it: idle workers wake on it.
  // (Concurrent API submissions are coalesced into few transactions by submitBatch.ts, so these
  // notifying commits do not queue behind each other; claims and finishes defer theirs.)
  const inserted = await queryPrepared<TaskRow>(db, 'submit_task',
    `WITH t AS (
       INSERT INTO tasks (problem_id, priority, parameters, backend_type, timeout_minutes, max_steps, max_attempts,
                          idempotency_key, request_hash, experiment_id, callback_url)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING *
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'info', 'Task created', jsonb_build_object('phase', 'created', 'problem_id', problem_id, 'parameters', parameters) FROM t
     )
     SELECT * FROM t`,
    [t.problemId, t.parameters.priority, JSON.stringify(t.parameters), t.parameters.backend_type ?? null,
      t.parameters.timeout_minutes, t.parameters.max_steps, t.maxAttempts, t.idempotencyKey ?? null, hash,
      t.experimentId ?? null, t.parameters.callback_url ?? null],
  );
  if (inserted.rows[0]) return { task: inserted.rows[0], created: true };
  return idempotentReplay(db, t, hash);
}

/** The task an insert skipped because its idempotency key exists: a replay, or a conflict when the request differs. */
export async function idempotentReplay(db: Queryable, t: NewTask, hash: string): Promise<{ task: TaskRow; created: boolean }> {
  const existing = await db.query<TaskRow>('SELECT * FROM tasks WHERE idempotency_key = $1', [t.idempotencyKey]);
  const row = existing.rows[0];
  if (!row) throw new Error('idempotent insert found neither a new nor an existing row');
  if (row.request_hash !== hash) {
    throw new AppError('idempotency_conflict', `Idempotency-Key "${t.idempotencyKey}" was already used for a different request (task ${row.id}).`, { task_id: row.id });
  }
  return { task: row, created: false };
}
