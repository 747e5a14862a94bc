/**
 * A worker host (`aiopslab-executor worker`, a real child process of the built CLI) killed with
 * SIGKILL while it runs two tasks. Within one lease period the maintenance pass of the API
 * process requeues the task that has attempts left and fails the other as worker_lost; another
 * worker host runs the requeued one to completion, never while the first could still run it; the
 * killed workers show offline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedSolver, startLlmServer, type LlmServer } from './fixtures/llmServer.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';
import { groupProcesses, requireBuild, spawnCli, until, type Child } from './faultsSupport.js';

const LEASE = 3;
const PROBLEM = 'k8s_target_port-misconfig-detection-1';
let db: TestDatabase;
let llm: LlmServer;
let standins: Standins;
let h: ServiceHarness;
const children: Child[] = [];

beforeAll(async () => {
  requireBuild();
  db = await createTestDatabase();
  llm = await startLlmServer();
  standins = createStandins();
  // The API and the maintenance pass; the workers are separate processes.
  h = await startServiceHarness({ mode: 'serve', db, llm, standins, env: { LEASE_SECONDS: String(LEASE), WORKER_OFFLINE_AFTER: String(LEASE), TIMEOUT_CHECK_INTERVAL: '0.3' } });
});
afterAll(async () => {
  for (const c of children) { c.kill9(); c.killGroup(); }
  await h?.close();
  await llm?.close();
  standins?.cleanup();
  await db?.drop();
});

const workerEnv = (prefix: string, n: number) => ({ ...h.env, WORKER_ID_PREFIX: prefix, NUM_INTERNAL_WORKERS: String(n), LOG_LEVEL: 'info' });
const task = async (id: string) => (await h.api(`/api/v1/tasks/${id}`)).body;

describe('a worker host killed with SIGKILL mid-task', () => {
  it('requeues (attempts left) or fails worker_lost within one lease, another host finishes it, no overlap, workers offline', async () => {
    const a = (await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5 } })).id as string;
    const b = (await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5 } })).id as string;
    await db.pool.query('UPDATE tasks SET max_attempts = 1 WHERE id = $1', [b]);
    // Slow LLM answers keep both runs in their agent loop while we kill the host.
    llm.setPolicy((req) => ({ kind: 'slow', delayMs: 1000, reply: scriptedSolver(req) as never }));

    const victim = spawnCli(['worker', '--workers', '2'], workerEnv('worker-victim', 2));
    children.push(victim);
    await until('both tasks running on the victim with their agents talking to the LLM', async () => {
      const [ta, tb] = [await task(a), await task(b)];
      const convs = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM llm_messages m JOIN llm_conversations c ON c.id = m.conversation_id WHERE c.task_id = ANY($1) AND m.role = $2', [[a, b], 'assistant']);
      return ta.status === 'running' && tb.status === 'running' && /^worker-victim-/.test(ta.worker_id) && /^worker-victim-/.test(tb.worker_id) && convs.rows[0]!.n >= 2;
    }, 90_000, 200);
    const victimWorkers = [(await task(a)).worker_id, (await task(b)).worker_id];

    const killedAt = Date.now();
    victim.kill9();
    expect((await victim.exited).signal).toBe('SIGKILL');
    const rescuer = spawnCli(['worker', '--workers', '1'], workerEnv('worker-rescue', 1));
    children.push(rescuer);
    llm.setPolicy(scriptedSolver);

    // Within one lease period (plus one maintenance interval and scheduling slack).
    const lost = await until('b failed worker_lost', async () => { const t = await task(b); return t.status === 'failed' ? t : null; }, 30_000);
    expect(lost.error_type).toBe('worker_lost');
    const expiredAt = async (id: string) => (await db.pool.query<{ ts: Date }>(`SELECT timestamp AS ts FROM task_logs WHERE task_id = $1 AND context->>'phase' = 'lease_expired'`, [id])).rows.map((r) => r.ts.getTime());
    await until('a requeued', async () => (await expiredAt(a)).length === 1, 30_000);
    for (const id of [a, b]) {
      const [t] = await expiredAt(id);
      expect(t! - killedAt, id).toBeLessThanOrEqual(LEASE * 1000 + 2500);
    }

    const done = await until('a completed by the rescuer', async () => { const t = await task(a); return ['completed', 'failed', 'timeout'].includes(t.status) ? t : null; }, 120_000, 250);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(done.worker_id).toMatch(/^worker-rescue-/);
    expect(done.attempt).toBe(2);

    // Never two workers at once: the rescuer claimed only after the lease expired, and the
    // first attempt's conversation ended (no message) before the second began.
    const claims = (await db.pool.query<{ ts: Date; w: string }>(`SELECT timestamp AS ts, context->>'worker_id' AS w FROM task_logs WHERE task_id = $1 AND context->>'phase' = 'claimed' ORDER BY id`, [a])).rows;
    expect(claims.map((c) => c.w)).toEqual([victimWorkers[0], done.worker_id]);
    expect(claims[1]!.ts.getTime()).toBeGreaterThan((await expiredAt(a))[0]!);
    const convs = (await db.pool.query<{ attempt: number; first: Date; last: Date }>(
      `SELECT c.attempt, min(m.created_at) AS first, max(m.created_at) AS last FROM llm_conversations c JOIN llm_messages m ON m.conversation_id = c.id WHERE c.task_id = $1 GROUP BY c.attempt ORDER BY c.attempt`, [a])).rows;
    expect(convs.map((c) => c.attempt)).toEqual([1, 2]);
    expect(convs[0]!.last.getTime()).toBeLessThan(convs[1]!.first.getTime());
    expect(convs[0]!.last.getTime()).toBeLessThanOrEqual(killedAt + 500);

    const workers = (await h.api('/api/v1/workers')).body.workers as Array<{ id: string; status: string; current_task_id: string | null }>;
    for (const id of victimWorkers) expect(workers.find((w) => w.id === id), id).toMatchObject({ status: 'offline', current_task_id: null });

    // The killed host's bridges lose their channel and end on their own (they must not keep driving the cluster).
    await until('orphaned bridges gone', async () => groupProcesses(victim.pid, 'aiopslab_bridge.py').length === 0, 60_000, 500);
  }, 300_000);
});
