/** Cancelling from the API: immediate for the record; the worker holding it stops the run. */
import { AppError } from '../errors.js';
import type { Queryable } from '../store/pool.js';
import type { TaskRow } from './taskRecord.js';

export async function cancelTask(db: Queryable, taskId: string, reason = 'Cancelled by user'): Promise<TaskRow> {
  const r = await db.query<TaskRow>(
    `WITH t AS (
       UPDATE tasks SET status = 'cancelled', completed_at = now(), lease_expires_at = NULL,
              error_type = 'cancelled', error_details = $2
       WHERE id = $1 AND status IN ('pending', 'running')
       RETURNING *
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'warning', 'Task cancelled: ' || $2, jsonb_build_object('phase', 'cancelled', 'worker_id', worker_id) FROM t
     )
     SELECT * FROM t`,
    [taskId, reason],
  );
  if (r.rows[0]) return r.rows[0];
  const existing = await db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
  if (!existing.rows[0]) throw new AppError('task_not_found', `Task ${taskId} not found`);
  throw new AppError('task_terminal', `Task ${taskId} is already ${existing.rows[0].status}; only pending or running tasks can be cancelled.`, { status: existing.rows[0].status });
}
