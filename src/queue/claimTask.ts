/**
 * Claiming: one statement picks the best pending task this worker may run (priority, then age),
 * skipping rows other claimers hold, marks it running under a lease, marks the worker busy and
 * writes the timeline row. Two claimers can never get the same task. A task under a concurrency
 * cap is checked again after the claim (see verifyWithinCaps).
 */
import pg from 'pg';
import { concurrencyCappedExpression, OVER_CONCURRENCY_CAP_SQL } from '../experiments/claimLimits.js';
import { announceAfterCommit, sendDeferredEvents, type DeferredEvent } from '../store/deferredEvents.js';
import { queryPrepared } from '../store/preparedQuery.js';
import type { Queryable } from '../store/pool.js';
import { requeueTask } from './finishTask.js';
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

/**
 * Claims that found their cap taken by a simultaneous claim, or their candidate submitted after the
 * claim statement began, are retried this often before giving up for this round.
 */
const CLAIM_RETRIES = 5;

export async function claimTask(db: Queryable, o: ClaimOptions): Promise<ClaimedTask | null> {
  for (let i = 0; i < CLAIM_RETRIES; i++) {
    const r = await claimOnce(db, o);
    if (r !== 'retry') return r;
  }
  return null;
}

/**
 * The claim statement. `claim_candidate()` (migrations/0006) finds and locks the task with a plan
 * that stays an index walk whatever the statistics say; it runs on a newer snapshot than this
 * statement, so a task submitted in between can be found there but not updated here (`candidate`
 * is returned so the caller can tell and try again).
 */
const CLAIM_SQL = `WITH defer AS (SELECT defer_notify()), candidate AS (
       SELECT claim_candidate($1, $2, $4::text[]) AS id
     ), claimed AS (
       UPDATE tasks t SET status = 'running', worker_id = $1, started_at = now(),
              lease_expires_at = now() + make_interval(secs => $3), attempt = t.attempt + 1
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
            (SELECT notify_log FROM l) AS notify_log, ${concurrencyCappedExpression('claimed')} AS concurrency_capped,
            candidate.id AS candidate_id
       FROM candidate LEFT JOIN claimed ON true`;

type ClaimRow = ClaimedTask & { notify_task: string; notify_worker: string | null; notify_log: string | null; concurrency_capped: boolean; candidate_id: string | null };

async function claimOnce(db: Queryable, o: ClaimOptions): Promise<ClaimedTask | null | 'retry'> {
  const patterns = o.supportedProblems.length ? o.supportedProblems.map(globToLike) : null;
  // Events are sent after the commit (see deferredEvents.ts).
  const r = await queryPrepared<ClaimRow>(db, 'claim_task', CLAIM_SQL, [o.workerId, o.backendType, o.leaseSeconds, patterns]);
  const row = r.rows[0];
  if (!row || row.candidate_id === null) return null;
  // Found by claim_candidate on its newer snapshot, but not visible to this statement's update.
  if (row.id === null) return 'retry';
  const { notify_task, notify_worker, notify_log, concurrency_capped, candidate_id: _, ...task } = row;
  const events: DeferredEvent[] = [['task_events', notify_task], ['worker_events', notify_worker], ['task_log_events', notify_log]];
  if (!concurrency_capped) {
    // On a pool, not waited for: the worker starts the task while the events go out, in order.
    await announceAfterCommit(db, events);
    return task as ClaimedTask;
  }
  // Sent before the check, so a hand-back (announced by the triggers) is never seen before the claim.
  await sendDeferredEvents(db, events);
  return (await verifyWithinCaps(db, task.id, o.workerId)) ? task as ClaimedTask : 'retry';
}

/** Arbitrary constant: the advisory lock that serialises the post-claim cap checks. */
export const CAP_CHECK_LOCK = 7_310_452_019;

/**
 * The claim statement's snapshot cannot see claims committing at the same moment, so a capped
 * claim is checked again: one check at a time (an advisory lock), each in a fresh statement that
 * sees every claim committed before it. The later of two racing claims finds the cap exceeded and
 * hands its task back to the queue, as if never claimed (the attempt is not counted). At most
 * `cap` claims stand, and a check never undoes an earlier one, so no cap is ever exceeded for
 * longer than a check takes. Returns whether the claim stands.
 */
async function verifyWithinCaps(db: Queryable, taskId: string, workerId: string): Promise<boolean> {
  const client = db instanceof pg.Pool ? await db.connect() : db;
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [CAP_CHECK_LOCK]);
      const over = (await client.query<{ over: boolean }>(OVER_CONCURRENCY_CAP_SQL, [taskId])).rows[0]?.over ?? false;
      if (over) await requeueTask(client, taskId, workerId, 'a simultaneous claim took the last place under its concurrency cap', { undoClaim: true });
      await client.query('COMMIT');
      return !over;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    }
  } finally {
    if (db instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}
