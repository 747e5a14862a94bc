/** The queue core in SQL: claiming, leases, timeouts, the state machine, the worker-host protocol. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTask } from '../src/queue/claimTask.js';
import { finishTask } from '../src/queue/finishTask.js';
import { expireLeases, markOfflineWorkers, timeOutTasks } from '../src/queue/maintenance.js';
import { submitTask } from '../src/queue/submitTask.js';
import type { TaskParameters } from '../src/queue/taskRecord.js';
import { heartbeat, registerWorker } from '../src/queue/workerRegistry.js';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';

let h: ApiHarness;
beforeAll(async () => { h = await createApiHarness(); });
afterAll(async () => { await h.close(); });

const params = (p: Partial<TaskParameters> = {}): TaskParameters => ({ max_steps: 30, timeout_minutes: 30, priority: 5, agent_config: { model: 'openai/gpt-4o-mini' }, ...p });
const register = (id: string, backendType = 'kind', supported: string[] = []) =>
  registerWorker(h.db.pool, { id, backendType, capabilities: { supported_problems: supported }, metadata: {}, instanceId: null, offlineAfterSeconds: 60 });
const claim = (workerId: string, supported: string[] = [], backendType = 'kind') =>
  claimTask(h.db.pool, { workerId, backendType, supportedProblems: supported, leaseSeconds: 60 });
async function drain(workerId: string) {
  const q = await h.db.pool.query(`SELECT id FROM tasks WHERE status IN ('pending','running')`);
  for (const r of q.rows) await h.db.pool.query(`UPDATE tasks SET status='cancelled', completed_at=now(), lease_expires_at=NULL WHERE id=$1`, [r.id]);
  await h.db.pool.query(`UPDATE workers SET status='idle', current_task_id=NULL WHERE id=$1`, [workerId]);
}

describe('claiming', () => {
  it('every task is claimed exactly once when many claimers race', async () => {
    const n = 200;
    for (let i = 0; i < n; i++) await submitTask(h.db.pool, { problemId: `race-${i}`, parameters: params(), maxAttempts: 2 });
    const workers = Array.from({ length: 16 }, (_, i) => `race-w-${i}`);
    for (const w of workers) await register(w);
    const claimed: string[] = [];
    // Each claimer claims, then completes, until the queue is empty; all 16 run concurrently.
    await Promise.all(workers.map(async (w) => {
      for (;;) {
        const t = await claim(w);
        if (!t) return;
        claimed.push(t.id);
        const done = await finishTask(h.db.pool, { taskId: t.id, workerId: w, status: 'completed', result: { by: w }, errorType: null, errorDetails: null });
        expect(done?.status).toBe('completed');
      }
    }));
    expect(claimed.length).toBe(n);
    expect(new Set(claimed).size).toBe(n);
    const counts = await h.db.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE problem_id LIKE 'race-%' AND status = 'completed' AND attempt = 1`);
    expect(counts.rows[0].n).toBe(n);
    const w = await h.db.pool.query(`SELECT sum(tasks_completed)::int AS n FROM workers WHERE id LIKE 'race-w-%'`);
    expect(w.rows[0].n).toBe(n);
  });

  it('orders by priority then age, and honours backend type and supported problem globs', async () => {
    await register('order-w');
    const low = (await submitTask(h.db.pool, { problemId: 'order-low', parameters: params({ priority: 1 }), maxAttempts: 2 })).task;
    const high1 = (await submitTask(h.db.pool, { problemId: 'order-high-1', parameters: params({ priority: 9 }), maxAttempts: 2 })).task;
    const high2 = (await submitTask(h.db.pool, { problemId: 'order-high-2', parameters: params({ priority: 9 }), maxAttempts: 2 })).task;
    const other = (await submitTask(h.db.pool, { problemId: 'order-existing', parameters: params({ priority: 10, backend_type: 'existing' }), maxAttempts: 2 })).task;
    const got: string[] = [];
    for (;;) {
      const t = await claim('order-w');
      if (!t) break;
      got.push(t.id);
      await finishTask(h.db.pool, { taskId: t.id, workerId: 'order-w', status: 'completed', result: null, errorType: null, errorDetails: null });
    }
    expect(got).toEqual([high1.id, high2.id, low.id]);
    // The `existing` task waits for a worker of that backend.
    await register('order-existing-w', 'existing');
    expect((await claim('order-existing-w', [], 'existing'))?.id).toBe(other.id);
    await drain('order-existing-w');

    await register('glob-w');
    await submitTask(h.db.pool, { problemId: 'k8s_target_port-misconfig-detection-1', parameters: params(), maxAttempts: 2 });
    const analysis = (await submitTask(h.db.pool, { problemId: 'auth_miss_mongodb-analysis-1', parameters: params(), maxAttempts: 2 })).task;
    const t = await claim('glob-w', ['*-analysis-*']);
    expect(t?.id).toBe(analysis.id);
    await finishTask(h.db.pool, { taskId: t!.id, workerId: 'glob-w', status: 'completed', result: null, errorType: null, errorDetails: null });
    expect(await claim('glob-w', ['*-analysis-*'])).toBeNull();
    await drain('glob-w');
  });

  it('a worker holding a task cannot claim another; the state machine is enforced in SQL', async () => {
    await register('hold-w');
    await submitTask(h.db.pool, { problemId: 'hold-1', parameters: params(), maxAttempts: 2 });
    await submitTask(h.db.pool, { problemId: 'hold-2', parameters: params(), maxAttempts: 2 });
    const first = await claim('hold-w');
    expect(first).not.toBeNull();
    expect(await claim('hold-w')).toBeNull();
    const done = await finishTask(h.db.pool, { taskId: first!.id, workerId: 'hold-w', status: 'completed', result: null, errorType: null, errorDetails: null });
    expect(done?.status).toBe('completed');
    await expect(h.db.pool.query(`UPDATE tasks SET status = 'running' WHERE id = $1`, [first!.id])).rejects.toThrow(/illegal task transition completed -> running/);
    await expect(h.db.pool.query(`UPDATE tasks SET status = 'pending', completed_at = NULL WHERE id = $1`, [first!.id])).rejects.toThrow(/illegal task transition/);
    // Another worker cannot complete a task it does not hold.
    const second = await claim('hold-w');
    await register('thief-w');
    expect(await finishTask(h.db.pool, { taskId: second!.id, workerId: 'thief-w', status: 'completed', result: null, errorType: null, errorDetails: null })).toBeNull();
    await drain('hold-w');
  });
});

describe('leases, heartbeats and timeouts', () => {
  it('an expired lease requeues the task while attempts remain, then fails it as worker_lost', async () => {
    await register('lease-w1');
    await register('lease-w2');
    const t = (await submitTask(h.db.pool, { problemId: 'lease-1', parameters: params(), maxAttempts: 2 })).task;
    expect((await claim('lease-w1'))?.id).toBe(t.id);
    // The worker goes silent: its lease runs out.
    await h.db.pool.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [t.id]);
    expect(await expireLeases(h.db.pool)).toEqual({ requeued: [t.id], lost: [] });
    const w1 = await h.db.pool.query(`SELECT status, current_task_id FROM workers WHERE id = 'lease-w1'`);
    expect(w1.rows[0]).toEqual({ status: 'idle', current_task_id: null });
    const again = await claim('lease-w2');
    expect(again?.id).toBe(t.id);
    expect(again?.attempt).toBe(2);
    // The first worker comes back: it no longer holds the task and cannot finish it.
    expect(await finishTask(h.db.pool, { taskId: t.id, workerId: 'lease-w1', status: 'completed', result: null, errorType: null, errorDetails: null })).toBeNull();
    await h.db.pool.query(`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [t.id]);
    expect(await expireLeases(h.db.pool)).toEqual({ requeued: [], lost: [t.id] });
    const row = (await h.db.pool.query(`SELECT status, error_type, error_details FROM tasks WHERE id = $1`, [t.id])).rows[0];
    expect(row).toMatchObject({ status: 'failed', error_type: 'worker_lost' });
    expect(row.error_details).toContain('lease-w2');
    const logs = (await h.db.pool.query(`SELECT message FROM task_logs WHERE task_id = $1 ORDER BY id`, [t.id])).rows.map((r) => r.message);
    expect(logs).toEqual(['Task created', 'Claimed by lease-w1', 'Worker lease-w1 lost (lease expired); requeued', 'Claimed by lease-w2', 'Worker lease-w2 lost (lease expired); no attempts left']);
  });

  it('heartbeats renew the lease and report the held task status; silent workers go offline', async () => {
    await register('hb-w');
    const t = (await submitTask(h.db.pool, { problemId: 'hb-1', parameters: params(), maxAttempts: 2 })).task;
    await claim('hb-w');
    await h.db.pool.query(`UPDATE tasks SET lease_expires_at = now() + interval '1 second' WHERE id = $1`, [t.id]);
    const r = await heartbeat(h.db.pool, 'hb-w', 60);
    expect(r?.heldTaskStatus).toBe('running');
    const lease = (await h.db.pool.query(`SELECT lease_expires_at > now() + interval '50 seconds' AS ok FROM tasks WHERE id = $1`, [t.id])).rows[0];
    expect(lease.ok).toBe(true);
    await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${t.id}/cancel` });
    expect((await heartbeat(h.db.pool, 'hb-w', 60))?.heldTaskStatus).toBe('cancelled');
    await h.db.pool.query(`UPDATE workers SET last_heartbeat = now() - interval '2 minutes' WHERE id = 'hb-w'`);
    expect(await markOfflineWorkers(h.db.pool, 60)).toContain('hb-w');
    const w = (await h.db.pool.query(`SELECT status, current_task_id FROM workers WHERE id = 'hb-w'`)).rows[0];
    expect(w).toEqual({ status: 'offline', current_task_id: null });
  });

  it('running tasks past timeout_minutes become timeout', async () => {
    await register('to-w');
    const t = (await submitTask(h.db.pool, { problemId: 'to-1', parameters: params({ timeout_minutes: 1 }), maxAttempts: 2 })).task;
    await claim('to-w');
    expect(await timeOutTasks(h.db.pool)).not.toContain(t.id);
    await h.db.pool.query(`UPDATE tasks SET started_at = now() - interval '61 seconds', created_at = now() - interval '62 seconds' WHERE id = $1`, [t.id]);
    expect(await timeOutTasks(h.db.pool)).toEqual([t.id]);
    const row = (await h.db.pool.query(`SELECT status, error_type, completed_at IS NOT NULL AS done FROM tasks WHERE id = $1`, [t.id])).rows[0];
    expect(row).toEqual({ status: 'timeout', error_type: 'timeout', done: true });
    await drain('to-w');
  });
});

describe('worker-host HTTP protocol', () => {
  it('register, heartbeat, claim (204 when empty), complete and fail only what the worker holds', async () => {
    const reg = await h.app.inject({ method: 'POST', url: '/api/v1/workers/register', payload: { worker_id: 'worker-101-kind', backend_type: 'kind', capabilities: { supported_problems: ['http-*'] }, metadata: { host: 'h1' } } });
    expect(reg.statusCode).toBe(201);
    expect(reg.json()).toMatchObject({ id: 'worker-101-kind', status: 'idle', metadata: { host: 'h1' }, tasks_completed: 0 });
    const bad = await h.app.inject({ method: 'POST', url: '/api/v1/workers/register', payload: { worker_id: 'Worker 1', backend_type: 'kind' } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details[0].field).toBe('worker_id');

    expect((await h.app.inject({ method: 'POST', url: '/api/v1/workers/worker-101-kind/claim' })).statusCode).toBe(204);
    const a = (await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: { problem_id: 'http-a' } })).json();
    const b = (await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: { problem_id: 'http-b' } })).json();
    const c1 = await h.app.inject({ method: 'POST', url: '/api/v1/workers/worker-101-kind/claim' });
    expect(c1.statusCode).toBe(200);
    expect(c1.json()).toMatchObject({ id: a.id, status: 'running', worker_id: 'worker-101-kind' });
    const busy = await h.app.inject({ method: 'POST', url: '/api/v1/workers/worker-101-kind/claim' });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.code).toBe('worker_busy');
    const hb = await h.app.inject({ method: 'POST', url: '/api/v1/workers/worker-101-kind/heartbeat', payload: { status: 'busy', current_task_id: a.id } });
    expect(hb.json()).toMatchObject({ status: 'busy', current_task_id: a.id, current_task_status: 'running' });
    const wrong = await h.app.inject({ method: 'POST', url: `/api/v1/workers/worker-101-kind/tasks/${b.id}/complete`, payload: { x: 1 } });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error.code).toBe('task_not_held');
    const done = await h.app.inject({ method: 'POST', url: `/api/v1/workers/worker-101-kind/tasks/${a.id}/complete`, payload: { success: true, solution: 'Yes' } });
    expect(done.json()).toMatchObject({ status: 'completed', result: { success: true, solution: 'Yes' } });
    await h.app.inject({ method: 'POST', url: '/api/v1/workers/worker-101-kind/claim' });
    const failed = await h.app.inject({ method: 'POST', url: `/api/v1/workers/worker-101-kind/tasks/${b.id}/fail`, payload: { error_type: 'cluster_failed', error_details: { why: 'no docker' } } });
    expect(failed.json()).toMatchObject({ status: 'failed', error_type: 'cluster_failed', error_details: '{"why":"no docker"}' });
    const w = (await h.app.inject({ url: '/api/v1/workers/worker-101-kind' })).json();
    expect(w).toMatchObject({ status: 'idle', current_task_id: null, tasks_completed: 1, tasks_failed: 1 });
    const stats = (await h.app.inject({ url: '/api/v1/workers/worker-101-kind/stats' })).json();
    expect(stats).toMatchObject({ worker_id: 'worker-101-kind', total_tasks: 2, success_rate: 0.5, current_status: 'idle' });
    expect((await h.app.inject({ url: '/api/v1/workers/nobody' })).json().error.code).toBe('worker_not_found');
    const list = (await h.app.inject({ url: '/api/v1/workers?status=idle' })).json();
    expect(list.workers.map((x: { id: string }) => x.id)).toContain('worker-101-kind');
    const internal = await h.app.inject({ method: 'POST', url: '/api/v1/workers/internal/scale?num_workers=2' });
    expect(internal.statusCode).toBe(400);
    expect(internal.json().error.code).toBe('workers_disabled');
  });
});
