/**
 * Webhook delivery through the service (`serve`: API + maintenance + delivery loop): one signed
 * POST per terminal state whichever path ended the task, retries with backoff, the record of
 * every delivery, durability across a restart, and no double sends by concurrent processes.
 */
import { createHmac } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createPool } from '../src/store/pool.js';
import { startWebhookLoop } from '../src/webhooks/deliveryLoop.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';
import { startReceiver, type Receiver } from './webhooksSupport.js';

const SECRET = 'whsec-test-7d1e0c55a2b94f3e';
const PROBLEM = 'k8s_target_port-misconfig-detection-1';
const ENV = {
  WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_BASE_DELAY: '0.3', WEBHOOK_POLL_INTERVAL: '0.2',
  WEBHOOK_MAX_ATTEMPTS: '3', WEBHOOK_TIMEOUT: '3', LEASE_SECONDS: '2', SUBMIT_RATE_LIMIT: '0',
};

let db: TestDatabase;
let rx: Receiver;
let h: ServiceHarness;

beforeAll(async () => {
  db = await createTestDatabase();
  rx = await startReceiver();
  h = await startServiceHarness({ mode: 'serve', db, env: ENV });
});
afterAll(async () => {
  await h?.close();
  await rx?.close();
  await db?.drop();
});

async function submit(label: string | null, extra: Record<string, unknown> = {}): Promise<string> {
  const t = await h.submit({ problem_id: PROBLEM, parameters: { ...(label ? { callback_url: `${rx.url}/hook/${label}` } : {}), ...extra } });
  return t.id;
}

function expectSigned(hook: { headers: Record<string, unknown>; raw: string; body: any }) {
  const ts = String(hook.headers['x-aiopslab-timestamp']);
  expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(120);
  const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${hook.raw}`).digest('hex')}`;
  expect(hook.headers['x-aiopslab-signature']).toBe(expected);
  expect(hook.headers['content-type']).toBe('application/json');
  expect(hook.headers['x-aiopslab-delivery']).toBe(hook.body.delivery_id);
  expect(hook.headers['x-aiopslab-event']).toBe(hook.body.event);
}

const deliveries = async (taskId: string) => (await h.api(`/api/v1/tasks/${taskId}/webhooks`)).body;

