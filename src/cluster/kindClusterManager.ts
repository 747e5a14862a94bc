/**
 * One kind cluster per worker (`aiopslab-<worker id>`): created when missing, reused while its
 * nodes are Ready, recreated when marked dirty or unhealthy, deleted on request. Every kind and
 * kubectl call gets the worker's private KUBECONFIG and HOME, so no shared kubeconfig is read or
 * written and no current context outside the worker's own file ever changes.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';
import { privateKubeEnv, type ClusterAction, type ClusterHandle } from './clusterHandle.js';
import { kindClusterName } from './clusterNaming.js';
import { checkNodes } from './nodeHealth.js';
import { describeFailure, failureDetails, runTool, type ToolResult } from './runTool.js';
import { installKubeconfig, prepareWorkerFiles, removeKubeconfig, workerFiles, type WorkerFiles } from './workerFiles.js';

export interface KindClusterManagerOptions {
  stateDir: string;
  /** Kind config file; null: AIOpsLab's own (kind/kind-config-x86.yaml or -arm.yaml) when present. */
  kindConfig: string | null;
  /** `kind create cluster --image`; null: the config's (or kind's default) image. */
  nodeImage: string | null;
  aiopslabDir: string | null;
  /** Base environment of every child (PATH finds kind/kubectl/docker); default process.env. */
  env?: NodeJS.ProcessEnv;
  commandTimeoutMs?: { create: number; other: number };
  /** How long a freshly created cluster's nodes may take to become Ready. */
  readyTimeoutMs?: number;
  readyPollMs?: number;
  log?: (msg: string, ctx?: Record<string, unknown>) => void;
}

export interface EnsureResult {
  handle: ClusterHandle;
  action: ClusterAction;
  durationMs: number;
  /** Why the cluster was created or recreated. */
  reason?: string;
}

const DEFAULT_TIMEOUTS = { create: 15 * 60_000, other: 2 * 60_000 };
/** A healthy API server lists nodes in well under a second; waiting longer only delays a recreate. */
const HEALTH_CHECK_MAX_MS = 30_000;

export class KindClusterManager {
  private readonly timeouts: { create: number; other: number };
  private readonly baseEnv: NodeJS.ProcessEnv;
  /** Per-worker chain, so two calls for one worker never run kind against the same cluster at once. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: KindClusterManagerOptions) {
    this.timeouts = opts.commandTimeoutMs ?? DEFAULT_TIMEOUTS;
    this.baseEnv = opts.env ?? process.env;
  }

  clusterName(workerId: string): string {
    return kindClusterName(workerId);
  }

  /** The handle ensure() returns, computed without calling any tool. */
  handleFor(workerId: string): ClusterHandle {
    const name = kindClusterName(workerId);
    const files = workerFiles(this.opts.stateDir, workerId);
    return { backend: 'kind', name, context: `kind-${name}`, kubeconfig: files.kubeconfig, home: files.home, controlPlaneContainer: `${name}-control-plane` };
  }

  /** The kind config file `kind create cluster` will get, or null for kind's defaults. */
  kindConfigPath(): string | null {
    if (this.opts.kindConfig) {
      const p = path.resolve(this.opts.kindConfig);
      if (!existsSync(p)) throw new AppError('cluster_failed', `The kind config file ${p} (KIND_CONFIG) does not exist.`, { kindConfig: p });
      return p;
    }
    if (!this.opts.aiopslabDir) return null;
    const file = process.arch === 'arm64' ? 'kind-config-arm.yaml' : 'kind-config-x86.yaml';
    const p = path.join(this.opts.aiopslabDir, 'kind', file);
    return existsSync(p) ? p : null;
  }

  /** `beforeChange` is awaited before anything is changed: as soon as the cluster is not plainly reusable. */
  async ensure(workerId: string, opts: { dirty: boolean; beforeChange?: () => Promise<void> }): Promise<EnsureResult> {
    const handle = this.handleFor(workerId);
    return this.serialized(workerId, () => this.ensureNow(workerId, handle, opts.dirty, opts.beforeChange ?? (async () => {})));
  }

