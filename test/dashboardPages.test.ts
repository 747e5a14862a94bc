/**
 * The dashboard in a real browser (Debian chromium via playwright-core) against the real API
 * server over a database seeded with the product's own store functions: every page renders at
 * laptop and phone width in light and dark (screenshots in test-artifacts/screenshots), filters
 * and pagination work through the URL, a task's page shows its timeline, transcript, results and
 * output, changes made in the database reach open pages without a reload, the submit form puts
 * the server's validation errors at the fields, and the pages are keyboard-navigable.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { createDashboardServer } from '../src/api/dashboard.js';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { builtinProblems, syncProblemCatalog } from '../src/catalog/problemCatalog.js';
import { claimTask } from '../src/queue/claimTask.js';
import { cancelTask } from '../src/queue/cancelTask.js';
import { finishTask } from '../src/queue/finishTask.js';
import { submitTask } from '../src/queue/submitTask.js';
import type { TaskParameters } from '../src/queue/taskRecord.js';
import { markWorkerOffline, registerWorker, setClusterDirty } from '../src/queue/workerRegistry.js';
import { annotateMessage, appendMessage, createConversation, finishConversation } from '../src/store/conversations.js';
import { EventHub } from '../src/store/eventHub.js';
import { writeTaskLog, writeTaskLogs } from '../src/store/taskLogs.js';
import { testConfig } from './helpers/apiHarness.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot, type ViewportName } from './helpers/browser.js';

let db: TestDatabase;
let events: EventHub;
let app: FastifyInstance;
let base: string;
let browser: Browser;
const seeded: { completed: string; running: string; failed: string; runningConversation: string } = { completed: '', running: '', failed: '', runningConversation: '' };

const MODELS = [
  ['openai/gpt-4o-mini', 'OpenAI: GPT-4o-mini', 128000, 0.00000015, 0.0000006],
  ['openai/gpt-4o', 'OpenAI: GPT-4o', 128000, 0.0000025, 0.00001],
  ['anthropic/claude-3-haiku', 'Anthropic: Claude 3 Haiku', 200000, 0.00000025, 0.00000125],
  ['meta-llama/llama-3-70b-instruct', 'Meta: Llama 3 70B Instruct', 8192, 0.0000003, 0.0000004],
] as const;

function params(model: string, extra: Partial<TaskParameters> = {}): TaskParameters {
  return { max_steps: 20, timeout_minutes: 30, priority: 5, agent_config: { model, temperature: 0.2 }, ...extra };
}

/** Shifts a task and its conversations `days` back, as if it had run then. */
async function age(taskId: string, days: number): Promise<void> {
  if (days === 0) return;
  const iv = `${days} days`;
  await db.pool.query(`UPDATE tasks SET created_at = created_at - $2::interval, started_at = started_at - $2::interval, completed_at = completed_at - $2::interval WHERE id = $1`, [taskId, iv]);
  await db.pool.query(`UPDATE llm_conversations SET started_at = started_at - $2::interval, ended_at = ended_at - $2::interval WHERE task_id = $1`, [taskId, iv]);
}

const usage = (prompt: number, completion: number, cost: number) => ({ prompt_tokens: prompt, completion_tokens: completion, cached_tokens: Math.floor(prompt / 4), reasoning_tokens: 0, total_tokens: prompt + completion, cost_usd: cost });

/** A conversation like the LLM agent records: system prompt, instructions, then observation/reply pairs annotated with their step. */
async function recordConversation(taskId: string, problemId: string, model: string, steps: Array<{ api: string; args: unknown[]; reply: string; response: string; prompt: number; completion: number; cost: number; latency: number; submitted?: boolean }>, finished: { success: boolean; reward: number } | null) {
  const c = await createConversation(db.pool, {
    taskId, attempt: 1, modelName: model, provider: 'openrouter', llmConfig: { requested_model: model, temperature: 0.2 },
    metadata: { problem_id: problemId, task_type: problemId.match(/(detection|localization|analysis|mitigation)/)?.[1] ?? null, status: 'running' },
  });
  await appendMessage(db.pool, c.id, { role: 'system', content: 'You are an expert DevOps engineer assigned to detect anomalies in a deployed service.\n\nService Details:\nService Name: Social Network\nNamespace: test-social-network', step: null, metadata: { type: 'system_prompt' } });
  await appendMessage(db.pool, c.id, { role: 'user', content: 'You will respond with one of the above APIs as your next action.\nPlease respond in the following format in a markdown code block:\n```\n<API_NAME>(<API_PARAM1>, <API_PARAM2> ...)\n```', step: null, metadata: { type: 'instructions' } });
  let input = 'Please take the next action';
  let totals = { tokens: 0, cost: 0 };
  for (const [i, s] of steps.entries()) {
    const step = i + 1;
    await appendMessage(db.pool, c.id, { role: 'user', content: input, step, metadata: { type: 'observation' } });
    const u = usage(s.prompt, s.completion, s.cost);
    const saved = await appendMessage(db.pool, c.id, {
      role: 'assistant', content: s.reply, step,
      metadata: { type: 'action', usage: u, cost_usd: s.cost, cost_source: 'provider', latency_ms: s.latency, served_model: model, finish_reason: 'stop' },
      call: u,
    });
    await annotateMessage(db.pool, c.id, saved.seq, { env_step: { step, api: s.api, args: s.args, kwargs: {}, response: s.response, submitted: s.submitted ?? false, duration_ms: 180 + step * 40 } });
    input = `${s.response}\nPlease take the next action`;
    totals = { tokens: totals.tokens + u.total_tokens, cost: totals.cost + s.cost };
  }
  if (finished) await finishConversation(db.pool, c.id, { status: 'completed', ...finished });
  return { id: c.id, totals };
}

