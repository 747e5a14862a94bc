/**
 * The bridge a worker keeps started between tasks (src/bridge/warmBridge.ts), with the real bridge
 * and the fixture AIOpsLab: taken by a task with the same parameters and run in the task's folder;
 * refused (and stopped) for other parameters, when dead, or once older than its maximum age;
 * stopped on close; never leaves a process or its start-up folder behind.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarmBridge, type WarmBridgeSpec } from '../src/bridge/warmBridge.js';
import { FIXTURE_AIOPSLAB_DIR, ScriptedAgent, createEpisodeHarness, submit, type EpisodeHarness } from './fixtures/agents.js';
import { isAlive } from './helpers/processes.js';

let h: EpisodeHarness;
let workerDir: string;
let spec: WarmBridgeSpec;
beforeAll(() => {
  h = createEpisodeHarness({ clusterName: 'aiopslab-warm' });
  mkdirSync(path.join(h.cluster.home, '.kube'), { recursive: true });
  copyFileSync(h.cluster.kubeconfig, path.join(h.cluster.home, '.kube', 'config'));
  workerDir = path.join(path.dirname(h.cluster.home), 'warm-worker');
  mkdirSync(workerDir, { recursive: true });
  spec = { python: h.python, aiopslabDir: FIXTURE_AIOPSLAB_DIR, cluster: h.cluster };
});
afterAll(() => h.cleanup());


const warmFolders = () => readdirSync(workerDir).filter((f) => f.startsWith('warm-'));
const newWarm = (maxAgeMs?: number) => new WarmBridge({ workerDir, baseEnv: { ...h.standins.env, PYTHONDONTWRITEBYTECODE: '1' }, secretValues: [], maxAgeMs });

async function waitUntil(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a bridge kept warm between tasks', () => {
  it('is taken by a task with the same parameters and runs it in the task\'s folder', async () => {
    const warm = newWarm();
    await warm.fill(spec);
    const pid = warm.pid;
    expect(isAlive(pid)).toBe(true);
    expect(warmFolders()).toHaveLength(1);
    const prepared = await warm.take(spec);
    expect(prepared?.pid).toBe(pid);
    expect(warm.pid).toBeUndefined();
    const workDir = path.join(path.dirname(h.cluster.home), 'warm-tasks', 'task-1');
    const run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([submit('Yes')]), workDir, prepared });
    expect(run.result.error).toBeNull();
    expect(run.result.outcome).toBe('submitted');
    expect((run.events.find((e) => e.type === 'hello') as { pid: number }).pid).toBe(pid);
    // AIOpsLab wrote its session into the task's folder, not the one the bridge started in.
    expect(readdirSync(path.join(workDir, 'results')).length).toBeGreaterThan(0);
    await waitUntil(() => warmFolders().length === 0);
    expect(isAlive(pid)).toBe(false);
  });

  it('is stopped, not handed out, for other parameters or when its process died', async () => {
    const warm = newWarm();
    await warm.fill(spec);
    const pid = warm.pid;
    expect(await warm.take({ ...spec, python: `${spec.python}-other` })).toBeNull();
    expect(isAlive(pid)).toBe(false);

    await warm.fill(spec);
    process.kill(warm.pid!, 'SIGKILL');
    await warm.heldExited();
    expect(await warm.take(spec)).toBeNull();
    expect(warmFolders()).toEqual([]);
  });

  it('is stopped once older than its maximum age', async () => {
    const warm = newWarm(500);
    await warm.fill(spec);
    const pid = warm.pid;
    expect(isAlive(pid)).toBe(true);
    await waitUntil(() => !isAlive(pid));
    expect(await warm.take(spec)).toBeNull();
    await waitUntil(() => warmFolders().length === 0);
  });

  it('is stopped on close, and none is started after it', async () => {
    const warm = newWarm();
    await warm.fill(spec);
    const pid = warm.pid;
    await warm.close();
    expect(isAlive(pid)).toBe(false);
    await warm.fill(spec);
    expect(warm.pid).toBeUndefined();
    expect(warmFolders()).toEqual([]);
  });

  it('starts nothing while the worker has no cluster kubeconfig yet', async () => {
    const warm = newWarm();
    const home = path.join(path.dirname(h.cluster.home), 'empty-home');
    await warm.fill({ ...spec, cluster: { ...spec.cluster, home } });
    expect(warm.pid).toBeUndefined();
    expect(existsSync(home)).toBe(false);
  });
});
