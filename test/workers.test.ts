/**
 * Workers running real tasks through the whole service (stand-ins for kind/kubectl/AIOpsLab/LLM):
 * cancel and timeout really stop a running task, a forced stop dirties the cluster which is then
 * recreated, workers are isolated from each other, graceful shutdown requeues, scaling works.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from './helpers/database.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

const fence = (s: string) => `\`\`\`\n${s}\n\`\`\``;
/** An agent that investigates forever (slowly), so the task stays running until stopped. */
const investigateForever = () => ({ kind: 'slow' as const, delayMs: 200, reply: { content: fence('exec_shell("kubectl get pods -n test-social-network")') } });

let h: ServiceHarness | null = null;
afterEach(async () => { await h?.close(); h = null; });

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function logsOf(id: string): Promise<Array<{ message: string; timestamp: string; context: Record<string, unknown> }>> {
  return (await h!.api(`/api/v1/tasks/${id}/logs?limit=1000`)).body.logs;
}

describe('stopping running tasks', { timeout: 180_000 }, () => {
  it('a cancel stops the run within seconds; AIOpsLab recovers its fault; the worker is free again', async () => {
    h = await startServiceHarness({ workers: 1 });
    h.llm.setPolicy(investigateForever);
    const task = await h.submit({ problem_id: 'scale_pod_zero_social_net-detection-1', parameters: { max_steps: 500 } });
    // Wait until the agent is in its loop (a few steps done).
    await waitFor(async () => (await logsOf(task.id)).filter((l) => l.context.phase === 'step').length >= 2, 60_000, 'steps');
    const cluster = 'aiopslab-worker-001-internal';
    const replicas = () => h!.standins.clusterState(cluster)?.objects['test-social-network/deployment/user-service']?.spec?.replicas;
    expect(replicas()).toBe(0); // the injected fault
    const t0 = Date.now();
    const r = await h.api(`/api/v1/tasks/${task.id}/cancel`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('cancelled');
    const worker = await waitFor(async () => {
      const w = (await h!.api('/api/v1/workers/worker-001-internal')).body;
      return w.status === 'idle' && w.current_task_id === null ? w : null;
    }, 15_000, 'worker idle');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(worker.cluster_dirty).toBe(false);
    expect(replicas()).toBe(1); // recovered by AIOpsLab's own recovery path
    const final = (await h.api(`/api/v1/tasks/${task.id}`)).body;
    expect(final).toMatchObject({ status: 'cancelled', error_type: 'cancelled', result: { stopped_by: 'cancelled', outcome: 'aborted_in_loop' } });
    // The worker takes the next task.
    h.llm.reset();
    const next = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1' });
    expect((await h.waitForTask(next.id, ['completed', 'failed'], 60_000)).status).toBe('completed');
  });

  it('a timeout (found by the maintenance pass) stops the run and records status timeout', async () => {
    h = await startServiceHarness({ workers: 1 });
    h.llm.setPolicy(investigateForever);
    const task = await h.submit({ problem_id: 'scale_pod_zero_social_net-detection-1', parameters: { max_steps: 500, timeout_minutes: 1 } });
    await waitFor(async () => (await logsOf(task.id)).some((l) => l.context.phase === 'step'), 60_000, 'first step');
    // Age the run past its timeout instead of waiting a minute.
    await h.db.pool.query(`UPDATE tasks SET created_at = now() - interval '2 minutes', started_at = now() - interval '61 seconds' WHERE id = $1`, [task.id]);
    const final = await h.waitForTask(task.id, ['timeout'], 10_000);
    expect(final.error_type).toBe('timeout');
    await waitFor(async () => (await h!.api('/api/v1/workers/worker-001-internal')).body.status === 'idle', 15_000, 'worker idle');
    const after = (await h.api(`/api/v1/tasks/${task.id}`)).body;
    expect(after.result).toMatchObject({ stopped_by: 'timeout' });
    expect((await logsOf(task.id)).map((l) => l.message)).toContain('Task timed out after 1 minute(s)');
  });

  it('a run that had to be killed marks the cluster dirty, and the next task recreates it', async () => {
    h = await startServiceHarness({ workers: 1, env: { STOP_GRACE_SECONDS: '1' } });
    // Fault injection hangs inside a critical section that defers SIGTERM: only SIGKILL ends it.
    const task = await h.submit({ problem_id: 'pod_failure_hotel_res-detection-1' });
    // The fixture's injector writes its helper's pid once it is inside the critical section.
    const pidFile = path.join(h.stateDir, 'tasks', task.id, 'attempt-1', 'injector.pid');
    await waitFor(async () => existsSync(pidFile), 90_000, 'fault injection in progress');
    await h.api(`/api/v1/tasks/${task.id}/cancel`, { method: 'POST' });
    const w = await waitFor(async () => {
      const x = (await h!.api('/api/v1/workers/worker-001-internal')).body;
      return x.status === 'idle' ? x : null;
    }, 20_000, 'worker idle');
    expect(w.cluster_dirty).toBe(true);
    const creates = () => h!.standins.callsMatching('kind', ['create', 'cluster']).length;
    const deletes = () => h!.standins.callsMatching('kind', ['delete', 'cluster']).length;
    expect([creates(), deletes()]).toEqual([1, 0]);
    const next = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1' });
    const done = await h.waitForTask(next.id, ['completed', 'failed'], 60_000);
    expect(done.status).toBe('completed');
    expect([creates(), deletes()]).toEqual([2, 1]);
    expect((await logsOf(next.id)).some((l) => /Cluster aiopslab-worker-001-internal recreated/.test(l.message))).toBe(true);
    expect((await h.api('/api/v1/workers/worker-001-internal')).body.cluster_dirty).toBe(false);
  });
});

describe('isolation, shutdown and scaling', { timeout: 180_000 }, () => {
  it('two workers run at once, each on its own cluster, kubeconfig and node container', async () => {
    h = await startServiceHarness({ workers: 2 });
    h.llm.setPolicy(({ body }) => {
      const turns = body.messages.filter((m) => m.role === 'assistant').length;
      return turns < 2 ? { content: fence('exec_shell("echo $HOME && kubectl get pods -A")') } : { content: fence('submit("Yes")') };
    });
    const a = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1' });
    const b = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-2' });
    const [da, db] = await Promise.all([h.waitForTask(a.id, ['completed', 'failed'], 90_000), h.waitForTask(b.id, ['completed', 'failed'], 90_000)]);
    expect([da.status, db.status]).toEqual(['completed', 'completed']);
    expect(new Set([da.worker_id, db.worker_id]).size).toBe(2);
    expect(h.standins.clusterNames().sort()).toEqual(['aiopslab-worker-001-internal', 'aiopslab-worker-002-internal']);
    const execs = h.standins.calls('docker').filter((c) => c.argv[0] === 'exec');
    const containers = new Set(execs.map((c) => c.argv.find((x) => x.endsWith('-control-plane'))));
    expect(containers).toEqual(new Set(['aiopslab-worker-001-internal-control-plane', 'aiopslab-worker-002-internal-control-plane']));
    // The agent's command reached the node verbatim: no host-shell expansion of $HOME.
    expect(execs.some((c) => c.argv.some((x) => x.includes('echo $HOME')))).toBe(true);
    const kubeconfigs = new Set(h.standins.calls('kubectl').map((c) => c.env.KUBECONFIG).filter(Boolean));
    expect(kubeconfigs.size).toBeGreaterThanOrEqual(2);
    expect(h.standins.calls('kubectl').some((c) => c.argv.includes('use-context'))).toBe(false);
  });

  it('graceful shutdown stops and requeues a running task; the next start runs it', async () => {
    const db = await createTestDatabase();
    try {
      h = await startServiceHarness({ workers: 1, db });
      h.llm.setPolicy(investigateForever);
      const task = await h.submit({ problem_id: 'scale_pod_zero_social_net-detection-1', parameters: { max_steps: 500 } });
      await waitFor(async () => (await logsOf(task.id)).some((l) => l.context.phase === 'step'), 60_000, 'first step');
      await h.close();
      h = null;
      const row = (await db.pool.query(`SELECT status, attempt, max_attempts, worker_id FROM tasks WHERE id = $1`, [task.id])).rows[0];
      expect(row).toEqual({ status: 'pending', attempt: 1, max_attempts: 3, worker_id: null });
      const w = (await db.pool.query(`SELECT status FROM workers WHERE id = 'worker-001-internal'`)).rows[0];
      expect(w.status).toBe('offline');
      h = await startServiceHarness({ workers: 1, db });
      const done = await h.waitForTask(task.id, ['completed', 'failed'], 90_000);
      expect(done).toMatchObject({ status: 'completed', attempt: 2 });
      const convs = (await h.api(`/api/v1/llm-conversations/task/${task.id}/conversations`)).body;
      expect(convs).toHaveLength(2);
      await h.close();
      h = null;
    } finally {
      await db.drop();
    }
  });

  it('scales the internal pool up and down', async () => {
    h = await startServiceHarness({ workers: 1 });
    const up = await h.api('/api/v1/workers/internal/scale?num_workers=3', { method: 'POST' });
    expect(up.body).toMatchObject({ previous_workers: 1, current_workers: 3, status: 'scaled' });
    const live = async () => (await h!.api('/api/v1/workers')).body.workers.filter((w: { status: string }) => w.status !== 'offline').map((w: { id: string }) => w.id);
    expect(await live()).toEqual(['worker-001-internal', 'worker-002-internal', 'worker-003-internal']);
    const down = await h.api('/api/v1/workers/internal/scale', { method: 'POST', body: { num_workers: 1 } });
    expect(down.body).toMatchObject({ previous_workers: 3, current_workers: 1 });
    await waitFor(async () => (await live()).length === 1, 10_000, 'scale down');
    const status = (await h.api('/api/v1/workers/internal/status')).body;
    expect(status).toMatchObject({ enabled: true, running: true, num_workers: 1 });
    const stop = await h.api('/api/v1/workers/internal/stop', { method: 'POST' });
    expect(stop.body.status).toBe('stopped');
    expect(await live()).toEqual([]);
    const start = await h.api('/api/v1/workers/internal/start', { method: 'POST' });
    expect(start.body).toMatchObject({ status: 'started', workers: 1 });
    expect(await live()).toEqual(['worker-001-internal']);
  });
});
