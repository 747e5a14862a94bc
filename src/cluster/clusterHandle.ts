/** What a worker knows about the cluster it runs tasks on, and the environment its children get. */
import path from 'node:path';

export interface ClusterHandle {
  backend: 'kind' | 'existing';
  /** Kind cluster name (`aiopslab-<worker id>`), or the context name for an existing cluster. */
  name: string;
  /** The context to use; also the current-context of `kubeconfig`. */
  context: string;
  /** The worker's private kubeconfig, holding only this cluster. */
  kubeconfig: string;
  /** The worker's private HOME; `home/.kube/config` has the same content as `kubeconfig`. */
  home: string;
  /** Docker container of the kind control-plane node (the agent shell's target), or null. */
  controlPlaneContainer: string | null;
}

export type ClusterAction = 'reused' | 'created' | 'recreated';

/**
 * Environment that confines a child to one private kubeconfig: KUBECONFIG and HOME both point at
 * the worker's own files (AIOpsLab reads ~/.kube/config explicitly). DOCKER_CONFIG keeps docker
 * (driven by kind and AIOpsLab) finding the user's contexts and auth under the real home.
 */
export function privateKubeEnv(files: { kubeconfig: string; home: string }, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, KUBECONFIG: files.kubeconfig, HOME: files.home };
  if (!base.DOCKER_CONFIG && base.HOME) env.DOCKER_CONFIG = path.join(base.HOME, '.docker');
  return env;
}

/**
 * Environment for any child that acts on the cluster (kubectl, helm, the AIOpsLab bridge): the
 * private kubeconfig, plus AIOPSLAB_CLUSTER for kind clusters, which makes AIOpsLab's KubeCtl use
 * the `kind-<name>` context.
 */
export function clusterProcessEnv(handle: ClusterHandle, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = privateKubeEnv(handle, base);
  if (handle.backend === 'kind') env.AIOPSLAB_CLUSTER = handle.name;
  else delete env.AIOPSLAB_CLUSTER;
  return env;
}
