/**
 * Limits enforced by the claim statement itself: an experiment's spend cap, its per-model running
 * caps, and global caps by model glob. A task over a limit is skipped and the next one is claimed,
 * so a capped model never stalls the rest of the queue.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { submitTask } from '../src/queue/submitTask.js';
import type { TaskParameters, TaskRow } from '../src/queue/taskRecord.js';
import { CAP_CHECK_LOCK } from '../src/queue/claimTask.js';
import { addWorker, claimNext, comboOf, finishWith, recordSpend, startExperimentsApi, type ExperimentsApi } from './experimentsSupport.js';

let h: ExperimentsApi;
beforeAll(async () => { h = await startExperimentsApi(); });
afterAll(async () => { await h.close(); });
// Each test starts from an empty queue with idle workers.
afterEach(async () => {
  await h.db.pool.query(`UPDATE tasks SET status = 'cancelled', completed_at = now() WHERE status IN ('pending', 'running')`);
  await h.db.pool.query(`UPDATE workers SET status = 'idle', current_task_id = NULL`);
  await h.db.pool.query('DELETE FROM model_concurrency_limits');
});

const A = 'stand-in/alpha';
const B = 'stand-in/beta';
const P = ['k8s_target_port-misconfig-detection-1', 'k8s_target_port-misconfig-detection-2', 'k8s_target_port-misconfig-detection-3'];

/** A task outside any experiment, as POST /tasks makes it. */
async function plainTask(model: string, problemId = 'noop_detection_hotel_reservation-1'): Promise<TaskRow> {
  const parameters: TaskParameters = { max_steps: 5, timeout_minutes: 30, priority: 5, agent_config: { model } };
  return (await submitTask(h.db.pool, { problemId, parameters, maxAttempts: 2 })).task;
}

async function workers(...ids: string[]) {
  for (const id of ids) await addWorker(h.db.pool, id);
}

describe('spend cap', () => {
  it('starts no new task of the experiment once its spend (running tasks included) reaches the cap, and others still run', async () => {
    const e = await h.post('/api/v1/experiments', { name: 'capped', problem_ids: P, models: [A], spend_cap_usd: 0.05 });
    expect(e.status).toBe(201);
    const other = await plainTask(B); // queued after the experiment, same priority
    await workers('w-cap-1', 'w-cap-2', 'w-cap-3', 'w-cap-4');

    const t1 = (await claimNext(h.db.pool, 'w-cap-1'))!;
    expect(t1.experiment_id).toBe(e.body.id);
    await recordSpend(h.db.pool, t1, { prompt: 1000, completion: 100, cost: 0.03 }); // running, $0.03 so far
    const t2 = (await claimNext(h.db.pool, 'w-cap-2'))!;
    expect(t2.experiment_id).toBe(e.body.id); // 0.03 < 0.05
    await recordSpend(h.db.pool, t2, { prompt: 1000, completion: 100, cost: 0.02 }); // 0.05: the cap is reached

    const t3 = (await claimNext(h.db.pool, 'w-cap-3'))!;
    expect(t3.id).toBe(other.id); // the experiment's third task is skipped, the queue goes on
    expect(await claimNext(h.db.pool, 'w-cap-4')).toBeNull();

    await finishWith(h.db.pool, t1, 'w-cap-1', { status: 'completed', success: true, ttx: 1, steps: 1, prompt: 0, completion: 0, cost: 0 });
    await finishWith(h.db.pool, t2, 'w-cap-2', { status: 'completed', success: true, ttx: 1, steps: 1, prompt: 0, completion: 0, cost: 0 });
    const capped = (await h.get('/api/v1/experiments/capped')).body.progress;
    expect(capped).toMatchObject({ status: 'spend_cap_reached', spend_cap_reached: true, spend_usd: 0.05, counts: { pending: 1, running: 0, completed: 2 } });

    // Raising the cap lets it go on at the next claim.
    const raised = await h.app.inject({ method: 'PATCH', url: '/api/v1/experiments/capped', payload: { spend_cap_usd: 0.06 } });
    expect(raised.statusCode).toBe(200);
    expect(raised.json().limits.spend_cap_usd).toBe(0.06);
    const t4 = (await claimNext(h.db.pool, 'w-cap-4'))!;
    expect(t4.experiment_id).toBe(e.body.id);
  });
});

