/**
 * Claiming: one statement (queueSteps.ts) picks the best pending task the worker may run
 * (priority, then age), skipping rows other claimers hold, marks it running under a lease, marks
 * the worker busy and writes the timeline row. Two claimers can never get the same task. A task
 * under a concurrency cap is checked again after the claim (see verifyWithinCaps).
 */
import pg from 'pg';
import { OVER_CONCURRENCY_CAP_SQL } from '../experiments/claimLimits.js';
import type { Queryable } from '../store/pool.js';
import { requeueTask } from './finishTask.js';
import { CapCheckFailed, CLAIM_RETRIES, coalescedClaim, runSteps } from './queueSteps.js';
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
 * The best pending task this worker may run, claimed for it, or null. On a pool, the claim shares
 * a statement with the other claims and finishes of the moment (queueSteps.ts); on a client it
 * runs alone.
 */
export async function claimTask(db: Queryable, o: ClaimOptions): Promise<ClaimedTask | null> {
  if (db instanceof pg.Pool) return coalescedClaim(db, o);
  for (let i = 0; i < CLAIM_RETRIES; i++) {
    const { claimed: [r] } = await runSteps(db, [], [o]);
    if (r === 'retry') continue;
    if (r instanceof CapCheckFailed) throw r.error;
    return r ?? null;
  }
  return null;
}

/** Arbitrary constant: the advisory lock that serialises the post-claim cap checks. */
export const CAP_CHECK_LOCK = 7_310_452_019;

/**
 * The claim statement's snapshot cannot see claims committing at the same moment, so a capped
 * claim is checked again: one check at a time (an advisory lock), each in a fresh statement that
 * sees every claim committed before it. The later of two racing claims finds the cap exceeded and
 * hands its task back to the queue, as if never claimed (the attempt is not counted). At most
 * `cap` claims stand, and a check never undoes an earlier one, so no cap is ever exceeded for
 * longer than a check takes. Returns whether the claim stands. A check that fails hands the task
 * back too, then throws.
 */
export async function verifyWithinCaps(db: Queryable, taskId: string, workerId: string): Promise<boolean> {
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
      // The claim committed but could not be checked. Hand it back now, or the task and the worker
      // would wait for the lease to run out (and the task lose an attempt as worker_lost); if the
      // hand-back fails too, that expiry is what frees them.
      const why = String((e as Error).message ?? e).split('\n')[0]!.slice(0, 200);
      await requeueTask(client, taskId, workerId, `its concurrency cap could not be checked (${why})`, { undoClaim: true }).catch(() => {});
      throw e;
    }
  } finally {
    if (db instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}
