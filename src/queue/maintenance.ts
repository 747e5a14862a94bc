/**
 * The maintenance pass, run periodically by every `start`/`serve`/`worker` process (each step is a
 * single idempotent statement, so several processes running it at once is harmless):
 * workers silent too long go offline; tasks whose lease expired are requeued (attempts left) or
 * failed as worker_lost; running tasks past their timeout become `timeout`.
 */
import type { Queryable } from '../store/pool.js';
import { foldTaskCounts } from './taskCounts.js';

export interface MaintenanceOptions {
  workerOfflineAfterSeconds: number;
}

export interface MaintenanceReport {
  workersOffline: string[];
  requeued: string[];
  lost: string[];
  timedOut: string[];
}

export async function markOfflineWorkers(db: Queryable, offlineAfterSeconds: number): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `UPDATE workers SET status = 'offline', current_task_id = NULL
     WHERE status <> 'offline' AND last_heartbeat < now() - make_interval(secs => $1)
     RETURNING id`,
    [offlineAfterSeconds],
  );
  return r.rows.map((x) => x.id);
}

export async function expireLeases(db: Queryable): Promise<{ requeued: string[]; lost: string[] }> {
  const r = await db.query<{ id: string; status: string }>(
    `WITH expired AS (
       SELECT id, worker_id, attempt < max_attempts AS retry FROM tasks
       WHERE status = 'running' AND lease_expires_at < now()
       FOR UPDATE SKIP LOCKED
     ), t AS (
       UPDATE tasks SET
         status = CASE WHEN e.retry THEN 'pending' ELSE 'failed' END,
         worker_id = CASE WHEN e.retry THEN NULL ELSE tasks.worker_id END,
         started_at = CASE WHEN e.retry THEN NULL ELSE tasks.started_at END,
         completed_at = CASE WHEN e.retry THEN NULL ELSE now() END,
         lease_expires_at = NULL,
         error_type = CASE WHEN e.retry THEN NULL ELSE 'worker_lost' END,
         error_details = CASE WHEN e.retry THEN NULL ELSE
           'Worker ' || e.worker_id || ' stopped heartbeating; its lease expired on attempt ' || tasks.attempt || ' of ' || tasks.max_attempts END
       FROM expired e WHERE tasks.id = e.id
       RETURNING tasks.id, tasks.status, e.worker_id AS lost_worker, tasks.attempt, tasks.max_attempts
     ), w AS (
       UPDATE workers SET status = CASE WHEN workers.status = 'offline' THEN 'offline' ELSE 'idle' END, current_task_id = NULL
       FROM t WHERE workers.current_task_id = t.id
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, CASE WHEN status = 'pending' THEN 'warning' ELSE 'error' END,
              CASE WHEN status = 'pending' THEN 'Worker ' || lost_worker || ' lost (lease expired); requeued'
                   ELSE 'Worker ' || lost_worker || ' lost (lease expired); no attempts left' END,
              jsonb_build_object('phase', 'lease_expired', 'worker_id', lost_worker, 'attempt', attempt, 'max_attempts', max_attempts)
       FROM t
     )
     SELECT id, status FROM t`,
  );
  return {
    requeued: r.rows.filter((x) => x.status === 'pending').map((x) => x.id),
    lost: r.rows.filter((x) => x.status === 'failed').map((x) => x.id),
  };
}

export async function timeOutTasks(db: Queryable): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `WITH t AS (
       UPDATE tasks SET status = 'timeout', completed_at = now(), lease_expires_at = NULL, error_type = 'timeout',
              error_details = 'Task exceeded its timeout of ' || timeout_minutes || ' minute(s)'
       WHERE status = 'running' AND started_at + make_interval(mins => timeout_minutes) < now()
       RETURNING id, worker_id, timeout_minutes
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'error', 'Task timed out after ' || timeout_minutes || ' minute(s)', jsonb_build_object('phase', 'timeout', 'worker_id', worker_id) FROM t
     )
     SELECT id FROM t`,
  );
  return r.rows.map((x) => x.id);
}

export async function runMaintenance(db: Queryable, o: MaintenanceOptions): Promise<MaintenanceReport> {
  const workersOffline = await markOfflineWorkers(db, o.workerOfflineAfterSeconds);
  const { requeued, lost } = await expireLeases(db);
  const timedOut = await timeOutTasks(db);
  // Keeps the not-yet-folded task counts short, so reading the counts stays cheap.
  await foldTaskCounts(db);
  return { workersOffline, requeued, lost, timedOut };
}
