/**
 * The client commands as a user runs them: the built binary (`node dist/src/cli/main.js …`, or
 * $AIOPSLAB_CLI to test an installed one) in a child process, against the real API server
 * listening on a port, over a fresh database. Workers are played through the worker-host HTTP
 * protocol, so task state changes reach the CLI exactly as in production (LISTEN/NOTIFY → SSE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppDeps, InternalWorkerControl } from '../src/api/appDeps.js';
import { conversationRoutes } from '../src/api/routes/conversations.js';
import { modelRoutes } from '../src/api/routes/models.js';
import { problemRoutes } from '../src/api/routes/problems.js';
import { buildServer } from '../src/api/server.js';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { builtinProblems, syncProblemCatalog } from '../src/catalog/problemCatalog.js';
import { parseEventStream } from '../src/cli/eventStream.js';
import { detectStyle, renderTable, wrapText } from '../src/cli/terminalOutput.js';
import { appendMessage, createConversation, finishConversation } from '../src/store/conversations.js';
import { EventHub } from '../src/store/eventHub.js';
import { writeTaskLog } from '../src/store/taskLogs.js';
import { testConfig } from './helpers/apiHarness.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

// Every case starts a few Node processes; on a loaded machine each can take seconds.
vi.setConfig({ testTimeout: 180_000 });

const CLI = process.env.AIOPSLAB_CLI ?? fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const ANSI = '\u001b[';

interface CliResult { code: number | null; stdout: string; stderr: string }

/** The environment of a user who set nothing: no API_URL/API_TOKEN/colour settings leak in from the test runner. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['API_URL', 'API_TOKEN', 'NO_COLOR', 'FORCE_COLOR']) delete env[k];
  return { ...env, ...extra };
}

/** Children still running when the file ends (a failed test) are killed, so the server can close. */
const children = new Set<ChildProcess>();

function startCli(args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { env: userEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('close', () => children.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => { stdout += c; });
  child.stderr!.on('data', (c) => { stderr += c; });
  const exited = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    exited,
    /** Resolves once stdout+stderr match `re` (the CLI is then past that point). */
    async waitFor(re: RegExp, timeoutMs = 15_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(stdout + stderr)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`CLI never printed ${re}; stdout: ${stdout}\nstderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

// Asynchronous on purpose: the server runs in this process, so a blocking spawnSync would starve it.
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).exited;
}

let db: TestDatabase;
let url: string;
const servers: Array<{ close(): Promise<unknown> }> = [];
const scaleCalls: number[] = [];

/** The in-process worker pool is the one boundary here: it records what `scale` asked for. */
const workerControl: InternalWorkerControl = {
  status: () => ({ running: true, num_workers: scaleCalls.at(-1) ?? 2, workers: {} }),
  async scale(n) { const previous = scaleCalls.at(-1) ?? 2; scaleCalls.push(n); return { previous_workers: previous, current_workers: n }; },
  async stop() {},
  async start() { return 2; },
};

async function startServer(env: Record<string, string> = {}): Promise<string> {
  const config = testConfig(env, db.url);
  const events = new EventHub(db.url);
  await events.start();
  const deps: AppDeps = {
    pool: db.pool, config, logger: pino({ level: 'silent' }), events, workers: workerControl, version: 'test',
    submitValidator: createSubmitValidator(db.pool, config, 0),
  };
  const app = await buildServer(deps);
  // Route modules still being wired into buildServer; added only while buildServer lacks them.
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/llm-conversations/:conversation_id' })) await conversationRoutes(app, deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/models' })) await modelRoutes(app, deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/problems' })) await app.register(async (i) => problemRoutes(i, deps), { prefix: '/api/v1' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  servers.push({ close: async () => { await app.close(); await events.stop(); } });
  const addr = app.server.address() as { port: number };
  return `http://127.0.0.1:${addr.port}`;
}

async function api<T = any>(pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${pathname}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A worker host that only claims `problemId`, so each test drives exactly its own task. */
async function workerFor(problemId: string, id: string) {
  const r = await api('/api/v1/workers/register', { worker_id: id, backend_type: 'kind', capabilities: { supported_problems: [problemId] }, metadata: { kind_cluster: `aiopslab-${id}` } });
  expect(r.status).toBe(201);
  return {
    async claim() {
      const c = await api(`/api/v1/workers/${id}/claim`, {});
      expect(c.status).toBe(200);
      return c.body as { id: string };
    },
    complete: (taskId: string, result: Record<string, unknown>) => api(`/api/v1/workers/${id}/tasks/${taskId}/complete`, result),
    fail: (taskId: string, errorType: string, details: string) => api(`/api/v1/workers/${id}/tasks/${taskId}/fail`, { error_type: errorType, error_details: details }),
  };
}

const run = (...args: string[]) => cli([...args, '--api-url', url]);

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: build first with \`npx tsc -p tsconfig.json\``);
  db = await createTestDatabase();
  await syncProblemCatalog(db.pool, builtinProblems());
  await db.pool.query(
    `INSERT INTO models (id, name, context_length, prompt_price, completion_price) VALUES
       ('openai/gpt-4o-mini', 'GPT-4o mini', 128000, 0.00000015, 0.0000006),
       ('anthropic/claude-3.5-sonnet', 'Claude 3.5 Sonnet', 200000, 0.000003, 0.000015)`,
  );
  // Loopback callback URLs are allowed so the flag test needs no DNS (no webhook is ever due here).
  url = await startServer({ WEBHOOK_ALLOW_PRIVATE: 'true' });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) await s.close();
  await db?.drop();
});

