/**
 * Cancel, task timeout and phase time limits (INTERFACE §10.8): in the loop the pending get_action is
 * failed so AIOpsLab recovers its fault; elsewhere SIGTERM (handled like Ctrl+C, so atexit recovery
 * runs), then SIGKILL of the whole process group after the grace period.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bridgeEnvironment } from '../src/bridge/bridgeEnvironment.js';
import { BRIDGE_SCRIPT } from '../src/packagePaths.js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { summarizeEpisode } from '../src/bridge/taskOutcome.js';
import { FIXTURE_AIOPSLAB_DIR, ScriptedAgent, createEpisodeHarness, shell, submit, type EpisodeHarness } from './fixtures/agents.js';
import { isAlive } from './helpers/processes.js';

let h: EpisodeHarness;
beforeAll(() => {
  h = createEpisodeHarness();
});
afterAll(() => h.cleanup());

function replicas(name: string): number | undefined {
  return h.standins.clusterState(h.cluster.name)!.objects[`test-social-network/deployment/${name}`]?.spec?.replicas;
}

/** A killed process may linger as a zombie until its new parent reaps it: that counts as dead. */

async function eventuallyDead(pid: number, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('cancel while the agent is thinking', () => {
  it('fails the pending get_action; AIOpsLab recovers the fault and the bridge exits on its own', async () => {
    const agent = new ScriptedAgent([shell('kubectl get deployment user-service -n test-social-network -o json'), { hang: true }]);
    const ac = new AbortController();
    const running = h.run({ problemId: 'scale_pod_zero_social_net-detection-1', agent, signal: ac.signal, stopGraceSeconds: 5 });
    await agent.waitForRequest(2);
    expect(JSON.parse(agent.steps[0]!.response).spec.replicas).toBe(0); // the fault is in place
    const t0 = Date.now();
    ac.abort('cancelled');
    const { result, stdout } = await running;
    // Well inside the grace period: no signal was needed (exit code 0 below).
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.outcome).toBe('aborted_in_loop');
    expect(result.stoppedBy).toBe('cancelled');
    expect(result.error).toMatchObject({ phase: 'loop', type: 'StopRequested' });
    expect(result.exitCode).toBe(0);
    expect(result.exitSignal).toBeNull();
    expect(result.stopClean).toBe(true);
    expect(stdout()).toContain('Some exception happened. Recovering the injected fault...');
    expect(replicas('user-service')).toBe(1);
    // The trace up to the stop is kept.
    expect((result.session!.trace as unknown[]).length).toBe(2);
    const s = summarizeEpisode('scale_pod_zero_social_net-detection-1', result);
    expect(s).toMatchObject({ status: 'failed', errorType: 'cancelled' });
  }, 120_000);
});

describe('a step that runs past the step time limit', () => {
  it('is interrupted with SIGTERM; the atexit handler recovers the fault and the cluster is marked dirty', async () => {
    const agent = new ScriptedAgent([shell('sleep 30'), submit('Yes')]);
    const t0 = Date.now();
    const { result, stdout } = await h.run({ problemId: 'scale_pod_zero_social_net-detection-1', agent, timeouts: { initSeconds: 60, stepSeconds: 2, teardownSeconds: 60 }, stopGraceSeconds: 5 });
    expect(Date.now() - t0).toBeLessThan(90_000);
    expect(result.outcome).toBe('aborted_in_loop');
    expect(result.error).toMatchObject({ phase: 'loop', type: 'PhaseTimeout' });
    expect(result.error!.message).toContain('step 1 did not finish within 2 s');
    expect(result.exitCode).toBe(3);
    expect(result.stopClean).toBe(false);
    expect(stdout()).toContain('Recovering fault before exit...');
    expect(replicas('user-service')).toBe(1);
    expect(summarizeEpisode('scale_pod_zero_social_net-detection-1', result).errorType).toBe('aiopslab_loop_failed');
  }, 120_000);
});