describe('per-model concurrency in an experiment', () => {
  it('caps running tasks per model (max_running_per_model, overridden per model) without stalling other tasks', async () => {
    const e = await h.post('/api/v1/experiments', { name: 'concurrency', problem_ids: P, models: [A, B], max_running_per_model: 1, model_max_running: { [B]: 2 } });
    expect(e.status).toBe(201);
    const other = await plainTask(A); // a plain task of the same model is not the experiment's business
    await workers('w-c-1', 'w-c-2', 'w-c-3', 'w-c-4', 'w-c-5', 'w-c-6');
    const claimed: TaskRow[] = [];
    for (const w of ['w-c-1', 'w-c-2', 'w-c-3', 'w-c-4']) claimed.push((await claimNext(h.db.pool, w))!);
    // Queue order is d1·A, d1·B, d2·A, d2·B, d3·A, d3·B, then the plain task.
    expect(claimed.map((t) => (t.experiment_id ? comboOf(t) : 'plain'))).toEqual([
      `${P[0]}|${A}|1`, `${P[0]}|${B}|1`, `${P[1]}|${B}|1`, 'plain',
    ]);
    expect(claimed[3]!.id).toBe(other.id);
    expect(await claimNext(h.db.pool, 'w-c-5')).toBeNull(); // alpha has 1 running, beta 2: both full

    // One of alpha's ends: the next alpha task can start.
    await finishWith(h.db.pool, claimed[0]!, 'w-c-1', { status: 'completed', success: true, ttx: 1, steps: 1, prompt: 1, completion: 1, cost: 0 });
    const next = (await claimNext(h.db.pool, 'w-c-5'))!;
    expect(comboOf(next)).toBe(`${P[1]}|${A}|1`);
    expect((await h.get('/api/v1/experiments/concurrency')).body.progress.by_model.map((m: any) => [m.model, m.counts.running, m.max_running]))
      .toEqual([[A, 1, 1], [B, 2, 2]]);

    // Lifting alpha's cap through PATCH (null clears) frees its last task.
    await h.app.inject({ method: 'PATCH', url: '/api/v1/experiments/concurrency', payload: { max_running_per_model: null } });
    const last = (await claimNext(h.db.pool, 'w-c-6'))!;
    expect(comboOf(last)).toBe(`${P[2]}|${A}|1`);
  });
});

describe('global caps by model glob', () => {
  it('applies to every task whose model matches, experiment or not, matching experiments by resolved id', async () => {
    const put = await h.app.inject({
      method: 'PUT', url: '/api/v1/concurrency-limits',
      payload: { limits: [{ model_pattern: 'stand-in/*', max_running: 1 }, { model_pattern: 'openai/*', max_running: 0 }] },
    });
    expect(put.statusCode).toBe(200);
    // A short name is resolved at submission (gpt-4o-mini -> openai/gpt-4o-mini), so the openai/* cap of 0 holds it back.
    const e = await h.post('/api/v1/experiments', { name: 'global-caps', problem_ids: [P[0]], models: ['gpt-4o-mini'], parameters: { priority: 9 } });
    expect(e.status).toBe(201);
    const resolved = await h.db.pool.query('SELECT resolved_model FROM tasks WHERE experiment_id = $1', [e.body.id]);
    expect(resolved.rows).toEqual([{ resolved_model: 'openai/gpt-4o-mini' }]);
    const a = await plainTask(A);
    const b = await plainTask(B);
    const x = await plainTask('other/x');
    await workers('w-g-1', 'w-g-2', 'w-g-3');
    expect((await claimNext(h.db.pool, 'w-g-1'))!.id).toBe(a.id);
    expect((await claimNext(h.db.pool, 'w-g-2'))!.id).toBe(x.id); // b waits: stand-in/* is full
    expect(await claimNext(h.db.pool, 'w-g-3')).toBeNull();
    const limits = (await h.get('/api/v1/concurrency-limits')).body.limits;
    expect(limits.map((l: any) => [l.model_pattern, l.max_running, l.running])).toEqual([['openai/*', 0, 0], ['stand-in/*', 1, 1]]);

    // LIKE's own wildcards in a glob are literal: `stand_in/*` does not match `stand-in/beta`.
    await h.app.inject({ method: 'PUT', url: '/api/v1/concurrency-limits', payload: { limits: [{ model_pattern: 'stand_in/*', max_running: 0 }, { model_pattern: 'openai/*', max_running: 0 }] } });
    expect((await claimNext(h.db.pool, 'w-g-3'))!.id).toBe(b.id);

    // Removing the caps (PUT replaces the whole set) releases the experiment's task.
    await h.app.inject({ method: 'PUT', url: '/api/v1/concurrency-limits', payload: { limits: [] } });
    await workers('w-g-4');
    expect((await claimNext(h.db.pool, 'w-g-4'))!.experiment_id).toBe(e.body.id);

    const dup = await h.app.inject({ method: 'PUT', url: '/api/v1/concurrency-limits', payload: { limits: [{ model_pattern: 'a/*', max_running: 1 }, { model_pattern: 'a/*', max_running: 2 }] } });
    expect(dup.statusCode).toBe(422);
  });
});

