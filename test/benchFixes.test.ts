/**
 * The product changes the benchmarks led to (bench/RESULTS.md), held to their behaviour:
 * events sent after commit carry what the triggers sent and reach listeners; prepared statements
 * survive a migration; coalesced submissions answer each caller as lone ones would; the kept task counts
 * equal a count of the table through every kind of change; the list says when its total is an
 * estimate; a heartbeat no longer deadlocks with its worker's own finish.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelTask } from '../src/queue/cancelTask.js';
import { claimTask } from '../src/queue/claimTask.js';
import { finishTask, requeueTask } from '../src/queue/finishTask.js';
import { expireLeases, runMaintenance } from '../src/queue/maintenance.js';
import { submitTask } from '../src/queue/submitTask.js';
import { countTasks, countTasksBy, foldTaskCounts } from '../src/queue/taskCounts.js';
import { EXACT_TOTAL_LIMIT, listTasks, taskStats } from '../src/queue/taskQueries.js';
import type { TaskParameters } from '../src/queue/taskRecord.js';
import { heartbeat, registerWorker } from '../src/queue/workerRegistry.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

const params = (o: Partial<TaskParameters> = {}): TaskParameters => ({ max_steps: 5, timeout_minutes: 30, priority: 5, agent_config: { model: 'openai/gpt-4o-mini' }, ...o });
const register = (id: string) => registerWorker(db.pool, { id, backendType: 'kind', capabilities: {}, metadata: {}, instanceId: null, offlineAfterSeconds: 60 });

async function listen(channels: string[]): Promise<{ events: Array<{ channel: string; payload: Record<string, unknown> }>; close(): Promise<void> }> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const events: Array<{ channel: string; payload: Record<string, unknown> }> = [];
  c.on('notification', (n) => events.push({ channel: n.channel, payload: JSON.parse(n.payload ?? '{}') }));
  for (const ch of channels) await c.query(`LISTEN ${ch}`);
  return { events, close: () => c.end() };
}

const settle = () => new Promise((r) => setTimeout(r, 150));

/** What tasks hold, counted directly: the truth the kept counts must equal. */
async function countedDirectly(): Promise<{ byStatus: Record<string, number>; byProblem: Record<string, number>; byWorker: Record<string, number>; avg: number | null }> {
  const q = async (col: string) => Object.fromEntries((await db.pool.query<{ k: string; n: number }>(`SELECT ${col} AS k, count(*)::int AS n FROM tasks WHERE ${col} IS NOT NULL GROUP BY 1`)).rows.map((r) => [r.k, r.n]));
  const avg = (await db.pool.query<{ s: number | null }>(`SELECT avg(extract(epoch FROM completed_at - started_at))::float AS s FROM tasks WHERE status = 'completed'`)).rows[0]!.s;
  return { byStatus: await q('status'), byProblem: await q('problem_id'), byWorker: await q('worker_id'), avg };
}

