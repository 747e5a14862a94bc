/**
 * The whole service as a user runs it (`start`: API + internal workers + maintenance), in this
 * test process, against a fresh database, with the three outer systems replaced by their
 * stand-ins: kind/kubectl/helm/docker executables first on PATH, the fixture `aiopslab`
 * checkout, and a local chat-completions server as OpenRouter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runService, type RunningService, type ServiceMode } from '../../src/service/runService.js';
import { startLlmServer, type LlmServer } from '../fixtures/llmServer.js';
import { createStandins, type Standins } from '../fixtures/standins.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const FIXTURE_AIOPSLAB_DIR = fileURLToPath(new URL('../fixtures/aiopslab', import.meta.url));
/** A recognisable fake key: tests scan for it to prove it never leaks. */
export const TEST_LLM_KEY = 'sk-or-v1-test-4f1c2a9e7b3d5c8a0e6f';

export interface ServiceHarness {
  url: string;
  db: TestDatabase;
  llm: LlmServer;
  standins: Standins;
  service: RunningService;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  /** Every JSON log line the service wrote. */
  logs(): string;
  api<T = any>(pathname: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T; headers: Headers }>;
  submit(body: Record<string, unknown>): Promise<any>;
  /** Polls until the task reaches one of `statuses`; returns it. */
  waitForTask(id: string, statuses: string[], timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  mode?: ServiceMode;
  workers?: number;
  env?: Record<string, string>;
  /** Reuse an existing database (e.g. to restart the service on the same data). */
  db?: TestDatabase;
  llm?: LlmServer;
  standins?: Standins;
}

export async function startServiceHarness(opts: HarnessOptions = {}): Promise<ServiceHarness> {
  const db = opts.db ?? (await createTestDatabase());
  const llm = opts.llm ?? (await startLlmServer());
  const standins = opts.standins ?? createStandins();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-executor-state-'));
  const env: NodeJS.ProcessEnv = {
    ...standins.env,
    DATABASE_URL: db.url,
    HOST: '127.0.0.1',
    PORT: '0',
    NUM_INTERNAL_WORKERS: String(opts.workers ?? 2),
    AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR,
    AIOPSLAB_PYTHON: 'python3',
    OPENROUTER_API_KEY: TEST_LLM_KEY,
    OPENROUTER_BASE_URL: llm.baseUrl,
    EXECUTOR_STATE_DIR: stateDir,
    WORKER_POLL_INTERVAL: '1',
    WORKER_HEARTBEAT_INTERVAL: '0.5',
    LEASE_SECONDS: '8',
    WORKER_OFFLINE_AFTER: '8',
    TIMEOUT_CHECK_INTERVAL: '0.5',
    STOP_GRACE_SECONDS: '3',
    LLM_MAX_RETRIES: '2',
    LOG_LEVEL: 'debug',
    ...opts.env,
  };
  const logStream = new PassThrough();
  const logChunks: string[] = [];
  logStream.on('data', (c) => logChunks.push(c.toString()));
  const service = await runService(opts.mode ?? 'start', { logDestination: logStream }, env);
  const url = service.url ?? '';

  const api: ServiceHarness['api'] = async (pathname, init = {}) => {
    const res = await fetch(`${url}${pathname}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.text();
    let body: any = text;
    try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, body, headers: res.headers };
  };

  return {
    url, db, llm, standins, service, stateDir, env,
    logs: () => logChunks.join(''),
    api,
    async submit(body) {
      const r = await api('/api/v1/tasks', { body });
      if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async waitForTask(id, statuses, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any = null;
      while (Date.now() < deadline) {
        last = (await api(`/api/v1/tasks/${id}`)).body;
        if (statuses.includes(last?.status)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`task ${id} did not reach ${statuses.join('|')} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async close() {
      await service.close();
      if (!opts.llm) await llm.close();
      if (!opts.standins) standins.cleanup();
      if (!opts.db) await db.drop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
