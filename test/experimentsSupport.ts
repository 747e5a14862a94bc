/**
 * What the experiment tests share: an API app with the experiment routes over a fresh database,
 * and tasks moved through the real queue functions (claim, finish) with conversations recorded
 * through the real conversation store, so spend and tokens come from where the product reads them.
 */
import pino from 'pino';
import type { AppDeps } from '../src/api/appDeps.js';
import { experimentRoutes } from '../src/api/routes/experiments.js';
import { buildServer } from '../src/api/server.js';
import { claimTask } from '../src/queue/claimTask.js';
import { finishTask, type FinalStatus } from '../src/queue/finishTask.js';
import type { TaskRow } from '../src/queue/taskRecord.js';
import { registerWorker } from '../src/queue/workerRegistry.js';
import { appendMessage, createConversation } from '../src/store/conversations.js';
import { EventHub } from '../src/store/eventHub.js';
import type { Queryable } from '../src/store/pool.js';
import { testConfig } from './helpers/apiHarness.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

export interface ExperimentsApi {
  db: TestDatabase;
  deps: AppDeps;
  app: Awaited<ReturnType<typeof buildServer>>;
  post(url: string, body?: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  get(url: string): Promise<{ status: number; body: any; headers: Record<string, unknown>; text: string }>;
  close(): Promise<void>;
}

export async function startExperimentsApi(env: Record<string, string> = {}): Promise<ExperimentsApi> {
  const db = await createTestDatabase();
  const events = new EventHub(db.url);
  await events.start();
  const deps: AppDeps = {
    pool: db.pool, config: testConfig(env, db.url), logger: pino({ level: 'silent' }), events, workers: null, version: 'test',
  };
  const app = await buildServer(deps);
  // Until server.ts registers the experiment routes itself; afterwards this is skipped.
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/experiments' })) await app.register(experimentRoutes(deps), { prefix: '/api/v1' });
  await app.ready();
  return {
    db, deps, app,
    async post(url, body) {
      const r = await app.inject({ method: 'POST', url, ...(body === undefined ? {} : { payload: body as object }) });
      return { status: r.statusCode, body: r.body ? r.json() : null, headers: r.headers };
    },
    async get(url) {
      const r = await app.inject({ method: 'GET', url });
      let body: any = null;
      try { body = r.json(); } catch { /* CSV */ }
      return { status: r.statusCode, body, headers: r.headers, text: r.body };
    },
    async close() {
      await app.close();
      await events.stop();
      await db.drop();
    },
  };
}

export async function addWorker(db: Queryable, id: string): Promise<void> {
  const w = await registerWorker(db, { id, backendType: 'kind', capabilities: {}, metadata: {}, instanceId: null, offlineAfterSeconds: 60 });
  if (!w) throw new Error(`could not register ${id}`);
}

export function claimNext(db: Queryable, workerId: string): Promise<TaskRow | null> {
  return claimTask(db, { workerId, backendType: 'kind', supportedProblems: [], leaseSeconds: 300 });
}

export interface Spend { prompt: number; completion: number; cost: number }

/** One LLM call on the task's conversation for its current attempt, as the agent records it. */
export async function recordSpend(db: Queryable, task: TaskRow, s: Spend): Promise<void> {
  const existing = await db.query<{ id: string }>('SELECT id FROM llm_conversations WHERE task_id = $1 AND attempt = $2', [task.id, task.attempt]);
  const id = existing.rows[0]?.id ?? (await createConversation(db, {
    taskId: task.id, attempt: task.attempt, modelName: task.parameters.agent_config.model, provider: 'openrouter', llmConfig: {}, metadata: { problem_id: task.problem_id },
  })).id;
  await appendMessage(db, id, {
    role: 'assistant', content: 'exec_shell("kubectl get pods")', step: 1,
    call: { prompt_tokens: s.prompt, completion_tokens: s.completion, cached_tokens: 0, reasoning_tokens: 0, total_tokens: s.prompt + s.completion, cost_usd: s.cost },
  });
}

export interface Outcome extends Spend {
  status: FinalStatus;
  success?: boolean;
  ttx?: number;
  steps?: number;
}

/** Spends, then ends the task the way a worker does, with AIOpsLab's evaluation as the result. */
export async function finishWith(db: Queryable, task: TaskRow, workerId: string, o: Outcome): Promise<void> {
  await recordSpend(db, task, o);
  const taskType = /(detection|localization|analysis|mitigation)/.exec(task.problem_id)![1]!;
  const ttxName = { detection: 'TTD', localization: 'TTL', analysis: 'TTA', mitigation: 'TTM' }[taskType];
  const evaluated = o.status === 'completed';
  const result = evaluated
    ? { success: o.success ?? false, reward: o.success ? 1 : 0, steps: o.steps, ttx: { name: ttxName, seconds: o.ttx }, outcome: 'submitted', task_type: taskType,
        model: task.parameters.agent_config.model, usage: { prompt_tokens: o.prompt, completion_tokens: o.completion, total_tokens: o.prompt + o.completion, cost_usd: o.cost } }
    : { success: false, reward: 0, outcome: o.status === 'timeout' ? 'timeout' : 'failed_in_run', task_type: taskType };
  const done = await finishTask(db, {
    taskId: task.id, workerId, status: o.status, result,
    errorType: evaluated ? null : o.status === 'timeout' ? 'timeout' : 'llm_unavailable', errorDetails: evaluated ? null : 'scripted',
  });
  if (!done) throw new Error(`worker ${workerId} does not hold task ${task.id}`);
}

/** "problem|model|repeat" of an experiment task. */
export function comboOf(t: TaskRow): string {
  const row = t as TaskRow & { experiment_model: string; experiment_repeat: number };
  return `${t.problem_id}|${row.experiment_model}|${row.experiment_repeat}`;
}
