/**
 * PostgreSQL restarted under the running service (an embedded server this test owns: stopped and
 * started again on the same data) while tasks run and new ones are being submitted. During the
 * outage the API answers 503 `database_unavailable` (never 500) and nothing is accepted that is
 * then lost; afterwards the event listener and the workers reconnect by themselves and every
 * accepted task ends in a correct state.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/store/embeddedDatabase.js';
import { createPool } from '../src/store/pool.js';
import { scriptedSolver } from './fixtures/llmServer.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';
import { until } from './faultsSupport.js';

const PROBLEM = 'k8s_target_port-misconfig-detection-1';
const OUTAGE_MS = 5000; // longer than LEASE_SECONDS − heartbeat: workers must fence themselves and leases expire
const dir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-fault-pg-'));
// As root the server runs as the unprivileged `postgres` user, which must reach the folder.
chmodSync(dir, 0o755);
const port = 20000 + Math.floor(Math.random() * 20000);
let pg: EmbeddedDatabase;
let h: ServiceHarness;

const startPg = () => startEmbeddedDatabase({ dataDir: path.join(dir, 'data'), port, database: 'aiopslab_executor' });

beforeAll(async () => {
  pg = await startPg();
  const pool = createPool(pg.url, 4);
  h = await startServiceHarness({
    workers: 2,
    db: { url: pg.url, name: 'aiopslab_executor', pool, drop: async () => { await pool.end().catch(() => {}); } },
    env: { SUBMIT_RATE_LIMIT: '0', MAX_ATTEMPTS: '3' },
  });
});
afterAll(async () => {
  await h?.close().catch(() => {});
  await h?.db.drop();
  await pg?.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL restarted while tasks run and are submitted', () => {
  it('503 database_unavailable during the outage; reconnects; every accepted task ends correctly', async () => {
    // Slow answers keep runs in their agent loop across the outage.
    h.llm.setPolicy((req) => ({ kind: 'slow', delayMs: 700, reply: scriptedSolver(req) as never }));
    const accepted: string[] = [];
    for (let i = 0; i < 3; i++) accepted.push((await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5 } })).id);
    await until('two runs in their agent loop', async () => {
      const r = await h.db.pool.query<{ n: number }>(`SELECT count(DISTINCT c.task_id)::int AS n FROM llm_messages m JOIN llm_conversations c ON c.id = m.conversation_id WHERE m.role = 'assistant'`);
      return r.rows[0]!.n === 2;
    }, 90_000, 200);

    // A client that keeps submitting through the outage, as a CI pipeline would.
    const outcomes: Array<{ status: number; code: string | null; retryAfter: string | null }> = [];
    let submitting = true;
    const submitter = (async () => {
      while (submitting) {
        const r = await h.api('/api/v1/tasks', { body: { problem_id: PROBLEM, parameters: { max_steps: 5 } } }).catch((e) => ({ status: 0, body: { error: { code: String(e) } }, headers: new Headers() }));
        outcomes.push({ status: r.status, code: r.body?.error?.code ?? null, retryAfter: r.headers.get('retry-after') });
        if (r.status === 201) accepted.push(r.body.id);
        await new Promise((res) => setTimeout(res, 500));
      }
    })();
    await new Promise((r) => setTimeout(r, 600));

    await pg.stop();
    const down = Date.now();
    const during: Array<{ url: string; status: number; code: string | null }> = [];
    while (Date.now() - down < OUTAGE_MS) {
      for (const url of ['/api/v1/tasks', `/api/v1/tasks/${accepted[0]}`, '/api/v1/workers', '/queue/stats', '/api/v1/tasks/stats']) {
        const r = await h.api(url);
        during.push({ url, status: r.status, code: r.body?.error?.code ?? null });
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const health = await h.api('/health');
    const ready = await h.api('/ready');
    pg = await startPg();
    const up = Date.now();
    await until('two submissions accepted after the restart', async () => outcomes.filter((o) => o.status === 201).length >= 3 && Date.now() - up > 1500, 30_000, 200);
    submitting = false;
    await submitter;

    // During the outage: 503 with the clear code, never a 500.
    expect(during.length).toBeGreaterThan(5);
    for (const d of during) expect(d, JSON.stringify(d)).toMatchObject({ status: 503, code: 'database_unavailable' });
    const refused = outcomes.filter((o) => o.status !== 201);
    expect(refused.length).toBeGreaterThan(0);
    for (const o of refused) expect(o).toMatchObject({ status: 503, code: 'database_unavailable', retryAfter: '5' });
    expect(health.status).toBe(503);
    expect(health.body.database.connected).toBe(false);
    expect(ready.status).toBe(503);

    // Afterwards: every accepted submission exists once, and all of them end correctly.
    h.llm.setPolicy(scriptedSolver);
    const final = await until('every accepted task terminal', async () => {
      const rows = await Promise.all(accepted.map(async (id) => (await h.api(`/api/v1/tasks/${id}`)).body));
      return rows.every((t) => ['completed', 'failed', 'timeout', 'cancelled'].includes(t.status)) ? rows : null;
    }, 180_000, 500).catch(async (e) => {
      const rows = await Promise.all(accepted.map(async (id) => (await h.api(`/api/v1/tasks/${id}`)).body));
      const workers = (await h.api('/api/v1/workers')).body;
      (await import('node:fs')).writeFileSync(path.join(os.tmpdir(), 'faults-database-service.log'), h.logs());
      const warn = h.logs().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-40).join('\n');
      throw new Error(`${(e as Error).message}\ntasks: ${JSON.stringify(rows.map((t) => [t.id, t.status, t.worker_id, t.attempt, t.error_type]))}\nworkers: ${JSON.stringify(workers)}\nlogs:\n${warn}`);
    });
    const all = (await h.api('/api/v1/tasks?page_size=100')).body;
    expect(all.total).toBe(accepted.length);
    expect(new Set(accepted).size).toBe(accepted.length);
    for (const t of final) {
      // A run cut by the outage is retried (lease expiry requeues it); the retry completes.
      expect(t.status, JSON.stringify({ id: t.id, status: t.status, error_type: t.error_type, error_details: t.error_details })).toBe('completed');
    }
    const interrupted = final.filter((t) => t.attempt > 1);
    expect(interrupted.length, 'the outage interrupted the runs in flight').toBeGreaterThan(0);
    // The event listener reconnected: idle workers woke for new work (no stuck pending tasks above),
    // and the workers are back to idle, none offline.
    const workers = (await h.api('/api/v1/workers')).body.workers as Array<{ status: string }>;
    expect(workers.map((w) => w.status)).toEqual(['idle', 'idle']);
    expect(h.logs()).toMatch(/event listener connection problem|worker loop error; retrying|heartbeat failed/);
  }, 420_000);
});
