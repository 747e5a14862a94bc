/**
 * The results tables of an experiment whose every task was driven through the queue with a known
 * outcome: two models × two task types, a failed and a timed-out task, a failure retried with
 * retry_failed — checked against numbers worked out by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addWorker, claimNext, comboOf, finishWith, startExperimentsApi, type ExperimentsApi, type Outcome } from './experimentsSupport.js';

let h: ExperimentsApi;
beforeAll(async () => { h = await startExperimentsApi(); });
afterAll(async () => { await h.close(); });

const D1 = 'k8s_target_port-misconfig-detection-1';
const D2 = 'k8s_target_port-misconfig-detection-2';
const L1 = 'k8s_target_port-misconfig-localization-1';
const A = 'stand-in/alpha';
const B = 'stand-in/beta';

const ok = (success: boolean, ttx: number, steps: number, prompt: number, completion: number, cost: number): Outcome =>
  ({ status: 'completed', success, ttx, steps, prompt, completion, cost });

// First pass. Beta's L1 repeat 2 fails here and succeeds on the retry below.
const FIRST: Record<string, Outcome> = {
  [`${D1}|${A}|1`]: ok(true, 10, 4, 1000, 100, 0.01),
  [`${D1}|${A}|2`]: ok(true, 20, 6, 2000, 200, 0.02),
  [`${D2}|${A}|1`]: ok(false, 30, 8, 3000, 300, 0.03),
  [`${D2}|${A}|2`]: { status: 'failed', prompt: 500, completion: 50, cost: 0.005 },
  [`${L1}|${A}|1`]: ok(true, 12.5, 3, 1500, 150, 0.015),
  [`${L1}|${A}|2`]: { status: 'timeout', prompt: 4000, completion: 400, cost: 0.04 },
  [`${D1}|${B}|1`]: ok(true, 5, 2, 800, 80, 0.002),
  [`${D1}|${B}|2`]: ok(true, 7, 3, 800, 80, 0.002),
  [`${D2}|${B}|1`]: ok(true, 9, 4, 800, 80, 0.002),
  [`${D2}|${B}|2`]: ok(true, 11, 5, 800, 80, 0.002),
  [`${L1}|${B}|1`]: ok(false, 40, 10, 5000, 500, 0.05),
  [`${L1}|${B}|2`]: { status: 'failed', prompt: 1000, completion: 100, cost: 0.01 },
};
const RETRY: Record<string, Outcome> = {
  [`${L1}|${B}|2`]: ok(true, 20, 5, 1000, 100, 0.01),
};
// Not retried: alpha's failure and timeout stay in the table as unsuccessful, errored tasks.

let experimentId = '';

async function drain(outcomes: Record<string, Outcome>): Promise<number> {
  let n = 0;
  for (;;) {
    const t = await claimNext(h.db.pool, 'w-results');
    if (!t) return n;
    const o = outcomes[comboOf(t)];
    if (!o) throw new Error(`no scripted outcome for ${comboOf(t)}`);
    await finishWith(h.db.pool, t, 'w-results', o);
    n++;
  }
}

describe('experiment results', () => {
  beforeAll(async () => {
    await addWorker(h.db.pool, 'w-results');
    const r = await h.post('/api/v1/experiments', { name: 'results-table', problem_ids: [D1, D2, L1], models: [A, B], repeats: 2, parameters: { max_steps: 10 } });
    expect(r.status).toBe(201);
    experimentId = r.body.id;
    expect(await drain(FIRST)).toBe(12);
    const retry = await h.post('/api/v1/experiments', { name: 'results-table', retry_failed: true });
    expect(retry.status).toBe(200);
    // Both failures (alpha D2 r2, beta L1 r2) and the timeout are recreated; only beta's is scripted to run here.
    expect(retry.body.tasks_created).toBe(3);
    await h.db.pool.query(
      `UPDATE tasks SET status = 'cancelled', completed_at = now(), error_type = 'cancelled'
        WHERE experiment_id = $1 AND status = 'pending' AND NOT (problem_id = $2 AND experiment_model = $3)`, [experimentId, L1, B]);
    expect(await drain(RETRY)).toBe(1);
  });

  it('summarises per model × task type with Wilson intervals, time-to-X, steps, tokens and cost', async () => {
    const r = await h.get(`/api/v1/experiments/${experimentId}/results`);
    expect(r.status).toBe(200);
    expect(r.body.tasks).toBeUndefined();
    // Alpha's retried combinations were cancelled, so their failed/timeout tasks are history and
    // the cancelled retries are left out: alpha D2 r2 and L1 r2 drop out of the table.
    expect(r.body.summary).toEqual([
      {
        model: A, task_type: 'detection', tasks: 3, evaluated: 3, errored: 0, successes: 2, success_rate: 0.6667,
        success_ci_low: 0.2077, success_ci_high: 0.9385, ttx_name: 'TTD', ttx_mean_s: 20, ttx_median_s: 20, steps_mean: 6, steps_median: 6,
        input_tokens_mean: 2000, output_tokens_mean: 200, input_tokens_total: 6000, output_tokens_total: 600, cost_per_task_usd: 0.02, cost_total_usd: 0.06,
      },
      {
        model: A, task_type: 'localization', tasks: 1, evaluated: 1, errored: 0, successes: 1, success_rate: 1,
        success_ci_low: 0.2065, success_ci_high: 1, ttx_name: 'TTL', ttx_mean_s: 12.5, ttx_median_s: 12.5, steps_mean: 3, steps_median: 3,
        input_tokens_mean: 1500, output_tokens_mean: 150, input_tokens_total: 1500, output_tokens_total: 150, cost_per_task_usd: 0.015, cost_total_usd: 0.015,
      },
      {
        model: B, task_type: 'detection', tasks: 4, evaluated: 4, errored: 0, successes: 4, success_rate: 1,
        success_ci_low: 0.5101, success_ci_high: 1, ttx_name: 'TTD', ttx_mean_s: 8, ttx_median_s: 8, steps_mean: 3.5, steps_median: 3.5,
        input_tokens_mean: 800, output_tokens_mean: 80, input_tokens_total: 3200, output_tokens_total: 320, cost_per_task_usd: 0.002, cost_total_usd: 0.008,
      },
      {
        model: B, task_type: 'localization', tasks: 2, evaluated: 2, errored: 0, successes: 1, success_rate: 0.5,
        success_ci_low: 0.0945, success_ci_high: 0.9055, ttx_name: 'TTL', ttx_mean_s: 30, ttx_median_s: 30, steps_mean: 7.5, steps_median: 7.5,
        input_tokens_mean: 3000, output_tokens_mean: 300, input_tokens_total: 6000, output_tokens_total: 600, cost_per_task_usd: 0.03, cost_total_usd: 0.06,
      },
    ]);
    expect(r.body.by_model).toEqual([
      {
        model: A, tasks: 4, evaluated: 4, errored: 0, successes: 3, success_rate: 0.75, success_ci_low: 0.3006, success_ci_high: 0.9544,
        ttx_name: null, ttx_mean_s: null, ttx_median_s: null, steps_mean: 5.25, steps_median: 5,
        input_tokens_mean: 1875, output_tokens_mean: 187.5, input_tokens_total: 7500, output_tokens_total: 750, cost_per_task_usd: 0.01875, cost_total_usd: 0.075,
      },
      {
        model: B, tasks: 6, evaluated: 6, errored: 0, successes: 5, success_rate: 0.8333, success_ci_low: 0.4365, success_ci_high: 0.9699,
        ttx_name: null, ttx_mean_s: null, ttx_median_s: null, steps_mean: 4.83, steps_median: 4.5,
        input_tokens_mean: 1533.3, output_tokens_mean: 153.3, input_tokens_total: 9200, output_tokens_total: 920, cost_per_task_usd: 0.01133333, cost_total_usd: 0.068,
      },
    ]);
    expect(r.body.detail.map((d: any) => [d.problem_id, d.model, d.tasks, d.successes, d.success_ci_low, d.success_ci_high, d.ttx_mean_s, d.cost_total_usd])).toEqual([
      // Problems in catalog order, then models in the experiment's order.
      [D1, A, 2, 2, 0.3424, 1, 15, 0.03],
      [D1, B, 2, 2, 0.3424, 1, 6, 0.004],
      [L1, A, 1, 1, 0.2065, 1, 12.5, 0.015],
      [L1, B, 2, 1, 0.0945, 0.9055, 30, 0.06],
      [D2, A, 1, 0, 0, 0.7935, 30, 0.03],
      [D2, B, 2, 2, 0.3424, 1, 10, 0.004],
    ]);
  });

  it('counts failed and timed-out tasks as unsuccessful, errored tasks when they are current', async () => {
    // A second experiment with the same first pass, without retries.
    await addWorker(h.db.pool, 'w-results-2');
    const r = await h.post('/api/v1/experiments', { name: 'results-errors', problem_ids: [D2, L1], models: [A], repeats: 2 });
    expect(r.status).toBe(201);
    for (;;) {
      const t = await claimNext(h.db.pool, 'w-results-2');
      if (!t) break;
      await finishWith(h.db.pool, t, 'w-results-2', FIRST[comboOf(t)]!);
    }
    const res = await h.get(`/api/v1/experiments/${r.body.id}/results`);
    expect(res.body.summary.map((s: any) => [s.task_type, s.tasks, s.evaluated, s.errored, s.successes, s.success_rate, s.success_ci_low, s.success_ci_high, s.ttx_mean_s, s.steps_mean, s.cost_total_usd, s.cost_per_task_usd])).toEqual([
      ['detection', 2, 1, 1, 0, 0, 0, 0.6576, 30, 8, 0.035, 0.0175],
      ['localization', 2, 1, 1, 1, 0.5, 0.0945, 0.9055, 12.5, 3, 0.055, 0.0275],
    ]);
  });

  it('reports the whole spend in progress, retried failures included, and the experiment as incomplete', async () => {
    const r = await h.get(`/api/v1/experiments/${experimentId}`);
    // 0.065 + 0.055 (alpha) + 0.008 + 0.05 + 0.01 (failed first try) + 0.01 (retry) (beta)
    expect(r.body.progress).toMatchObject({
      status: 'incomplete', combinations: 12, tasks_total: 15, finished: 10, spend_usd: 0.198,
      counts: { pending: 0, running: 0, completed: 10, failed: 0, timeout: 0, cancelled: 2, not_created: 0 },
    });
    expect(r.body.progress.by_model.map((m: any) => [m.model, m.spend_usd])).toEqual([[A, 0.12], [B, 0.078]]);
  });

  it('downloads each table as CSV and everything as JSON', async () => {
    const csv = await h.get(`/api/v1/experiments/${experimentId}/results?format=csv&table=summary`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toBe('attachment; filename="results-table-summary.csv"');
    const lines = csv.text.split('\r\n');
    expect(lines[0]).toBe('model,task_type,tasks,evaluated,errored,successes,success_rate,success_ci_low,success_ci_high,ttx_name,ttx_mean_s,ttx_median_s,'
      + 'steps_mean,steps_median,input_tokens_mean,output_tokens_mean,input_tokens_total,output_tokens_total,cost_per_task_usd,cost_total_usd');
    expect(lines[1]).toBe(`${A},detection,3,3,0,2,0.6667,0.2077,0.9385,TTD,20,20,6,6,2000,200,6000,600,0.02,0.06`);
    expect(lines).toHaveLength(6); // header, 4 rows, trailing empty
    const byModel = await h.get(`/api/v1/experiments/results-table/results?format=csv&table=by_model`);
    expect(byModel.text.split('\r\n')[2]).toBe(`${B},6,6,0,5,0.8333,0.4365,0.9699,,,,4.83,4.5,1533.3,153.3,9200,920,0.01133333,0.068`);
    const tasks = await h.get(`/api/v1/experiments/${experimentId}/results?format=csv&table=tasks`);
    expect(tasks.text.split('\r\n').filter(Boolean)).toHaveLength(11);

    const json = await h.get(`/api/v1/experiments/${experimentId}/results?download=true`);
    expect(json.headers['content-disposition']).toBe('attachment; filename="results-table-results.json"');
    expect(json.body.tasks).toHaveLength(10);
    expect(json.body.confidence_level).toBe(0.95);
    expect(json.body.tasks.find((t: any) => t.problem_id === L1 && t.model === B && t.repeat === 2)).toMatchObject({ status: 'completed', success: true, cost_usd: 0.01, ttx_seconds: 20 });
  });
});
