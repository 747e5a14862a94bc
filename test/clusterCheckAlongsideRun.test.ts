/**
 * A worker whose cluster is expected to be reused starts the task's run at once: AIOpsLab
 * initialises while the cluster is checked, and the agent waits for the check. When the check
 * finds the cluster not reusable as it was, it stops that run before changing anything, and the
 * task runs afresh on the cluster as the check left it. The check is slowed down here (the
 * stand-in kubectl sleeps) so that AIOpsLab's init is well under way when its outcome arrives.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesIn } from './helpers/processes.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

const PROBLEM = 'k8s_target_port-misconfig-detection-1';
type Log = { id: number; message: string; context: Record<string, unknown> };

let h: ServiceHarness;
let closed = false;
beforeAll(async () => { h = await startServiceHarness({ workers: 1 }); });
afterAll(async () => { if (!closed) await h?.close(); });

async function runTask(): Promise<{ task: any; logs: Log[]; llmCalls: number; conversations: unknown[] }> {
  const before = h.llm.chatRequests().length;
  const created = await h.submit({ problem_id: PROBLEM, parameters: { max_steps: 5 } });
  const task = await h.waitForTask(created.id, ['completed', 'failed', 'timeout'], 150_000);
  const logs = (await h.api(`/api/v1/tasks/${task.id}/logs?limit=1000`)).body.logs as Log[];
  const conversations = (await h.api(`/api/v1/llm-conversations/task/${task.id}/conversations`)).body;
  return { task, logs, llmCalls: h.llm.chatRequests().length - before, conversations };
}

const firstIndex = (logs: Log[], pred: (l: Log) => boolean) => logs.findIndex(pred);
const phaseIndex = (logs: Log[], phase: string) => firstIndex(logs, (l) => l.context.phase === phase);


describe('the run alongside the cluster check', () => {
  it('a new cluster: the check creates it first, and the run follows', async () => {
    const { task, logs } = await runTask();
    expect(task.status, JSON.stringify(task)).toBe('completed');
    expect(logs[phaseIndex(logs, 'cluster')]!.context.action).toBe('created');
    expect(task.result.phase_durations_ms.cluster_check_alongside_run).toBeUndefined();
    expect(phaseIndex(logs, 'cluster')).toBeLessThan(firstIndex(logs, (l) => l.context.source === 'aiopslab'));
  });

  it('a reused cluster: AIOpsLab initialises during the check; the agent and its conversation wait for it', async () => {
    h.standins.delay('kubectl-get-nodes', 4);
    try {
      const { task, logs, llmCalls, conversations } = await runTask();
      expect(task.status, JSON.stringify(task)).toBe('completed');
      expect(task.result).toMatchObject({ success: true, reward: 1, steps: 2 });
      const cluster = phaseIndex(logs, 'cluster');
      expect(logs[cluster]!.context.action).toBe('reused');
      // AIOpsLab had started its init (it prints the session id first) before the check's outcome was written …
      expect(firstIndex(logs, (l) => l.context.source === 'aiopslab' && l.message.startsWith('Session ID'))).toBeLessThan(cluster);
      // … and the run's record (its conversation) and the first step only after it.
      expect(phaseIndex(logs, 'run')).toBeGreaterThan(cluster);
      // The bridge was the one the worker kept started after the previous task.
      expect(logs[phaseIndex(logs, 'run')]!.context.bridge).toBe('warm');
      expect(phaseIndex(logs, 'step')).toBeGreaterThan(cluster);
      expect(task.result.phase_durations_ms).toMatchObject({ cluster_check_alongside_run: expect.any(Number), cluster_wait: expect.any(Number) });
      expect(llmCalls).toBe(2);
      expect(conversations).toHaveLength(1);
    } finally {
      h.standins.clearInjections();
    }
  });

  it('a cluster the check must recreate: the run already started is stopped first, the agent never called, and the task runs on the new cluster', async () => {
    const [name] = h.standins.clusterNames();
    h.standins.setNodeReady(name!, `${name}-control-plane`, false);
    h.standins.delay('kubectl-get-nodes', 4);
    const createsBefore = h.standins.callsMatching('kind', ['create', 'cluster']).length;
    try {
      const { task, logs, llmCalls, conversations } = await runTask();
      expect(task.status, JSON.stringify(task)).toBe('completed');
      const stopped = firstIndex(logs, (l) => l.message.startsWith('The run started alongside the cluster check was stopped'));
      expect(stopped).toBeGreaterThan(-1);
      // The early run had got into AIOpsLab before it was stopped.
      expect(firstIndex(logs, (l) => l.context.source === 'aiopslab')).toBeLessThan(stopped);
      const cluster = logs.filter((l) => l.context.phase === 'cluster' && l.context.action);
      expect(cluster.map((l) => l.context.action)).toEqual(['recreated']);
      expect(String(cluster[0]!.message)).toContain('NotReady');
      expect(logs.filter((l) => l.context.phase === 'run').map((l) => l.context.bridge)).toEqual(['after_check']);
      expect(h.standins.callsMatching('kind', ['create', 'cluster']).length).toBe(createsBefore + 1);
      expect(llmCalls).toBe(2);
      expect(conversations).toHaveLength(1);
      expect(task.result.phase_durations_ms.cluster_check_alongside_run).toBeUndefined();
      expect(processesIn(path.join(h.stateDir, 'tasks', task.id))).toEqual([]);
    } finally {
      h.standins.clearInjections();
    }
  });

  it('a check that fails once and then passes: the early run is stopped, and the task still completes with one conversation', async () => {
    h.standins.fail('kubectl-get-nodes', 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?', { times: 1 });
    try {
      const { task, logs, llmCalls, conversations } = await runTask();
      expect(task.status, JSON.stringify(task)).toBe('completed');
      expect(logs.some((l) => l.message.startsWith('The run started alongside the cluster check was stopped'))).toBe(true);
      expect(llmCalls).toBe(2);
      expect(conversations).toHaveLength(1);
      expect(processesIn(path.join(h.stateDir, 'tasks', task.id))).toEqual([]);
    } finally {
      h.standins.clearInjections();
    }
  });

  it('keeps the next task\'s bridge started while the worker waits, and stops it with the service', async () => {
    // One process once its start-up is over (a pyenv shim, for one, runs a few of its own): the bridge.
    const workers = path.join(h.stateDir, 'workers');
    const deadline = Date.now() + 30_000;
    while (processesIn(workers).length !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const [pid] = processesIn(workers);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('aiopslab_bridge.py');
    await h.close();
    closed = true;
    expect(processesIn(h.stateDir)).toEqual([]);
  });
});