const PODS = 'NAME                              READY   STATUS             RESTARTS   AGE\ncompose-post-service-64f6c9b-x8k2p   1/1     Running            0          2m\nuser-service-5b8d7c9f4-q7zjw         0/1     CrashLoopBackOff   4          2m\nmedia-frontend-7d9c8b6f5-lm2vd       1/1     Running            0          2m';

/** Runs one task through claim → phases → finish on `workerId`, with its logs and transcript. */
async function runTask(o: { problemId: string; model: string; workerId: string; outcome: 'completed' | 'failed' | 'timeout'; success?: boolean; daysAgo?: number; steps?: number }) {
  const { task } = await submitTask(db.pool, { problemId: o.problemId, parameters: params(o.model), maxAttempts: 2 });
  const claimed = await claimTask(db.pool, { workerId: o.workerId, backendType: 'kind', supportedProblems: [], leaseSeconds: 300 });
  expect(claimed?.id).toBe(task.id);
  const phase = (message: string, context: Record<string, unknown>, level: 'info' | 'warning' | 'error' = 'info') => writeTaskLog(db.pool, task.id, level, message, context);
  await phase(`Preflight passed: detection problem on social_network; model ${o.model} via openrouter`, { phase: 'preflight', duration_ms: 14 });
  await phase(`Cluster aiopslab-${o.workerId} reused`, { phase: 'cluster', action: 'reused', duration_ms: 1630 });
  if (o.outcome === 'failed') {
    await phase('run failed: AIOpsLab raised in init_problem: ApiException (409) Conflict', { phase: 'run', error_type: 'aiopslab_init_failed', duration_ms: 5200 }, 'error');
    await finishTask(db.pool, { taskId: task.id, workerId: o.workerId, status: 'failed', result: { outcome: 'failed_in_run', success: false, reward: 0 }, errorType: 'aiopslab_init_failed', errorDetails: 'ApiException in init_problem: (409) Conflict: namespace "test-social-network" is being terminated' });
    await age(task.id, o.daysAgo ?? 0);
    return task.id;
  }
  await phase(`Run started: AIOpsLab ${o.problemId}, max_steps 20`, { phase: 'run' });
  await phase('AIOpsLab initialized: app deployed, fault injected, workload started', { phase: 'init', duration_ms: 41_000 });
  await writeTaskLogs(db.pool, task.id, [
    { level: 'info', message: '== Fault Injection ==', context: { source: 'aiopslab', stream: 'stdout' } },
    { level: 'info', message: 'Service: user-service | Namespace: test-social-network', context: { source: 'aiopslab', stream: 'stdout' } },
    { level: 'info', message: 'Warning: pod user-service-5b8d7c9f4-q7zjw not ready after 30s', context: { source: 'aiopslab', stream: 'stderr' } },
    { level: 'info', message: '== Start Workload ==', context: { source: 'aiopslab', stream: 'stdout' } },
  ]);
  const steps = [
    { api: 'exec_shell', args: ['kubectl get pods -n test-social-network'], reply: 'Let me look at the pods first.\n```\nexec_shell("kubectl get pods -n test-social-network")\n```', response: PODS, prompt: 1840, completion: 46, cost: 0.000304, latency: 910 },
    { api: 'submit', args: [o.success === false ? 'No' : 'Yes'], reply: `user-service is crash-looping, so there is an anomaly.\n\`\`\`\nsubmit("${o.success === false ? 'No' : 'Yes'}")\n\`\`\``, response: 'Submission received.', prompt: 2410, completion: 38, cost: 0.000384, latency: 1270, submitted: true },
  ].slice(0, o.steps ?? 2);
  for (const [i, s] of steps.entries()) await phase(`Step ${i + 1}: ${s.api}${s.submitted ? ' (submitted)' : ''}`, { phase: 'step', step: i + 1, api: s.api, duration_ms: s.latency + 220 });
  const conv = await recordConversation(task.id, o.problemId, o.model, steps, { success: o.success ?? true, reward: o.success === false ? 0 : 1 });
  await writeTaskLogs(db.pool, task.id, [{ level: 'info', message: 'Detection Accuracy: ' + (o.success === false ? 'Incorrect' : 'Correct'), context: { source: 'aiopslab', stream: 'stdout' } }]);
  const success = o.success ?? true;
  await phase(`Run finished: outcome submitted, ${steps.length} step(s), success ${success}`, { phase: 'run_finished', outcome: 'submitted', duration_ms: 58_000, steps: steps.length });
  const result = {
    'Detection Accuracy': success ? 'Correct' : 'Incorrect', TTD: 12.84, steps: steps.length, in_tokens: 4250, out_tokens: 84,
    success, reward: success ? 1 : 0, ttx: { name: 'TTD', seconds: 12.84 }, outcome: 'submitted', task_type: 'detection', session_id: 'b8e3c1d2',
    problem_id: o.problemId, conversation_id: conv.id, model: o.model, execution_time: 58.0, worker_id: o.workerId, cluster: `aiopslab-${o.workerId}`,
    phase_durations_ms: { startup: 900, init: 41_000, loop: 9_000, agent: 2_180, env: 6_200, eval: 1_500, teardown: 5_600 },
    usage: { prompt_tokens: 4250, completion_tokens: 84, cached_tokens: 1062, reasoning_tokens: 0, total_tokens: 4334, cost_usd: conv.totals.cost, llm_calls: steps.length },
  };
  if (o.outcome === 'timeout') {
    await finishTask(db.pool, { taskId: task.id, workerId: o.workerId, status: 'timeout', result: { ...result, stopped_by: 'timeout' }, errorType: 'timeout', errorDetails: 'Task exceeded its timeout of 30 minute(s)' });
  } else {
    await finishTask(db.pool, { taskId: task.id, workerId: o.workerId, status: 'completed', result, errorType: null, errorDetails: null });
  }
  await age(task.id, o.daysAgo ?? 0);
  return task.id;
}

