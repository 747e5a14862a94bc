/**
 * The workers' kind clusters on this Docker host: which exist, who owns them, and removal of those
 * no live worker owns. Clusters not named `aiopslab-<worker id>` are never touched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AppError } from '../errors.js';
import { privateKubeEnv } from './clusterHandle.js';
import { CLUSTER_PREFIX, clusterOwner } from './clusterNaming.js';
import { describeFailure, failureDetails, runTool } from './runTool.js';
import { removeKubeconfig, workerFiles } from './workerFiles.js';

export interface ClusterInventoryOptions {
  env?: NodeJS.ProcessEnv;
  stateDir?: string;
  timeoutMs?: number;
}

export interface ClusterEntry {
  name: string;
  /** Worker id the name belongs to; null for an `aiopslab-` name no worker id can produce. */
  owner: string | null;
}

/** Runs kind with a throwaway kubeconfig and HOME, so listing or deleting never edits a user's kubeconfig. */
async function withScratchEnv<T>(base: NodeJS.ProcessEnv, fn: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'aiopslab-kind-'));
  try {
    return await fn(privateKubeEnv({ kubeconfig: path.join(dir, 'kubeconfig'), home: dir }, base));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The `aiopslab-*` clusters `kind get clusters` reports, sorted by name. */
export async function listClusters(opts: ClusterInventoryOptions = {}): Promise<ClusterEntry[]> {
  return withScratchEnv(opts.env ?? process.env, async (env) => {
    const r = await runTool('kind', ['get', 'clusters'], { env, timeoutMs: opts.timeoutMs ?? 60_000 });
    if (r.code !== 0) throw new AppError('cluster_failed', `Could not list kind clusters: ${describeFailure(r)}`, failureDetails(r));
    return r.stdout.split('\n').map((l) => l.trim())
      .filter((name) => name.startsWith(CLUSTER_PREFIX))
      .sort()
      .map((name) => ({ name, owner: clusterOwner(name) }));
  });
}

export interface GcOptions extends ClusterInventoryOptions {
  /** Workers that are alive anywhere (any host); their clusters are kept. */
  liveWorkerIds: string[];
  /** Report what would be deleted without deleting. */
  dryRun?: boolean;
  log?: (msg: string, ctx?: Record<string, unknown>) => void;
}

export interface GcResult {
  deleted: string[];
  kept: string[];
  /** Clusters whose deletion failed, with kind's error. */
  failed: Array<{ name: string; error: string }>;
}

/** Delete every `aiopslab-*` cluster that no live worker owns; foreign clusters are left alone. */
export async function gcClusters(opts: GcOptions): Promise<GcResult> {
  const live = new Set(opts.liveWorkerIds);
  const result: GcResult = { deleted: [], kept: [], failed: [] };
  const clusters = await listClusters(opts);
  await withScratchEnv(opts.env ?? process.env, async (env) => {
    for (const c of clusters) {
      if (c.owner !== null && live.has(c.owner)) {
        result.kept.push(c.name);
        continue;
      }
      if (opts.dryRun) {
        result.deleted.push(c.name);
        continue;
      }
      const r = await runTool('kind', ['delete', 'cluster', '--name', c.name], { env, timeoutMs: opts.timeoutMs ?? 120_000 });
      if (r.code !== 0) {
        result.failed.push({ name: c.name, error: describeFailure(r) });
        opts.log?.('could not delete cluster', { cluster: c.name, error: describeFailure(r) });
        continue;
      }
      result.deleted.push(c.name);
      opts.log?.('deleted cluster no live worker owns', { cluster: c.name, owner: c.owner });
      // The owner's private kubeconfig now points at nothing.
      if (opts.stateDir && c.owner) await removeKubeconfig(workerFiles(opts.stateDir, c.owner));
    }
  });
  return result;
}