async function expectCountsExact(): Promise<void> {
  const direct = await countedDirectly();
  const s = await taskStats(db.pool);
  expect(s.total_tasks).toBe(Object.values(direct.byStatus).reduce((a, b) => a + b, 0));
  for (const st of ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled']) expect(s[`${st}_tasks`]).toBe(direct.byStatus[st] ?? 0);
  expect(s.tasks_by_problem).toEqual(direct.byProblem);
  expect(s.tasks_by_worker).toEqual(direct.byWorker);
  if (direct.avg === null) expect(s.avg_execution_time).toBeNull();
  else expect(s.avg_execution_time as number).toBeCloseTo(direct.avg, 6);
}

describe('events sent after commit', () => {
  it('submit (by its triggers), claim and finish (after their commit) announce the same payloads, once each', async () => {
    const l = await listen(['task_events', 'worker_events', 'task_log_events']);
    await register('fix-w1');
    await settle();
    l.events.length = 0;
    const { task } = await submitTask(db.pool, { problemId: 'events-a', parameters: params(), maxAttempts: 2 });
    await settle();
    expect(l.events).toEqual([
      { channel: 'task_events', payload: { id: task.id, status: 'pending', problem_id: 'events-a', worker_id: null, backend_type: null, experiment_id: null } },
      { channel: 'task_log_events', payload: { task_id: task.id, id: expect.any(Number), level: 'info' } },
    ]);
    expect(task).not.toHaveProperty('notify_task');
    l.events.length = 0;
    const claimed = await claimTask(db.pool, { workerId: 'fix-w1', backendType: 'kind', supportedProblems: ['events-*'], leaseSeconds: 60 });
    expect(claimed?.id).toBe(task.id);
    expect(Object.keys(claimed!).some((k) => k.startsWith('notify_'))).toBe(false);
    await settle();
    expect(l.events.map((e) => [e.channel, e.payload.status ?? e.payload.level])).toEqual([['task_events', 'running'], ['worker_events', 'busy'], ['task_log_events', 'info']]);
    expect(l.events[1]!.payload).toEqual({ id: 'fix-w1', status: 'busy', current_task_id: task.id });
    l.events.length = 0;
    await finishTask(db.pool, { taskId: task.id, workerId: 'fix-w1', status: 'failed', result: null, errorType: 'internal', errorDetails: 'x' });
    await settle();
    expect(l.events.map((e) => [e.channel, e.payload.status ?? e.payload.level])).toEqual([['task_events', 'failed'], ['worker_events', 'idle'], ['task_log_events', 'error']]);
    // An idempotent replay and an empty claim announce nothing.
    l.events.length = 0;
    await submitTask(db.pool, { problemId: 'events-b', parameters: params(), maxAttempts: 2, idempotencyKey: 'fix-key' });
    await settle();
    l.events.length = 0;
    await submitTask(db.pool, { problemId: 'events-b', parameters: params(), maxAttempts: 2, idempotencyKey: 'fix-key' });
    expect(await claimTask(db.pool, { workerId: 'fix-w1', backendType: 'kind', supportedProblems: ['nothing-*'], leaseSeconds: 60 })).toBeNull();
    await settle();
    expect(l.events).toEqual([]);
    await l.close();
  });

  it('defers only its own statement: later writes in the same transaction are announced by the triggers', async () => {
    await register('fix-w2');
    const { task } = await submitTask(db.pool, { problemId: 'events-tx', parameters: params(), maxAttempts: 2 });
    const l = await listen(['task_events']);
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      expect((await claimTask(c, { workerId: 'fix-w2', backendType: 'kind', supportedProblems: ['events-tx'], leaseSeconds: 60 }))?.id).toBe(task.id);
      await c.query(`UPDATE tasks SET status = 'cancelled', completed_at = now() WHERE id = $1`, [task.id]);
      await settle();
      expect(l.events).toEqual([]); // nothing before the commit
      await c.query('COMMIT');
      await settle();
      expect(l.events.filter((e) => e.payload.id === task.id).map((e) => e.payload.status)).toEqual(['running', 'cancelled']);
    } finally {
      c.release();
      await l.close();
    }
  });
});

describe('prepared hot statements', () => {
  it('are prepared again after a migration changed the columns they return', async () => {
    const c = await db.pool.connect();
    try {
      await submitTask(c, { problemId: 'prepared-a', parameters: params(), maxAttempts: 2 });
      await db.pool.query('ALTER TABLE tasks ADD COLUMN bench_probe integer');
      const { task } = await submitTask(c, { problemId: 'prepared-b', parameters: params(), maxAttempts: 2 });
      expect(task).toHaveProperty('bench_probe', null);
    } finally {
      c.release();
      await db.pool.query('ALTER TABLE tasks DROP COLUMN IF EXISTS bench_probe');
    }
  });
});

