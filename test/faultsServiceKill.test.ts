/**
 * The whole service (`aiopslab-executor start`, a child process of the built CLI) killed with
 * SIGKILL while it holds tasks in every state, then started again on the same database: pending
 * tasks run, the running one is recovered through lease expiry and run again, terminal ones are
 * not touched (byte for byte), and a webhook still owed is delivered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedSolver, startLlmServer, type LlmServer } from './fixtures/llmServer.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { FIXTURE_AIOPSLAB_DIR, TEST_LLM_KEY, startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';
import { groupProcesses, requireBuild, spawnCli, until, type Child } from './faultsSupport.js';
import { startReceiver, type Receiver } from './webhooksSupport.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PROBLEM = 'k8s_target_port-misconfig-detection-1';
const TERMINAL = ['completed', 'failed', 'timeout', 'cancelled'];
let db: TestDatabase;
let llm: LlmServer;
let standins: Standins;
let rx: Receiver;
let child: Child | null = null;
let h: ServiceHarness | null = null;
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-kill-state-'));

beforeAll(async () => {
  requireBuild();
  db = await createTestDatabase();
  llm = await startLlmServer();
  standins = createStandins();
  rx = await startReceiver();
});
afterAll(async () => {
  child?.kill9();
  child?.killGroup();
  await h?.close();
  await rx?.close();
  await llm?.close();
  standins?.cleanup();
  await db?.drop();
  rmSync(stateDir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({
  ...standins.env, DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', NUM_INTERNAL_WORKERS: '1',
  AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: 'python3', OPENROUTER_API_KEY: TEST_LLM_KEY, OPENROUTER_BASE_URL: llm.baseUrl,
  EXECUTOR_STATE_DIR: stateDir, WORKER_POLL_INTERVAL: '1', WORKER_HEARTBEAT_INTERVAL: '0.5', LEASE_SECONDS: '4', WORKER_OFFLINE_AFTER: '4',
  TIMEOUT_CHECK_INTERVAL: '0.5', STOP_GRACE_SECONDS: '3', LOG_LEVEL: 'info', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_DELAY: '0.2', WEBHOOK_POLL_INTERVAL: '0.2',
});

describe('the service killed with SIGKILL and started again', () => {
  it('runs what was pending, recovers what was running, leaves what had ended untouched', async () => {
    child = spawnCli(['start', '--workers', '1'], env());
    const url = await child.url();
    const api = async (p: string, init: { method?: string; body?: unknown } = {}) => {
      const r = await fetch(`${url}${p}`, { method: init.method ?? (init.body ? 'POST' : 'GET'), headers: init.body ? { 'content-type': 'application/json' } : {}, body: init.body ? JSON.stringify(init.body) : undefined });
      return { status: r.status, body: await r.json() as any };
    };
    const submit = async (parameters: Record<string, unknown>) => {
      const r = await api('/api/v1/tasks', { body: { problem_id: PROBLEM, parameters: { max_steps: 5, ...parameters } } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const statusOf = async (id: string) => (await db.pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [id])).rows[0]!.status;

    // Terminal states: failed (preflight), completed (a real run), cancelled, timeout.
    const failed = await submit({ agent_config: { model: 'openai:gpt-4o' } }); // no OPENAI_API_KEY: fails in preflight
    const completed = await submit({});
    const cancelled = await submit({ backend_type: 'existing' }); // no `existing` worker: stays pending until cancelled
    expect((await api(`/api/v1/tasks/${cancelled}/cancel`, { method: 'POST' })).status).toBe(200);
    await until('failed and completed', async () => (await statusOf(failed)) === 'failed' && (await statusOf(completed)) === 'completed', 120_000, 250);
    const timedOut = (await db.pool.query<{ id: string }>(
      `INSERT INTO tasks (problem_id, status, created_at, started_at, completed_at, worker_id, attempt, error_type, error_details)
       VALUES ($1, 'timeout', now() - interval '1 hour', now() - interval '59 minutes', now() - interval '29 minutes', 'worker-001-internal', 1, 'timeout', 'Task exceeded its timeout of 30 minute(s)') RETURNING id`, [PROBLEM])).rows[0]!.id;
    const terminal = [failed, completed, cancelled, timedOut];
    const snapshot = async () => (await db.pool.query<{ j: string }>(`SELECT to_jsonb(t)::text AS j FROM tasks t WHERE id = ANY($1) ORDER BY id`, [terminal])).rows.map((r) => r.j);
    const logCount = async () => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_logs WHERE task_id = ANY($1) AND context->>'phase' IS DISTINCT FROM 'webhook'`, [terminal])).rows[0]!.n;
    const before = await snapshot();
    const logsBefore = await logCount();

    // Running and pending: slow LLM answers keep one run in its agent loop; two more wait.
    llm.setPolicy((req) => ({ kind: 'slow', delayMs: 1500, reply: scriptedSolver(req) as never }));
    rx.setFallback(503); // the receiver is down: the webhook stays owed across the crash
    const running = await submit({ callback_url: `${rx.url}/hook/running` });
    await until('the run in its agent loop', async () => {
      const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM llm_messages m JOIN llm_conversations c ON c.id = m.conversation_id WHERE c.task_id = $1 AND m.role = 'assistant'`, [running]);
      return r.rows[0]!.n >= 1;
    }, 90_000, 200);
    const pending = [await submit({ priority: 7 }), await submit({ callback_url: `${rx.url}/hook/pending` })];
    const owed = await submit({ backend_type: 'existing', callback_url: `${rx.url}/hook/owed` });
    expect((await api(`/api/v1/tasks/${owed}/cancel`, { method: 'POST' })).status).toBe(200);
    await until('a webhook attempt refused by the receiver', async () => rx.received.some((r) => r.path === '/hook/owed'), 20_000);
    expect(await statusOf(running)).toBe('running');
    for (const id of pending) expect(await statusOf(id)).toBe('pending');

    child.kill9();
    expect((await child.exited).signal).toBe('SIGKILL');
    const killedAt = Date.now();

    // Started again (in this process), on the same database, with the receiver back.
    llm.setPolicy(scriptedSolver);
    rx.setFallback(200);
    h = await startServiceHarness({ db, llm, standins, workers: 2, env: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_DELAY: '0.2', WEBHOOK_POLL_INTERVAL: '0.2' } });
    const restartedAt = Date.now();
    const all = [running, ...pending];
    const final = await until('running and pending tasks ended', async () => {
      const rows = await Promise.all(all.map(async (id) => (await h!.api(`/api/v1/tasks/${id}`)).body));
      return rows.every((t) => TERMINAL.includes(t.status)) ? rows : null;
    }, 240_000, 500);
    for (const t of final) expect(t.status, JSON.stringify({ id: t.id, status: t.status, error_type: t.error_type })).toBe('completed');

    // The running one came back through lease expiry (no one could tell the dead process's worker to stop).
    const recovered = final[0]!;
    expect(recovered.attempt).toBe(2);
    const expired = (await db.pool.query<{ ts: Date }>(`SELECT timestamp AS ts FROM task_logs WHERE task_id = $1 AND context->>'phase' = 'lease_expired'`, [running])).rows;
    expect(expired).toHaveLength(1);
    // Expired one lease (4 s) after the kill, or as soon as a process was back to notice.
    expect(expired[0]!.ts.getTime()).toBeLessThan(Math.max(killedAt + 4000, restartedAt) + 3000);

    // Terminal tasks untouched: rows identical, no new timeline entries.
    expect(await snapshot()).toEqual(before);
    expect(await logCount()).toBe(logsBefore);

    // Webhooks: the one owed before the crash, and those of the tasks finished after it, each delivered once.
    await rx.waitFor((r) => ['/hook/owed', '/hook/running', '/hook/pending'].every((p) => r.some((x) => x.path === p && x.at > killedAt)), 30_000);
    const delivered = await db.pool.query<{ url: string; status: string }>(`SELECT url, status FROM webhook_deliveries ORDER BY url`);
    expect(delivered.rows.map((r) => [new URL(r.url).pathname, r.status])).toEqual([['/hook/owed', 'delivered'], ['/hook/pending', 'delivered'], ['/hook/running', 'delivered']]);

    // The killed process's bridge lost its channel and ended by itself.
    await until('orphaned bridge gone', async () => groupProcesses(child!.pid, 'aiopslab_bridge.py').length === 0, 60_000, 500);
  }, 420_000);
});
