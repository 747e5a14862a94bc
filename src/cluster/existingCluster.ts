/**
 * Backend `existing`: run on a cluster someone else manages. The given kubeconfig is never used
 * directly; the chosen context is minified and flattened into the worker's private kubeconfig, so
 * the worker's children cannot reach (or switch to) any other context in the user's file.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors.js';
import { privateKubeEnv, type ClusterHandle } from './clusterHandle.js';
import { assertSafeWorkerId } from './clusterNaming.js';
import { checkNodes } from './nodeHealth.js';
import { describeFailure, failureDetails, runTool } from './runTool.js';
import { installKubeconfig, prepareWorkerFiles, workerFiles } from './workerFiles.js';

export interface ExistingClusterOptions {
  kubeconfig: string;
  /** Context in that kubeconfig; null: its current context. */
  context: string | null;
  stateDir: string;
  workerId: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export async function existingClusterHandle(opts: ExistingClusterOptions): Promise<ClusterHandle> {
  assertSafeWorkerId(opts.workerId);
  const source = path.resolve(opts.kubeconfig);
  if (!existsSync(source)) throw new AppError('cluster_failed', `The kubeconfig ${source} (EXISTING_KUBECONFIG) does not exist.`, { kubeconfig: source });
  const files = workerFiles(opts.stateDir, opts.workerId);
  await prepareWorkerFiles(files);
  const env = privateKubeEnv(files, opts.env ?? process.env);
  const timeoutMs = opts.timeoutMs ?? 60_000;

  // --minify keeps only the context (and its cluster and user); --flatten inlines certificate files.
  const args = ['config', 'view', '--kubeconfig', source, '--minify', '--flatten', '--raw'];
  if (opts.context) args.push('--context', opts.context);
  const view = await runTool('kubectl', args, { env, timeoutMs });
  if (view.code !== 0 || !view.stdout.trim()) {
    throw new AppError('cluster_failed', `Could not read context ${opts.context ?? '(current)'} from ${source}: ${describeFailure(view)}`, failureDetails(view));
  }
  await installKubeconfig(files, view.stdout);

  const current = await runTool('kubectl', ['config', 'current-context', '--kubeconfig', files.kubeconfig], { env, timeoutMs });
  const context = current.stdout.trim();
  if (current.code !== 0 || !context) throw new AppError('cluster_failed', `The kubeconfig ${source} has no usable context: ${describeFailure(current)}`, failureDetails(current));

  const health = await checkNodes({ kubeconfig: files.kubeconfig, context, env, timeoutMs });
  if (!health.nodes.some((n) => n.ready)) {
    throw new AppError('cluster_failed', `The cluster of context ${context} is not usable: ${health.reason ?? 'no Ready node'}`, { context, nodes: health.nodes });
  }
  return { backend: 'existing', name: context, context, kubeconfig: files.kubeconfig, home: files.home, controlPlaneContainer: null };
}
