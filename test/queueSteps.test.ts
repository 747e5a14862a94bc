/**
 * A process's claims and finishes of the same moment share one statement (src/queue/queueSteps.ts):
 * each caller still gets exactly its own outcome.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimTask } from '../src/queue/claimTask.js';
import { finishTask } from '../src/queue/finishTask.js';
import type { TaskRow } from '../src/queue/taskRecord.js';
import { registerWorker } from '../src/queue/workerRegistry.js';
import { createPool, type Pool } from '../src/store/pool.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let db: TestDatabase;
/** A pool like the service's, counting the queue-step statements it is sent. */
let pool: Pool;
let statements = 0;
/** Names of the queue-step statements sent, in order (which halves each ran). */
let sent: string[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url, 10);
  const query = pool.query.bind(pool) as (...a: unknown[]) => unknown;
  (pool as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
    const name = typeof a[0] === 'object' ? String((a[0] as { name?: string }).name) : '';
    if (/^queue_(steps|claims|finishes)_/.test(name)) {
      statements++;
      sent.push(name.replace(/_\d+$/, ''));
    }
    return query(...a);
  };
});
afterAll(async () => { await pool?.end(); await db?.drop(); });
beforeEach(async () => {
  await db.pool.query('TRUNCATE tasks CASCADE');
  await db.pool.query('DELETE FROM workers');
});

async function tasks(problems: string[]): Promise<string[]> {
  const r = await db.pool.query<{ id: string }>(
    `INSERT INTO tasks (problem_id, priority, created_at) SELECT p, 5, now() + n * interval '1 ms' FROM unnest($1::text[]) WITH ORDINALITY AS x(p, n) RETURNING id`,
    [problems]);
  return r.rows.map((row) => row.id);
}

async function workers(ids: string[]): Promise<void> {
  for (const id of ids) await registerWorker(db.pool, { id, backendType: 'kind', capabilities: {}, metadata: {}, instanceId: null, offlineAfterSeconds: 600 });
}

const claim = (workerId: string, supportedProblems: string[] = []) => claimTask(pool, { workerId, backendType: 'kind', supportedProblems, leaseSeconds: 60 });
const finish = (t: TaskRow, result: Record<string, unknown> = {}) =>
  finishTask(pool, { taskId: t.id, workerId: t.worker_id!, status: 'completed', result, errorType: null, errorDetails: null });