describe('help and usage', () => {
  const commands = ['submit', 'tasks', 'show', 'logs', 'cancel', 'transcript', 'export', 'workers', 'scale', 'problems', 'models'];

  it('every client command is listed and its --help has examples and exit codes', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const c of commands) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const helps = await Promise.all(commands.map((c) => cli([c, '--help'])));
    for (const [i, c] of commands.entries()) {
      const r = helps[i]!;
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toContain('Examples:');
      expect(r.stdout, c).toContain(`$ aiopslab-executor ${c}`);
      expect(r.stdout, c).toMatch(/Exit codes:\n {2}0 +ok/);
      expect(r.stdout, c).toContain('--api-url <url>');
    }
    expect((await cli(['submit', '--help'])).stdout).toMatch(/^ {2}3 +a task did not complete/m);
    expect((await cli(['cancel', '--help'])).stdout).toMatch(/^ {2}5 +conflict/m);
  });

  it('the built command runs as a program of its own, as npx and package managers start it', async () => {
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(CLI, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: aiopslab-executor/m);
  });

  it('a bad flag is a usage error (exit 2), reported without a stack trace', async () => {
    const cases = [['tasks', '--bogus'], ['tasks', '--limit', '0'], ['submit', 'x', '--max-steps', 'abc'], ['scale', 'many'], ['show']];
    const results = await Promise.all(cases.map((args) => run(...args)));
    for (const [i, args] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^error: /m);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const badId = await run('show', 'abc');
    expect(badId.code).toBe(2);
    expect(badId.stderr).toBe('error: "abc" is not a task id (task ids are UUIDs; list them with `aiopslab-executor tasks`)\n');
    const badUrl = await cli(['tasks', '--api-url', 'not a url']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('is not a URL');
  });
});

describe('connection', () => {
  it('an API that is not running is named, with how to start it (exit 6)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    for (const args of [['tasks'], ['submit', 'k8s_target_port-misconfig-detection-1'], ['logs', '00000000-0000-4000-8000-000000000000', '--follow']]) {
      const r = await cli([...args, '--api-url', `http://127.0.0.1:${port}`]);
      expect(r.code, args[0]).toBe(6);
      expect(r.stderr).toBe(`error: cannot reach the API at http://127.0.0.1:${port} (ECONNREFUSED); is \`aiopslab-executor start\` running? Set --api-url or API_URL if it listens elsewhere.\n`);
      expect(r.stdout).toBe('');
    }
    // API_URL is the default when --api-url is absent.
    const fromEnv = await cli(['workers'], { API_URL: `http://127.0.0.1:${port}/` });
    expect(fromEnv.code).toBe(6);
    expect(fromEnv.stderr).toContain(`http://127.0.0.1:${port} `);
    const ok = await cli(['workers', '--json'], { API_URL: url });
    expect(ok.code).toBe(0);
  });

  it('with API_TOKEN on the server: no token is exit 7 with a hint; --token or the first of env API_TOKEN works', async () => {
    const secured = await startServer({ API_TOKEN: 'tok-alpha,tok-beta' });
    const none = await cli(['tasks', '--api-url', secured]);
    expect(none.code).toBe(7);
    expect(none.stderr).toMatch(/^error: unauthorized: A bearer token is required/);
    expect(none.stderr).toContain('hint: pass --token or set API_TOKEN');
    expect((await cli(['tasks', '--api-url', secured, '--token', 'wrong'])).code).toBe(7);
    expect((await cli(['tasks', '--api-url', secured, '--token', 'tok-beta'])).code).toBe(0);
    expect((await cli(['tasks', '--api-url', secured], { API_TOKEN: ' tok-alpha , tok-beta' })).code).toBe(0);
    expect((await cli(['tasks', '--api-url', secured], { API_TOKEN: 'tok-beta,tok-alpha' })).code).toBe(0);
    expect((await cli(['tasks', '--api-url', secured], { API_TOKEN: 'nope,tok-alpha' })).code).toBe(7);
  });
});