describe('kept task counts', () => {
  it('equal a count of the tasks table through submit, claim, finish, cancel, requeue, lease expiry, delete, fold and truncate', async () => {
    await db.pool.query('TRUNCATE tasks CASCADE');
    await expectCountsExact();
    for (const w of ['count-w1', 'count-w2']) await register(w);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await submitTask(db.pool, { problemId: `count-p${i % 3}`, parameters: params(), maxAttempts: 1 })).task.id);
    await expectCountsExact();
    const a = await claimTask(db.pool, { workerId: 'count-w1', backendType: 'kind', supportedProblems: [], leaseSeconds: 60 });
    await db.pool.query(`UPDATE tasks SET created_at = created_at - interval '90 seconds', started_at = started_at - interval '90 seconds' WHERE id = $1`, [a!.id]);
    await finishTask(db.pool, { taskId: a!.id, workerId: 'count-w1', status: 'completed', result: {}, errorType: null, errorDetails: null });
    const b = await claimTask(db.pool, { workerId: 'count-w2', backendType: 'kind', supportedProblems: [], leaseSeconds: 60 });
    await requeueTask(db.pool, b!.id, 'count-w2', 'test');
    await cancelTask(db.pool, ids[5]!);
    await expectCountsExact();
    expect(await foldTaskCounts(db.pool)).toBeGreaterThan(0);
    await expectCountsExact();
    const c = await claimTask(db.pool, { workerId: 'count-w2', backendType: 'kind', supportedProblems: [], leaseSeconds: 60 });
    await db.pool.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [c!.id]);
    expect((await expireLeases(db.pool)).lost).toEqual([c!.id]);
    await db.pool.query('DELETE FROM tasks WHERE id = $1', [ids[7]]);
    await runMaintenance(db.pool, { workerOfflineAfterSeconds: 600 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM task_count_deltas')).rows[0].n).toBe(0);
    await expectCountsExact();
    expect(await countTasks(db.pool, { status: ['pending'], search: 'P1' })).toBe((await db.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'pending' AND problem_id ILIKE '%p1%'`)).rows[0].n);
    expect((await countTasksBy(db.pool, 'worker_id')).map((r) => r.key)).toContain('');
    await db.pool.query('TRUNCATE tasks CASCADE');
    expect(await countTasks(db.pool)).toBe(0);
  });

  it('gives exact list totals for the filters it covers, and flags an estimate past the limit for the others', async () => {
    await db.pool.query('TRUNCATE tasks CASCADE');
    await db.pool.query(
      `INSERT INTO tasks (problem_id, parameters, backend_type, request_hash)
       SELECT 'total-p' || (i % 2), '{}'::jsonb, CASE WHEN i % 2 = 0 THEN 'kind' END, md5(i::text) FROM generate_series(1, $1) AS i`, [EXACT_TOTAL_LIMIT + 200]);
    await db.pool.query('ANALYZE tasks');
    const base = { sort: 'created_at' as const, descending: true, limit: 5, offset: 0 };
    const all = await listTasks(db.pool, base);
    expect(all).toMatchObject({ total: EXACT_TOTAL_LIMIT + 200, totalIsEstimate: false });
    expect(await listTasks(db.pool, { ...base, search: 'total-p1', status: ['pending'] })).toMatchObject({ total: (EXACT_TOTAL_LIMIT + 200) / 2, totalIsEstimate: false });
    expect(await listTasks(db.pool, { ...base, backendType: 'kind', createdAfter: new Date(Date.now() - 3_600_000) })).toMatchObject({ total: (EXACT_TOTAL_LIMIT + 200) / 2, totalIsEstimate: false });
    const many = await listTasks(db.pool, { ...base, createdAfter: new Date(Date.now() - 3_600_000) });
    expect(many.totalIsEstimate).toBe(true);
    expect(many.total).toBeGreaterThan(EXACT_TOTAL_LIMIT);
    expect(many.tasks).toHaveLength(5);
    await db.pool.query('TRUNCATE tasks CASCADE');
  });
});

describe('heartbeat and finish', () => {
  it('take the task and worker rows in the same order, so they cannot deadlock', async () => {
    await register('lock-w1');
    const { task } = await submitTask(db.pool, { problemId: 'lock-p', parameters: params(), maxAttempts: 2 });
    const claimed = await claimTask(db.pool, { workerId: 'lock-w1', backendType: 'kind', supportedProblems: ['lock-*'], leaseSeconds: 60 });
    expect(claimed?.id).toBe(task.id);
    // A third transaction holds the worker row, so both statements queue up on it: the heartbeat
    // first, then the finish. With opposite lock orders, releasing it deadlocked the two.
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM workers WHERE id = 'lock-w1' FOR UPDATE`);
    const waiting = async (n: number) => {
      for (let i = 0; i < 200; i++) {
        const r = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        if (r.rows[0].n >= n) return;
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new Error('statements never queued on the lock');
    };
    const beat = heartbeat(db.pool, 'lock-w1', 60);
    await waiting(1);
    const finish = finishTask(db.pool, { taskId: task.id, workerId: 'lock-w1', status: 'completed', result: {}, errorType: null, errorDetails: null });
    await waiting(2);
    await holder.query('COMMIT');
    holder.release();
    const [b, f] = await Promise.allSettled([beat, finish]);
    expect(b.status).toBe('fulfilled');
    expect(f.status).toBe('fulfilled');
    const w = await db.pool.query(`SELECT status, current_task_id FROM workers WHERE id = 'lock-w1'`);
    expect(w.rows[0]).toEqual({ status: 'idle', current_task_id: null });
    expect((await db.pool.query('SELECT status FROM tasks WHERE id = $1', [task.id])).rows[0].status).toBe('completed');
  });
});

describe('coalesced submissions', () => {
  it('give every concurrent caller its own task, replay or error, as one-at-a-time submits would', async () => {
    const { submitTaskCoalesced } = await import('../src/queue/submitBatch.js');
    const before = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks')).rows[0]!.n;
    // The first 20 come in identical pairs.
    const n = (i: number) => (i < 20 ? Math.floor(i / 2) : i);
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => submitTaskCoalesced(db.pool, {
      problemId: `batch-${n(i) % 5}`,
      parameters: params({ priority: n(i) % 11 }),
      maxAttempts: 2,
      // Pairs share a key (same request: one replays the other); 7 and 8 share one with different requests.
      idempotencyKey: i < 20 ? `batch-key-${Math.floor(i / 2)}` : i === 57 || i === 58 ? 'batch-clash' : null,
      // One refers to an experiment that does not exist: only it fails.
      experimentId: i === 33 ? '00000000-0000-4000-8000-000000000000' : null,
    })));
    const problemsOf = results.map((r, i) => ({ r, i }));
    expect(results[33]!.status).toBe('rejected');
    const clash = [results[57]!, results[58]!];
    expect(clash.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const conflict = clash.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(conflict.reason.code).toBe('idempotency_conflict');
    for (const { r, i } of problemsOf) {
      if (i === 33 || i === 57 || i === 58) continue;
      expect(r.status === 'rejected' ? `${i}: ${String((r as PromiseRejectedResult).reason)}` : 'fulfilled').toBe('fulfilled');
      const v = (r as PromiseFulfilledResult<{ task: { problem_id: string; priority: number; id: string } }>).value;
      expect(v.task).toMatchObject({ problem_id: `batch-${n(i) % 5}`, priority: n(i) % 11 });
    }
    for (let k = 0; k < 10; k++) {
      const [a, b] = [results[2 * k], results[2 * k + 1]] as Array<PromiseFulfilledResult<{ task: { id: string }; created: boolean }>>;
      expect(a!.value.task.id).toBe(b!.value.task.id);
      expect([a!.value.created, b!.value.created].sort()).toEqual([false, true]);
    }
    const after = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks')).rows[0]!.n;
    expect(after - before).toBe(60 - 10 - 1 - 1); // 10 replays, 1 refused, 1 conflict
    const logs = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_logs l JOIN tasks t ON t.id = l.task_id WHERE t.problem_id LIKE 'batch-%'`);
    expect(logs.rows[0]!.n).toBe(after - before);
  });
});

describe('coalesced submissions, all valid', () => {
  it('insert many tasks in one statement, each with its timeline row and events', async () => {
    const { submitTaskCoalesced } = await import('../src/queue/submitBatch.js');
    const l = await listen(['task_events']);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => submitTaskCoalesced(db.pool, {
      problemId: 'wave-p', parameters: params({ metadata: { i: i < 4 ? 0 : i } }), maxAttempts: 2, idempotencyKey: i < 4 ? 'wave-key' : null,
    })));
    expect(new Set(results.map((r) => r.task.id)).size).toBe(37);
    expect(results.filter((r) => r.created)).toHaveLength(37);
    // Coalesced: rows inserted by one statement share its transaction's now().
    const times = await db.pool.query<{ n: number }>(`SELECT count(DISTINCT created_at)::int AS n FROM tasks WHERE problem_id = 'wave-p'`);
    expect(times.rows[0]!.n).toBeLessThan(37);
    const logs = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_logs l JOIN tasks t ON t.id = l.task_id WHERE t.problem_id = 'wave-p'`);
    expect(logs.rows[0]!.n).toBe(37);
    await settle();
    expect(l.events.filter((e) => e.payload.problem_id === 'wave-p' && e.payload.status === 'pending')).toHaveLength(37);
    await l.close();
  });
});