async function seed(): Promise<void> {
  await syncProblemCatalog(db.pool, builtinProblems());
  for (const [id, name, ctx, p, c] of MODELS) {
    await db.pool.query('INSERT INTO models (id, name, context_length, prompt_price, completion_price) VALUES ($1, $2, $3, $4, $5)', [id, name, ctx, p, c]);
  }
  for (const [id, host] of [['worker-1', 'gpu-box-a'], ['worker-2', 'gpu-box-a'], ['worker-3', 'gpu-box-b']] as const) {
    await registerWorker(db.pool, { id, backendType: 'kind', capabilities: {}, metadata: { host, kind_cluster: `aiopslab-${id}`, version: 'test' }, instanceId: null, offlineAfterSeconds: 60 });
  }
  const spread: Array<[string, string, 'completed' | 'failed' | 'timeout', boolean, number]> = [
    ['k8s_target_port-misconfig-detection-1', 'openai/gpt-4o-mini', 'completed', true, 6],
    ['k8s_target_port-misconfig-localization-1', 'openai/gpt-4o-mini', 'completed', false, 5],
    ['pod_failure_hotel_res-detection-1', 'anthropic/claude-3-haiku', 'completed', true, 4],
    ['revoke_auth_mongodb-analysis-1', 'openai/gpt-4o', 'completed', false, 3],
    ['misconfig_app_hotel_res-mitigation-1', 'openai/gpt-4o', 'failed', false, 3],
    ['network_loss_hotel_res-detection-1', 'anthropic/claude-3-haiku', 'completed', true, 2],
    ['scale_pod_zero_social_net-localization-1', 'openai/gpt-4o-mini', 'timeout', false, 1],
    ['user_unregistered_mongodb-mitigation-1', 'openai/gpt-4o-mini', 'completed', true, 1],
    ['assign_to_non_existent_node_social_net-detection-1', 'openai/gpt-4o-mini', 'completed', true, 0],
    ['auth_miss_mongodb-analysis-1', 'anthropic/claude-3-haiku', 'completed', true, 0],
  ];
  for (const [problemId, model, outcome, success, daysAgo] of spread) await runTask({ problemId, model, workerId: 'worker-1', outcome, success, daysAgo });
  seeded.completed = await runTask({ problemId: 'k8s_target_port-misconfig-detection-2', model: 'openai/gpt-4o-mini', workerId: 'worker-1', outcome: 'completed', success: true });
  seeded.failed = await runTask({ problemId: 'revoke_auth_mongodb-detection-1', model: 'openai/gpt-4o-mini', workerId: 'worker-1', outcome: 'failed' });
  const waiting = ['astronomy_shop_ad_service_failure-detection-1', 'container_kill-detection', 'noop_detection_hotel_reservation-1'];
  for (let i = 0; i < 10; i++) {
    const { task } = await submitTask(db.pool, { problemId: waiting[i % 3]!, parameters: params('openai/gpt-4o-mini', { priority: i % 4 }), maxAttempts: 2 });
    if (i === 9) await cancelTask(db.pool, task.id);
  }
  // The running one: claimed by worker-2, one step taken, the model is thinking about the next.
  const { task } = await submitTask(db.pool, { problemId: 'scale_pod_zero_social_net-detection-1', parameters: params('openai/gpt-4o', { priority: 10 }), maxAttempts: 2 });
  const claimed = await claimTask(db.pool, { workerId: 'worker-2', backendType: 'kind', supportedProblems: [], leaseSeconds: 600 });
  expect(claimed?.id).toBe(task.id);
  seeded.running = task.id;
  await writeTaskLog(db.pool, task.id, 'info', 'Preflight passed: detection problem on social_network; model openai/gpt-4o via openrouter', { phase: 'preflight', duration_ms: 11 });
  await writeTaskLog(db.pool, task.id, 'info', 'Cluster aiopslab-worker-2 created', { phase: 'cluster', action: 'created', duration_ms: 48_200 });
  await writeTaskLog(db.pool, task.id, 'info', 'AIOpsLab initialized: app deployed, fault injected, workload started', { phase: 'init', duration_ms: 39_000 });
  await writeTaskLogs(db.pool, task.id, [{ level: 'info', message: 'Scaling user-service to 0 replicas', context: { source: 'aiopslab', stream: 'stdout' } }]);
  const conv = await recordConversation(task.id, 'scale_pod_zero_social_net-detection-1', 'openai/gpt-4o', [
    { api: 'exec_shell', args: ['kubectl get deploy -n test-social-network'], reply: '```\nexec_shell("kubectl get deploy -n test-social-network")\n```', response: 'NAME           READY   UP-TO-DATE   AVAILABLE\nuser-service   0/0     0            0', prompt: 1700, completion: 30, cost: 0.00455, latency: 1420 },
  ], null);
  await appendMessage(db.pool, conv.id, { role: 'user', content: 'NAME           READY   UP-TO-DATE   AVAILABLE\nuser-service   0/0     0            0\nPlease take the next action', step: 2, metadata: { type: 'observation' } });
  seeded.runningConversation = conv.id;
  await markWorkerOffline(db.pool, 'worker-3');
  await setClusterDirty(db.pool, 'worker-3', true);
}

