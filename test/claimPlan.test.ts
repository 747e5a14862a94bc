/**
 * A claim reads a handful of rows whatever the backlog and whatever the planner's statistics say.
 * Before claim_candidate() (migrations/0006), a backlog submitted since the last ANALYZE, or the
 * prepared claim's generic plan, made every claim read all pending tasks (bench/RESULTS.md).
 * Measured with PostgreSQL's own row counters, not with a clock.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTask } from '../src/queue/claimTask.js';
import { finishTask } from '../src/queue/finishTask.js';
import { registerWorker } from '../src/queue/workerRegistry.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

const BACKLOG = 3000;
/** More than the five custom plans PostgreSQL makes before it may switch to a generic one. */
const CLAIMS = 12;

async function fill(prefix: string, priority = 5): Promise<void> {
  await db.pool.query(
    `INSERT INTO tasks (problem_id, priority, parameters, timeout_minutes, max_steps, max_attempts)
     SELECT $1, $3, '{"agent_config": {"model": "openai/gpt-4o-mini"}}', 30, 10, 2 FROM generate_series(1, $2::int) AS i`,
    [prefix, BACKLOG, priority],
  );
}

interface Reads { seqTuples: number; indexTuples: number; indexScans: number }

/** Rows of `tasks` read so far by sequential and index scans, after flushing `c`'s pending counters. */
async function tasksReads(c: pg.PoolClient): Promise<Reads> {
  await c.query('SELECT pg_stat_force_next_flush()');
  const read = async (): Promise<Reads> => {
    await db.pool.query('SELECT pg_stat_clear_snapshot()');
    const r = await db.pool.query<{ seq: number; idx: number; scans: number }>(
      `SELECT COALESCE(t.seq_tup_read, 0)::int AS seq,
              (SELECT COALESCE(sum(i.idx_tup_read), 0)::int FROM pg_stat_user_indexes i WHERE i.relname = 'tasks') AS idx,
              (SELECT COALESCE(sum(i.idx_scan), 0)::int FROM pg_stat_user_indexes i WHERE i.relname = 'tasks') AS scans
         FROM pg_stat_user_tables t WHERE t.relname = 'tasks'`);
    return { seqTuples: r.rows[0]!.seq, indexTuples: r.rows[0]!.idx, indexScans: r.rows[0]!.scans };
  };
  // The flush happens when `c` goes idle; wait until the claims' scans show.
  let last = await read();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await read();
    if (now.indexScans === last.indexScans && i > 2) return now;
    last = now;
  }
  return last;
}

async function claimMany(workerId: string, supportedProblems: string[], generic: boolean): Promise<Reads> {
  const c = await db.pool.connect();
  try {
    // Whether PostgreSQL switches a prepared statement to its generic plan depends on cost
    // estimates; here it is made to, on this connection only.
    await c.query(`SET plan_cache_mode = ${generic ? 'force_generic_plan' : 'auto'}`);
    const before = await tasksReads(c);
    for (let i = 0; i < CLAIMS; i++) {
      const task = await claimTask(c, { workerId, backendType: 'kind', supportedProblems, leaseSeconds: 60 });
      expect(task, `claim ${i + 1}`).not.toBeNull();
      await finishTask(c, { taskId: task!.id, workerId, status: 'completed', result: {}, errorType: null, errorDetails: null });
    }
    const after = await tasksReads(c);
    return { seqTuples: after.seqTuples - before.seqTuples, indexTuples: after.indexTuples - before.indexTuples, indexScans: after.indexScans - before.indexScans };
  } finally {
    c.release();
  }
}

describe('claim plan', () => {
  beforeAll(async () => {
    for (const id of ['plan-all', 'plan-some']) {
      await registerWorker(db.pool, { id, backendType: 'kind', capabilities: {}, metadata: {}, instanceId: null, offlineAfterSeconds: 600 });
    }
  });

  // 3,000 tasks that ran before, each with a live entry in the index of tasks with a worker and a
  // dead one in the indexes of running tasks (no vacuum on this table meanwhile), analysed before
  // they ran (to the planner the index of tasks with a worker looks empty) or after (the indexes of
  // running tasks do). They come last in claim order (lower priority): the claims do not walk them.
  for (const analysed of ['before', 'after'] as const) {
    it(`finishes a task by its id, not by walking the index entries of tasks that ran before (analysed ${analysed} they ran)`, async () => {
      await db.pool.query('TRUNCATE tasks CASCADE');
      await db.pool.query('ALTER TABLE tasks SET (autovacuum_enabled = false)');
      try {
        await fill('plan-d1', 1);
        if (analysed === 'before') await db.pool.query('ANALYZE tasks');
        await db.pool.query(`UPDATE tasks SET status = 'running', worker_id = 'plan-all', started_at = now(), lease_expires_at = now() + interval '1 hour'`);
        await db.pool.query(`UPDATE tasks SET status = 'completed', completed_at = now(), lease_expires_at = NULL`);
        await fill('plan-d2');
        for (const generic of [false, true]) {
          if (generic && analysed === 'after') await db.pool.query('ANALYZE tasks');
          const reads = await claimMany('plan-all', [], generic);
          expect(reads.seqTuples, 'rows read by sequential scans').toBe(0);
          expect(reads.indexTuples / CLAIMS, `index entries read per claim and finish${generic ? ' (generic plan)' : ''}`).toBeLessThan(100);
        }
      } finally {
        await db.pool.query('ALTER TABLE tasks RESET (autovacuum_enabled)');
      }
    });
  }

  for (const analysed of [false, true]) {
    it(`reads a few rows per claim from a ${BACKLOG}-task backlog ${analysed ? 'with fresh statistics (generic plan)' : 'submitted since the last ANALYZE'}`, async () => {
      // Emptied without leaving dead index entries behind (a DELETE would, until vacuumed).
      await db.pool.query('TRUNCATE tasks CASCADE');
      await fill('plan-a1');
      if (analysed) await db.pool.query('ANALYZE tasks');
      for (const [worker, patterns] of [['plan-all', []], ['plan-some', ['plan-a*']]] as const) {
        const reads = await claimMany(worker, [...patterns], analysed);
        // The degraded plans read every pending task on every claim.
        expect(reads.seqTuples, `${worker}: rows read by sequential scans`).toBe(0);
        expect(reads.indexTuples / CLAIMS, `${worker}: index entries read per claim`).toBeLessThan(100);
      }
    });
  }
});
