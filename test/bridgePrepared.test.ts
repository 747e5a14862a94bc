/**
 * A bridge started during the cluster check (src/bridge/preparedBridge.ts), with the real bridge and
 * the fixture AIOpsLab: the run adopts it and gets the same result as from a fresh one; a kubeconfig
 * changed by the check makes the run stop it and start another; one never adopted leaves no process.
 */
import { copyFileSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreparedBridge } from '../src/bridge/preparedBridge.js';
import type { BridgeEvent } from '../src/bridge/protocol.js';
import { FIXTURE_AIOPSLAB_DIR, ScriptedAgent, createEpisodeHarness, shell, submit, type EpisodeHarness } from './fixtures/agents.js';
import { isAlive } from './helpers/processes.js';

let h: EpisodeHarness;
let tasks = 0;
beforeAll(() => {
  h = createEpisodeHarness({ clusterName: 'aiopslab-prepared' });
  // What the worker's cluster check leaves: the kubeconfig also in the private HOME.
  mkdirSync(path.join(h.cluster.home, '.kube'), { recursive: true });
  copyFileSync(h.cluster.kubeconfig, path.join(h.cluster.home, '.kube', 'config'));
});
afterAll(() => h.cleanup());


async function start(): Promise<{ prepared: PreparedBridge; workDir: string; output: string[] }> {
  const workDir = path.join(path.dirname(h.cluster.home), 'prepared-tasks', `task-${++tasks}`);
  mkdirSync(workDir, { recursive: true });
  const output: string[] = [];
  const prepared = await PreparedBridge.start({
    python: h.python, aiopslabDir: FIXTURE_AIOPSLAB_DIR, workDir, cluster: h.cluster,
    baseEnv: { ...h.standins.env, PYTHONDONTWRITEBYTECODE: '1' }, onOutput: (line) => output.push(line),
  });
  expect(prepared).not.toBeNull();
  return { prepared: prepared!, workDir, output };
}

const phases = (events: BridgeEvent[]) => events.filter((e) => e.type === 'phase').map((e) => (e as { phase: string }).phase);

describe('a bridge started during the cluster check', () => {
  it('is adopted by the run once AIOpsLab is imported, with the same outcome as a fresh bridge', async () => {
    const { prepared, workDir } = await start();
    expect(await prepared.prepared).toBe(true);
    const pid = prepared.pid;
    const run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([shell('kubectl get pods -n test-social-network'), submit('Yes')]), workDir, prepared });
    expect(run.result.error).toBeNull();
    expect(run.result.outcome).toBe('submitted');
    expect(run.result.results!['Detection Accuracy']).toBe('Correct');
    expect(run.result.stopClean).toBe(true);
    // One process, said hello once, imported ahead of the run, then ran it.
    expect(run.events.filter((e) => e.type === 'hello')).toHaveLength(1);
    expect((run.events.find((e) => e.type === 'hello') as { pid: number }).pid).toBe(pid);
    expect(phases(run.events).slice(0, 3)).toEqual(['prepared', 'startup_started', 'init_started']);
    expect(run.result.phaseDurationsMs.startup_hidden).toBeGreaterThanOrEqual(0);
    expect(isAlive(pid)).toBe(false);
  });

  it('is adopted before it has finished importing: the run starts when it has', async () => {
    const { prepared, workDir } = await start();
    const run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([submit('Yes')]), workDir, prepared });
    expect(run.result.outcome).toBe('submitted');
    expect(phases(run.events)[0]).toBe('prepared');
  });

  it('is stopped, and a fresh bridge runs, when the check changed the kubeconfig AIOpsLab read at import', async () => {
    const { prepared, workDir } = await start();
    expect(await prepared.prepared).toBe(true);
    const pid = prepared.pid;
    const file = path.join(h.cluster.home, '.kube', 'config');
    const before = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, `${before}\n# rewritten by the cluster check\n`);
      const run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([submit('Yes')]), workDir, prepared });
      expect(run.result.outcome).toBe('submitted');
      expect(isAlive(pid)).toBe(false);
      expect((run.events.find((e) => e.type === 'hello') as { pid: number }).pid).not.toBe(pid);
      expect(phases(run.events)).not.toContain('prepared');
      expect(run.result.phaseDurationsMs.startup_hidden).toBeUndefined();
    } finally {
      writeFileSync(file, before);
    }
  });

  it('is replaced by a fresh bridge when it dies after being adopted but before the run began', async () => {
    const { prepared, workDir } = await start();
    expect(await prepared.prepared).toBe(true);
    const pid = prepared.pid!;
    // Stopped, it cannot act on `run`; killed as soon as the run has adopted it (its kept events replayed).
    process.kill(pid, 'SIGSTOP');
    let killed = false;
    const run = await h.run({
      problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([submit('Yes')]), workDir, prepared,
      onEvent: () => { if (!killed) { killed = true; process.kill(pid, 'SIGKILL'); } },
    });
    expect(killed).toBe(true);
    expect(run.result.error).toBeNull();
    expect(run.result.outcome).toBe('submitted');
    const hellos = run.events.filter((e) => e.type === 'hello') as Array<{ pid: number }>;
    expect(hellos.map((e) => e.pid)).toEqual([pid, expect.any(Number)]);
    expect(hellos[1]!.pid).not.toBe(pid);
    expect(run.output.some((o) => o.line.includes('exited (code none, signal SIGKILL) before the run began'))).toBe(true);
  });

  it('leaves no process when it is never adopted (a failed check, a run stopped before it started)', async () => {
    const a = await start();
    expect(isAlive(a.prepared.pid)).toBe(true);
    await a.prepared.discard();
    expect(isAlive(a.prepared.pid)).toBe(false);

    const b = await start();
    const stop = new AbortController();
    stop.abort('cancelled');
    const run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([submit('Yes')]), workDir: b.workDir, prepared: b.prepared, signal: stop.signal });
    expect(run.result.stoppedBy).toBe('cancelled');
    expect(isAlive(b.prepared.pid)).toBe(false);
  });

  it('is not started before the worker has a kubeconfig (its first cluster is still to be created)', async () => {
    const home = path.join(path.dirname(h.cluster.home), 'empty-home');
    mkdirSync(home, { recursive: true });
    const p = await PreparedBridge.start({
      python: h.python, aiopslabDir: FIXTURE_AIOPSLAB_DIR, workDir: path.join(home, 'task'), cluster: { ...h.cluster, home },
      baseEnv: h.standins.env, onOutput: () => {},
    });
    expect(p).toBeNull();
  });
});
