/**
 * GET /api/v1/stats/spend, which the dashboard's "models and spend" charts and the overview's
 * "today by model" table draw: sums per calendar day (in the viewer's time zone) and model,
 * today's totals, and success rate per task type and per model over the ended tasks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';

let h: ApiHarness;

/** A task that ended `status` with `result`, finished at `at`. */
async function endedTask(problemId: string, status: 'completed' | 'failed' | 'timeout' | 'cancelled', at: string, result: Record<string, unknown> | null): Promise<string> {
  const r = await h.db.pool.query<{ id: string }>(
    `INSERT INTO tasks (problem_id, status, result, created_at, started_at, completed_at, worker_id, error_type)
     VALUES ($1, $2, $3, $4::timestamptz - interval '2 minutes', $4::timestamptz - interval '1 minute', $4, 'w-1', $5) RETURNING id`,
    [problemId, status, result === null ? null : JSON.stringify(result), at, status === 'completed' ? null : status],
  );
  return r.rows[0]!.id;
}

async function conversation(taskId: string, model: string, startedAt: string, tokens: { prompt: number; completion: number }, cost: number, calls: number): Promise<void> {
  await h.db.pool.query(
    `INSERT INTO llm_conversations (task_id, model_name, started_at, prompt_tokens, completion_tokens, total_tokens, cost_usd, llm_calls)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [taskId, model, startedAt, tokens.prompt, tokens.completion, tokens.prompt + tokens.completion, cost, calls],
  );
}

const isoDaysAgo = (days: number, hourUtc: number) => {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - days);
  d.setUTCHours(hourUtc, 0, 0, 0);
  return d.toISOString();
};
const dayOf = (iso: string, timeZone: string) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));

beforeAll(async () => {
  h = await createApiHarness();
  await h.db.pool.query(`INSERT INTO problems (id, application, task_type, deployment, source) VALUES
    ('k8s_target_port-misconfig-detection-1', 'social_network', 'detection', 'k8s', 'builtin'),
    ('k8s_target_port-misconfig-mitigation-1', 'social_network', 'mitigation', 'k8s', 'builtin')`);
});
afterAll(async () => { await h?.close(); });

describe('GET /api/v1/stats/spend', () => {
  it('sums tokens and cost per day and model, totals them, and splits days in the given time zone', async () => {
    // 03:00 UTC two days ago is still the day before in New York (UTC-4/-5).
    const early = isoDaysAgo(2, 3);
    const noon = isoDaysAgo(2, 12);
    const old = isoDaysAgo(40, 12);
    const now = new Date().toISOString();
    const t1 = await endedTask('k8s_target_port-misconfig-detection-1', 'completed', noon, { success: true, reward: 1, model: 'openai/gpt-4o-mini' });
    const t2 = await endedTask('k8s_target_port-misconfig-detection-1', 'completed', noon, { success: false, reward: 0, model: 'openai/gpt-4o-mini' });
    const t3 = await endedTask('k8s_target_port-misconfig-mitigation-1', 'failed', noon, { success: false, reward: 0, model: 'openai/gpt-4o' });
    const t4 = await endedTask('k8s_target_port-misconfig-mitigation-1', 'cancelled', noon, null);
    await conversation(t1, 'openai/gpt-4o-mini', early, { prompt: 1000, completion: 100 }, 0.0012, 3);
    await conversation(t2, 'openai/gpt-4o-mini', noon, { prompt: 500, completion: 50 }, 0.0006, 2);
    await conversation(t3, 'openai/gpt-4o', now, { prompt: 2000, completion: 200 }, 0.025, 4);
    await conversation(t4, 'openai/gpt-4o', old, { prompt: 9, completion: 9 }, 9, 9);

    const utc = await h.app.inject({ url: '/api/v1/stats/spend?days=30' });
    expect(utc.statusCode).toBe(200);
    const u = utc.json();
    expect(u.tz).toBe('UTC');
    expect(u.today).toBe(dayOf(now, 'UTC'));
    // Both gpt-4o-mini runs fall on one UTC day; the 40-day-old run is outside the window.
    expect(u.daily).toEqual([
      expect.objectContaining({ day: dayOf(noon, 'UTC'), model: 'openai/gpt-4o-mini', conversations: 2, llm_calls: 5, prompt_tokens: 1500, completion_tokens: 150, total_tokens: 1650, cost_usd: 0.0018 }),
      expect.objectContaining({ day: dayOf(now, 'UTC'), model: 'openai/gpt-4o', conversations: 1, total_tokens: 2200, cost_usd: 0.025 }),
    ]);
    expect(u.today_by_model).toEqual([expect.objectContaining({ model: 'openai/gpt-4o', total_tokens: 2200, cost_usd: 0.025 })]);
    expect(u.totals_by_model.map((r: { model: string; cost_usd: number }) => [r.model, r.cost_usd])).toEqual([['openai/gpt-4o', 0.025], ['openai/gpt-4o-mini', 0.0018]]);
    // Cancelled tasks say nothing about success; a failed run counts as not successful.
    expect(u.success_by_task_type).toEqual([
      { key: 'detection', ended: 2, succeeded: 1, success_rate: 0.5, avg_reward: 0.5 },
      { key: 'mitigation', ended: 1, succeeded: 0, success_rate: 0, avg_reward: 0 },
    ]);
    expect(u.success_by_model).toEqual([
      { key: 'openai/gpt-4o', ended: 1, succeeded: 0, success_rate: 0, avg_reward: 0 },
      { key: 'openai/gpt-4o-mini', ended: 2, succeeded: 1, success_rate: 0.5, avg_reward: 0.5 },
    ]);

    const ny = (await h.app.inject({ url: '/api/v1/stats/spend?days=30&tz=America/New_York' })).json();
    const miniDays = ny.daily.filter((r: { model: string }) => r.model === 'openai/gpt-4o-mini').map((r: { day: string; total_tokens: number }) => [r.day, r.total_tokens]);
    expect(miniDays).toEqual([[dayOf(early, 'America/New_York'), 1100], [dayOf(noon, 'America/New_York'), 550]]);
    expect(dayOf(early, 'America/New_York')).not.toBe(dayOf(noon, 'America/New_York'));
  });

  it('refuses an unknown time zone and an out-of-range window with field errors', async () => {
    const tz = await h.app.inject({ url: '/api/v1/stats/spend?tz=Mars/Olympus_Mons' });
    expect(tz.statusCode).toBe(422);
    expect(tz.json().error).toMatchObject({ code: 'validation_failed', details: [{ field: 'query.tz' }] });
    const days = await h.app.inject({ url: '/api/v1/stats/spend?days=0' });
    expect(days.statusCode).toBe(422);
    expect(days.json().error.details[0].field).toBe('query.days');
  });
});
