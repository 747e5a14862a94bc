/** The cluster a worker runs its tasks on: its own Kind cluster, or a given kubeconfig context. */
import { existingClusterHandle, KindClusterManager, type ClusterAction, type ClusterHandle } from '../cluster/kindCluster.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

export interface ClusterProvider {
  backend: 'kind' | 'existing';
  /**
   * Checks the worker's cluster and repairs it when needed. `beforeChange` is awaited before the
   * check changes anything (kubeconfig, cluster), i.e. as soon as the cluster is not plainly reusable.
   */
  ensure(workerId: string, dirty: boolean, opts?: { beforeChange?: () => Promise<void> }): Promise<{ handle: ClusterHandle; action: ClusterAction; durationMs: number; reason?: string }>;
  /** The handle ensure() will return, known without calling any tool; null when only the check can tell. */
  plannedHandle(workerId: string): ClusterHandle | null;
  release(workerId: string): Promise<void>;
}

export function createClusterProvider(config: Config, env: NodeJS.ProcessEnv, log: (msg: string, ctx?: Record<string, unknown>) => void): ClusterProvider {
  if (config.workerBackend === 'existing') {
    return {
      backend: 'existing',
      async ensure(workerId) {
        if (!config.existingKubeconfig) throw new AppError('missing_prerequisite', 'WORKER_BACKEND=existing needs EXISTING_KUBECONFIG');
        const t0 = performance.now();
        const handle = await existingClusterHandle({ kubeconfig: config.existingKubeconfig, context: config.existingContext, stateDir: config.stateDir, workerId, env });
        return { handle, action: 'reused', durationMs: Math.round(performance.now() - t0) };
      },
      // The context's name comes from the user's kubeconfig, read by the check.
      plannedHandle: () => null,
      async release() {},
    };
  }
  const manager = new KindClusterManager({ stateDir: config.stateDir, kindConfig: config.kindConfig, nodeImage: config.kindNodeImage, aiopslabDir: config.aiopslabDir, env, log });
  return {
    backend: 'kind',
    ensure: (workerId, dirty, opts) => manager.ensure(workerId, { dirty, beforeChange: opts?.beforeChange }),
    plannedHandle: (workerId) => manager.handleFor(workerId),
    async release(workerId) {
      if (config.kindDeleteOnShutdown) await manager.delete(workerId);
    },
  };
}
