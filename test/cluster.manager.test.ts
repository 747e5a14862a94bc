/**
 * The cluster layer against the kind/kubectl stand-ins: one cluster per worker, reused while
 * healthy, recreated when dirty or unhealthy, every worker confined to its own kubeconfig and HOME.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  clusterProcessEnv, existingClusterHandle, gcClusters, KindClusterManager, listClusters, type KindClusterManagerOptions,
} from '../src/cluster/kindCluster.js';
import { AppError } from '../src/errors.js';
import { createStandins, type StandinCall, type Standins } from './fixtures/standins.js';

const execFileP = promisify(execFile);

let s: Standins;
let stateDir: string;

function manager(extra: Partial<KindClusterManagerOptions> = {}): KindClusterManager {
  return new KindClusterManager({ stateDir, kindConfig: null, nodeImage: null, aiopslabDir: null, env: s.env, readyPollMs: 50, ...extra });
}

function kindCalls(sub: string[]): StandinCall[] {
  return s.callsMatching('kind', sub);
}

function contextsIn(file: string): string[] {
  return [...fs.readFileSync(file, 'utf8').matchAll(/^ {2}name: (.+)$/gm)].map((m) => m[1]!).filter((n, i, a) => a.indexOf(n) === i);
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

beforeEach(() => {
  s = createStandins();
  stateDir = path.join(s.stateDir, 'executor');
});
afterEach(() => {
  s.cleanup();
});

describe('KindClusterManager', () => {
  it('creates a worker\'s cluster once and reuses it across many ensure() calls', async () => {
    const m = manager();
    const actions: string[] = [];
    for (let i = 0; i < 5; i++) actions.push((await m.ensure('worker-001-internal', { dirty: false })).action);
    expect(actions).toEqual(['created', 'reused', 'reused', 'reused', 'reused']);
    expect(kindCalls(['create', 'cluster'])).toHaveLength(1);
    expect(kindCalls(['create', 'cluster'])[0]!.argv).toEqual(expect.arrayContaining(['--name', 'aiopslab-worker-001-internal']));
    expect(kindCalls(['delete', 'cluster'])).toHaveLength(0);

    const { handle } = await m.ensure('worker-001-internal', { dirty: false });
    expect(handle).toEqual({
      backend: 'kind',
      name: 'aiopslab-worker-001-internal',
      context: 'kind-aiopslab-worker-001-internal',
      kubeconfig: path.join(stateDir, 'workers', 'worker-001-internal', 'kubeconfig'),
      home: path.join(stateDir, 'workers', 'worker-001-internal', 'home'),
      controlPlaneContainer: 'aiopslab-worker-001-internal-control-plane',
    });
    const text = fs.readFileSync(handle.kubeconfig, 'utf8');
    expect(text).toMatch(/^current-context: kind-aiopslab-worker-001-internal$/m);
    expect(text).toContain(`server: https://127.0.0.1:${s.clusterState('aiopslab-worker-001-internal')!.port}`);
    expect(fs.readFileSync(path.join(handle.home, '.kube', 'config'), 'utf8')).toBe(text);
    expect((fs.statSync(handle.kubeconfig).mode & 0o077)).toBe(0);

    // Every child saw only the private files; the shared ~/.kube/config was never created.
    for (const c of s.calls()) {
      expect(c.env.KUBECONFIG).toBe(handle.kubeconfig);
      expect(c.env.HOME).toBe(handle.home);
    }
    for (const c of s.calls('kubectl')) expect(c.argv.slice(0, 4)).toEqual(['--kubeconfig', handle.kubeconfig, '--context', handle.context]);
    expect(fs.existsSync(path.join(s.hostHome, '.kube'))).toBe(false);
  });

  it('checks a cluster to reuse with one tool: kubectl asks the nodes through the kubeconfig in hand', async () => {
    const m = manager();
    await m.ensure('w1', { dirty: false });
    const before = s.calls().length;
    expect((await m.ensure('w1', { dirty: false })).action).toBe('reused');
    const reuse = s.calls().slice(before).map((c) => `${c.tool} ${c.argv.filter((a) => !a.startsWith('/') && !a.startsWith('kind-')).slice(0, 3).join(' ')}`);
    expect(reuse).toEqual(['kubectl --kubeconfig --context get']);
  });

  it('installs the new kubeconfig and asks the nodes again when the cluster was recreated behind its back', async () => {
    const m = manager();
    const { handle } = await m.ensure('w1', { dirty: false });
    const oldPort = s.clusterState('aiopslab-w1')!.port;
    // Someone else recreates the cluster: same name, another API port.
    const env = clusterProcessEnv(handle, s.env);
    await execFileP('kind', ['delete', 'cluster', '--name', 'aiopslab-w1', '--kubeconfig', path.join(s.stateDir, 'elsewhere')], { env });
    s.addCluster('aiopslab-w1');
    const newPort = s.clusterState('aiopslab-w1')!.port;
    expect(newPort).not.toBe(oldPort);
    const before = s.calls('kubectl').length;
    expect((await m.ensure('w1', { dirty: false })).action).toBe('reused');
    // The old kubeconfig's CA does not verify against the new cluster: kind is asked, then kubectl again.
    expect(s.calls('kubectl').length - before).toBe(2);
    expect(kindCalls(['get', 'kubeconfig']).length).toBeGreaterThanOrEqual(1);
    expect(fs.readFileSync(handle.kubeconfig, 'utf8')).toContain(`127.0.0.1:${newPort}`);
    expect(fs.readFileSync(path.join(handle.home, '.kube', 'config'), 'utf8')).toContain(`127.0.0.1:${newPort}`);
  });

  it('creates only once when ensure() is called concurrently for one worker', async () => {
    const m = manager();
    const results = await Promise.all([m.ensure('w1', { dirty: false }), m.ensure('w1', { dirty: false }), m.ensure('w1', { dirty: false })]);
    expect(results.map((r) => r.action).sort()).toEqual(['created', 'reused', 'reused']);
    expect(kindCalls(['create', 'cluster'])).toHaveLength(1);
  });

  it('deletes and recreates a cluster marked dirty, and rewrites the kubeconfig for the new API port', async () => {
    const m = manager();
    const first = await m.ensure('w1', { dirty: false });
    const oldPort = s.clusterState('aiopslab-w1')!.port;
    const r = await m.ensure('w1', { dirty: true });
    expect(r.action).toBe('recreated');
    expect(r.reason).toMatch(/dirty/);
    const lifecycle = s.calls('kind').filter((c) => c.argv[0] === 'create' || c.argv[0] === 'delete').map((c) => c.argv.slice(0, 2).join(' '));
    expect(lifecycle).toEqual(['create cluster', 'delete cluster', 'create cluster']);
    const newPort = s.clusterState('aiopslab-w1')!.port;
    const text = fs.readFileSync(first.handle.kubeconfig, 'utf8');
    expect(text).toContain(`127.0.0.1:${newPort}`);
    if (newPort !== oldPort) expect(text).not.toContain(`127.0.0.1:${oldPort}`);
    expect((await m.ensure('w1', { dirty: false })).action).toBe('reused');
  });

  it('recreates a cluster whose node is NotReady, saying which node', async () => {
    const m = manager();
    await m.ensure('w1', { dirty: false });
    s.setNodeReady('aiopslab-w1', 'aiopslab-w1-control-plane', false);
    const r = await m.ensure('w1', { dirty: false });
    expect(r.action).toBe('recreated');
    expect(r.reason).toContain('node aiopslab-w1-control-plane is NotReady');
    expect(s.clusterState('aiopslab-w1')!.nodes.every((n) => n.ready)).toBe(true);
    expect(kindCalls(['create', 'cluster'])).toHaveLength(2);
  });

  it('recreates a cluster that does not answer, with kubectl\'s error as the reason', async () => {
    const m = manager();
    await m.ensure('w1', { dirty: false });
    s.fail('kubectl-get-nodes', 'Unable to connect to the server: net/http: TLS handshake timeout', { times: 1 });
    const r = await m.ensure('w1', { dirty: false });
    expect(r.action).toBe('recreated');
    expect(r.reason).toContain('TLS handshake timeout');
  });

  it('gives two workers two clusters, two kubeconfigs and two HOMEs, and never switches a context', async () => {
    const m = manager();
    const [a, b] = await Promise.all([m.ensure('w1', { dirty: false }), m.ensure('w2', { dirty: false })]);
    expect(a.handle.kubeconfig).not.toBe(b.handle.kubeconfig);
    expect(a.handle.home).not.toBe(b.handle.home);
    expect(contextsIn(a.handle.kubeconfig)).toEqual(['kind-aiopslab-w1']);
    expect(contextsIn(b.handle.kubeconfig)).toEqual(['kind-aiopslab-w2']);
    expect(s.clusterNames()).toEqual(['aiopslab-w1', 'aiopslab-w2']);
    expect(s.calls('kubectl').filter((c) => c.argv.includes('use-context'))).toEqual([]);

    // A child given worker 2's environment and no flags acts on worker 2's cluster only.
    const { stdout } = await execFileP('kubectl', ['get', 'nodes'], { env: clusterProcessEnv(b.handle, s.env) });
    expect(stdout).toContain('aiopslab-w2-control-plane');
    expect(stdout).not.toContain('aiopslab-w1');
    const inNode = await execFileP('docker', ['exec', b.handle.controlPlaneContainer!, 'kubectl', 'get', 'nodes'], { env: clusterProcessEnv(b.handle, s.env) });
    expect(inNode.stdout).toMatch(/aiopslab-w2-control-plane\s+Ready/);
    expect(clusterProcessEnv(a.handle, s.env)).toMatchObject({ KUBECONFIG: a.handle.kubeconfig, HOME: a.handle.home, AIOPSLAB_CLUSTER: 'aiopslab-w1' });
  });

  it('fails with cluster_failed and kind\'s stderr when creation fails', async () => {
    s.fail('kind-create', 'ERROR: failed to create cluster: failed to ensure docker network: command "docker network create kind" failed');
    const e = await rejection(manager().ensure('w1', { dirty: false }));
    expect(e.code).toBe('cluster_failed');
    expect(e.message).toContain('Could not create kind cluster aiopslab-w1');
    expect(e.message).toContain('failed to ensure docker network');
    expect(e.message).toContain('exit 1');
  });

  it('kills a kind create that runs past its timeout and cleans up after it', async () => {
    s.delay('kind-create', 30);
    const m = manager({ commandTimeoutMs: { create: 700, other: 10_000 } });
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(Date.now()), 50);
    const t0 = Date.now();
    const e = await rejection(m.ensure('w1', { dirty: false }));
    clearInterval(timer);
    expect(e.code).toBe('cluster_failed');
    expect(e.message).toMatch(/timed out after \d+s and was killed/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(ticks.length).toBeGreaterThan(5); // the event loop kept running while kind was busy
    expect(kindCalls(['delete', 'cluster']).map((c) => c.argv)).toEqual([['delete', 'cluster', '--name', 'aiopslab-w1']]);
  });

  it('reports kind not being installed as cluster_failed', async () => {
    const m = manager({ env: { ...s.env, PATH: path.join(s.stateDir, 'empty-bin') } });
    const e = await rejection(m.ensure('w1', { dirty: false }));
    expect(e.code).toBe('cluster_failed');
    expect(e.message).toMatch(/could not start .*is kind installed and on PATH/);
  });

  it('rejects worker ids that cannot name a kind cluster', async () => {
    const m = manager();
    expect(() => m.clusterName('Worker_1')).toThrow(/lowercase letters, digits and "-"/);
    expect(() => m.clusterName('w'.repeat(42))).toThrow(/too long.*kind allows 50/);
    expect(m.clusterName('w'.repeat(41))).toHaveLength(50);
    expect((await rejection(m.ensure('../etc', { dirty: false }))).code).toBe('cluster_failed');
  });

  it('passes the kind config and node image: explicit, AIOpsLab\'s default, or none', async () => {
    const aiopslab = path.join(s.stateDir, 'AIOpsLab');
    fs.mkdirSync(path.join(aiopslab, 'kind'), { recursive: true });
    const defaultName = process.arch === 'arm64' ? 'kind-config-arm.yaml' : 'kind-config-x86.yaml';
    const defaultCfg = path.join(aiopslab, 'kind', defaultName);
    fs.writeFileSync(defaultCfg, 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n');

    await manager({ aiopslabDir: aiopslab, nodeImage: 'example/aiopslab-kind:v1.32.1' }).ensure('w1', { dirty: false });
    const c1 = s.clusterState('aiopslab-w1')!;
    expect(c1.config).toBe(defaultCfg);
    expect(c1.image).toBe('example/aiopslab-kind:v1.32.1');
    expect(c1.nodes.map((n) => n.name)).toEqual(['aiopslab-w1-control-plane', 'aiopslab-w1-worker']);

    const own = path.join(s.stateDir, 'mine.yaml');
    fs.writeFileSync(own, 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n');
    await manager({ aiopslabDir: aiopslab, kindConfig: own }).ensure('w2', { dirty: false });
    expect(s.clusterState('aiopslab-w2')!.config).toBe(own);

    await manager({ aiopslabDir: path.join(s.stateDir, 'no-checkout') }).ensure('w3', { dirty: false });
    expect(kindCalls(['create', 'cluster']).at(-1)!.argv).not.toContain('--config');

    const e = await rejection(manager({ kindConfig: path.join(s.stateDir, 'missing.yaml') }).ensure('w4', { dirty: false }));
    expect(e.message).toMatch(/missing\.yaml \(KIND_CONFIG\) does not exist/);
    expect(s.clusterNames()).not.toContain('aiopslab-w4');
  });

  it('fails when a new cluster never becomes Ready', async () => {
    s.fail('kubectl-get-nodes', 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?');
    const e = await rejection(manager({ readyTimeoutMs: 300 }).ensure('w1', { dirty: false }));
    expect(e.code).toBe('cluster_failed');
    expect(e.message).toContain('was created but is not Ready');
    expect(e.message).toContain('was refused');
  });

  it('deletes a worker\'s cluster and private kubeconfig, and tolerates a missing cluster', async () => {
    const m = manager();
    const { handle } = await m.ensure('w1', { dirty: false });
    await m.delete('w1');
    expect(s.clusterNames()).toEqual([]);
    expect(fs.existsSync(handle.kubeconfig)).toBe(false);
    expect(fs.existsSync(path.join(handle.home, '.kube', 'config'))).toBe(false);
    await m.delete('w1');
    s.fail('kind-delete', 'ERROR: failed to delete cluster "aiopslab-w1": error deleting nodes');
    expect((await rejection(m.delete('w1'))).message).toContain('error deleting nodes');
  });
});

describe('listClusters and gcClusters', () => {
  it('lists only aiopslab-* clusters with their owner', async () => {
    s.addCluster('kind');
    s.addCluster('aiopslab-w2');
    s.addCluster('aiopslab-w1');
    expect(await listClusters({ env: s.env })).toEqual([{ name: 'aiopslab-w1', owner: 'w1' }, { name: 'aiopslab-w2', owner: 'w2' }]);
  });

  it('deletes only aiopslab-* clusters no live worker owns, never foreign ones', async () => {
    for (const n of ['kind', 'dev', 'aiopslab-w1', 'aiopslab-w2', 'aiopslab-w3']) s.addCluster(n);
    const m = manager();
    const w2 = await m.ensure('w2', { dirty: false });

    const dry = await gcClusters({ liveWorkerIds: ['w1'], env: s.env, stateDir, dryRun: true });
    expect(dry).toEqual({ deleted: ['aiopslab-w2', 'aiopslab-w3'], kept: ['aiopslab-w1'], failed: [] });
    expect(s.clusterNames()).toHaveLength(5);

    const r = await gcClusters({ liveWorkerIds: ['w1', 'w9'], env: s.env, stateDir });
    expect(r).toEqual({ deleted: ['aiopslab-w2', 'aiopslab-w3'], kept: ['aiopslab-w1'], failed: [] });
    expect(s.clusterNames()).toEqual(['aiopslab-w1', 'dev', 'kind']);
    expect(fs.existsSync(w2.handle.kubeconfig)).toBe(false);
    // gc ran kind with a scratch kubeconfig, never the user's.
    for (const c of s.callsMatching('kind', ['delete', 'cluster'])) expect(c.env.KUBECONFIG).not.toBe(path.join(s.hostHome, '.kube', 'config'));
  });

  it('reports a failed deletion and goes on with the others', async () => {
    s.addCluster('aiopslab-w1');
    s.addCluster('aiopslab-w2');
    s.fail('kind-delete', 'ERROR: failed to delete cluster: permission denied', { times: 1 });
    const r = await gcClusters({ liveWorkerIds: [], env: s.env, stateDir });
    expect(r.deleted).toEqual(['aiopslab-w2']);
    expect(r.failed).toEqual([{ name: 'aiopslab-w1', error: expect.stringContaining('permission denied') }]);
  });
});

describe('existingClusterHandle', () => {
  let userConfig: string;
  beforeEach(async () => {
    s.addCluster('shared');
    s.addCluster('other');
    // The user's kubeconfig holds two contexts; `other` is current.
    userConfig = path.join(s.stateDir, 'user-kubeconfig');
    const env = { ...s.env, KUBECONFIG: userConfig };
    await execFileP('kind', ['export', 'kubeconfig', '--name', 'shared'], { env });
    await execFileP('kind', ['export', 'kubeconfig', '--name', 'other'], { env });
  });

  it('copies only the chosen context into the worker\'s private kubeconfig and leaves the user\'s file alone', async () => {
    const before = fs.readFileSync(userConfig, 'utf8');
    const kindCallsBefore = s.calls('kind').length;
    const h = await existingClusterHandle({ kubeconfig: userConfig, context: 'kind-shared', stateDir, workerId: 'worker-a', env: s.env });
    expect(h).toMatchObject({ backend: 'existing', name: 'kind-shared', context: 'kind-shared', controlPlaneContainer: null });
    expect(h.kubeconfig).toBe(path.join(stateDir, 'workers', 'worker-a', 'kubeconfig'));
    expect(contextsIn(h.kubeconfig)).toEqual(['kind-shared']);
    expect(fs.readFileSync(h.kubeconfig, 'utf8')).toMatch(/^current-context: kind-shared$/m);
    expect(fs.readFileSync(path.join(h.home, '.kube', 'config'), 'utf8')).toBe(fs.readFileSync(h.kubeconfig, 'utf8'));
    expect(fs.readFileSync(userConfig, 'utf8')).toBe(before);
    expect(s.calls('kind')).toHaveLength(kindCallsBefore); // no kind at all for this backend

    const { stdout } = await execFileP('kubectl', ['get', 'nodes'], { env: clusterProcessEnv(h, s.env) });
    expect(stdout).toContain('shared-control-plane');
    expect(clusterProcessEnv(h, { ...s.env, AIOPSLAB_CLUSTER: 'x' }).AIOPSLAB_CLUSTER).toBeUndefined();
  });

  it('uses the current context when none is given', async () => {
    const h = await existingClusterHandle({ kubeconfig: userConfig, context: null, stateDir, workerId: 'worker-a', env: s.env });
    expect(h.context).toBe('kind-other');
  });

  it('fails clearly for a missing file, an unknown context or an unreachable cluster', async () => {
    const base = { stateDir, workerId: 'worker-a', env: s.env };
    expect((await rejection(existingClusterHandle({ ...base, kubeconfig: path.join(s.stateDir, 'nope'), context: null }))).message).toMatch(/nope \(EXISTING_KUBECONFIG\) does not exist/);
    const unknown = await rejection(existingClusterHandle({ ...base, kubeconfig: userConfig, context: 'prod' }));
    expect(unknown.code).toBe('cluster_failed');
    expect(unknown.message).toContain('cannot locate context prod');
    await execFileP('kind', ['delete', 'cluster', '--name', 'shared', '--kubeconfig', path.join(s.stateDir, 'scratch')], { env: s.env });
    const down = await rejection(existingClusterHandle({ ...base, kubeconfig: userConfig, context: 'kind-shared' }));
    expect(down.message).toMatch(/not usable: [\s\S]*was refused/);
  });
});
