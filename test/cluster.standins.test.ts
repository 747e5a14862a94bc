/**
 * The kind/kubectl/helm/docker stand-ins behave like the real tools for what the product uses:
 * same command lines, same output on the same streams, same exit codes, and a record of every call.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStandins, type Standins } from './fixtures/standins.js';

interface Run { code: number; stdout: string; stderr: string }

let s: Standins;

function run(tool: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(tool, args, { env: opts.env ?? s.env, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...s.env, ...extra };
}

function writeJson(name: string, obj: unknown): string {
  const file = path.join(s.stateDir, name);
  fs.writeFileSync(file, JSON.stringify(obj));
  return file;
}

beforeEach(() => {
  s = createStandins();
});
afterEach(() => {
  s.cleanup();
});

describe('kind stand-in', () => {
  it('creates a cluster, writes its context into the given kubeconfig and makes it current', async () => {
    const kc = path.join(s.stateDir, 'w1.kubeconfig');
    const cfg = path.join(s.stateDir, 'kind.yaml');
    fs.writeFileSync(cfg, 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n    - hostPath: /run/udev\n      containerPath: /run/udev\n- role: worker\n');

    const none = await run('kind', ['get', 'clusters']);
    expect(none).toEqual({ code: 0, stdout: '', stderr: 'No kind clusters found.\n' });

    const created = await run('kind', ['create', 'cluster', '--name', 'alpha', '--config', cfg, '--kubeconfig', kc, '--wait', '5m']);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('');
    expect(created.stderr).toContain('Creating cluster "alpha" ...');
    expect(created.stderr).toContain('Set kubectl context to "kind-alpha"');

    const text = fs.readFileSync(kc, 'utf8');
    expect(text).toMatch(/^current-context: kind-alpha$/m);
    expect(text).toMatch(/server: https:\/\/127\.0\.0\.1:\d+/);
    expect(fs.existsSync(path.join(s.hostHome, '.kube', 'config'))).toBe(false);

    const state = s.clusterState('alpha')!;
    expect(state.config).toBe(cfg);
    expect(state.nodes.map((n) => n.name)).toEqual(['alpha-control-plane', 'alpha-worker']);

    const nodes = await run('kubectl', ['--kubeconfig', kc, 'get', 'nodes']);
    expect(nodes.code).toBe(0);
    const lines = nodes.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
    expect(lines[1]).toMatch(/^alpha-control-plane\s+Ready\s+control-plane\s+\d+s\s+v1\.32\.\d+$/);
    expect(lines[2]).toMatch(/^alpha-worker\s+Ready\s+<none>\s+/);

    expect((await run('kind', ['get', 'clusters'])).stdout).toBe('alpha\n');
    expect((await run('kind', ['get', 'nodes', '--name', 'alpha'])).stdout).toBe('alpha-control-plane\nalpha-worker\n');
  });

  it('refuses a second create of the same name like kind, and validates names', async () => {
    await run('kind', ['create', 'cluster', '--name', 'dup']);
    const again = await run('kind', ['create', 'cluster', '--name', 'dup']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ERROR: failed to create cluster: node(s) already exist for a cluster with the name "dup"');
    const bad = await run('kind', ['create', 'cluster', '--name', 'Bad_Name']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not a valid cluster name');
    const long = await run('kind', ['create', 'cluster', '--name', 'x'.repeat(51)]);
    expect(long.stderr).toContain('cluster name should not be longer than 50 characters');
    expect(s.clusterNames()).toEqual(['dup']);
  });

  it('writes to $KUBECONFIG when no flag is given and merges with what the file holds', async () => {
    const kc = path.join(s.stateDir, 'shared');
    const env = envWith({ KUBECONFIG: kc });
    await run('kind', ['create', 'cluster', '--name', 'one'], { env });
    await run('kind', ['create', 'cluster', '--name', 'two'], { env });
    const contexts = await run('kubectl', ['config', 'get-contexts', '-o', 'name'], { env });
    expect(contexts.stdout).toBe('kind-one\nkind-two\n');
    expect((await run('kubectl', ['config', 'current-context'], { env })).stdout).toBe('kind-two\n');
  });

  it('prints one cluster\'s kubeconfig, or the real error for an unknown cluster', async () => {
    await run('kind', ['create', 'cluster', '--name', 'a']);
    await run('kind', ['create', 'cluster', '--name', 'b']);
    const kc = await run('kind', ['get', 'kubeconfig', '--name', 'b']);
    expect(kc.code).toBe(0);
    expect(kc.stdout).toMatch(/^apiVersion: v1\nclusters:\n- cluster:\n/);
    expect(kc.stdout).toContain('current-context: kind-b');
    expect(kc.stdout).not.toContain('kind-a');
    expect(kc.stdout).toContain(`server: https://127.0.0.1:${s.clusterState('b')!.port}`);
    expect((await run('kind', ['get', 'kubeconfig', '--name', 'b', '--internal'])).stdout).toContain('server: https://b-control-plane:6443');

    const missing = await run('kind', ['get', 'kubeconfig', '--name', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain("ERROR: could not locate any control plane nodes for cluster named 'nope'");
  });

  it('pins a kind kubeconfig to its cluster: after a recreate, the old one is refused or fails TLS verification', async () => {
    await run('kind', ['create', 'cluster', '--name', 'c']);
    const old = path.join(s.stateDir, 'old-kc');
    fs.writeFileSync(old, (await run('kind', ['get', 'kubeconfig', '--name', 'c'])).stdout);
    expect((await run('kubectl', ['--kubeconfig', old, 'get', 'nodes'])).code).toBe(0);
    const oldPort = s.clusterState('c')!.port;
    await run('kind', ['delete', 'cluster', '--name', 'c']);
    await run('kind', ['create', 'cluster', '--name', 'c']);
    const again = await run('kubectl', ['--kubeconfig', old, 'get', 'nodes']);
    expect(again.code).toBe(1);
    if (s.clusterState('c')!.port === oldPort) expect(again.stderr).toContain('x509: certificate signed by unknown authority');
    else expect(again.stderr).toContain(`The connection to the server 127.0.0.1:${oldPort} was refused`);
    // Same port, another cluster's CA: the address alone does not make it the same cluster.
    const moved = fs.readFileSync(old, 'utf8').replace(`127.0.0.1:${oldPort}`, `127.0.0.1:${s.clusterState('c')!.port}`);
    fs.writeFileSync(old, moved);
    expect((await run('kubectl', ['--kubeconfig', old, 'get', 'nodes'])).stderr).toContain('x509: certificate signed by unknown authority');
  });

  it('deletes a cluster (also an absent one) and removes its context from the kubeconfig', async () => {
    const kc = path.join(s.stateDir, 'kc');
    await run('kind', ['create', 'cluster', '--name', 'gone', '--kubeconfig', kc]);
    const stale = path.join(s.stateDir, 'stale-kc');
    fs.copyFileSync(kc, stale);
    const del = await run('kind', ['delete', 'cluster', '--name', 'gone', '--kubeconfig', kc]);
    expect(del.code).toBe(0);
    expect(del.stderr).toContain('Deleting cluster "gone" ...');
    expect(s.clusterNames()).toEqual([]);
    expect(fs.readFileSync(kc, 'utf8')).not.toContain('kind-gone');
    expect((await run('kind', ['delete', 'cluster', '--name', 'never'])).code).toBe(0);

    const refused = await run('kubectl', ['--kubeconfig', stale, 'get', 'nodes']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/The connection to the server 127\.0\.0\.1:\d+ was refused - did you specify the right host or port\?/);
  });
});

describe('kubectl stand-in', () => {
  let kc: string;
  beforeEach(async () => {
    kc = path.join(s.stateDir, 'kc');
    await run('kind', ['create', 'cluster', '--name', 'k', '--kubeconfig', kc]);
  });
  const k = (args: string[], input?: string) => run('kubectl', ['--kubeconfig', kc, ...args], { input });

  it('prints the real errors when there is no kubeconfig or no such context', async () => {
    const noConfig = await run('kubectl', ['get', 'pods']);
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toContain('The connection to the server localhost:8080 was refused - did you specify the right host or port?');
    const badCtx = await k(['--context', 'kind-other', 'get', 'pods']);
    expect(badCtx.code).toBe(1);
    expect(badCtx.stderr).toBe('Error in configuration: context was not found for specified context: kind-other\n');
    expect((await run('kubectl', ['config', 'current-context'])).stderr).toBe('error: current-context is not set\n');
  });

  it('shows a NotReady node after the test marks it so, in the table and in JSON', async () => {
    s.setNodeReady('k', 'k-control-plane', false);
    expect((await k(['get', 'nodes'])).stdout).toMatch(/k-control-plane\s+NotReady\s+control-plane/);
    const json = JSON.parse((await k(['get', 'nodes', '-o', 'json'])).stdout);
    expect(json.kind).toBe('List');
    const ready = json.items[0].status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready.status).toBe('False');
  });

  it('stores applied objects per namespace and answers get/patch/delete like the API server', async () => {
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'frontend', namespace: 'shop', labels: { app: 'fe' } }, spec: { ports: [{ port: 80, targetPort: 8080 }] } };
    const file = writeJson('svc.json', svc);
    const noNs = await k(['apply', '-f', file]);
    expect(noNs.code).toBe(1);
    expect(noNs.stderr).toBe(`Error from server (NotFound): error when creating "${file}": namespaces "shop" not found\n`);

    expect((await k(['create', 'namespace', 'shop'])).stdout).toBe('namespace/shop created\n');
    expect((await k(['create', 'ns', 'shop'])).stderr).toBe('Error from server (AlreadyExists): namespaces "shop" already exists\n');
    expect((await k(['apply', '-f', file])).stdout).toBe('service/frontend created\n');
    expect((await k(['apply', '-f', file])).stdout).toBe('service/frontend unchanged\n');
    expect((await k(['apply', '-f', '-'], JSON.stringify({ ...svc, spec: { ports: [{ port: 81 }] } }))).stdout).toBe('service/frontend configured\n');

    const table = (await k(['get', 'svc', '-n', 'shop'])).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/);
    expect(table[1]).toMatch(/^frontend\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+81\/TCP\s+\d+s$/);
    expect(s.clusterState('k')!.objects['shop/service/frontend']!.spec.ports[0].port).toBe(81);

    const missing = await k(['get', 'services', 'x', '-n', 'shop']);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'Error from server (NotFound): services "x" not found\n' });
    const empty = await k(['get', 'pods', '-n', 'shop']);
    expect(empty).toEqual({ code: 0, stdout: '', stderr: 'No resources found in shop namespace.\n' });

    // Merge patch: deep merge, null deletes.
    const merged = await k(['patch', 'service', 'frontend', '-n', 'shop', '--type', 'merge', '-p', '{"metadata":{"labels":{"app":null,"tier":"web"}},"spec":{"type":"NodePort"}}']);
    expect(merged.stdout).toBe('service/frontend patched\n');
    const after = JSON.parse((await k(['get', 'svc', 'frontend', '-n', 'shop', '-o', 'json'])).stdout);
    expect(after.metadata.labels).toEqual({ tier: 'web' });
    expect(after.spec.type).toBe('NodePort');
    expect(after.spec.ports).toHaveLength(1);

    // JSON patch on an array element.
    await k(['patch', 'svc/frontend', '-n', 'shop', '--type=json', '-p', '[{"op":"replace","path":"/spec/ports/0/targetPort","value":9999}]']);
    expect((await k(['get', 'svc', 'frontend', '-n', 'shop', '-o', 'jsonpath={.spec.ports[0].targetPort}'])).stdout).toBe('9999');
    expect((await k(['patch', 'svc', 'frontend', '-n', 'shop', '--type', 'merge', '-p', '{"spec":{"type":"NodePort"}}'])).stdout).toBe('service/frontend patched (no change)\n');
    expect((await k(['patch', 'svc', 'nope', '-n', 'shop', '-p', '{}'])).stderr).toBe('Error from server (NotFound): services "nope" not found\n');

    expect((await k(['get', 'svc', '-n', 'shop', '-l', 'tier=web', '-o', 'name'])).stdout).toBe('service/frontend\n');
    expect((await k(['delete', 'svc', 'frontend', '-n', 'shop'])).stdout).toBe('service "frontend" deleted\n');
    expect((await k(['delete', 'svc', 'frontend', '-n', 'shop'])).stderr).toBe('Error from server (NotFound): services "frontend" not found\n');
  });

  it('runs a deployment\'s pods and removes them with their namespace', async () => {
    await k(['create', 'namespace', 'app']);
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'app' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } } };
    expect((await k(['apply', '-f', writeJson('dep.json', dep)])).stdout).toBe('deployment.apps/web created\n');
    const pods = (await k(['get', 'po', '-n', 'app'])).stdout.trimEnd().split('\n');
    expect(pods[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(pods.slice(1)).toHaveLength(2);
    expect(pods[1]).toMatch(/^web-[a-z0-9]+-[a-z0-9]+\s+1\/1\s+Running\s+0\s+\d+s$/);
    expect((await k(['wait', '--for=condition=available', 'deployment/web', '-n', 'app', '--timeout=60s'])).stdout).toBe('deployment.apps/web condition met\n');
    expect((await k(['rollout', 'status', 'deploy/web', '-n', 'app'])).stdout).toBe('deployment "web" successfully rolled out\n');
    expect((await k(['delete', 'namespace', 'app'])).stdout).toBe('namespace "app" deleted\n');
    expect(Object.keys(s.clusterState('k')!.objects).filter((key) => key.startsWith('app/'))).toEqual([]);
  });

  it('never changes the file unless asked, and use-context rewrites current-context like kubectl', async () => {
    await run('kind', ['create', 'cluster', '--name', 'k2', '--kubeconfig', kc]);
    expect((await k(['config', 'current-context'])).stdout).toBe('kind-k2\n');
    expect((await k(['config', 'use-context', 'kind-k'])).stdout).toBe('Switched to context "kind-k".\n');
    expect(fs.readFileSync(kc, 'utf8')).toMatch(/^current-context: kind-k$/m);
    expect((await k(['config', 'use-context', 'nope'])).stderr).toBe('error: no context exists with the name: "nope"\n');
    const minified = (await k(['config', 'view', '--minify', '--raw', '--context', 'kind-k2'])).stdout;
    expect(minified).toContain('current-context: kind-k2');
    expect(minified).not.toMatch(/name: kind-k$/m);
  });

  it('keeps concurrent writers from losing each other\'s objects', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => k(['apply', '-f', writeJson(`cm${i}.json`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm${i}` }, data: { i: String(i) } })])));
    expect(results.every((r) => r.code === 0)).toBe(true);
    const names = (await k(['get', 'cm', '-o', 'name'])).stdout.trim().split('\n').sort();
    expect(names).toEqual(Array.from({ length: 8 }, (_, i) => `configmap/cm${i}`));
  });
});

describe('docker stand-in', () => {
  it('lists node containers and runs exec inside a node, against that node\'s cluster', async () => {
    await run('kind', ['create', 'cluster', '--name', 'n1', '--kubeconfig', path.join(s.stateDir, 'kc1')]);
    await run('kind', ['create', 'cluster', '--name', 'n2', '--kubeconfig', path.join(s.stateDir, 'kc2')]);
    const ps = await run('docker', ['ps', '--format', '{{.Names}}']);
    expect(ps.stdout).toBe('n1-control-plane\nn2-control-plane\n');
    expect((await run('docker', ['ps', '--filter', 'label=io.x-k8s.kind.cluster=n2', '--format', '{{.Names}}'])).stdout).toBe('n2-control-plane\n');

    const exec = await run('docker', ['exec', 'n2-control-plane', 'sh', '-c', 'kubectl get nodes; echo home=$HOME'], { env: envWith({ AIOPSLAB_CLUSTER: 'n2', KUBECONFIG: '/nowhere' }) });
    expect(exec.code).toBe(0);
    expect(exec.stdout).toMatch(/n2-control-plane\s+Ready/);
    expect(exec.stdout).not.toContain('n1-control-plane');
    const innerHome = /home=(.*)/.exec(exec.stdout)![1]!;
    expect(innerHome).not.toBe(s.hostHome);

    const dockerCall = s.callsMatching('docker', ['exec']).at(-1)!;
    expect(dockerCall.argv).toEqual(['exec', 'n2-control-plane', 'sh', '-c', 'kubectl get nodes; echo home=$HOME']);
    expect(dockerCall.env.AIOPSLAB_CLUSTER).toBe('n2');
    const inner = s.calls('kubectl').at(-1)!;
    expect(inner.env.STANDIN_NODE_CLUSTER).toBe('n2');
    expect(inner.env.AIOPSLAB_CLUSTER).toBeNull(); // docker exec does not carry the caller's environment

    expect((await run('docker', ['exec', 'n1-control-plane', 'sh', '-c', 'echo oops >&2; exit 7'])).code).toBe(7);
    const gone = await run('docker', ['exec', 'kind-control-plane', 'sh', '-c', 'true']);
    expect(gone).toEqual({ code: 1, stdout: '', stderr: 'Error response from daemon: No such container: kind-control-plane\n' });
    expect((await run('docker', ['version', '--format', '{{.Server.Version}}'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('helm stand-in', () => {
  it('keeps releases in the cluster the kube context points at', async () => {
    const kc = path.join(s.stateDir, 'kc');
    await run('kind', ['create', 'cluster', '--name', 'h1', '--kubeconfig', kc]);
    await run('kind', ['create', 'cluster', '--name', 'h2', '--kubeconfig', kc]);
    const env = envWith({ KUBECONFIG: kc });
    const noNs = await run('helm', ['install', 'rel', 'oc/demo', '--repo', 'https://charts.example', '-n', 'demo', '--kube-context', 'kind-h1'], { env });
    expect(noNs.stderr).toBe('Error: INSTALLATION FAILED: create: failed to create: namespaces "demo" not found\n');
    const ok = await run('helm', ['install', 'rel', 'oc/demo', '--repo', 'https://charts.example', '-n', 'demo', '--create-namespace', '--kube-context', 'kind-h1'], { env });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^NAME: rel\nLAST DEPLOYED: .+\nNAMESPACE: demo\nSTATUS: deployed\nREVISION: 1\n/);
    expect((await run('helm', ['list', '-A', '-o', 'json', '--kube-context', 'kind-h1'], { env })).stdout).toContain('"name":"rel"');
    expect((await run('helm', ['list', '-A', '-o', 'json'], { env })).stdout).toBe('[]\n'); // current context is kind-h2
    expect((await run('helm', ['uninstall', 'rel', '-n', 'demo'], { env })).stderr).toBe('Error: uninstall: Release not loaded: rel: release: not found\n');
    expect((await run('helm', ['uninstall', 'rel', '-n', 'demo', '--kube-context', 'kind-h1'], { env })).stdout).toBe('release "rel" uninstalled\n');
  });
});

describe('calls and failure injection', () => {
  it('records every call with its argv, cwd and the relevant environment', async () => {
    await run('kind', ['get', 'clusters'], { env: envWith({ KUBECONFIG: '/k/config', AIOPSLAB_CLUSTER: 'x' }) });
    await run('kubectl', ['version', '--client']);
    const calls = s.calls();
    expect(calls.map((c) => [c.tool, c.argv])).toEqual([['kind', ['get', 'clusters']], ['kubectl', ['version', '--client']]]);
    expect(calls[0]!.env).toEqual({ KUBECONFIG: '/k/config', HOME: s.hostHome, AIOPSLAB_CLUSTER: 'x', STANDIN_NODE_CLUSTER: null });
    expect(typeof calls[0]!.cwd).toBe('string');
    expect(calls[1]!.ts).toBeGreaterThanOrEqual(calls[0]!.ts);
  });

  it('fails an operation with the injected message a given number of times, and delays one', async () => {
    s.fail('kind-create', 'ERROR: failed to create cluster: failed to pull image "kindest/node"', { times: 1 });
    const first = await run('kind', ['create', 'cluster', '--name', 'f']);
    expect(first).toEqual({ code: 1, stdout: '', stderr: 'ERROR: failed to create cluster: failed to pull image "kindest/node"\n' });
    expect(s.clusterNames()).toEqual([]);
    expect((await run('kind', ['create', 'cluster', '--name', 'f'])).code).toBe(0);

    s.fail('kubectl-get-nodes', 'Unable to connect to the server: net/http: TLS handshake timeout', { exitCode: 1 });
    const kc = path.join(s.stateDir, 'kc');
    await run('kind', ['export', 'kubeconfig', '--name', 'f', '--kubeconfig', kc]);
    expect((await run('kubectl', ['--kubeconfig', kc, 'get', 'nodes'])).stderr).toContain('TLS handshake timeout');
    expect((await run('kubectl', ['--kubeconfig', kc, 'get', 'ns'])).code).toBe(0);

    s.clearInjections();
    s.delay('kind-get-clusters', 0.5);
    const t0 = Date.now();
    await run('kind', ['get', 'clusters']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
  });

  it('fails loudly without a state directory', async () => {
    const env = { ...s.env };
    delete env.STANDIN_STATE_DIR;
    const r = await run('kubectl', ['get', 'pods'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('STANDIN_STATE_DIR is not set');
  });
});