beforeAll(async () => {
  ensureDashboardBuilt();
  db = await createTestDatabase();
  events = new EventHub(db.url);
  await events.start();
  const config = testConfig({}, db.url);
  const deps: AppDeps = {
    pool: db.pool, config, logger: pino({ level: 'silent' }), events, workers: null, version: 'test',
    dashboard: createDashboardServer(), submitValidator: createSubmitValidator(db.pool, config, 0),
  };
  expect(deps.dashboard, 'web/dist must hold a build').toBeTruthy();
  app = await buildServer(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  await seed();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await events?.stop();
  await db?.drop();
});

/** Browser tests share a busy machine with the rest of the suite (and CI runs files in parallel). */
const BROWSER_TEST_MS = 240_000;
const poll = <T>(fn: () => Promise<T> | T, opts: { timeout?: number } = {}) => expect.poll(fn, { timeout: 20_000, interval: 100, ...opts });

/** Loads the dashboard at `hash` and waits until the page has shown its data. */
async function load(page: Page, hash: string): Promise<void> {
  await page.goto(`/${hash}`);
  // A goto that changes only the hash does not reload: wait for the new route to be rendered.
  const route = hash.replace(/^#\/?/, '').split('?')[0]!;
  await page.locator(`main[data-route="${route}"] h1`).first().waitFor();
  await page.waitForFunction(() => !document.querySelector('main [role="status"].muted'), null, { timeout: 20_000 });
}

async function visit(hash: string, opts: { viewport?: ViewportName; colorScheme?: 'light' | 'dark' } = {}) {
  const p = await openPage(browser, base, opts);
  await load(p.page, hash);
  return p;
}

describe('serving', () => {
  it('gives browsers the dashboard at / and API clients the JSON root, with hashed assets', async () => {
    const html = await fetch(`${base}/`, { headers: { Accept: 'text/html,application/xhtml+xml' } });
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    const body = await html.text();
    expect(body).toContain('<div id="app">');
    const asset = body.match(/\/assets\/index-[\w-]+\.js/)?.[0];
    expect(asset).toBeTruthy();
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    // No CDN: every URL the built page references is on this server.
    expect(body).not.toMatch(/(src|href)="https?:\/\//);

    const json = await fetch(`${base}/`, { headers: { Accept: 'application/json' } });
    expect(json.headers.get('content-type')).toMatch(/application\/json/);
    expect(await json.json()).toMatchObject({ name: 'AIOpsLab Task Executor', docs: '/docs' });
  });
});

describe('pages', () => {
  const PAGES: Array<{ name: string; hash: string; check: (page: Page) => Promise<void> }> = [
    {
      name: 'overview', hash: '#/',
      check: async (page) => {
        const counts = (await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tasks GROUP BY status')).rows;
        for (const { status, n } of counts) await poll(() => page.locator(`[data-tile="${status}"] .tile-value`).textContent()).toBe(String(n));
        await poll(() => page.locator('#running-h').locator('..').locator('[data-task-id]').count()).toBe(1);
        expect(await page.locator('#failures-h').locator('..').textContent()).toContain('aiopslab_init_failed');
        const today = page.locator('#today-h').locator('..');
        expect(await today.textContent()).toContain('openai/gpt-4o-mini');
        expect(await today.textContent()).toContain('anthropic/claude-3-haiku');
        expect(await page.locator('#workers-h').textContent()).toContain('2 live of 3');
      },
    },
    {
      name: 'tasks', hash: '#/tasks',
      check: async (page) => {
        expect(await page.locator('tr[data-task-id]').count()).toBe(20);
        expect(await page.locator('.pagination').textContent()).toContain('of 23');
      },
    },
    {
      name: 'task-summary', hash: '#/tasks/COMPLETED',
      check: async (page) => {
        expect(await page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('completed');
        expect(await page.locator('.reward strong').textContent()).toBe('1.00');
        const results = await page.locator('dl[aria-label="AIOpsLab results"]').textContent();
        expect(results).toContain('Detection Accuracy');
        expect(results).toContain('Correct');
        for (const ph of ['created', 'preflight', 'cluster', 'init', 'step', 'run_finished']) expect(await page.locator(`.tl-row[data-phase="${ph}"]`).count()).toBeGreaterThan(0);
        // Preflight and cluster from the timeline, then the bridge's own timings of the run.
        expect(await page.locator('.phase-durations .legend li').allTextContents()).toEqual([
          'preflight 14 ms', 'cluster 1.6 s', 'bridge startup 900 ms', 'deploy & inject 41 s', 'LLM 2.2 s', 'environment 6.2 s', 'evaluation 1.5 s', 'teardown 5.6 s',
        ]);
        expect(await page.locator('a', { hasText: 'Raw JSON' }).getAttribute('href')).toBe(`/api/v1/tasks/${seeded.completed}`);
        expect(await page.locator('#usage-h').locator('..').textContent()).toContain('4,334');
      },
    },
    {
      name: 'task-transcript', hash: '#/tasks/COMPLETED?tab=transcript',
      check: async (page) => {
        await page.locator('.turn').first().waitFor();
        expect(await page.locator('.turn').count()).toBe(2);
        const first = page.locator('.turn').first();
        expect(await first.locator('.action').textContent()).toBe('exec_shell("kubectl get pods -n test-social-network")');
        const metrics = await first.locator('.metrics').textContent();
        expect(metrics).toContain('1,840'); // prompt tokens
        expect(metrics).toContain('$0.00030'); // cost
        expect(metrics).toContain('910 ms'); // latency
        // The environment response is collapsed until asked for.
        const response = first.locator('details.env-response');
        expect(await response.getAttribute('open')).toBeNull();
        await response.locator('summary').click();
        expect(await response.locator('pre').textContent()).toContain('CrashLoopBackOff');
        expect(await page.locator('.turn').nth(1).locator('.badge', { hasText: 'submitted' }).count()).toBe(1);
      },
    },
    {
      name: 'task-output', hash: '#/tasks/COMPLETED?tab=output',
      check: async (page) => {
        const out = page.locator('.terminal');
        await out.waitFor();
        expect(await out.textContent()).toContain('== Fault Injection ==');
        expect(await out.locator('.stderr').textContent()).toContain('not ready after 30s');
        // Timeline rows are not mixed into AIOpsLab's output.
        expect(await out.textContent()).not.toContain('Preflight passed');
      },
    },
    {
      name: 'task-running', hash: '#/tasks/RUNNING?tab=transcript',
      check: async (page) => {
        await page.locator('.turn-waiting').waitFor();
        expect(await page.locator('button', { hasText: 'Cancel task' }).count()).toBe(1);
        await page.getByRole('link', { name: 'Summary' }).click();
        // Still running: the bar is drawn from the timeline's phases so far (read once the timeline has loaded).
        await page.locator('.phase-durations .legend li').nth(2).waitFor();
        expect(await page.locator('.phase-durations .legend li').allTextContents()).toEqual(['preflight 11 ms', 'cluster 48 s', 'init 39 s']);
        // No result yet: tokens and cost are the conversation's running totals.
        await page.locator('dl[aria-label="Usage so far"]').waitFor();
        expect(await page.locator('dl[aria-label="Usage so far"]').textContent()).toMatch(/Tokens so far\s*1,730.*\$0\.0046/);
      },
    },
    {
      name: 'workers', hash: '#/workers',
      check: async (page) => {
        expect(await page.locator('tr[data-worker-id]').count()).toBe(3);
        const w2 = page.locator('tr[data-worker-id="worker-2"]');
        expect(await w2.locator('[data-status]').getAttribute('data-status')).toBe('busy');
        expect(await w2.locator('td[data-label="Current task"] a').getAttribute('href')).toBe(`#/tasks/${seeded.running}`);
        expect(await w2.textContent()).toContain('aiopslab-worker-2');
        expect(await page.locator('tr[data-worker-id="worker-3"]').textContent()).toContain('dirty');
        expect(await page.locator('#pool-h').locator('..').textContent()).toContain('not enabled');
      },
    },
    {
      name: 'submit', hash: '#/submit',
      check: async (page) => {
        await poll(() => page.locator('#f-pick optgroup').count()).toBeGreaterThan(8);
        const labels = await page.locator('#f-pick optgroup').evaluateAll((gs) => gs.map((g) => g.getAttribute('label')));
        expect(labels).toContain('hotel_reservation · detection');
        expect(await page.locator('#f-max_steps-hint').textContent()).toContain('1–1000');
        expect(await page.locator('#model-options option[value="openai/gpt-4o-mini"]').getAttribute('label')).toContain('$0.150 in / $0.600 out per M tokens');
      },
    },
    {
      name: 'problems', hash: '#/problems',
      check: async (page) => {
        expect(await page.locator('tr[data-problem-id]').count()).toBe(builtinProblems().length);
        expect(await page.locator('tr[data-problem-id="k8s_target_port-misconfig-detection-1"] td[data-label="Runs"]').textContent()).toBe('1');
      },
    },
    {
      name: 'spend', hash: '#/spend',
      check: async (page) => {
        await page.locator('.chart svg').first().waitFor();
        expect(await page.locator('.chart').count()).toBe(2);
        // One bar segment per (day, model) with spend; seeded: 11 finished runs over 7 days, 3 models.
        const segments = await page.locator('.chart').first().locator('rect').count();
        const expected = (await db.pool.query<{ n: number }>(`SELECT count(DISTINCT (date_trunc('day', started_at AT TIME ZONE 'UTC'), model_name))::int AS n FROM llm_conversations WHERE cost_usd > 0`)).rows[0]!.n;
        expect(segments).toBe(expected);
        const types = await page.locator('#type-h').locator('..').locator('.rate-bars li').allTextContents();
        expect(types.find((t) => t.startsWith('detection'))).toMatch(/83%\s*5\/6 runs/);
        expect(types.find((t) => t.startsWith('mitigation'))).toMatch(/50%\s*1\/2 runs/);
      },
    },
  ];

  // One page per width; each dashboard page is loaded, checked, then captured in light and dark
  // (the colour scheme is switched in place, as when the system setting changes).
  for (const viewport of ['laptop', 'phone'] as const) {
    it(`render at ${viewport} width, light and dark, with no page errors, overflow or outside requests`, async () => {
      const { page, context, errors } = await openPage(browser, base, { viewport });
      try {
        for (const p of PAGES) {
          await page.emulateMedia({ colorScheme: 'light' });
          await load(page, p.hash.replace('COMPLETED', seeded.completed).replace('RUNNING', seeded.running));
          await p.check(page);
          for (const colorScheme of ['light', 'dark'] as const) {
            await page.emulateMedia({ colorScheme });
            const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
            expect(bg, `${p.name} background follows the colour scheme`).toBe(colorScheme === 'dark' ? 'rgb(15, 17, 21)' : 'rgb(246, 247, 249)');
            // Nothing may stick out sideways (a horizontal scrollbar on the page).
            const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
            expect(overflow, `${p.name} has no horizontal overflow`).toBeLessThanOrEqual(0);
            await screenshot(page, `${p.name}-${viewport}-${colorScheme}`);
          }
          expect(errors, p.name).toEqual([]);
        }
      } finally {
        await context.close();
      }
    }, BROWSER_TEST_MS);
  }
});

describe('task list', () => {
  it('filters by status, searches problem ids, sorts and paginates, all kept in the URL', async () => {
    const { page, context, errors } = await visit('#/tasks');
    try {
      await page.getByLabel('failed', { exact: true }).check();
      await poll(() => page.url()).toContain('status=failed');
      await poll(async () => (await page.locator('tr[data-task-id]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-status'))))).toEqual(['failed', 'failed']);
      await page.getByLabel('timeout', { exact: true }).check();
      await poll(() => page.locator('tr[data-task-id]').count()).toBe(3);
      await page.getByRole('button', { name: 'Any status' }).click();

      await page.getByLabel('Problem id contains').fill('hotel_res');
      await poll(() => page.url()).toContain('q=hotel_res');
      await poll(async () => {
        const ids = await page.locator('tr[data-task-id] .task-link .mono').allTextContents();
        return ids.length > 0 && ids.every((id) => id.includes('hotel_res'));
      }).toBe(true);
      const matching = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE problem_id LIKE '%hotel\\_res%'`)).rows[0]!.n;
      expect(await page.locator('tr[data-task-id]').count()).toBe(matching);
      await page.getByLabel('Problem id contains').fill('');

      await page.getByLabel('Sort').selectOption('-priority');
      await poll(() => page.url()).toContain('sort=-priority');
      await poll(async () => (await page.locator('td[data-label="Priority"]').first().textContent())).toBe('10');

      await poll(() => page.locator('tr[data-task-id]').count()).toBe(20);
      await page.getByRole('button', { name: 'Next →' }).click();
      await poll(() => page.url()).toContain('page=2');
      await poll(() => page.locator('tr[data-task-id]').count()).toBe(3);
      // The URL is the state: going back returns to page 1.
      await page.goBack();
      await poll(() => page.locator('tr[data-task-id]').count()).toBe(20);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);
});

describe('live updates', () => {
  it('shows a new task, new log lines, new messages and status changes without a reload', async () => {
    const { page, context, errors } = await visit(`#/tasks/${seeded.running}`);
    try {
      await page.evaluate(() => { (window as unknown as { __sameDocument: boolean }).__sameDocument = true; });
      await page.locator('.live-open').waitFor();

      // A timeline row written by a worker (here: straight into the database) appears.
      await writeTaskLog(db.pool, seeded.running, 'info', 'Step 2: get_logs', { phase: 'step', step: 2, api: 'get_logs', duration_ms: 640 });
      await page.locator('.tl-row', { hasText: 'Step 2: get_logs' }).waitFor({ timeout: 10_000 });

      // Rows can commit out of id order (writers run at once): a row whose id is lower than one
      // already shown, committed after it, still appears.
      const late = await db.pool.connect();
      try {
        await late.query('BEGIN');
        await writeTaskLog(late, seeded.running, 'info', 'Step 3: get_metrics', { phase: 'step', step: 3, api: 'get_metrics', duration_ms: 410 });
        await writeTaskLog(db.pool, seeded.running, 'info', 'Step 4: get_traces', { phase: 'step', step: 4, api: 'get_traces', duration_ms: 380 });
        await page.locator('.tl-row', { hasText: 'Step 4: get_traces' }).waitFor({ timeout: 10_000 });
        await late.query('COMMIT');
      } finally {
        late.release();
      }
      await page.locator('.tl-row', { hasText: 'Step 3: get_metrics' }).waitFor({ timeout: 10_000 });

      // A captured output line appears in the output tab.
      await page.getByRole('link', { name: /AIOpsLab output/ }).click();
      await writeTaskLogs(db.pool, seeded.running, [{ level: 'info', message: 'Fetching logs of user-service', context: { source: 'aiopslab', stream: 'stdout' } }]);
      await page.locator('.terminal', { hasText: 'Fetching logs of user-service' }).waitFor({ timeout: 10_000 });

      // The model's reply appears as a new turn in the transcript.
      await page.getByRole('link', { name: 'Transcript' }).click();
      await page.locator('.turn-waiting').waitFor();
      const u = usage(1900, 25, 0.00500);
      await appendMessage(db.pool, seeded.runningConversation, { role: 'assistant', content: '```\nget_logs("test-social-network", "user-service")\n```', step: 2, metadata: { type: 'action', usage: u, cost_usd: u.cost_usd, latency_ms: 1333 }, call: u });
      await poll(() => page.locator('.turn').count(), { timeout: 10_000 }).toBe(2);
      await poll(() => page.locator('.turn-waiting').count()).toBe(0);
      expect(await page.locator('.turn').nth(1).locator('.metrics').textContent()).toContain('1.3 s');

      // The worker finishes it: the status changes in place.
      await finishTask(db.pool, { taskId: seeded.running, workerId: 'worker-2', status: 'completed', result: { success: true, reward: 1, outcome: 'submitted', 'Detection Accuracy': 'Correct' }, errorType: null, errorDetails: null });
      await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status'), { timeout: 10_000 }).toBe('completed');
      expect(await page.locator('button', { hasText: 'Cancel task' }).count()).toBe(0);

      // The overview follows too: a new pending task raises the pending tile.
      await page.getByRole('link', { name: 'Overview' }).click();
      // The tile shows a placeholder until the overview has loaded: read it once it holds a number.
      const tile = page.locator('[data-tile="pending"] .tile-value');
      await poll(async () => /^\d+$/.test((await tile.textContent()) ?? ''), { timeout: 10_000 }).toBe(true);
      const before = Number(await tile.textContent());
      await submitTask(db.pool, { problemId: 'noop_detection_social_network-1', parameters: params('openai/gpt-4o-mini'), maxAttempts: 2 });
      await poll(() => page.locator('[data-tile="pending"] .tile-value').textContent(), { timeout: 10_000 }).toBe(String(before + 1));

      expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);
});

describe('submit form', () => {
  it('shows the server\'s validation errors at their fields, then queues the task and can cancel it', async () => {
    const { page, context, errors } = await visit('#/submit');
    try {
      const problem = page.getByLabel('Problem id', { exact: true });
      await problem.fill('k8s_target_port-misconfig-detecton-1');
      await page.getByRole('button', { name: 'Submit task' }).click();
      const problemError = page.locator('#f-problem_id-error');
      await poll(() => problemError.textContent()).toMatch(/not in the AIOpsLab catalog/i);
      expect(await problem.getAttribute('aria-invalid')).toBe('true');
      expect(await problem.getAttribute('aria-describedby')).toContain('f-problem_id-error');
      // Focus moves to the first field in error, and a suggestion fixes it in one click.
      await poll(() => page.evaluate(() => document.activeElement?.id)).toBe('f-problem_id');
      await problemError.getByRole('button', { name: 'k8s_target_port-misconfig-detection-1' }).click();
      expect(await problem.inputValue()).toBe('k8s_target_port-misconfig-detection-1');
      expect(await problemError.count()).toBe(0);
      await screenshot(page, 'submit-suggestion-laptop-light');

      await page.getByLabel('Max steps').fill('5000');
      await page.getByRole('button', { name: 'Submit task' }).click();
      await poll(() => page.locator('#f-max_steps-error').textContent()).toContain('1000');
      await page.getByLabel('Max steps').fill('5');

      await page.getByLabel('Model', { exact: true }).fill('gpt-4o-mni');
      await page.getByRole('button', { name: 'Submit task' }).click();
      await poll(() => page.locator('#f-model-error').textContent()).toContain('gpt-4o-mini');
      await screenshot(page, 'submit-errors-laptop-light');
      await page.locator('#f-model-error').getByRole('button', { name: /gpt-4o-mini/ }).first().click();

      // The catalog picker (grouped by application and task type) fills the id too.
      await page.getByLabel('Task type').selectOption('localization');
      await page.getByLabel(/^Catalog/).selectOption('k8s_target_port-misconfig-localization-1');
      expect(await problem.inputValue()).toBe('k8s_target_port-misconfig-localization-1');

      await page.getByRole('button', { name: 'Submit task' }).click();
      await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
      const id = page.url().split('/').at(-1)!;
      const row = (await db.pool.query('SELECT problem_id, parameters FROM tasks WHERE id = $1', [id])).rows[0];
      expect(row.problem_id).toBe('k8s_target_port-misconfig-localization-1');
      expect(row.parameters).toMatchObject({ max_steps: 5, timeout_minutes: 30, priority: 5 });
      expect(row.parameters.agent_config.model).toMatch(/gpt-4o-mini$/);

      await page.getByRole('button', { name: 'Cancel task' }).click();
      await page.getByRole('button', { name: 'Yes, cancel' }).click();
      await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('cancelled');
      expect((await db.pool.query('SELECT status FROM tasks WHERE id = $1', [id])).rows[0].status).toBe('cancelled');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);
});

describe('keyboard', () => {
  it('offers a skip link, visible focus, and moves focus to the heading of a new page', async () => {
    const { page, context } = await visit('#/');
    try {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
      await page.keyboard.press('Enter');
      expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');

      await page.locator('.brand').focus();
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        const s = getComputedStyle(el);
        return { text: el.textContent, outline: s.outlineStyle, width: s.outlineWidth };
      });
      expect(focused).toEqual({ text: 'Overview', outline: 'solid', width: '3px' });
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await page.waitForURL(/#\/tasks$/);
      await poll(() => page.evaluate(() => document.activeElement?.tagName + ':' + document.activeElement?.textContent)).toBe('H1:Tasks');

      // Status filters are real checkboxes, toggled with the space bar.
      await page.getByLabel('running', { exact: true }).focus();
      await page.keyboard.press('Space');
      await poll(() => page.url()).toContain('status=running');
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);
});