describe('submit', () => {
  it('maps every flag onto the stored task parameters', async () => {
    const r = await run('submit', 'auth_miss_mongodb-detection-1',
      '--max-steps', '12', '--timeout-minutes', '45', '--priority', '7', '--model', 'openai/gpt-4o-mini',
      '--temperature', '0.2', '--max-tokens', '2048', '--top-p', '0.9', '--normalize-reply', '--use-openrouter',
      '--backend-type', 'kind', '--metadata', 'run=baseline', '--metadata', '{"sweep": 3, "tags": ["a"]}', '--metadata', 'owner=ana=b',
      '--callback-url', 'http://127.0.0.1:9/hook', '--max-total-tokens', '50000', '--max-cost-usd', '0.5',
      '--idempotency-key', 'cli-test-flags', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout);
    const stored = (await api(`/api/v1/tasks/${printed.id}`)).body;
    expect(stored.problem_id).toBe('auth_miss_mongodb-detection-1');
    expect(stored.parameters).toEqual({
      max_steps: 12, timeout_minutes: 45, priority: 7,
      agent_config: { model: 'openai/gpt-4o-mini', temperature: 0.2, max_tokens: 2048, top_p: 0.9, normalize_reply: true, use_openrouter: true },
      backend_type: 'kind', metadata: { run: 'baseline', sweep: 3, tags: ['a'], owner: 'ana=b' },
      callback_url: 'http://127.0.0.1:9/hook', max_total_tokens: 50000, max_cost_usd: 0.5,
    });
    expect(stored.priority).toBe(7);
    expect(stored.idempotency_key).toBe('cli-test-flags');

    // The same key again returns the same task, and says so.
    const again = await run('submit', 'auth_miss_mongodb-detection-1', '--max-steps', '12', '--timeout-minutes', '45', '--priority', '7', '--model', 'openai/gpt-4o-mini',
      '--temperature', '0.2', '--max-tokens', '2048', '--top-p', '0.9', '--normalize-reply', '--use-openrouter',
      '--backend-type', 'kind', '--metadata', 'run=baseline', '--metadata', '{"sweep": 3, "tags": ["a"]}', '--metadata', 'owner=ana=b',
      '--callback-url', 'http://127.0.0.1:9/hook', '--max-total-tokens', '50000', '--max-cost-usd', '0.5', '--idempotency-key', 'cli-test-flags');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^Already submitted ${printed.id} {2}auth_miss_mongodb-detection-1 `));
  });

  it('without flags sends only the problem id, so server defaults apply; human output names the task', async () => {
    const r = await run('submit', 'auth_miss_mongodb-localization-1');
    expect(r.code).toBe(0);
    const m = /^Submitted ([0-9a-f-]{36}) {2}auth_miss_mongodb-localization-1 {2}\(pending, priority 5, openai\/gpt-4o-mini\)\n/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stdout).toContain(`Follow it: aiopslab-executor logs ${m![1]} --follow`);
    expect(r.stdout).not.toContain(ANSI);
    const stored = (await api(`/api/v1/tasks/${m![1]}`)).body;
    expect(stored.parameters).toEqual({ max_steps: 30, timeout_minutes: 30, priority: 5, agent_config: { model: 'openai/gpt-4o-mini' } });
  });

  it('takes several ids and expands globs against the problem catalog, with per-task idempotency keys', async () => {
    const r = await run('submit', 'revoke_auth_mongodb-detection-1', 'k8s_target_port-misconfig-*-2', 'revoke_auth_mongodb-detection-1', '--priority', '3', '--idempotency-key', 'batch-1', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const tasks = JSON.parse(r.stdout) as Array<{ id: string; problem_id: string; priority: number; idempotency_key: string }>;
    expect(tasks.map((t) => t.problem_id)).toEqual([
      'revoke_auth_mongodb-detection-1',
      // Glob matches come in catalog order (sorted by id).
      'k8s_target_port-misconfig-analysis-2', 'k8s_target_port-misconfig-detection-2', 'k8s_target_port-misconfig-localization-2', 'k8s_target_port-misconfig-mitigation-2',
    ]);
    expect(tasks.every((t) => t.priority === 3)).toBe(true);
    expect(tasks.map((t) => t.idempotency_key)).toEqual(tasks.map((t) => `batch-1:${t.problem_id}`));
    for (const t of tasks) expect((await api(`/api/v1/tasks/${t.id}`)).body.status).toBe('pending');

    const none = await run('submit', 'no_such_family-*');
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('error: "no_such_family-*" matches no problem id (list them with `aiopslab-executor problems`)\n');
  });

  it('shows the API\'s validation errors with code, message and each field (exit 2)', async () => {
    const range = await run('submit', 'auth_miss_mongodb-detection-1', '--max-steps', '0', '--priority', '11');
    expect(range.code).toBe(2);
    expect(range.stdout).toBe('');
    expect(range.stderr).toMatch(/^error: validation_failed: /);
    expect(range.stderr).toContain('\n  - parameters.max_steps: must be >= 1');
    expect(range.stderr).toContain('\n  - parameters.priority: must be <= 10');
    expect(range.stderr).not.toMatch(/\n\s+at /);

    const unknown = await run('submit', 'k8s_target_port-misconfig-detection-9');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: unknown_problem: Unknown problem_id "k8s_target_port-misconfig-detection-9"/);
    expect(unknown.stderr).toMatch(/ {2}- problem_id: not in the AIOpsLab catalog \(did you mean: k8s_target_port-misconfig-detection-[123]/);

    const meta = await run('submit', 'auth_miss_mongodb-detection-1', '--metadata', 'novalue');
    expect(meta.code).toBe(2);
    expect(meta.stderr).toBe('error: --metadata expects key=value or a JSON object, got "novalue"\n');

    // Several ids: the ones before the failure are named, nothing after it is queued.
    const before = (await api('/api/v1/tasks?problem_id=user_unregistered_mongodb-detection-2')).body.total;
    const partial = await run('submit', 'user_unregistered_mongodb-detection-1', 'not_a_problem-1', 'user_unregistered_mongodb-detection-2');
    expect(partial.code).toBe(2);
    expect(partial.stdout).toMatch(/^Submitted [0-9a-f-]{36} {2}user_unregistered_mongodb-detection-1 /);
    expect(partial.stderr).toMatch(/^Submitted 1 of 3 before this error: [0-9a-f-]{36}\nwhile submitting not_a_problem-1:\nerror: unknown_problem: /);
    expect((await api('/api/v1/tasks?problem_id=user_unregistered_mongodb-detection-2')).body.total).toBe(before);
  });

  it('--wait follows a task to completion (exit 0) and to failure (exit 3)', async () => {
    const w = await workerFor('redeploy_without_PV-detection-1', 'cli-wait-ok');
    const p = startCli(['submit', 'redeploy_without_PV-detection-1', '--wait', '--api-url', url]);
    await p.waitFor(/^Submitted /m);
    const t = await w.claim();
    await p.waitFor(/running on cli-wait-ok/);
    await writeTaskLog(db.pool, t.id, 'info', 'Step 1: exec_shell', { phase: 'step', step: 1 });
    await writeTaskLog(db.pool, t.id, 'info', 'noisy AIOpsLab output line', { source: 'aiopslab', stream: 'stdout' });
    await p.waitFor(/Step 1: exec_shell/);
    await w.complete(t.id, { outcome: 'submitted', success: true, reward: 1, steps: 3, usage: { total_tokens: 4321, cost_usd: 0.0021 } });
    const r = await p.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/running on cli-wait-ok/);
    expect(r.stdout).toMatch(/completed — outcome submitted · success true · reward 1 · 3 step\(s\) · 4,321 tokens · \$0\.002100/);
    expect(r.stdout).toContain('1 of 1 task(s) completed.');
    // The timeline is shown; AIOpsLab's raw output is left to `logs`.
    expect(r.stdout).not.toContain('noisy AIOpsLab output line');

    const wf = await workerFor('redeploy_without_PV-analysis-1', 'cli-wait-fail');
    const q = startCli(['submit', 'redeploy_without_PV-analysis-1', '--wait', '--json', '--api-url', url]);
    await q.waitFor(/Submitted /);
    const tf = await wf.claim();
    await wf.fail(tf.id, 'aiopslab_init_failed', 'RuntimeError in init_problem: helm install failed');
    const rf = await q.exited;
    expect(rf.code).toBe(3);
    const final = JSON.parse(rf.stdout);
    expect(final).toMatchObject({ id: tf.id, status: 'failed', error_type: 'aiopslab_init_failed' });
    // With --json the progress goes to stderr, never into the JSON.
    expect(rf.stderr).toContain('failed — aiopslab_init_failed: RuntimeError in init_problem: helm install failed');
  });

  it('--wait over several tasks exits 3 unless every one completed', async () => {
    const w = await workerFor('network_delay_hotel_res-*', 'cli-wait-many');
    const p = startCli(['submit', 'network_delay_hotel_res-*', '--wait', '--api-url', url]);
    await p.waitFor(/Submitted .*localization-1/);
    const a = await w.claim();
    await w.complete(a.id, { outcome: 'submitted', success: false, reward: 0, steps: 2 });
    const b = await w.claim();
    const cancelled = await run('cancel', b.id);
    expect(cancelled.code).toBe(0);
    const r = await p.exited;
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/ID +PROBLEM +STATUS/);
    expect(r.stdout).toContain('1 of 2 task(s) completed; 1 did not');
  });
});

describe('reading tasks', () => {
  let doneId: string;

  beforeAll(async () => {
    const w = await workerFor('wrong_bin_usage-detection-1', 'cli-reader');
    const s = JSON.parse((await run('submit', 'wrong_bin_usage-detection-1', '--model', 'openai/gpt-4o-mini', '--max-steps', '9', '--json')).stdout);
    doneId = (await w.claim()).id;
    expect(doneId).toBe(s.id);
    await writeTaskLog(db.pool, doneId, 'info', 'Cluster aiopslab-cli-reader ready', { phase: 'cluster' });
    await writeTaskLog(db.pool, doneId, 'error', 'kubectl: connection refused', { phase: 'step' });
    await writeTaskLog(db.pool, doneId, 'info', 'deploying hotel reservation', { source: 'aiopslab', stream: 'stdout' });
    const c = await w.complete(doneId, { outcome: 'submitted', success: true, reward: 1, steps: 7, conversation_id: '11111111-2222-4333-8444-555555555555', usage: { total_tokens: 1234, cost_usd: 0.0123 } });
    expect(c.status).toBe(200);
  });

  it('tasks: a readable table, filters, paging hint, and --json', async () => {
    const r = await run('tasks', '--problem', 'wrong_bin_usage-detection-1');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID {36}PROBLEM +STATUS +PRI +WORKER +CREATED +DURATION +SUCCESS +REWARD +COST$/);
    expect(lines[1]).toMatch(new RegExp(`^${doneId} +wrong_bin_usage-detection-1 +completed +5 +cli-reader +\\S+ ago +\\S+ +yes +1 +\\$0\\.0123$`));
    expect(lines.at(-1)).toBe('1 task(s) · page 1 of 1');
    expect(r.stdout).not.toContain(ANSI);

    const json = await run('tasks', '--status', 'pending,running', '--limit', '2', '--json');
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body.tasks).toHaveLength(2);
    expect(body.total).toBeGreaterThan(2);
    expect(body.tasks.every((t: { status: string }) => t.status === 'pending' || t.status === 'running')).toBe(true);

    const paged = await run('tasks', '--status', 'pending', '--limit', '2');
    expect(paged.stdout).toMatch(/task\(s\) · page 1 of \d+ · next: --page 2\n$/);
    const search = JSON.parse((await run('tasks', '--search', 'target_port-misconfig', '--sort', 'priority', '--json')).stdout);
    expect(search.tasks.every((t: { problem_id: string }) => t.problem_id.includes('target_port-misconfig'))).toBe(true);
    const priorities = search.tasks.map((t: { priority: number }) => t.priority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
    expect(search.tasks.length).toBeGreaterThanOrEqual(4);

    const bad = await run('tasks', '--status', 'done');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('error: unknown status "done"; use pending, running, completed, failed, timeout, cancelled\n');
    const badSort = await run('tasks', '--sort', 'colour');
    expect(badSort.code).toBe(2);
    expect(badSort.stderr).toMatch(/^error: validation_failed: .*\n {2}- query\.sort: must be one of: /);
  });

  it('show: parameters and the result summary (outcome, success, reward, steps, tokens, cost); --json is the API object', async () => {
    const r = await run('show', doneId);
    expect(r.code).toBe(0);
    for (const [k, v] of [['Task', doneId], ['Problem', 'wrong_bin_usage-detection-1'], ['Status', 'completed'], ['Model', 'openai/gpt-4o-mini'], ['Max steps', '9'],
      ['Worker', 'cli-reader'], ['Attempt', '1 of 2'], ['Outcome', 'submitted'], ['Success', 'yes'], ['Reward', '1'], ['Steps', '7'], ['Tokens', '1,234'], ['Cost', '$0.0123'],
      ['Conversation', '11111111-2222-4333-8444-555555555555']]) {
      expect(r.stdout).toMatch(new RegExp(`^${k}: +${v!.replace(/[$.]/g, '\\$&')}$`, 'm'));
    }
    const json = JSON.parse((await run('show', doneId, '--json')).stdout);
    expect(json).toEqual((await api(`/api/v1/tasks/${doneId}`)).body);
  });

  it('an unknown task id is exit 4 on every command that takes one', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const args of [['show', id], ['logs', id], ['cancel', id], ['transcript', id]]) {
      const r = await run(...args);
      expect(r.code, args[0]).toBe(4);
      expect(r.stderr, args[0]).toBe(`error: task_not_found: Task ${id} not found\n`);
    }
  });

  it('logs: the timeline with levels, --level, --limit, --json', async () => {
    const r = await run('logs', doneId);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}info {5}Task created$/);
    expect(r.stdout).toMatch(/ {2}error {4}kubectl: connection refused\n/);
    expect(r.stdout).toMatch(/ {2}info {5}aiopslab│ deploying hotel reservation\n/);

    const errors = await run('logs', doneId, '--level', 'error');
    expect(errors.stdout.trimEnd().split('\n')).toHaveLength(1);
    const last = await run('logs', doneId, '--limit', '1');
    expect(last.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(last.stderr).toMatch(/^\(the newest 1 of \d+ entries; --limit shows more\)\n$/);
    const json = JSON.parse((await run('logs', doneId, '--json')).stdout);
    expect(json.logs.map((l: { message: string }) => l.message)).toContain('kubectl: connection refused');
    expect((await run('logs', doneId, '--level', 'loud')).code).toBe(2);
  });

  it('logs --follow prints new lines as they arrive and exits when the task ends', async () => {
    const w = await workerFor('flower_node_stop-detection', 'cli-follow');
    const s = JSON.parse((await run('submit', 'flower_node_stop-detection', '--json')).stdout);
    await w.claim();
    const p = startCli(['logs', s.id, '--follow', '--api-url', url]);
    await p.waitFor(/Task created/);
    for (let i = 1; i <= 5; i++) await writeTaskLog(db.pool, s.id, 'info', `live line ${i}`, { phase: 'step', step: i });
    await p.waitFor(/live line 5/);
    await w.complete(s.id, { outcome: 'max_steps_reached', success: false, reward: 0, steps: 5 });
    const r = await p.exited;
    expect(r.code).toBe(0);
    const live = r.stdout.split('\n').filter((l) => l.includes('live line')).map((l) => l.replace(/.* /, ''));
    expect(live).toEqual(['1', '2', '3', '4', '5']);
    expect(r.stderr).toContain('— task completed: outcome max_steps_reached · success false · reward 0 · 5 step(s)');

    // An ended task: --follow prints what there is and returns at once.
    const ended = await run('logs', s.id, '--follow', '--json');
    expect(ended.code).toBe(0);
    const rows = ended.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(rows.filter((l) => String(l.message).startsWith('live line'))).toHaveLength(5);
  });

  it('cancel: a pending task is cancelled; an ended one is a conflict (exit 5)', async () => {
    const s = JSON.parse((await run('submit', 'noop_detection_social_network-1', '--json')).stdout);
    const r = await run('cancel', s.id);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Cancelled ${s.id}  noop_detection_social_network-1\n`);
    expect((await api(`/api/v1/tasks/${s.id}`)).body.status).toBe('cancelled');

    const again = await run('cancel', s.id);
    expect(again.code).toBe(5);
    expect(again.stderr).toBe(`error: task_terminal: task ${s.id} already ended (cancelled); nothing to cancel.\n`);
    const done = await run('cancel', doneId, '--json');
    expect(done.code).toBe(5);
    expect(done.stderr).toContain('already ended (completed)');
  });
});