describe('the task timeout during init', () => {
  it('SIGTERMs the bridge; the result says who stopped it', async () => {
    const agent = new ScriptedAgent([submit('Yes')]);
    const ac = new AbortController();
    // Abort once init hangs in the workload wait, after the fault was injected.
    const onOutput = (line: string) => {
      if (line === 'Job created: wrk2-job') setTimeout(() => ac.abort('timeout'), 300);
    };
    const running = h.run({ problemId: 'pod_kill_hotel_res-detection-1', agent, signal: ac.signal, onOutput });
    const { result, stdout } = await running;
    expect(result.stoppedBy).toBe('timeout');
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.error).toMatchObject({ phase: 'init', type: 'Terminated' });
    expect(result.exitCode).toBe(3);
    expect(result.stopClean).toBe(false);
    expect(stdout()).toContain('Recovering fault before exit...');
    expect(summarizeEpisode('pod_kill_hotel_res-detection-1', result)).toMatchObject({ status: 'failed', errorType: 'timeout' });
  }, 120_000);
});

describe('a bridge that does not stop on SIGTERM', () => {
  it('is killed with its whole process group after the grace period', async () => {
    const agent = new ScriptedAgent([submit('Yes')]);
    const ac = new AbortController();
    const onOutput = (line: string) => {
      if (line === '== Fault Injection ==') setTimeout(() => ac.abort('cancelled'), 300);
    };
    const running = h.run({ problemId: 'pod_failure_hotel_res-detection-1', agent, signal: ac.signal, stopGraceSeconds: 2, onOutput });
    const { result, stdout, workDir } = await running;
    // SIGTERM arrived inside AIOpsLab's critical section, which defers it like Ctrl+C.
    expect(stdout()).toContain('Ctrl+C detected! But deferring the effect for consistency...');
    expect(result.exitSignal).toBe('SIGKILL');
    expect(result.stopClean).toBe(false);
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.stoppedBy).toBe('cancelled');
    expect(result.error).toMatchObject({ phase: 'init', type: 'BridgeExited' });
    const injectorPid = Number(readFileSync(path.join(workDir, 'injector.pid'), 'utf8'));
    expect(await eventuallyDead(injectorPid)).toBe(true);
  }, 120_000);
});

describe('a signal aborted before the run', () => {
  it('starts nothing', async () => {
    const ac = new AbortController();
    ac.abort('shutdown');
    const before = h.standins.calls().length;
    const { result, events } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), signal: ac.signal });
    expect(events).toEqual([]);
    expect(h.standins.calls().length).toBe(before);
    expect(result).toMatchObject({ outcome: 'aborted_in_init', stoppedBy: 'shutdown', stopClean: true, exitCode: null });
  });
});

describe('a worker that disappears mid-run', () => {
  it('closes fd 3; the bridge stops itself and AIOpsLab\'s atexit handler recovers the fault', async () => {
    const workDir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-orphan-'));
    onTestFinished(() => rmSync(workDir, { recursive: true, force: true }));
    const env = bridgeEnvironment({ ...h.standins.env, PYTHONDONTWRITEBYTECODE: '1' }, { cluster: h.cluster, tmpDir: path.join(workDir, 'tmp') });
    const child = spawn(h.python, ['-u', BRIDGE_SCRIPT], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const channel = child.stdio[3] as Socket;
    let stdout = '';
    const hung = new Promise<void>((resolve) => {
      child.stdout!.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes('Job created: wrk2-job')) resolve();
      });
    });
    channel.once('data', () => {
      channel.write(JSON.stringify({
        type: 'run', protocol: 1, problem_id: 'pod_kill_hotel_res-detection-1', max_steps: 5, aiopslab_dir: FIXTURE_AIOPSLAB_DIR,
        results_dir: path.join(workDir, 'results'), tmp_dir: path.join(workDir, 'tmp'), lock_dir: workDir,
        cluster: { name: h.cluster.name, control_plane_container: h.cluster.controlPlaneContainer }, host_shell_expansion: false, agent_name: 'test',
      }) + '\n');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await hung;
    expect(h.standins.clusterState(h.cluster.name)!.objects['test-hotel-reservation/configmap/pod-kill-fault']).toBeDefined();
    channel.destroy(); // what the kernel does to the pipe when the worker process is killed
    expect(await exited).toBe(3);
    expect(stdout).toContain('Recovering fault before exit...');
    expect(h.standins.clusterState(h.cluster.name)!.objects['test-hotel-reservation/configmap/pod-kill-fault']).toBeUndefined();
  }, 120_000);
});