  /** Delete the worker's cluster (succeeds when there is none) and its private kubeconfig. */
  async delete(workerId: string): Promise<void> {
    const handle = this.handleFor(workerId);
    return this.serialized(workerId, async () => {
      const files = workerFiles(this.opts.stateDir, workerId);
      await prepareWorkerFiles(files);
      await this.deleteCluster(handle.name, files);
      await removeKubeconfig(files);
    });
  }

  private serialized<T>(workerId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(workerId) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(workerId, next);
    void next.catch(() => {}).finally(() => {
      if (this.chains.get(workerId) === next) this.chains.delete(workerId);
    });
    return next;
  }

  private async ensureNow(workerId: string, handle: ClusterHandle, dirty: boolean, beforeChange: () => Promise<void>): Promise<EnsureResult> {
    const started = Date.now();
    const files = workerFiles(this.opts.stateDir, workerId);
    await prepareWorkerFiles(files);
    const ctx = { workerId, cluster: handle.name };

    let exists: boolean;
    let reason: string;
    if (dirty) {
      await beforeChange();
      exists = (await this.kindClusters(files)).includes(handle.name);
      reason = exists ? 'the cluster was marked dirty (an earlier run was killed or did not clean up)' : `no kind cluster named ${handle.name} existed`;
    } else {
      const reuse = await this.checkForReuse(handle, files, beforeChange);
      if (reuse.healthy) {
        const durationMs = Date.now() - started;
        this.log('cluster reused', { ...ctx, durationMs });
        return { handle, action: 'reused', durationMs };
      }
      exists = reuse.exists;
      reason = reuse.reason;
    }

    const action: ClusterAction = exists ? 'recreated' : 'created';
    if (exists) {
      this.log('deleting cluster before recreating it', { ...ctx, reason });
      await this.deleteCluster(handle.name, files);
    }
    await this.createCluster(handle.name, files);
    await this.installFromKind(handle.name, files);
    await this.waitReady(handle, files);
    const durationMs = Date.now() - started;
    this.log(`cluster ${action}`, { ...ctx, durationMs, reason });
    return { handle, action, durationMs, reason };
  }

  /** kind and kubectl see only the worker's private kubeconfig and HOME. */
  private childEnv(files: WorkerFiles): NodeJS.ProcessEnv {
    return privateKubeEnv(files, this.baseEnv);
  }

  private kind(args: string[], files: WorkerFiles, timeoutMs = this.timeouts.other): Promise<ToolResult> {
    return runTool('kind', args, { env: this.childEnv(files), timeoutMs });
  }

