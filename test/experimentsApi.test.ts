/** Creating, resuming, retrying and cancelling experiments, and their progress, over the REST API. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelTask } from '../src/queue/cancelTask.js';
import { heartbeat } from '../src/queue/workerRegistry.js';
import { addWorker, claimNext, comboOf, finishWith, recordSpend, startExperimentsApi, type ExperimentsApi } from './experimentsSupport.js';

// One database for the file: each describe queues at its own priority, so a claim takes its own tasks.
let h: ExperimentsApi;
beforeAll(async () => { h = await startExperimentsApi(); });
afterAll(async () => { await h.close(); });

const A = 'stand-in/alpha';
const B = 'stand-in/beta';

const tasksOf = async (experimentId: string) => (await h.db.pool.query(
  `SELECT id, problem_id, status, parameters, experiment_model, experiment_repeat, resolved_model, max_steps, priority
     FROM tasks WHERE experiment_id = $1 ORDER BY created_at, id`, [experimentId])).rows;

describe('POST /api/v1/experiments', () => {
  it('creates one task per problem × model × repeat, expanding patterns and narrowing by task type', async () => {
    const r = await h.post('/api/v1/experiments', {
      name: 'tp-detect', patterns: ['k8s_target_port-misconfig-*'], task_types: ['detection'], models: [A, B], repeats: 2,
      parameters: { max_steps: 12, priority: 1, agent_config: { temperature: 0.1 } }, spend_cap_usd: 2.5, max_running_per_model: 3,
    });
    expect(r.status).toBe(201);
    expect(r.headers.location).toBe(`/api/v1/experiments/${r.body.id}`);
    expect(r.body).toMatchObject({
      name: 'tp-detect', status: 'active', created: true, tasks_created: 12, combinations: 12, repeats: 2, models: [A, B],
      problem_ids: ['k8s_target_port-misconfig-detection-1', 'k8s_target_port-misconfig-detection-2', 'k8s_target_port-misconfig-detection-3'],
      problem_selectors: { problem_ids: [], patterns: ['k8s_target_port-misconfig-*'], applications: [], task_types: ['detection'] },
      parameters: { max_steps: 12, timeout_minutes: 30, priority: 1, agent_config: { temperature: 0.1 } },
      limits: { spend_cap_usd: 2.5, max_running_per_model: 3, model_max_running: {} },
      progress: { status: 'queued', combinations: 12, tasks_total: 12, spend_usd: 0, estimated_remaining_cost_usd: null,
        counts: { pending: 12, running: 0, completed: 0, failed: 0, timeout: 0, cancelled: 0, not_created: 0 } },
    });
    const tasks = await tasksOf(r.body.id);
    expect(tasks).toHaveLength(12);
    expect(new Set(tasks.map((t) => `${t.problem_id}|${t.experiment_model}|${t.experiment_repeat}`)).size).toBe(12);
    for (const t of tasks) {
      expect(t).toMatchObject({ status: 'pending', max_steps: 12, priority: 1, resolved_model: t.experiment_model });
      expect(t.parameters).toEqual({ max_steps: 12, timeout_minutes: 30, priority: 1, agent_config: { temperature: 0.1, model: t.experiment_model } });
    }
    // Repeat-major, then problem, then model: every combination runs once before any runs twice.
    expect(tasks.slice(0, 6).every((t) => t.experiment_repeat === 1)).toBe(true);
    expect(tasks.slice(0, 2).map((t) => t.experiment_model)).toEqual([A, B]);
    const logs = await h.db.pool.query(`SELECT count(*)::int AS n FROM task_logs WHERE task_id = ANY($1::uuid[]) AND message = 'Task created'`, [tasks.map((t) => t.id)]);
    expect(logs.rows[0].n).toBe(12);
    // The tasks are ordinary tasks: the tasks API lists them by experiment.
    const listed = await h.get(`/api/v1/tasks?experiment_id=${r.body.id}&page_size=100`);
    expect(listed.body.total).toBe(12);
  });

  it('selects by application and task type alone', async () => {
    const r = await h.post('/api/v1/experiments', { name: 'astro-loc', applications: ['astronomy_shop'], task_types: ['localization'], models: [A], parameters: { priority: 0 } });
    expect(r.status).toBe(201);
    expect(r.body.problem_ids).toHaveLength(11);
    expect(r.body.problem_ids.every((p: string) => p.startsWith('astronomy_shop_') && p.includes('-localization-'))).toBe(true);
  });

  it('rejects bad definitions with the field named', async () => {
    const cases: Array<[unknown, number, string, string]> = [
      [{ name: 'x1', models: [A] }, 422, 'validation_failed', 'problem_ids'],
      [{ name: 'x2', problem_ids: ['k8s_target_port-misconfig-detection-1'] }, 422, 'validation_failed', 'models'],
      [{ name: 'x3', patterns: ['k8s_target_prot-*'], models: [A] }, 422, 'unknown_problem', 'problems.patterns'],
      [{ name: 'x4', problem_ids: ['k8s_target_port-misconfig-detection-9'], models: [A] }, 422, 'unknown_problem', 'problems.problem_ids'],
      [{ name: 'x5', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: ['no-such-model'] }, 422, 'invalid_model', 'models.0'],
      [{ name: 'x6', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A], parameters: { agent_config: { model: A } } }, 422, 'validation_failed', 'parameters.agent_config.model'],
      [{ name: 'x7', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A], model_max_running: { [B]: 1 } }, 422, 'validation_failed', `model_max_running.${B}`],
      [{ name: 'has space', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A] }, 422, 'validation_failed', 'name'],
      [{ name: '12345678-1234-4234-8234-123456789012', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A] }, 422, 'validation_failed', 'name'],
      [{ name: 'x8', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A], bogus: 1 }, 422, 'unknown_field', 'bogus'],
      [{ name: 'x9', patterns: ['*'], models: [A, B], repeats: 100 }, 422, 'validation_failed', 'repeats'],
      [{ id: '00000000-0000-4000-8000-000000000000' }, 404, 'experiment_not_found', ''],
    ];
    for (const [body, status, code, field] of cases) {
      const r = await h.post('/api/v1/experiments', body);
      expect([r.status, r.body.error.code], JSON.stringify(body)).toEqual([status, code]);
      if (field) expect(r.body.error.details.map((d: { field: string }) => d.field), JSON.stringify(body)).toContain(field);
    }
    // A glob given as a problem id is pointed to `patterns`.
    const glob = await h.post('/api/v1/experiments', { name: 'x10', problem_ids: ['k8s_target_port-*'], models: [A] });
    expect(glob.body.error.details).toEqual([{ field: 'problem_ids.0', reason: expect.stringContaining('go in `patterns`') }]);
    const n = await h.db.pool.query(`SELECT count(*)::int AS n FROM experiments WHERE name LIKE 'x%'`);
    expect(n.rows[0].n).toBe(0);
  });
});

describe('resuming', () => {
  const body = { name: 'resumable', problem_ids: ['k8s_target_port-misconfig-detection-1', 'k8s_target_port-misconfig-localization-1'], models: [A, B], parameters: { max_steps: 5, priority: 8 } };
  let id = '';

  it('creates only the combinations without a pending, running or completed task', async () => {
    const first = await h.post('/api/v1/experiments', body);
    expect(first.body.tasks_created).toBe(4);
    id = first.body.id;
    for (const w of ['w-res-1', 'w-res-2', 'w-res-3']) await addWorker(h.db.pool, w);
    const t1 = (await claimNext(h.db.pool, 'w-res-1'))!;
    await finishWith(h.db.pool, t1, 'w-res-1', { status: 'completed', success: true, ttx: 3, steps: 2, prompt: 10, completion: 5, cost: 0.001 });
    const t2 = (await claimNext(h.db.pool, 'w-res-2'))!;
    await finishWith(h.db.pool, t2, 'w-res-2', { status: 'failed', prompt: 10, completion: 5, cost: 0.001 });
    const t3 = (await claimNext(h.db.pool, 'w-res-3'))!; // still running when the service "dies"

    // The same submission again — what a user does after the service was killed: nothing is duplicated.
    const again = await h.post('/api/v1/experiments', body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id, created: false, tasks_created: 0 });
    expect(again.body.progress.counts).toMatchObject({ pending: 1, running: 1, completed: 1, failed: 1, not_created: 0 });
    // By name only, by id, and through the resume endpoint: the same.
    expect((await h.post('/api/v1/experiments', { name: 'resumable' })).body.tasks_created).toBe(0);
    expect((await h.post('/api/v1/experiments', { id })).body.tasks_created).toBe(0);
    expect((await h.post(`/api/v1/experiments/resumable/resume`, {})).body.tasks_created).toBe(0);

    // A task cancelled on its own is not completed: resubmitting queues its combination again.
    await cancelTask(h.db.pool, t3.id);
    const afterCancel = await h.post('/api/v1/experiments', body);
    expect(afterCancel.body.tasks_created).toBe(1);
    const recreated = (await tasksOf(id)).filter((t) => t.status === 'pending' && `${t.problem_id}|${t.experiment_model}|${t.experiment_repeat}` === comboOf(t3));
    expect(recreated).toHaveLength(1);
    expect(afterCancel.body.progress.counts).toMatchObject({ pending: 2, running: 0, completed: 1, failed: 1, cancelled: 0 });

    // retry_failed reruns the failed combination, once, however many resubmissions race.
    const retries = await Promise.all([1, 2, 3, 4, 5].map(() => h.post('/api/v1/experiments', { name: 'resumable', retry_failed: true })));
    expect(retries.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(retries.reduce((a, r) => a + r.body.tasks_created, 0)).toBe(1);
    const tasks = await tasksOf(id);
    expect(tasks).toHaveLength(6);
    expect(tasks.filter((t) => comboOf(t as never) === comboOf(t2) && t.status === 'pending')).toHaveLength(1);
    const final = await h.get(`/api/v1/experiments/${id}`);
    expect(final.body.progress).toMatchObject({ combinations: 4, tasks_total: 6, spend_usd: 0.002, counts: { pending: 3, completed: 1, failed: 0, cancelled: 0 } });
  });

  it('refuses a resubmission whose definition differs, naming what differs', async () => {
    const r = await h.post('/api/v1/experiments', { ...body, models: [A], repeats: 2 });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('experiment_conflict');
    expect(r.body.error.details.map((d: { field: string }) => d.field)).toEqual(['models', 'repeats']);
    const params = await h.post('/api/v1/experiments', { ...body, parameters: { max_steps: 6, priority: 8 } });
    expect(params.status).toBe(409);
    expect(params.body.error.details[0].field).toBe('parameters');
    // The same definition with its lists in another order is the same experiment.
    const reordered = await h.post('/api/v1/experiments', { ...body, models: [B, A], problem_ids: [...body.problem_ids].reverse(), spend_cap_usd: 1 });
    expect(reordered.status).toBe(200);
    expect(reordered.body.limits.spend_cap_usd).toBe(1);
  });
});

describe('cancelling', () => {
  it('cancels pending and running tasks, keeps ended ones, and a resubmission resumes it', async () => {
    const r = await h.post('/api/v1/experiments', { name: 'to-cancel', problem_ids: ['k8s_target_port-misconfig-detection-1'], models: [A, B], repeats: 2, parameters: { priority: 9 } });
    const id = r.body.id;
    await addWorker(h.db.pool, 'w-can-1');
    await addWorker(h.db.pool, 'w-can-2');
    const done = (await claimNext(h.db.pool, 'w-can-1'))!;
    await finishWith(h.db.pool, done, 'w-can-1', { status: 'completed', success: true, ttx: 1, steps: 1, prompt: 1, completion: 1, cost: 0.0001 });
    const running = (await claimNext(h.db.pool, 'w-can-2'))!;

    const c = await h.post(`/api/v1/experiments/to-cancel/cancel`);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 'cancelled', cancelled_tasks: 3, progress: { status: 'cancelled', estimated_remaining_cost_usd: 0, counts: { completed: 1, cancelled: 3, pending: 0, running: 0 } } });
    const statuses = (await tasksOf(id)).map((t) => t.status).sort();
    expect(statuses).toEqual(['cancelled', 'cancelled', 'cancelled', 'completed']);
    // The worker running one learns at its next heartbeat that its task was cancelled, and stops it.
    expect((await heartbeat(h.db.pool, 'w-can-2', 60))!.heldTaskStatus).toBe('cancelled');
    const log = await h.db.pool.query(`SELECT message FROM task_logs WHERE task_id = $1 ORDER BY id DESC LIMIT 1`, [running.id]);
    expect(log.rows[0].message).toBe('Task cancelled: Experiment cancelled');
    const live = await h.db.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE experiment_id = $1 AND status IN ('pending', 'running')`, [id]);
    expect(live.rows[0].n).toBe(0);
    expect((await h.post(`/api/v1/experiments/${id}/cancel`)).body.cancelled_tasks).toBe(0);

    const resumed = await h.post('/api/v1/experiments', { name: 'to-cancel' });
    expect(resumed.body).toMatchObject({ status: 'active', tasks_created: 3, progress: { status: 'running', counts: { pending: 3, completed: 1, cancelled: 0 } } });
    expect((await h.post('/api/v1/experiments/00000000-0000-4000-8000-000000000000/cancel')).status).toBe(404);
  });
});

describe('progress and estimates', () => {
  it('estimates the remaining cost from the spend per ended task, else from catalog prices', async () => {
    // With a catalog, models resolve against it and it supplies prices (USD per token).
    await h.db.pool.query(`INSERT INTO models (id, name, prompt_price, completion_price) VALUES
      ('stand-in/gamma', 'Gamma', 0.000002, 0.000008), ('stand-in/delta', 'Delta', 0.000001, 0.000002)`);
    try {
      const G = 'stand-in/gamma';
      const D = 'stand-in/delta';
      const r = await h.post('/api/v1/experiments', { name: 'estimates', problem_ids: ['k8s_target_port-misconfig-detection-1', 'k8s_target_port-misconfig-detection-2'], models: [G, D], parameters: { priority: 10 } });
      expect(r.body.progress.by_model.map((m: any) => m.estimate_basis)).toEqual(['unknown', 'unknown']);
      await addWorker(h.db.pool, 'w-est-1');
      await addWorker(h.db.pool, 'w-est-2');
      const first = (await claimNext(h.db.pool, 'w-est-1'))!; // gamma, detection-1
      expect(comboOf(first)).toBe(`k8s_target_port-misconfig-detection-1|${G}|1`);
      await finishWith(h.db.pool, first, 'w-est-1', { status: 'completed', success: true, ttx: 1, steps: 1, prompt: 1000, completion: 100, cost: 0.01 });
      const second = (await claimNext(h.db.pool, 'w-est-2'))!; // delta, detection-1, running
      await recordSpend(h.db.pool, second, { prompt: 100, completion: 10, cost: 0.0004 });
      const third = (await claimNext(h.db.pool, 'w-est-1'))!; // gamma, detection-2, running
      await recordSpend(h.db.pool, third, { prompt: 400, completion: 40, cost: 0.004 });

      const p = (await h.get('/api/v1/experiments/estimates')).body.progress;
      // gamma: observed $0.01 per task; its running task spent 0.004 of it, so 0.006 to go.
      // delta: nothing ended; mean ended tokens (1000 in, 100 out) at delta's prices = 0.001 + 0.0002 = 0.0012 per task;
      //        one pending (0.0012) + one running that spent 0.0004 (0.0008 to go) = 0.002.
      expect(p.by_model).toEqual([
        { model: G, combinations: 2, counts: { pending: 0, running: 1, completed: 1, failed: 0, timeout: 0, cancelled: 0, not_created: 0 }, spend_usd: 0.014,
          max_running: null, cost_per_task_usd: 0.01, estimate_basis: 'observed', estimated_remaining_cost_usd: 0.006 },
        { model: D, combinations: 2, counts: { pending: 1, running: 1, completed: 0, failed: 0, timeout: 0, cancelled: 0, not_created: 0 }, spend_usd: 0.0004,
          max_running: null, cost_per_task_usd: 0.0012, estimate_basis: 'prices', estimated_remaining_cost_usd: 0.002 },
      ]);
      expect(p).toMatchObject({ status: 'running', spend_usd: 0.0144, estimated_remaining_cost_usd: 0.008, finished: 1, percent_finished: 25 });

      const list = await h.get('/api/v1/experiments?page_size=100');
      expect(list.status).toBe(200);
      expect(list.body.total).toBeGreaterThanOrEqual(5);
      expect(list.body.experiments.find((e: any) => e.name === 'estimates').progress.estimated_remaining_cost_usd).toBe(0.008);
      expect((await h.get('/api/v1/experiments?status=cancelled')).body.experiments.every((e: any) => e.status === 'cancelled')).toBe(true);
      expect((await h.get('/api/v1/experiments/no-such-experiment')).status).toBe(404);
    } finally {
      // Later tests resolve models without a catalog.
      await h.db.pool.query(`DELETE FROM models`);
    }
  });
});

describe('documentation', () => {
  it('lists the experiment endpoints in the OpenAPI document', async () => {
    const r = await h.get('/openapi.json');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.paths)).toEqual(expect.arrayContaining([
      '/api/v1/experiments', '/api/v1/experiments/{experiment}', '/api/v1/experiments/{experiment}/results',
      '/api/v1/experiments/{experiment}/cancel', '/api/v1/experiments/{experiment}/resume', '/api/v1/concurrency-limits',
    ]));
    expect(r.body.paths['/api/v1/experiments'].post.requestBody.content['application/json'].schema.properties.spend_cap_usd).toBeDefined();
  });
});