describe('a POST on every terminal state', () => {
  it('completed and failed (worker host), cancelled (API), timeout and worker_lost (maintenance): each once, signed', async () => {
    const reg = async (id: string) => expect((await h.api('/api/v1/workers/register', { body: { worker_id: id, backend_type: 'kind' } })).status).toBe(201);
    await reg('wh-host-1');
    await reg('wh-host-2');
    await reg('wh-host-3');
    const claim = async (w: string, expectId: string) => {
      const r = await h.api(`/api/v1/workers/${w}/claim`, { method: 'POST' });
      expect(r.status).toBe(200);
      expect(r.body.id).toBe(expectId);
    };

    const completed = await submit('completed');
    await claim('wh-host-1', completed);
    expect((await h.api(`/api/v1/workers/wh-host-1/tasks/${completed}/complete`, { body: { success: true, reward: 1 } })).status).toBe(200);

    const failed = await submit('failed');
    await claim('wh-host-1', failed);
    expect((await h.api(`/api/v1/workers/wh-host-1/tasks/${failed}/fail`, { body: { error_type: 'cluster_failed', error_details: 'no nodes' } })).status).toBe(200);

    const cancelled = await submit('cancelled');
    expect((await h.api(`/api/v1/tasks/${cancelled}`, { method: 'DELETE' })).status).toBe(200);

    const timedOut = await submit('timeout');
    await claim('wh-host-2', timedOut);
    // Pretend it has run past its timeout_minutes; the maintenance pass does the rest.
    await db.pool.query(`UPDATE tasks SET created_at = now() - interval '2 hours', started_at = now() - interval '90 minutes', lease_expires_at = now() + interval '1 hour' WHERE id = $1`, [timedOut]);

    const lost = await submit('lost');
    await db.pool.query('UPDATE tasks SET max_attempts = 1 WHERE id = $1', [lost]);
    await claim('wh-host-3', lost);
    // wh-host-3 never heartbeats: its lease (LEASE_SECONDS=2) expires and the task fails worker_lost.

    const quiet = await submit(null);
    expect((await h.api(`/api/v1/tasks/${quiet}`, { method: 'DELETE' })).status).toBe(200);

    await rx.waitFor((r) => r.length >= 5, 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // nothing more may arrive
    expect(rx.received).toHaveLength(5);
    const byPath = new Map(rx.received.map((r) => [r.path, r]));
    const expectations: Array<[string, string, string, string | null]> = [
      ['completed', completed, 'task.completed', null], ['failed', failed, 'task.failed', 'cluster_failed'],
      ['cancelled', cancelled, 'task.cancelled', 'cancelled'], ['timeout', timedOut, 'task.timeout', 'timeout'], ['lost', lost, 'task.failed', 'worker_lost'],
    ];
    for (const [label, id, event, errorType] of expectations) {
      const hook = byPath.get(`/hook/${label}`);
      expect(hook, label).toBeDefined();
      expect(hook!.method).toBe('POST');
      expect(hook!.body).toMatchObject({ event, task: { id, problem_id: PROBLEM, status: event.slice(5), error_type: errorType } });
      expectSigned(hook!);
      const d = await deliveries(id);
      expect(d.total).toBe(1);
      expect(d.deliveries[0]).toMatchObject({ event, status: 'delivered', attempts: 1, response_code: 200, last_error: null, next_attempt_at: null });
      expect(d.deliveries[0].id).toBe(hook!.body.delivery_id);
    }
    expect(byPath.get('/hook/completed')!.body.task.result).toMatchObject({ success: true, reward: 1 });
    expect((await deliveries(quiet)).total).toBe(0);
    const timeline = (await h.api(`/api/v1/tasks/${completed}/logs`)).body.logs as Array<{ message: string; context: { phase?: string } }>;
    expect(timeline.some((l) => l.context.phase === 'webhook' && /delivered/.test(l.message))).toBe(true);
  });

  it('404 for the deliveries of an unknown task', async () => {
    const r = await h.api('/api/v1/tasks/00000000-0000-4000-8000-000000000000/webhooks');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('task_not_found');
  });
});

describe('retries', () => {
  it('retries failures with backoff, honouring Retry-After, and records the attempts', async () => {
    rx.received.length = 0;
    rx.respondWith(500, { status: 503, headers: { 'retry-after': '1' } });
    const id = await submit('retry');
    await h.api(`/api/v1/tasks/${id}/cancel`, { method: 'POST' });
    await rx.waitFor((r) => r.length >= 3, 20_000);
    const [a, b, c] = rx.received;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(250); // WEBHOOK_RETRY_BASE_DELAY 0.3 s
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(950); // Retry-After: 1 beats the 0.6 s backoff
    expect(new Set(rx.received.map((r) => r.raw)).size).toBe(1); // the same body every time
    for (const r of rx.received) expectSigned(r);
    await expect.poll(async () => (await deliveries(id)).deliveries[0], { timeout: 5000 }).toMatchObject({ status: 'delivered', attempts: 3, response_code: 200, last_error: null });
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS, and at once on 410 Gone; the failure is on the record and the timeline', async () => {
    rx.received.length = 0;
    rx.respondWith(500, 502, 500);
    const id = await submit('down');
    await h.api(`/api/v1/tasks/${id}/cancel`, { method: 'POST' });
    await expect.poll(async () => (await deliveries(id)).deliveries[0]?.status, { timeout: 20_000 }).toBe('failed');
    expect((await deliveries(id)).deliveries[0]).toMatchObject({ attempts: 3, response_code: 500, last_error: 'HTTP 500' });
    expect(rx.received).toHaveLength(3);
    const logs = (await h.api(`/api/v1/tasks/${id}/logs`)).body.logs as Array<{ message: string; level: string }>;
    expect(logs.some((l) => l.level === 'warning' && /Webhook task\.cancelled .* failed after 3 attempt/.test(l.message))).toBe(true);

    rx.respondWith(410);
    const gone = await submit('gone');
    await h.api(`/api/v1/tasks/${gone}/cancel`, { method: 'POST' });
    await expect.poll(async () => (await deliveries(gone)).deliveries[0]?.status, { timeout: 10_000 }).toBe('failed');
    expect((await deliveries(gone)).deliveries[0]).toMatchObject({ attempts: 1, response_code: 410 });
  });
});

describe('durability and concurrency', () => {
  it('a delivery pending while no process runs, and one whose sender died mid-send, are delivered after a restart', async () => {
    await h.close();
    rx.received.length = 0;
    // The task ends while no executor process runs (e.g. an operator's SQL, or a process that died right after).
    const t1 = (await db.pool.query<{ id: string }>(`INSERT INTO tasks (problem_id, callback_url) VALUES ($1, $2) RETURNING id`, [PROBLEM, `${rx.url}/hook/offline`])).rows[0]!.id;
    await db.pool.query(`UPDATE tasks SET status = 'cancelled', completed_at = now() WHERE id = $1`, [t1]);
    const t2 = (await db.pool.query<{ id: string }>(`INSERT INTO tasks (problem_id, callback_url) VALUES ($1, $2) RETURNING id`, [PROBLEM, `${rx.url}/hook/crashed`])).rows[0]!.id;
    await db.pool.query(`UPDATE tasks SET status = 'cancelled', completed_at = now() WHERE id = $1`, [t2]);
    await db.pool.query(`UPDATE webhook_deliveries SET status = 'delivering', attempts = 1, locked_until = now() - interval '1 second' WHERE task_id = $1`, [t2]);
    const pending = await db.pool.query('SELECT status, attempts FROM webhook_deliveries WHERE task_id = ANY($1) ORDER BY url', [[t1, t2]]);
    expect(pending.rows).toEqual([{ status: 'delivering', attempts: 1 }, { status: 'pending', attempts: 0 }]);

    h = await startServiceHarness({ mode: 'serve', db, env: ENV });
    await rx.waitFor((r) => r.length >= 2, 15_000);
    expect(rx.received.map((r) => r.path).sort()).toEqual(['/hook/crashed', '/hook/offline']);
    expect((await deliveries(t1)).deliveries[0]).toMatchObject({ status: 'delivered', attempts: 1 });
    expect((await deliveries(t2)).deliveries[0]).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('three processes sending at once deliver each of 30 webhooks exactly once', async () => {
    rx.received.length = 0;
    const config = { ...loadConfig({ ...ENV, LOG_LEVEL: 'silent' }), databaseUrl: db.url };
    const pools = [createPool(db.url, 4), createPool(db.url, 4)];
    const loops = pools.map((pool) => startWebhookLoop({ pool, config, logger: pino({ level: 'silent' }), version: 'test' }));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await submit(`many-${i}`));
      await Promise.all(ids.map((id) => h.api(`/api/v1/tasks/${id}`, { method: 'DELETE' })));
      await Promise.all(loops.map((l) => l.runOnce()));
      await rx.waitFor((r) => r.length >= 30, 20_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(rx.received).toHaveLength(30);
      expect(new Set(rx.received.map((r) => r.body.delivery_id)).size).toBe(30);
      expect(new Set(rx.received.map((r) => r.path)).size).toBe(30);
      const rows = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE task_id = ANY($1) AND status = 'delivered' AND attempts = 1`, [ids]);
      expect(rows.rows[0]!.n).toBe(30);
    } finally {
      for (const l of loops) await l.stop();
      for (const p of pools) await p.end();
    }
  });
});