describe('workers, scale, problems, models', () => {
  it('workers: table with status, cluster, heartbeat age, current task, counts; --json', async () => {
    const w = await workerFor('pod_kill_hotel_res-detection-1', 'cli-busy');
    const s = JSON.parse((await run('submit', 'pod_kill_hotel_res-detection-1', '--json')).stdout);
    await w.claim();
    const r = await run('workers');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^ID +STATUS +BACKEND +CLUSTER +HEARTBEAT +TASK +DONE +FAILED$/);
    expect(r.stdout).toMatch(new RegExp(`^cli-busy +busy +kind +aiopslab-cli-busy +\\S+ ago +${s.id} +0 +0$`, 'm'));
    expect(r.stdout).toMatch(/^cli-reader +idle +kind +aiopslab-cli-reader +\S+ ago +- +1 +0$/m);
    expect(r.stdout).toMatch(/^\d+ worker\(s\): /m);
    const json = JSON.parse((await run('workers', '--status', 'busy', '--json')).stdout);
    expect(json.workers.map((x: { id: string }) => x.id)).toContain('cli-busy');
    expect(json.workers.every((x: { status: string }) => x.status === 'busy')).toBe(true);
    await run('cancel', s.id);
  });

  it('scale N posts {num_workers: N}', async () => {
    const r = await run('scale', '4');
    expect(r.code).toBe(0);
    expect(scaleCalls.at(-1)).toBe(4);
    expect(r.stdout).toBe('Internal workers: 2 → 4\n');
    expect(JSON.parse((await run('scale', '0', '--json')).stdout)).toEqual({ previous_workers: 4, current_workers: 0, status: 'scaled' });
    expect((await run('scale', '51')).code).toBe(2);
  });

  it('problems: table and filters', async () => {
    const r = await run('problems', '--task-type', 'mitigation', '--application', 'hotel_reservation');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^ID +APPLICATION +TASK TYPE +DEPLOYMENT$/);
    expect(r.stdout).toMatch(/^misconfig_app_hotel_res-mitigation-1 +hotel_reservation +mitigation +k8s$/m);
    expect(r.stdout).not.toContain('detection');
    const all = JSON.parse((await run('problems', '--json')).stdout);
    expect(all.total).toBe(89);
  });

  it('models: ids, context and prices per million tokens', async () => {
    const r = await run('models');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^ID +CONTEXT +PROMPT \$\/1M +COMPLETION \$\/1M$/);
    expect(r.stdout).toMatch(/^openai\/gpt-4o-mini +128,000 +\$0\.150 +\$0\.600$/m);
    expect(r.stdout).toMatch(/^anthropic\/claude-3\.5-sonnet +200,000 +\$3\.00 +\$15\.00$/m);
    expect(r.stdout).toContain('default model openai/gpt-4o-mini');
    const json = JSON.parse((await run('models', '--search', 'claude', '--json')).stdout);
    expect(json.models.map((m: { id: string }) => m.id)).toEqual(['anthropic/claude-3.5-sonnet']);
  });
});