describe('caps under simultaneous claims', () => {
  it('racing claims that all committed: the later ones hand their tasks back, uncounted', async () => {
    const e = await h.post('/api/v1/experiments', { name: 'race', problem_ids: P, models: [A], max_running_per_model: 1 });
    expect(e.status).toBe(201);
    await workers('w-r-1', 'w-r-2', 'w-r-3');
    // The race, made certain: the worker rows are locked, so each claim statement takes its snapshot
    // (no task running yet) and then waits; and the check lock is held, so all three claims commit
    // before any is checked. Three connections, as three processes: one process's claims share a
    // statement, which never claims two tasks under one cap.
    const holder = await h.db.pool.connect();
    const conns = await Promise.all([1, 2, 3].map(() => h.db.pool.connect()));
    const waiting = async () => (await h.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0]!.n;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [CAP_CHECK_LOCK]);
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM workers WHERE id LIKE 'w-r-%' FOR UPDATE`);
      const claims = Promise.all(['w-r-1', 'w-r-2', 'w-r-3'].map((w, i) => claimNext(conns[i]!, w)));
      for (let i = 0; (await waiting()) < 3; i++) {
        if (i > 200) throw new Error('the three claims did not start');
        await new Promise((r) => setTimeout(r, 25));
      }
      await holder.query('COMMIT');
      const running = async () => (await h.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE status = 'running' AND experiment_id = $1`, [e.body.id])).rows[0]!.n;
      for (let i = 0; (await running()) < 3; i++) {
        if (i > 200) throw new Error('the three claims did not commit');
        await new Promise((r) => setTimeout(r, 25));
      }
      await holder.query('SELECT pg_advisory_unlock($1)', [CAP_CHECK_LOCK]);
      const got = (await claims).filter((t) => t !== null);
      expect(got).toHaveLength(1);
      expect(await running()).toBe(1);
    } finally {
      holder.release();
      for (const c of conns) c.release();
    }
    const back = await h.db.pool.query(`SELECT t.status, t.attempt, t.worker_id, l.message FROM tasks t JOIN task_logs l ON l.task_id = t.id AND l.context->>'phase' = 'unclaimed' ORDER BY t.id`);
    expect(back.rows).toHaveLength(2);
    for (const r of back.rows) expect(r).toMatchObject({ status: 'pending', attempt: 0, worker_id: null, message: expect.stringContaining('concurrency cap') });
    const busy = await h.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM workers WHERE current_task_id IS NOT NULL AND id LIKE 'w-r-%'`);
    expect(busy.rows[0]!.n).toBe(1);
  });

  it('a cap check that fails hands its task back at once: neither the task nor the worker waits for the lease', async () => {
    const e = await h.post('/api/v1/experiments', { name: 'check-fails', problem_ids: P.slice(0, 1), models: [A], max_running_per_model: 1 });
    expect(e.status).toBe(201);
    await workers('w-cf-1');
    // The check waits for its lock, which another session holds; this connection gives up waiting
    // after 200 ms, so the check fails after the claim committed.
    const holder = await h.db.pool.connect();
    const claimer = await h.db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [CAP_CHECK_LOCK]);
      await claimer.query(`SET lock_timeout = '200ms'`);
      await expect(claimNext(claimer, 'w-cf-1')).rejects.toMatchObject({ code: '55P03' });
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [CAP_CHECK_LOCK]).catch(() => {});
      holder.release();
      await claimer.query('RESET lock_timeout').catch(() => {});
      claimer.release();
    }
    const task = await h.db.pool.query(`SELECT status, attempt, worker_id, lease_expires_at FROM tasks WHERE experiment_id = $1`, [e.body.id]);
    expect(task.rows).toEqual([{ status: 'pending', attempt: 0, worker_id: null, lease_expires_at: null }]);
    const worker = await h.db.pool.query(`SELECT status, current_task_id FROM workers WHERE id = 'w-cf-1'`);
    expect(worker.rows).toEqual([{ status: 'idle', current_task_id: null }]);
    const log = await h.db.pool.query(`SELECT l.message FROM task_logs l JOIN tasks t ON t.id = l.task_id WHERE t.experiment_id = $1 AND l.context->>'phase' = 'unclaimed'`, [e.body.id]);
    expect(log.rows).toEqual([{ message: expect.stringMatching(/^Returned to the queue: its concurrency cap could not be checked \(.*lock timeout/) }]);
    // The worker claims it again as soon as the database answers.
    expect((await claimNext(h.db.pool, 'w-cf-1'))?.experiment_id).toBe(e.body.id);
  });

  it('never lets many simultaneous claims exceed an experiment cap or a global one', async () => {
    const e = await h.post('/api/v1/experiments', { name: 'race-many', problem_ids: P, models: [A, B], max_running_per_model: 1, model_max_running: { [B]: 2 } });
    expect(e.status).toBe(201);
    await h.app.inject({ method: 'PUT', url: '/api/v1/concurrency-limits', payload: { limits: [{ model_pattern: 'other/*', max_running: 2 }] } });
    for (let i = 0; i < 6; i++) await plainTask('other/x');
    const ids = Array.from({ length: 16 }, (_, i) => `w-many-${i}`);
    await workers(...ids);
    for (let round = 0; round < 3; round++) {
      await Promise.all(ids.map((w) => claimNext(h.db.pool, w)));
      const running = await h.db.pool.query<{ k: string; n: number }>(
        `SELECT COALESCE(experiment_model, resolved_model, parameters->'agent_config'->>'model') AS k, count(*)::int AS n
           FROM tasks WHERE status = 'running' GROUP BY 1 ORDER BY 1`);
      expect(running.rows).toEqual([{ k: 'other/x', n: 2 }, { k: A, n: 1 }, { k: B, n: 2 }]);
    }
  });
});
