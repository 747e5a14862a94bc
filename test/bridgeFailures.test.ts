/**
 * Runs that fail: an exception or a hang in init, an exception in eval, a failing teardown, an agent
 * that throws, and a bridge that cannot start. Each keeps AIOpsLab's fault recovery working and maps
 * to a typed error.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import { summarizeEpisode } from '../src/bridge/taskOutcome.js';
import { FIXTURE_AIOPSLAB_DIR, ScriptedAgent, createEpisodeHarness, shell, submit, type EpisodeHarness } from './fixtures/agents.js';

let h: EpisodeHarness;
beforeAll(() => {
  h = createEpisodeHarness();
});
afterAll(() => h.cleanup());

function configMap(name: string, namespace = 'test-hotel-reservation') {
  return h.standins.clusterState(h.cluster.name)!.objects[`${namespace}/configmap/${name}`];
}

function kubectlIndex(predicate: (argv: string[]) => boolean, from = 0): number {
  return h.standins.calls().findIndex((c, i) => i >= from && c.tool === 'kubectl' && predicate(c.argv));
}

describe('an exception in init_problem after the fault was injected', () => {
  it('fails the task as aiopslab_init_failed, and AIOpsLab\'s atexit handler still recovers the fault', async () => {
    const start = h.standins.calls().length;
    const agent = new ScriptedAgent([submit('Yes')]);
    const { result, stdout } = await h.run({ problemId: 'revoke_auth_mongodb-detection-1', agent });
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.error).toMatchObject({ phase: 'init', type: 'RuntimeError' });
    expect(result.error!.message).toContain('ImagePullBackOff');
    expect(result.error!.traceback).toContain('start_workload');
    expect(agent.requests).toHaveLength(0);
    // Injected, then recovered by the atexit handler when the bridge exited normally.
    const injected = kubectlIndex((a) => a[0] === 'apply' && (a[2] ?? '').endsWith('revoke-auth-fault.yaml'), start);
    const recovered = kubectlIndex((a) => a.join(' ').startsWith('delete configmap revoke-auth-fault'), start);
    expect(injected).toBeGreaterThan(-1);
    expect(recovered).toBeGreaterThan(injected);
    expect(configMap('revoke-auth-fault')).toBeUndefined();
    expect(stdout()).toContain('Recovering fault before exit...');
    expect(result.exitCode).toBe(0);
    // The app may be half deployed: the cluster is not clean.
    expect(result.stopClean).toBe(false);
    const s = summarizeEpisode('revoke_auth_mongodb-detection-1', result);
    expect(s.status).toBe('failed');
    expect(s.errorType).toBe('aiopslab_init_failed');
    expect(s.errorDetails).toContain('RuntimeError in init_problem: wrk2 job failed');
  }, 120_000);
});

describe('a hang in init_problem', () => {
  it('is stopped at the init time limit with SIGTERM, which still runs the atexit fault recovery', async () => {
    const agent = new ScriptedAgent([submit('Yes')]);
    const t0 = Date.now();
    // Generous enough to reach the hang (after the injection) on a loaded machine.
    const { result, stdout } = await h.run({ problemId: 'pod_kill_hotel_res-detection-1', agent, timeouts: { initSeconds: 30, stepSeconds: 30, teardownSeconds: 30 }, stopGraceSeconds: 5 });
    const elapsed = Date.now() - t0;
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.error).toMatchObject({ phase: 'init', type: 'PhaseTimeout' });
    expect(result.error!.message).toContain('within 30 s');
    // SIGTERM became a normal exit (code 3), not a kill.
    expect(result.exitSignal).toBeNull();
    expect(result.exitCode).toBe(3);
    expect(stdout()).toContain('Recovering fault before exit...');
    expect(configMap('pod-kill-fault')).toBeUndefined();
    expect(result.stopClean).toBe(false);
    expect(result.stoppedBy).toBeNull();
    expect(elapsed).toBeLessThan(30_000 + 5_000 + 10_000);
    expect(summarizeEpisode('pod_kill_hotel_res-detection-1', result)).toMatchObject({ status: 'failed', errorType: 'aiopslab_init_failed' });
  }, 120_000);
});

describe('an exception in eval', () => {
  it('is failed_in_eval; the bridge recovers the fault and removes the app, so the cluster stays clean', async () => {
    const agent = new ScriptedAgent([submit([['geo']])]);
    const { result, events } = await h.run({ problemId: 'wrong_bin_usage-localization-1', agent });
    expect(result.outcome).toBe('failed_in_eval');
    expect(result.error).toMatchObject({ phase: 'eval', type: 'TypeError' });
    expect(result.error!.message).toContain('unhashable');
    expect(result.results).toBeNull();
    // The trace up to the failure is kept.
    expect((result.session!.trace as unknown[]).length).toBe(2);
    const cleanup = events.find((e) => e.type === 'cleanup');
    expect(cleanup).toMatchObject({ after: 'eval', recovered: true, app_cleaned: true, error: null });
    expect(configMap('wrong-bin-fault')).toBeUndefined();
    expect(h.standins.clusterState(h.cluster.name)!.objects['/namespace/test-hotel-reservation']).toBeUndefined();
    expect(result.stopClean).toBe(true);
    const s = summarizeEpisode('wrong_bin_usage-localization-1', result);
    expect(s).toMatchObject({ status: 'failed', errorType: 'aiopslab_eval_failed' });
    expect(s.result).toMatchObject({ outcome: 'failed_in_eval', success: false, reward: 0 });
  }, 120_000);
});

describe('a failure in teardown after the results were saved', () => {
  it('keeps the results and completes the task, but the cluster is dirty', async () => {
    const agent = new ScriptedAgent([submit('Yes')]);
    const { result } = await h.run({ problemId: 'network_delay_hotel_res-detection-1', agent });
    expect(result.outcome).toBe('failed_in_teardown');
    expect(result.error).toMatchObject({ phase: 'teardown' });
    expect(result.error!.message).toContain("Namespace 'openebs' was not deleted");
    expect(result.results).toMatchObject({ 'Detection Accuracy': 'Correct' });
    expect(result.stopClean).toBe(false);
    const s = summarizeEpisode('network_delay_hotel_res-detection-1', result);
    expect(s.status).toBe('completed');
    expect(s.errorType).toBeNull();
    expect(s.errorDetails).toContain('teardown failed');
    expect(s.result).toMatchObject({ success: true, reward: 1, outcome: 'failed_in_teardown' });
  }, 120_000);
});

describe('an agent that throws', () => {
  it('aborts the loop through AIOpsLab\'s own recovery and keeps the agent\'s error code', async () => {
    const llmError = new AppError('llm_auth', 'OpenRouter rejected the API key (401)');
    const agent = new ScriptedAgent([shell('kubectl get deploy -n test-social-network'), { throw: llmError }]);
    const { result, stdout, events } = await h.run({ problemId: 'scale_pod_zero_social_net-detection-1', agent });
    expect(result.outcome).toBe('aborted_in_loop');
    expect(result.agentError).toBe(llmError);
    expect(result.error).toMatchObject({ phase: 'loop', type: 'AgentActionError' });
    expect(result.error!.message).toContain('llm_auth');
    expect(stdout()).toContain('Some exception happened. Recovering the injected fault...');
    expect(events.find((e) => e.type === 'cleanup')).toMatchObject({ after: 'loop', recovered: true, app_cleaned: true });
    expect(result.stopClean).toBe(true);
    expect(result.steps).toBe(1);
    const s = summarizeEpisode('scale_pod_zero_social_net-detection-1', result);
    expect(s).toMatchObject({ status: 'failed', errorType: 'llm_auth' });
    expect(s.errorDetails).toContain('OpenRouter rejected the API key');
  }, 120_000);

  it('configured secrets in the agent\'s error message never reach AIOpsLab', async () => {
    const key = 'sk-or-v1-leaky-key-0123456789';
    const agent = new ScriptedAgent([{ throw: new AppError('llm_auth', `Incorrect API key provided: ${key}`) }]);
    const { result, output } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent, secretValues: [key] });
    expect(result.error!.message).toContain('Incorrect API key provided: [redacted]');
    expect(JSON.stringify(result.error)).not.toContain(key);
    expect(JSON.stringify(result.session)).not.toContain(key);
    expect(output.some((o) => o.line.includes(key))).toBe(false);
  }, 120_000);

  it('an error without a known code becomes internal', async () => {
    const agent = new ScriptedAgent([{ throw: new Error('bug in the agent') }]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent });
    expect(result.outcome).toBe('aborted_in_loop');
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('internal');
  }, 120_000);
});

describe('a bridge that cannot start', () => {
  let brokenCheckout: string;
  beforeAll(() => {
    brokenCheckout = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-broken-'));
    cpSync(FIXTURE_AIOPSLAB_DIR, brokenCheckout, { recursive: true });
    rmSync(path.join(brokenCheckout, 'aiopslab', 'config.yml'));
  });
  afterAll(() => rmSync(brokenCheckout, { recursive: true, force: true }));

  it('a missing aiopslab/config.yml is a missing prerequisite, found before any cluster call', async () => {
    const before = h.standins.calls().length;
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), aiopslabDir: brokenCheckout });
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.error).toMatchObject({ phase: 'startup', type: 'FileNotFoundError' });
    expect(result.error!.message).toContain('config.yml');
    expect(h.standins.calls().length).toBe(before);
    expect(result.stopClean).toBe(true);
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('missing_prerequisite');
  }, 30_000);

  it('a kubeconfig without the kind-<cluster> context makes KubeCtl() raise: cluster_failed', async () => {
    const { result } = await h.run({
      problemId: 'k8s_target_port-misconfig-detection-1',
      agent: new ScriptedAgent([]),
      cluster: { ...h.cluster, context: 'kind-some-other-cluster' },
    });
    expect(result.error).toMatchObject({ phase: 'startup', type: 'ConfigException' });
    expect(result.error!.message).toContain('kind-some-other-cluster');
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('cluster_failed');
  }, 30_000);

  it('a Python that does not exist is reported, not thrown', async () => {
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), python: '/nonexistent/bin/python3' });
    expect(result.outcome).toBe('aborted_in_init');
    expect(result.error).toMatchObject({ phase: 'startup', type: 'SpawnError' });
    expect(result.error!.message).toContain('/nonexistent/bin/python3');
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('missing_prerequisite');
  }, 30_000);

  it('invalid options are a programmer error and reject', async () => {
    await expect(h.run({ problemId: 'x-detection-1', agent: new ScriptedAgent([]), maxSteps: 0 })).rejects.toThrow(/maxSteps/);
    await expect(h.run({ problemId: 'x-detection-1', agent: new ScriptedAgent([]), workDir: 'relative/dir' })).rejects.toThrow(/workDir/);
  });
});