describe('transcript and export', () => {
  let taskId: string;
  let conversationId: string;

  beforeAll(async () => {
    const w = await workerFor('astronomy_shop_ad_service_failure-detection-1', 'cli-transcript');
    const s = JSON.parse((await run('submit', 'astronomy_shop_ad_service_failure-detection-1', '--json')).stdout);
    taskId = s.id;
    expect((await w.claim()).id).toBe(taskId);
    const c = await createConversation(db.pool, {
      taskId, attempt: 1, modelName: 'openai/gpt-4o-mini', provider: 'openrouter',
      llmConfig: { requested_model: 'gpt-4o-mini', temperature: 0.5 },
      metadata: { problem_id: 'astronomy_shop_ad_service_failure-detection-1', task_type: 'detection', status: 'running' },
    });
    conversationId = c.id;
    await appendMessage(db.pool, c.id, { role: 'system', content: 'You are an expert DevOps engineer.', step: null });
    await appendMessage(db.pool, c.id, { role: 'user', content: 'Please take the next action', step: 1 });
    await appendMessage(db.pool, c.id, {
      role: 'assistant', content: '```\nsubmit("Yes")\n```', step: 1,
      metadata: { usage: { prompt_tokens: 900, completion_tokens: 12, total_tokens: 912 }, cost_usd: 0.000142, latency_ms: 850, finish_reason: 'stop', served_model: 'openai/gpt-4o-mini-2024-07-18' },
      call: { prompt_tokens: 900, completion_tokens: 12, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 912, cost_usd: 0.000142 },
    });
    await finishConversation(db.pool, c.id, { status: 'completed', success: true, reward: 1 });
    expect((await w.complete(taskId, { outcome: 'submitted', success: true, reward: 1, steps: 1 })).status).toBe(200);
  });

  it('transcript: each turn with role, step and content; tokens, cost and latency per assistant message', async () => {
    const r = await run('transcript', taskId);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Task ${taskId} · astronomy_shop_ad_service_failure-detection-1 · completed · outcome submitted · success true · reward 1 · 1 step(s)`);
    expect(r.stdout).toContain(`Conversation ${conversationId} · attempt 1`);
    expect(r.stdout).toMatch(/^Model: +openai\/gpt-4o-mini \(requested gpt-4o-mini\)$/m);
    expect(r.stdout).toMatch(/── SYSTEM · #1 ─+\n {2}You are an expert DevOps engineer\.\n/);
    expect(r.stdout).toMatch(/── USER · step 1 · #2 ─+\n {2}Please take the next action\n/);
    expect(r.stdout).toMatch(/── ASSISTANT · step 1 · #3 ─+\n {2}```\n {2}submit\("Yes"\)\n {2}```\n {2}↳ 912 tokens \(900 in, 12 out\) · \$0\.000142 · 850ms · openai\/gpt-4o-mini-2024-07-18 · finish stop\n/);

    const raw = JSON.parse((await run('transcript', taskId, '--raw')).stdout);
    expect(raw).toHaveLength(1);
    expect(raw[0].id).toBe(conversationId);
    expect(raw[0].messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user', 'assistant']);

    const missing = await run('transcript', taskId, '--attempt', '2');
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe(`error: conversation_not_found: Task ${taskId} has no conversation for attempt 2 (attempts: 1)\n`);

    const fresh = JSON.parse((await run('submit', 'astronomy_shop_ad_service_failure-localization-1', '--json')).stdout);
    const none = await run('transcript', fresh.id);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`Task ${fresh.id} (astronomy_shop_ad_service_failure-localization-1) has no conversation yet: it is pending.\n`);
    await run('cancel', fresh.id);
  });

  it('export: JSONL to a file or stdout, with the export filters', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-export-'));
    try {
      const file = path.join(dir, 'out.jsonl');
      const r = await run('export', '--problem', 'astronomy_shop_ad_service_failure-detection-1', '--task-type', 'detection', '-o', file);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`Wrote 1 conversation(s) to ${file}\n`);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ reward: 1, success: true, metadata: { conversation_id: conversationId, task_id: taskId } });
      expect(lines[0].messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user', 'assistant']);
      expect(existsSync(`${file}.partial`)).toBe(false);

      const out = await run('export', '--model', 'openai/gpt-4o-mini');
      expect(out.code).toBe(0);
      expect(out.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).metadata.conversation_id)).toContain(conversationId);
      const filtered = await run('export', '--task-type', 'mitigation');
      expect(filtered.code).toBe(0);
      expect(filtered.stdout).toBe('');
      const bad = await run('export', '--task-type', 'triage');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^error: validation_failed: .*\n {2}- query\.task_type: must be one of: detection, localization, analysis, mitigation/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('output helpers', () => {
  it('colours and spinners only on a terminal with NO_COLOR unset', () => {
    const tty = { isTTY: true, columns: 120 } as unknown as NodeJS.WriteStream;
    const pipe = { isTTY: false } as unknown as NodeJS.WriteStream;
    expect(detectStyle(tty, {})).toEqual({ color: true, spinner: true, width: 120 });
    expect(detectStyle(tty, { NO_COLOR: '1' })).toMatchObject({ color: false, spinner: false });
    expect(detectStyle(tty, { TERM: 'dumb' })).toMatchObject({ color: false, spinner: false });
    expect(detectStyle(pipe, {})).toEqual({ color: false, spinner: false, width: 100 });
    const coloured = renderTable([{ s: 'failed' }], [{ header: 'STATUS', value: (r) => r.s, colour: (_r, t) => `\u001b[31m${t}\u001b[39m` }, { header: 'X', value: () => 'y' }], detectStyle(tty, {}));
    // Padding is computed on the visible text, so colour codes do not shift columns.
    expect(coloured.split('\n')[1]!.replace(/\u001b\[\d+m/g, '')).toBe('failed  y');
  });

  it('wraps long lines at the width, keeping line breaks and splitting overlong words', () => {
    expect(wrapText('aaa bbb ccc ddd', 28, '  ')).toBe('  aaa bbb ccc ddd');
    const long = `${'word '.repeat(12)}\n${'x'.repeat(45)}`;
    const wrapped = wrapText(long, 24, '  ').split('\n');
    expect(wrapped.every((l) => l.length <= 24)).toBe(true);
    expect(wrapped.join('').replace(/\s/g, '')).toBe(long.replace(/\s/g, ''));
  });

  it('parses event streams split at any byte, with CRLF, comments and multi-line data', async () => {
    const text = 'retry: 2000\r\n: connected\r\n\r\nid: 1\r\nevent: task\r\ndata: {"id":"a",\r\ndata: "status":"running"}\r\n\r\nevent: log\ndata: {"é":1}\n\n';
    const bytes = new TextEncoder().encode(text);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      async function* chunks() { for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size); }
      const events = [];
      let retry = 0;
      for await (const e of parseEventStream(chunks(), (ms) => { retry = ms; })) events.push(e);
      expect(events).toEqual([
        { event: 'task', data: '{"id":"a",\n"status":"running"}', id: '1' },
        { event: 'log', data: '{"é":1}', id: '1' },
      ]);
      expect(retry).toBe(2000);
    }
  });
});
