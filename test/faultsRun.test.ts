/**
 * Faults during a run, through the whole service (one worker, so its cluster is shared by the
 * tasks in order): the LLM failing past its retries, hanging, rate-limiting; and the bridge
 * process killed with SIGKILL mid-run. Each ends in a correct, typed state and nothing is lost.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedSolver } from './fixtures/llmServer.js';
import { processesIn } from './helpers/processes.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

const PROBLEM = 'k8s_target_port-misconfig-detection-1';
let h: ServiceHarness;

beforeAll(async () => {
  h = await startServiceHarness({
    workers: 1,
    env: { LLM_MAX_RETRIES: '2', LLM_RETRY_BASE_DELAY: '0.05', LLM_REQUEST_TIMEOUT: '1.5', SUBMIT_RATE_LIMIT: '0' },
  });
});
afterAll(async () => { await h?.close(); });

async function run(params: Record<string, unknown> = {}) {
  const t = await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5, ...params } });
  return h.waitForTask(t.id, ['completed', 'failed', 'timeout', 'cancelled'], 90_000);
}

const chatTimes = () => h.llm.chatRequests().map((r) => r.at);

describe('the LLM', () => {
  it('warm-up: a normal run completes (creates the worker\'s cluster)', async () => {
    expect((await run()).status).toBe('completed');
  }, 240_000);

  it('failing with 500 beyond LLM_MAX_RETRIES: failed llm_unavailable, every attempt recorded, the worker goes on', async () => {
    const before = h.llm.chatRequests().length;
    h.llm.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 502 }, { kind: 'status', status: 503 });
    const done = await run();
    expect(done).toMatchObject({ status: 'failed', error_type: 'llm_unavailable' });
    expect(h.llm.chatRequests().length - before).toBe(3); // the call and its 2 retries, then no more
    const convs = (await h.api(`/api/v1/llm-conversations/task/${done.id}/conversations`)).body;
    expect(convs).toHaveLength(1);
    const w = (await h.api('/api/v1/workers')).body.workers[0];
    expect(w.status).not.toBe('offline');
  }, 240_000);

  it('hanging: the request times out (LLM_REQUEST_TIMEOUT) and is retried; the run completes', async () => {
    const before = h.llm.chatRequests().length;
    h.llm.enqueue({ kind: 'hang' });
    const done = await run();
    expect(done.status, JSON.stringify(done)).toBe('completed');
    const times = chatTimes().slice(before);
    expect(times.length).toBe(done.result.usage.llm_calls + 1); // one abandoned request more than answered calls
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1400);
  }, 240_000);

  it('rate-limiting: 429 with Retry-After is honoured (waits at least that long), then the run completes', async () => {
    const before = h.llm.chatRequests().length;
    h.llm.enqueue({ kind: 'rateLimit', retryAfter: '2' }, { kind: 'rateLimit', retryAfter: '1' });
    const done = await run();
    expect(done.status, JSON.stringify(done)).toBe('completed');
    const times = chatTimes().slice(before);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1950);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(950);
    expect(done.result.usage.llm_calls).toBe(times.length - 2);
  }, 240_000);
});

/** Pids of bridge processes that are children of this process (the service runs in it). */
function bridgePids(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/)).filter((m): m is RegExpMatchArray => !!m)
    .filter((m) => Number(m[2]) === process.pid && m[3]!.includes('aiopslab_bridge.py')).map((m) => Number(m[1]));
}

describe('the bridge process', () => {
  it('killed with SIGKILL mid-run: task failed with a typed error, cluster marked dirty and recreated before the next task, which completes', async () => {
    const creates = () => h.standins.callsMatching('kind', ['create', 'cluster']).length;
    const deletes = () => h.standins.callsMatching('kind', ['delete', 'cluster']).length;
    // Slow answers keep the run in its agent loop long enough to find and kill the bridge.
    h.llm.setPolicy((req) => ({ kind: 'slow', delayMs: 1500, reply: scriptedSolver(req) as never }));
    const submittedAt = Date.now();
    const t = await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5 } });
    // The task's bridge works in the task's folder (the worker may hold another, started for the next task).
    const taskDir = path.join(h.stateDir, 'tasks', t.id);
    let pids: number[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      pids = bridgePids().filter((pid) => processesIn(taskDir).includes(pid));
      if (pids.length && h.llm.chatRequests().some((r) => r.at > submittedAt)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pids).toHaveLength(1);
    const [c0, d0] = [creates(), deletes()]; // the cluster exists by now
    process.kill(pids[0]!, 'SIGKILL');
    const done = await h.waitForTask(t.id, ['completed', 'failed', 'timeout', 'cancelled'], 60_000);
    h.llm.setPolicy(scriptedSolver);
    expect(done.status).toBe('failed');
    // Typed by the phase the bridge died in (it was in the agent loop), with the signal named.
    expect(['bridge_failed', 'aiopslab_loop_failed'], JSON.stringify(done)).toContain(done.error_type);
    expect(done.error_details, JSON.stringify(done)).toMatch(/SIGKILL/);
    const worker = (await h.api('/api/v1/workers')).body.workers[0];
    expect(worker.cluster_dirty).toBe(true);
    expect(worker.current_task_id).toBeNull();
    const logs = (await h.api(`/api/v1/tasks/${t.id}/logs?limit=1000`)).body.logs as Array<{ message: string }>;
    expect(logs.some((l) => /marked dirty/.test(l.message))).toBe(true);
    // Nothing of the killed run is left, and no bridge is started ahead for a cluster about to be recreated.
    expect(processesIn(taskDir)).toEqual([]);
    expect(bridgePids()).toEqual([]);

    const next = await run();
    expect(next.status, JSON.stringify(next)).toBe('completed');
    expect(deletes()).toBe(d0 + 1);
    expect(creates()).toBe(c0 + 1);
    const recreate = ((await h.api(`/api/v1/tasks/${next.id}/logs?limit=1000`)).body.logs as Array<{ message: string; context: { phase?: string; action?: string } }>)
      .find((l) => l.context.phase === 'cluster');
    expect(recreate?.context.action).toMatch(/recreated/);
    expect((await h.api('/api/v1/workers')).body.workers[0].cluster_dirty).toBe(false);
  }, 240_000);
});
