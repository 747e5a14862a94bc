/**
 * Claiming: one statement picks the best pending task this worker may run (priority, then age),
 * skipping rows other claimers hold, marks it running under a lease, marks the worker busy and
 * writes the timeline row. Two claimers can never get the same task.
 */
import { claimLimitsCondition } from '../experiments/claimLimits.js';
import { announceAfterCommit } from '../store/deferredEvents.js';
import { queryPrepared } from '../store/preparedQuery.js';
import type { Queryable } from '../store/pool.js';
import type { TaskRow } from './taskRecord.js';

export interface ClaimOptions {
  workerId: string;
  backendType: string;
  /** Glob patterns (`*` wildcard) of problem ids this worker runs; empty = all. */
  supportedProblems: string[];
  leaseSeconds: number;
}

/** `k8s_target_port-*` -> LIKE pattern, with LIKE's own wildcards escaped. */
export function globToLike(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

/** The claimed task, with the claiming worker's cluster_dirty flag read in the same statement. */
export type ClaimedTask = TaskRow & { worker_cluster_dirty: boolean };

export async function claimTask(db: Queryable, o: ClaimOptions): Promise<ClaimedTask | null> {
  const patterns = o.supportedProblems.length ? o.supportedProblems.map(globToLike) : null;
  // Events are sent after the commit (see deferredEvents.ts).
  const r = await queryPrepared<ClaimedTask & { notify_task: string; notify_worker: string | null; notify_log: string | null }>(db, 'claim_task',
    `WITH defer AS (SELECT defer_notify()), candidate AS (
       SELECT t.id FROM tasks t
       WHERE t.status = 'pending'
         AND COALESCE(t.backend_type, $2) = $2
         AND ($3::text[] IS NULL OR t.problem_id LIKE ANY ($3::text[]))
         AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $1 AND w.current_task_id IS NULL)
         -- Spend caps and concurrency caps: a task over a limit is skipped, the next one considered.
         AND ${claimLimitsCondition('t')}
       ORDER BY t.priority DESC, t.created_at ASC
       FOR UPDATE SKIP LOCKED
       LIMIT 1
     ), claimed AS (
       UPDATE tasks t SET status = 'running', worker_id = $1, started_at = now(),
              lease_expires_at = now() + make_interval(secs => $4), attempt = t.attempt + 1
       FROM candidate, defer WHERE t.id = candidate.id
       RETURNING t.*, task_event(t) AS notify_task
     ), w AS (
       UPDATE workers SET status = 'busy', current_task_id = claimed.id, last_heartbeat = now()
       FROM claimed WHERE workers.id = $1
       RETURNING worker_event(workers) AS notify_worker, workers.cluster_dirty
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'info', 'Claimed by ' || $1, jsonb_build_object('phase', 'claimed', 'worker_id', $1::text, 'attempt', attempt,
              'queued_ms', round(extract(epoch FROM (started_at - created_at)) * 1000)) FROM claimed
       RETURNING task_log_event(task_logs) AS notify_log
     )
     SELECT claimed.*, (SELECT notify_worker FROM w) AS notify_worker, (SELECT cluster_dirty FROM w) AS worker_cluster_dirty,
            (SELECT notify_log FROM l) AS notify_log FROM claimed`,
    [o.workerId, o.backendType, patterns, o.leaseSeconds],
  );
  if (!r.rows[0]) return null;
  const { notify_task, notify_worker, notify_log, ...task } = r.rows[0];
  // On a pool, not waited for: the worker starts the task while the events go out, in order.
  await announceAfterCommit(db, [['task_events', notify_task], ['worker_events', notify_worker], ['task_log_events', notify_log]]);
  return task as ClaimedTask;
}
