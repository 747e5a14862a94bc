/**
 * Isolation of one worker's bridge (INTERFACE §7.4–7.6, §10.4–10.5): the worker's own control-plane
 * container and kubeconfig, agent commands without host-shell expansion (unless switched on), no
 * secrets in the bridge's environment, private temp files, serialised telemetry ports.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedAgent, call, createEpisodeHarness, shell, submit, type EpisodeHarness } from './fixtures/agents.js';

let h: EpisodeHarness;
beforeAll(() => {
  h = createEpisodeHarness();
});
afterAll(() => h.cleanup());

// Not ending in a quote: AIOpsLab's parser strips outer quote characters greedily.
const TRICKY = 'echo "quoted" $HOME $(id -u) `hostname`';

describe('where agent commands run', () => {
  it('by default: `docker exec <worker>-control-plane sh -c <command>` as argv, the command verbatim', async () => {
    const before = h.standins.calls().length;
    const agent = new ScriptedAgent([shell(TRICKY), submit('Yes')]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent });
    expect(result.outcome).toBe('submitted');
    const execs = h.standins.calls().slice(before).filter((c) => c.tool === 'docker' && c.argv[0] === 'exec');
    expect(execs).toHaveLength(1);
    expect(execs[0]!.argv).toEqual(['exec', 'aiopslab-worker-001-internal-control-plane', 'sh', '-c', TRICKY]);
    // Upstream's output convention: stdout of the command inside the node.
    expect(agent.steps[0]!.response).toMatch(/^quoted /);
  }, 120_000);

  it('with hostShellExpansion, upstream\'s host shell expands $VAR, $(...) and backticks first (still the worker\'s container)', async () => {
    const start = h.standins.calls().length;
    const agent = new ScriptedAgent([shell(TRICKY), submit('Yes')]);
    await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent, hostShellExpansion: true });
    const exec = h.standins.calls().slice(start).find((c) => c.tool === 'docker' && c.argv[0] === 'exec')!;
    expect(exec.argv.slice(0, 4)).toEqual(['exec', 'aiopslab-worker-001-internal-control-plane', 'sh', '-c']);
    const uid = String(os.userInfo().uid);
    const hostname = execFileSync('hostname', { encoding: 'utf8' }).trim();
    expect(exec.argv[4]).toBe(`echo "quoted" ${h.cluster.home} ${uid} ${hostname}`);
  }, 120_000);

  it('never reaches the hard-coded kind-control-plane, even when the cluster has no container', async () => {
    const start = h.standins.calls().length;
    const agent = new ScriptedAgent([shell('kubectl get pods -A'), submit('Yes')]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent, cluster: { ...h.cluster, controlPlaneContainer: null } });
    expect(result.outcome).toBe('submitted');
    expect(agent.steps[0]!.response).toMatch(/^\[ERROR\] Docker command execution failed: .*no control-plane container/);
    expect(h.standins.calls().slice(start).filter((c) => c.tool === 'docker')).toEqual([]);
    expect(h.standins.calls().some((c) => c.argv.includes('kind-control-plane'))).toBe(false);
  }, 120_000);
});

describe('the bridge\'s environment', () => {
  const secrets = {
    OPENROUTER_API_KEY: 'sk-or-v1-secretsecretsecret',
    OPENAI_API_KEY: 'sk-openai-secretsecret',
    OPENAI_KEY: 'sk-judge-secretsecret',
    DATABASE_URL: 'postgres://executor:dbpassword123@db.internal:5432/aiopslab',
    API_TOKEN: 'api-token-secret-1,api-token-secret-2',
    WORKER_TOKEN: 'worker-token-secret',
    AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
    GITHUB_TOKEN: 'ghp_secretsecret',
    MY_SERVICE_PASSWORD: 'hunter2hunter2',
    PGPASSWORD: 'pg-secret-password',
    INNOCENT_LOOKING: 'contains sk-or-v1-secretsecretsecret inside',
  };
  let dump: { environ: Record<string, string>; tempdir: string; cwd: string };
  let text: string;
  let workDir: string;
  beforeAll(async () => {
    const agent = new ScriptedAgent([submit('No')]);
    const run = await h.run({
      problemId: 'noop_detection_hotel_reservation-1',
      agent,
      baseEnv: { ...h.standins.env, PYTHONDONTWRITEBYTECODE: '1', KEEP_ME: 'plain value', TIKTOKEN_CACHE_DIR: '/opt/tiktoken', USE_WANDB: 'true', ...secrets },
      secretValues: [secrets.OPENROUTER_API_KEY],
    });
    expect(run.result.outcome).toBe('submitted');
    workDir = run.workDir;
    text = readFileSync(path.join(workDir, 'environment.json'), 'utf8');
    dump = JSON.parse(text);
  }, 120_000);

  it('holds no LLM key, database URL, token, secret or password, by name or by value', () => {
    for (const [name, value] of Object.entries(secrets)) {
      expect(dump.environ[name], name).toBeUndefined();
      for (const part of value.split(',')) expect(text.includes(part), `${name} value`).toBe(false);
    }
  });

  it('points AIOpsLab at the worker\'s cluster, home, private temp folder and per-task cwd', () => {
    expect(dump.environ.AIOPSLAB_CLUSTER).toBe('aiopslab-worker-001-internal');
    expect(dump.environ.KUBECONFIG).toBe(h.cluster.kubeconfig);
    expect(dump.environ.HOME).toBe(h.cluster.home);
    expect(dump.environ.TMPDIR).toBe(path.join(workDir, 'tmp'));
    expect(dump.tempdir).toBe(path.join(workDir, 'tmp'));
    expect(dump.cwd).toBe(workDir);
    expect(dump.environ.PYTHONUNBUFFERED).toBe('1');
    expect(dump.environ.USE_WANDB).toBe('false');
    expect(dump.environ.KEEP_ME).toBe('plain value');
    expect(dump.environ.TIKTOKEN_CACHE_DIR).toBe('/opt/tiktoken');
    expect(dump.environ.PATH).toBe(h.standins.env.PATH);
  });

  it('every kubectl and helm call of the run used the worker\'s kubeconfig and home, never a context switch', () => {
    const calls = h.standins.calls().filter((c) => (c.tool === 'kubectl' || c.tool === 'helm') && c.cwd === workDir);
    expect(calls.length).toBeGreaterThan(5);
    for (const c of calls) {
      expect(c.env.KUBECONFIG).toBe(h.cluster.kubeconfig);
      expect(c.env.HOME).toBe(h.cluster.home);
      expect(c.env.AIOPSLAB_CLUSTER).toBe('aiopslab-worker-001-internal');
      expect(c.argv).not.toContain('use-context');
    }
  });
});

describe('two workers on one host', () => {
  let second: ReturnType<EpisodeHarness['addCluster']>;
  beforeAll(() => {
    second = h.addCluster('aiopslab-worker-002-internal');
  });

  it('each run changes only its own cluster', async () => {
    const a = new ScriptedAgent([shell('kubectl get svc -n test-social-network'), submit('Yes')]);
    const b = new ScriptedAgent([submit('No')]);
    const [ra, rb] = await Promise.all([
      h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: a }),
      h.run({ problemId: 'noop_detection_hotel_reservation-1', agent: b, cluster: second }),
    ]);
    expect(ra.result.outcome).toBe('submitted');
    expect(rb.result.outcome).toBe('submitted');
    const byCwd = (dir: string) => h.standins.calls().filter((c) => c.cwd === dir && c.tool !== 'docker');
    for (const c of byCwd(ra.workDir)) expect(c.env.KUBECONFIG).toBe(h.cluster.kubeconfig);
    for (const c of byCwd(rb.workDir)) expect(c.env.KUBECONFIG).toBe(second.kubeconfig);
    // Worker 2's cluster never saw Social Network; the agent of worker 1 ran in worker 1's node.
    const state2 = h.standins.clusterState(second.name)!;
    expect(Object.keys(state2.objects).some((k) => k.startsWith('test-social-network/'))).toBe(false);
    const exec = h.standins.calls('docker').find((c) => c.cwd === ra.workDir && c.argv[0] === 'exec');
    expect(exec?.argv[1]).toBe('aiopslab-worker-001-internal-control-plane');
  }, 180_000);

  it('get_traces (fixed local port 16686) is serialised across bridges by the host-wide lock', async () => {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false)).listen(16686, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    expect(free, 'port 16686 must be free on this machine for this test').toBe(true);
    // Both agents ask for traces at the same moment.
    let arrived = 0;
    let release!: () => void;
    const together = new Promise<void>((r) => (release = r));
    const traces = async () => {
      if (++arrived === 2) release();
      await together;
      return call('get_traces', 'test-social-network', 5);
    };
    const a = new ScriptedAgent([traces, submit('Yes')]);
    const b = new ScriptedAgent([traces, submit('No')]);
    const [ra, rb] = await Promise.all([
      h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: a }),
      h.run({ problemId: 'noop_detection_hotel_reservation-1', agent: b, cluster: second }),
    ]);
    expect(a.steps[0]!.response).toBe(path.join(ra.workDir, 'trace_output'));
    expect(b.steps[0]!.response).toBe(path.join(rb.workDir, 'trace_output'));
    // Without the lock the second exporter fails to bind; with it, the two calls do not overlap.
    const [first, later] = [a.steps[0]!, b.steps[0]!].sort((x, y) => x.durationMs - y.durationMs);
    expect(later!.durationMs).toBeGreaterThanOrEqual(first!.durationMs + 400);
  }, 180_000);
});
