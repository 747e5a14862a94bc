/**
 * The quick start's process (`aiopslab-executor start` with the embedded PostgreSQL) stopped while
 * a task runs — with SIGTERM, and with Ctrl-C (SIGINT to the terminal's whole process group): the
 * running task is requeued in the database before the embedded server stops, the process exits 0,
 * and no PostgreSQL is left behind. Killed with SIGKILL instead, it leaves its server running; the
 * next start stops that one and starts cleanly on the same data.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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

beforeAll(async () => {
  llm = await startLlmServer();
  // Investigates without end, so the task is still running when the signal comes.
  llm.setPolicy(() => ({ kind: 'slow', delayMs: 200, reply: { content: fence('exec_shell("kubectl get pods -A")') } }));
  standins = createStandins();
});
afterEach(() => { child?.killGroup(); child = null; });
afterAll(async () => {
  await llm?.close();
  standins?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function startService(dataDir: string, port: number): Child {
  const env: NodeJS.ProcessEnv = { ...standins.env, HOST: '127.0.0.1', PORT: '0', EMBEDDED_PG_DIR: dataDir, EMBEDDED_PG_PORT: String(port),
    AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: 'python3', OPENROUTER_API_KEY: TEST_LLM_KEY, OPENROUTER_BASE_URL: llm.baseUrl,
    EXECUTOR_STATE_DIR: path.join(tmp, 'state'), WORKER_POLL_INTERVAL: '1', STOP_GRACE_SECONDS: '3', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  return spawnCli(['start', '--workers', '1'], env);
}

async function submitRunning(url: string): Promise<string> {
  const before = llm.chatRequests().length;
  const res = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { max_steps: 500 } }) });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { id: string }).id;
  await until('the agent to be investigating', async () => llm.chatRequests().length >= before + 2, 90_000, 100);
  return id;
}

async function taskState(dataDir: string, port: number, id: string) {
  const db = await startEmbeddedDatabase({ dataDir, port });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const row = (await client.query(`SELECT status, attempt, worker_id FROM tasks WHERE id = $1`, [id])).rows[0];
    const logs = (await client.query<{ message: string }>(`SELECT message FROM task_logs WHERE task_id = $1 ORDER BY id`, [id])).rows.map((r) => r.message);
    return { row, logs };
  } finally {
    await client.end();
    await db.stop();
  }
}

const port = () => 40000 + Math.floor(Math.random() * 20000);

describe('stopping `start` with the embedded database while a task runs', () => {
  for (const how of ['SIGTERM to the process', 'Ctrl-C (SIGINT to the process group)'] as const) {
    it(`${how}: requeues the running task, then stops the database, and exits 0`, async () => {
      const dataDir = path.join(tmp, how.startsWith('SIGTERM') ? 'pg-term' : 'pg-int');
      const p = port();
      child = startService(dataDir, p);
      const id = await submitRunning(await child.url(120_000));
      if (how.startsWith('SIGTERM')) child.proc.kill('SIGTERM');
      else process.kill(-child.pid, 'SIGINT');
      const exit = await child.exited;
      expect(exit, child.output().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(child.output()).toContain(how.startsWith('SIGTERM') ? 'Received SIGTERM' : 'Received SIGINT');
      // The embedded server was stopped by the service, not left running.
      expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
      const { row, logs } = await taskState(dataDir, p, id);
      expect(row).toEqual({ status: 'pending', attempt: 1, worker_id: null });
      expect(logs.some((m) => /shutting down/i.test(m)), logs.join('\n')).toBe(true);
    });
  }

  it('SIGKILL leaves the server running; the next start stops it and comes up on the same data', async () => {
    const dataDir = path.join(tmp, 'pg-kill');
    const p = port();
    child = startService(dataDir, p);
    const id = await submitRunning(await child.url(120_000));
    child.kill9();
    await child.exited;
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
    child = startService(dataDir, p);
    const url = await child.url(120_000);
    const task = await (await fetch(`${url}/api/v1/tasks/${id}`)).json() as { id: string };
    expect(task.id).toBe(id);
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});