describe('queue steps', () => {
  it('claims of many workers at once: each gets its own task, in fewer statements than claims', async () => {
    const ids = await tasks(Array.from({ length: 12 }, (_, i) => `steps-${i}`));
    const names = Array.from({ length: 12 }, (_, i) => `steps-w-${i}`);
    await workers(names);
    statements = 0;
    const got = await Promise.all(names.map((w) => claim(w)));
    expect(got.every((t) => t !== null)).toBe(true);
    expect(new Set(got.map((t) => t!.id)).size).toBe(12);
    // Each task went to the worker that asked for it, and the workers' rows say so.
    for (const t of got) expect(t!.worker_id).toBe(names[got.indexOf(t)]);
    const held = await db.pool.query<{ id: string; current_task_id: string }>(`SELECT id, current_task_id FROM workers ORDER BY id`);
    for (const row of held.rows) expect(got.find((t) => t!.worker_id === row.id)!.id).toBe(row.current_task_id);
    expect(new Set(got.map((t) => t!.id))).toEqual(new Set(ids));
    expect(statements).toBeGreaterThan(0);
    expect(statements).toBeLessThan(12);
    // One timeline row per claim, none twice.
    const logs = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_logs WHERE context->>'phase' = 'claimed'`);
    expect(logs.rows[0]!.n).toBe(12);
    // Nothing left for a thirteenth worker.
    await workers(['steps-w-late']);
    expect(await claim('steps-w-late')).toBeNull();
  });

  it('a worker gets only tasks its filters allow, when workers with other filters claim in the same moment', async () => {
    await tasks(['alpha-1', 'beta-1', 'alpha-2', 'beta-2']);
    await workers(['f-alpha-1', 'f-beta-1', 'f-alpha-2', 'f-beta-2']);
    const got = await Promise.all([claim('f-alpha-1', ['alpha-*']), claim('f-beta-1', ['beta-*']), claim('f-alpha-2', ['alpha-*']), claim('f-beta-2', ['beta-*'])]);
    // Workers of one filter may race in separate statements (claims share a statement only with
    // claims of the same filters), so which of the two gets the older task is not fixed.
    expect(got.map((t) => t?.problem_id.split('-')[0])).toEqual(['alpha', 'beta', 'alpha', 'beta']);
    expect(new Set(got.map((t) => t?.problem_id)).size).toBe(4);
  });

  it('a finish the database refuses fails alone; the claims and finishes sharing its statement stand', async () => {
    await tasks(Array.from({ length: 8 }, (_, i) => `refuse-${i}`));
    const names = Array.from({ length: 8 }, (_, i) => `refuse-w-${i}`);
    await workers(names);
    const held = await Promise.all(names.slice(0, 6).map((w) => claim(w)));
    // PostgreSQL cannot store \u0000 in jsonb: the statement carrying it fails as a whole.
    const outcomes = await Promise.allSettled([
      ...held.slice(0, 5).map((t) => finish(t!)),
      finish(held[5]!, { text: 'nul \u0000 byte' }),
      claim(names[6]!),
      claim(names[7]!),
    ]);
    expect(outcomes.slice(0, 5).map((o) => o.status === 'fulfilled' && (o.value as TaskRow | null)?.status)).toEqual(Array(5).fill('completed'));
    expect(outcomes[5]!.status).toBe('rejected');
    expect(outcomes.slice(6).map((o) => o.status === 'fulfilled' && (o.value as TaskRow | null)?.problem_id).sort()).toEqual(['refuse-6', 'refuse-7']);
    const states = await db.pool.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM tasks GROUP BY 1 ORDER BY 1`);
    expect(states.rows).toEqual([{ status: 'completed', n: 5 }, { status: 'running', n: 3 }]);
    // The refused finish can be made again with a result the database takes.
    expect((await finish(held[5]!, { text: 'fine' }))?.status).toBe('completed');
  });

  it('finishes and claims of the same moment share a statement; a lone step runs only its own half', async () => {
    await tasks(Array.from({ length: 8 }, (_, i) => `mix-${i}`));
    const names = Array.from({ length: 8 }, (_, i) => `mix-w-${i}`);
    await workers(names);
    sent = [];
    const lone = await claim(names[0]!);
    expect(sent).toEqual(['queue_claims']);
    sent = [];
    expect((await finish(lone!))?.status).toBe('completed');
    expect(sent).toEqual(['queue_finishes']);
    const held = await Promise.all(names.slice(1, 4).map((w) => claim(w)));
    sent = [];
    const [f1, f2, f3, c1, c2, c3, c4] = await Promise.all([...held.map((t) => finish(t!)), ...names.slice(4).map((w) => claim(w))]);
    expect([f1, f2, f3].map((t) => t?.status)).toEqual(['completed', 'completed', 'completed']);
    expect([c1, c2, c3, c4].map((t) => t?.worker_id)).toEqual(names.slice(4));
    expect(sent).toContain('queue_steps');
    const states = await db.pool.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM tasks GROUP BY 1 ORDER BY 1`);
    expect(states.rows).toEqual([{ status: 'completed', n: 4 }, { status: 'running', n: 4 }]);
    const idle = await db.pool.query<{ id: string }>(`SELECT id FROM workers WHERE current_task_id IS NULL ORDER BY id`);
    expect(idle.rows.map((r) => r.id)).toEqual(names.slice(0, 4));
  });

  it('a worker\'s row changes in place: claims and finishes write no index entries for it', async () => {
    await tasks(['hot-1', 'hot-2', 'hot-3']);
    await workers(['hot-w']);
    const read = async () => {
      await db.pool.query('SELECT pg_stat_clear_snapshot()');
      const r = await db.pool.query<{ upd: number; hot: number }>(
        `SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = 'workers'`);
      return r.rows[0]!;
    };
    // On one connection, whose counters are flushed as soon as it goes idle (as in claimPlan.test.ts).
    const c = await pool.connect();
    try {
      await c.query('SELECT pg_stat_force_next_flush()');
      await new Promise((r) => setTimeout(r, 200));
      const before = await read();
      for (let i = 0; i < 3; i++) {
        const t = await claimTask(c, { workerId: 'hot-w', backendType: 'kind', supportedProblems: [], leaseSeconds: 60 });
        await finishTask(c, { taskId: t!.id, workerId: 'hot-w', status: 'completed', result: {}, errorType: null, errorDetails: null });
      }
      await c.query('SELECT pg_stat_force_next_flush()');
      let after = await read();
      for (let i = 0; i < 50 && after.upd - before.upd < 6; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await read();
      }
      expect(after.upd - before.upd).toBe(6);
      expect(after.hot - before.hot).toBe(6);
    } finally {
      c.release();
    }
  });

  it('a task created after the claim\'s transaction began is claimed, and starts no earlier than it was created', async () => {
    await workers(['early-w']);
    const c = await pool.connect();
    try {
      // The claim's transaction takes its time first; the task is committed afterwards by another
      // connection, before the claim's statement takes its snapshot (as it can during planning).
      await c.query('BEGIN');
      await c.query('SELECT now()');
      const [id] = await tasks(['early-1']);
      const t = await claimTask(c, { workerId: 'early-w', backendType: 'kind', supportedProblems: [], leaseSeconds: 60 });
      await c.query('COMMIT');
      expect(t?.id).toBe(id);
      expect(new Date(t!.started_at!).getTime()).toBeGreaterThanOrEqual(new Date(t!.created_at).getTime());
    } finally {
      await c.query('ROLLBACK').catch(() => {});
      c.release();
    }
  });

  it('a finish of a task the worker no longer holds changes nothing, beside one that stands', async () => {
    await tasks(['gone-1', 'gone-2']);
    await workers(['gone-w-1', 'gone-w-2']);
    const [a, b] = await Promise.all([claim('gone-w-1'), claim('gone-w-2')]);
    await db.pool.query(`UPDATE tasks SET status = 'cancelled', completed_at = now(), lease_expires_at = NULL WHERE id = $1`, [a!.id]);
    const [fa, fb] = await Promise.all([finish(a!), finish(b!)]);
    expect(fa).toBeNull();
    expect(fb?.status).toBe('completed');
    const r = await db.pool.query<{ status: string }>(`SELECT status FROM tasks WHERE id = $1`, [a!.id]);
    expect(r.rows[0]!.status).toBe('cancelled');
  });
});
