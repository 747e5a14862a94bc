/**
 * The whole pipeline: an experiment over the fixture `aiopslab` problems with two stand-in models,
 * run by the service's own workers (bridge, agent, LLM stand-in, kind/kubectl stand-ins), killed
 * (SIGKILL, as its own process) while two of its tasks are mid-run, started again on the same
 * database, resubmitted — and its results table checked against what the scripted models score.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { experimentResults } from '../src/experiments/experimentResults.js';
import { experimentsProgress } from '../src/experiments/experimentProgress.js';
import { getExperiment } from '../src/experiments/experimentQueries.js';
import { submitExperiment } from '../src/experiments/experimentSubmission.js';
import { scriptedSolver, startLlmServer, type LlmServer, type Policy } from './fixtures/llmServer.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { testConfig } from './helpers/apiHarness.js';
import { FIXTURE_AIOPSLAB_DIR, TEST_LLM_KEY, startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

const SMART = 'openai/gpt-4o-mini';
const NAIVE = 'anthropic/claude-3-haiku';
const DETECT = 'k8s_target_port-misconfig-detection-1'; // a fault: the right answer is "Yes"
const NOOP = 'noop_detection_hotel_reservation-1'; // no fault: the right answer is "No"

const fence = (call: string) => `\`\`\`\n${call}\n\`\`\``;

/**
 * Both models look once, then answer; SMART tells the fault-free hotel app from the faulty social
 * network, NAIVE always says "Yes". Fixed usage per call, so tokens and cost per task are exact.
 */
