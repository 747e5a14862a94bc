/**
 * Ending a task the worker holds. Every statement checks that the worker still holds the task
 * (status running, worker_id = it), so a worker whose lease expired or whose task was cancelled
 * can never overwrite what happened meanwhile.
 */
import pg from 'pg';
import type { Queryable } from '../store/pool.js';
import { coalescedFinish, runSteps } from './queueSteps.js';
import type { TaskRow } from './taskRecord.js';

export type FinalStatus = 'completed' | 'failed' | 'timeout';

export interface Finish {
  taskId: string;
  workerId: string;
  status: FinalStatus;
  result: Record<string, unknown> | null;
  errorType: string | null;
  errorDetails: string | null;
}

/**
 * Returns the updated task, or null when the worker no longer holds it. On a pool, the finish
 * shares a statement with the other claims and finishes of the moment (queueSteps.ts); on a
 * client it runs alone.
 */
export async function finishTask(db: Queryable, f: Finish): Promise<TaskRow | null> {
  if (db instanceof pg.Pool) return coalescedFinish(db, f);
  return (await runSteps(db, [f], [])).finished[0]!;
}

/**
 * The run of a task that was cancelled or timed out by someone else still produced data (partial
 * results, the outcome of the stop). Keep it on the task without touching its status.
 */
export async function recordLateResult(db: Queryable, taskId: string, workerId: string, result: Record<string, unknown>): Promise<boolean> {
  const r = await db.query(
    `UPDATE tasks SET result = COALESCE(result, '{}'::jsonb) || $3::jsonb
     WHERE id = $1 AND worker_id = $2 AND status IN ('cancelled', 'timeout', 'failed')`,
    [taskId, workerId, JSON.stringify(result)],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Free the worker row after a task it held ended elsewhere (cancel, timeout, lease loss). */
export async function releaseWorker(db: Queryable, workerId: string, taskId: string): Promise<void> {
  await db.query(
    `UPDATE workers SET status = CASE WHEN status = 'offline' THEN 'offline' ELSE 'idle' END, current_task_id = NULL, last_heartbeat = now()
     WHERE id = $1 AND current_task_id = $2`,
    [workerId, taskId],
  );
}

/**
 * Put a task back in the queue because its worker is shutting down. The attempt does not count
 * against max_attempts (the task did not fail, the worker left), but attempt numbers stay unique
 * per run, since each attempt has its own conversation record.
 *
 * `undoClaim`: the claim itself is taken back before any work began (a concurrency cap taken by a
 * simultaneous claim): the attempt number is given back instead, and the timeline says so.
 */
export async function requeueTask(db: Queryable, taskId: string, workerId: string, reason: string, opts: { undoClaim?: boolean } = {}): Promise<boolean> {
  const r = await db.query(
    `WITH t AS (
       UPDATE tasks SET status = 'pending', worker_id = NULL, started_at = NULL, lease_expires_at = NULL, result = NULL,
              max_attempts = max_attempts + CASE WHEN $4 THEN 0 ELSE 1 END, attempt = attempt - CASE WHEN $4 THEN 1 ELSE 0 END
       WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING id
     ), w AS (
       UPDATE workers SET status = CASE WHEN status = 'offline' THEN 'offline' ELSE 'idle' END, current_task_id = NULL
       WHERE id = $2 AND current_task_id = $1
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, CASE WHEN $4 THEN 'info' ELSE 'warning' END, CASE WHEN $4 THEN 'Returned to the queue: ' ELSE 'Requeued: ' END || $3,
              jsonb_build_object('phase', CASE WHEN $4 THEN 'unclaimed' ELSE 'requeued' END, 'worker_id', $2::text) FROM t
     )
     SELECT id FROM t`,
    [taskId, workerId, reason, opts.undoClaim ?? false],
  );
  return (r.rowCount ?? 0) > 0;
}