  private async kindClusters(files: WorkerFiles): Promise<string[]> {
    const r = await this.kind(['get', 'clusters'], files);
    if (r.code !== 0) throw new AppError('cluster_failed', `Could not list kind clusters: ${describeFailure(r)}`, failureDetails(r));
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /** Rewrite the private kubeconfig from kind (the API port changes when a cluster is recreated). */
  private async installFromKind(name: string, files: WorkerFiles): Promise<void> {
    await installKubeconfig(files, await this.kindKubeconfig(name, files));
  }

  /** The cluster's kubeconfig as kind prints it; cluster_failed when kind cannot. */
  private async kindKubeconfig(name: string, files: WorkerFiles): Promise<string> {
    const r = await this.kind(['get', 'kubeconfig', '--name', name], files);
    if (r.code !== 0 || !r.stdout.trim()) throw new AppError('cluster_failed', `Could not read the kubeconfig of kind cluster ${name}: ${describeFailure(r)}`, failureDetails(r));
    return r.stdout;
  }

  /**
   * The common case, a clean cluster to reuse, with one tool: kubectl asks the nodes through the
   * kubeconfig the worker already has. Its certificate authority pins the cluster, so an answer
   * with every node Ready comes from this worker's cluster and from no other. Only when that fails
   * is kind asked: for the cluster's current kubeconfig (its API port moves when the cluster or
   * Docker restarts), installed and tried once more if it differs, or whether the cluster exists
   * at all (bench/RESULTS.md, executor overhead: this was three tool starts in two rounds).
   */
  private async checkForReuse(handle: ClusterHandle, files: WorkerFiles, beforeChange: () => Promise<void>): Promise<{ healthy: true } | { healthy: false; exists: boolean; reason: string }> {
    const nodes = () => checkNodes({ kubeconfig: files.kubeconfig, context: handle.context, env: this.childEnv(files), timeoutMs: this.healthTimeoutMs() });
    const current = await readFile(files.kubeconfig, 'utf8').catch(() => null);
    let health = current === null ? null : await nodes();
    if (health?.healthy) return { healthy: true };
    await beforeChange();
    let kubeconfig: string;
    try {
      kubeconfig = await this.kindKubeconfig(handle.name, files);
    } catch (e) {
      // Most often there is no such cluster; listing the clusters tells that from a kind failure.
      if (!(await this.kindClusters(files)).includes(handle.name)) return { healthy: false, exists: false, reason: `no kind cluster named ${handle.name} existed` };
      return { healthy: false, exists: true, reason: `the cluster is unhealthy: ${(e as Error).message}` };
    }
    if (health === null || kubeconfig !== current) {
      await installKubeconfig(files, kubeconfig);
      health = await nodes();
    }
    return health.healthy ? { healthy: true } : { healthy: false, exists: true, reason: `the cluster is unhealthy: ${health.reason}` };
  }

  private async createCluster(name: string, files: WorkerFiles): Promise<void> {
    const config = this.kindConfigPath();
    const waitSeconds = Math.max(30, Math.min(300, Math.floor(this.timeouts.create / 2000)));
    const args = ['create', 'cluster', '--name', name, '--kubeconfig', files.kubeconfig, '--wait', `${waitSeconds}s`];
    if (config) args.push('--config', config);
    if (this.opts.nodeImage) args.push('--image', this.opts.nodeImage);
    this.log('creating kind cluster', { cluster: name, config, image: this.opts.nodeImage });
    const r = await this.kind(args, files, this.timeouts.create);
    if (r.code === 0) return;
    if (r.timedOut || r.signal) {
      // A killed kind leaves node containers behind; remove them so the next attempt starts clean.
      await this.kind(['delete', 'cluster', '--name', name], files).catch(() => undefined);
    }
    throw new AppError('cluster_failed', `Could not create kind cluster ${name}: ${describeFailure(r)}`, failureDetails(r));
  }

  private async deleteCluster(name: string, files: WorkerFiles): Promise<void> {
    const r = await this.kind(['delete', 'cluster', '--name', name], files);
    if (r.code !== 0) throw new AppError('cluster_failed', `Could not delete kind cluster ${name}: ${describeFailure(r)}`, failureDetails(r));
  }

  private async waitReady(handle: ClusterHandle, files: WorkerFiles): Promise<void> {
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 180_000);
    for (;;) {
      const health = await checkNodes({ kubeconfig: files.kubeconfig, context: handle.context, env: this.childEnv(files), timeoutMs: this.healthTimeoutMs() });
      if (health.healthy) return;
      if (Date.now() >= deadline) {
        throw new AppError('cluster_failed', `Kind cluster ${handle.name} was created but is not Ready: ${health.reason}`, { cluster: handle.name, nodes: health.nodes });
      }
      await new Promise((r) => setTimeout(r, this.opts.readyPollMs ?? 2000));
    }
  }

  private healthTimeoutMs(): number {
    return Math.min(this.timeouts.other, HEALTH_CHECK_MAX_MS);
  }

  private log(msg: string, ctx?: Record<string, unknown>): void {
    this.opts.log?.(msg, ctx);
  }
}