function models(naive: 'answer' | 'hang'): Policy {
  return (req) => {
    const { body } = req;
    const smart = body.model === SMART;
    if (!smart && naive === 'hang') return { kind: 'hang' };
    const usage = smart ? { prompt_tokens: 1000, completion_tokens: 10 } : { prompt_tokens: 2000, completion_tokens: 20 };
    const cost = smart ? 0.001 : 0.003;
    const turns = body.messages.filter((m) => m.role === 'assistant').length;
    if (turns === 0) return { ...(scriptedSolver(req) as { content: string }), usage, cost };
    const system = body.messages.find((m) => m.role === 'system')?.content ?? '';
    const answer = smart && /hotel/i.test(system) ? 'No' : 'Yes';
    return { content: fence(`submit("${answer}")`), usage, cost };
  };
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `start` in a child process (TypeScript run through experimentsTsLoader.mjs), so it can be killed outright. */
async function startServiceProcess(env: NodeJS.ProcessEnv): Promise<{ url: string; kill(): Promise<void>; output(): string }> {
  const loader = new URL('./experimentsTsLoader.mjs', import.meta.url).href;
  const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(loader)});`)}`;
  const child: ChildProcess = spawn(process.execPath, ['--import', register, fileURLToPath(new URL('./experimentsServiceMain.ts', import.meta.url))], {
    env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  let output = '';
  child.stdout!.on('data', (c) => { output += c.toString(); });
  child.stderr!.on('data', (c) => { output += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await until('the service process to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`the service process exited (${child.exitCode}):\n${output.slice(-3000)}`);
    const m = /EXPERIMENTS-SERVICE-READY (\{.*\})/.exec(output);
    return m ? (JSON.parse(m[1]!) as { url: string }).url : null;
  }, 90_000);
  return {
    url,
    output: () => output,
    async kill() {
      // The whole process group, as a host crash takes the service and its bridge processes.
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
      await exited;
    },
  };
}

let killable: { kill(): Promise<void> } | null = null;
let stateDir: string | null = null;
let db: TestDatabase | null = null;
let llm: LlmServer | null = null;
let standins: Standins | null = null;
let service: ServiceHarness | null = null;
afterAll(async () => {
  await killable?.kill();
  await service?.close().catch(() => {});
  await llm?.close();
  standins?.cleanup();
  await db?.drop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('an experiment through the whole service', () => {
  it('survives the service being killed mid-run and, resubmitted, completes with the expected table', async () => {
    db = await createTestDatabase();
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'experiments-killed-state-'));
    llm = await startLlmServer();
    standins = createStandins();
    const body = { name: 'fixture-benchmark', problem_ids: [DETECT, NOOP], models: [SMART, NAIVE], parameters: { max_steps: 5 } };

    // First run, as its own process: NAIVE's calls never come back, so its tasks are mid-run when it is killed.
    llm.setPolicy(models('hang'));
    const first = await startServiceProcess({
      ...standins.env, DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', NUM_INTERNAL_WORKERS: '2',
      AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: 'python3', OPENROUTER_API_KEY: TEST_LLM_KEY, OPENROUTER_BASE_URL: llm.baseUrl,
      EXECUTOR_STATE_DIR: stateDir!, WORKER_POLL_INTERVAL: '1', WORKER_HEARTBEAT_INTERVAL: '0.5', LEASE_SECONDS: '4',
      WORKER_OFFLINE_AFTER: '4', TIMEOUT_CHECK_INTERVAL: '0.5', STOP_GRACE_SECONDS: '3', LLM_MAX_RETRIES: '2', LOG_LEVEL: 'info',
    });
    killable = first;
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Attempts to spare: the kill costs NAIVE's tasks one each, and a retry must not turn into worker_lost.
    const ctx = { pool: db.pool, config: testConfig({ MAX_ATTEMPTS: '4' }, db.url) };
    const created = await submitExperiment(ctx, body);
    expect(created).toMatchObject({ created: true, tasksCreated: 4 });
    const id = created.experiment.id;
    const statusOf = async () => (await db!.pool.query<{ model: string; status: string }>(
      'SELECT experiment_model AS model, status FROM tasks WHERE experiment_id = $1', [id])).rows;
    await until('SMART done and NAIVE stuck in both its tasks', async () => {
      const s = await statusOf();
      const naiveAsked = new Set(llm!.chatRequests().filter((r) => (r.body as { model: string }).model === NAIVE)
        .map((r) => (r.body as { messages: Array<{ content: string }> }).messages[0]!.content)).size;
      return s.filter((t) => t.model === SMART && t.status === 'completed').length === 2
        && s.filter((t) => t.model === NAIVE && t.status === 'running').length === 2 && naiveAsked === 2;
    }, 240_000);
    await first.kill();
    killable = null;
    // Killed: nothing requeued NAIVE's tasks; they stay running until their leases expire.
    expect((await statusOf()).filter((t) => t.model === NAIVE).map((t) => t.status)).toEqual(['running', 'running']);

    // Second run on the same database: the resubmission queues nothing new, the stopped tasks finish.
    llm.setPolicy(models('answer'));
    service = await startServiceHarness({ db, llm, standins, workers: 2 });
    const resumed = await submitExperiment(ctx, body);
    expect(resumed).toMatchObject({ created: false, tasksCreated: 0 });
    try {
      await until('every combination completed', async () => (await statusOf()).every((t) => t.status === 'completed'), 200_000);
    } catch (err) {
      const rows = (await db.pool.query(`SELECT t.id, t.status, t.attempt, t.experiment_model, t.error_type, t.error_details,
        (SELECT json_agg(json_build_array(l.timestamp, l.level, left(l.message, 300), l.context->>'phase') ORDER BY l.id) FROM task_logs l WHERE l.task_id = t.id AND (l.level NOT IN ('debug', 'info') OR l.context ? 'phase')) AS logs
        FROM tasks t WHERE t.experiment_id = $1`, [id])).rows;
      console.log('DEBUG', JSON.stringify(rows));
      console.log('WORKERS', JSON.stringify((await db.pool.query('SELECT * FROM workers')).rows));
      throw err;
    }

    const tasks = await db.pool.query<{ id: string; attempt: number; claims: number }>(
      `SELECT t.id, t.attempt, (SELECT count(*)::int FROM task_logs l WHERE l.task_id = t.id AND l.message LIKE 'Claimed by %') AS claims
         FROM tasks t WHERE t.experiment_id = $1 AND t.experiment_model = $2`, [id, NAIVE]);
    expect(tasks.rows).toHaveLength(2);
    for (const t of tasks.rows) {
      // Claimed by the killed service, found by the new one's maintenance when its lease ran out, claimed again.
      expect(t.attempt).toBeGreaterThanOrEqual(2);
      expect(t.claims).toBeGreaterThanOrEqual(2);
      const expired = await db.pool.query(`SELECT count(*)::int AS n FROM task_logs WHERE task_id = $1 AND context->>'phase' = 'lease_expired'`, [t.id]);
      expect(expired.rows[0].n).toBeGreaterThanOrEqual(1);
    }

    const e = await getExperiment(db.pool, id);
    const progress = (await experimentsProgress(db.pool, [e], () => null)).get(id)!;
    // SMART: 2 tasks × 2 calls × $0.001; NAIVE: 2 tasks × 2 calls × $0.003 (its stopped calls were never answered, so never paid).
    expect(progress).toMatchObject({ status: 'completed', combinations: 4, tasks_total: 4, finished: 4, spend_usd: 0.016, estimated_remaining_cost_usd: 0 });

    const results = await experimentResults(db.pool, e);
    const ttx = results.summary.map((r) => [r.ttx_name, r.ttx_mean_s, r.ttx_median_s]);
    for (const [name, mean, median] of ttx) {
      expect(name).toBe('TTD');
      expect(mean).toBeGreaterThan(0);
      expect(median).toBeGreaterThan(0);
    }
    const exact = results.summary.map(({ ttx_mean_s: _m, ttx_median_s: _d, ...rest }) => rest);
    expect(exact).toEqual([
      {
        model: SMART, task_type: 'detection', tasks: 2, evaluated: 2, errored: 0, successes: 2, success_rate: 1, success_ci_low: 0.3424, success_ci_high: 1,
        ttx_name: 'TTD', steps_mean: 2, steps_median: 2, input_tokens_mean: 2000, output_tokens_mean: 20, input_tokens_total: 4000, output_tokens_total: 40,
        cost_per_task_usd: 0.002, cost_total_usd: 0.004,
      },
      {
        model: NAIVE, task_type: 'detection', tasks: 2, evaluated: 2, errored: 0, successes: 1, success_rate: 0.5, success_ci_low: 0.0945, success_ci_high: 0.9055,
        ttx_name: 'TTD', steps_mean: 2, steps_median: 2, input_tokens_mean: 4000, output_tokens_mean: 40, input_tokens_total: 8000, output_tokens_total: 80,
        cost_per_task_usd: 0.006, cost_total_usd: 0.012,
      },
    ]);
    expect(results.detail.map((d) => [d.problem_id, d.model, d.successes])).toEqual([
      [DETECT, SMART, 1], [DETECT, NAIVE, 1], [NOOP, SMART, 1], [NOOP, NAIVE, 0],
    ]);
  }, 600_000);
});
