/** Kind cluster names of workers: `aiopslab-<worker id>`, valid for kind and for docker containers. */
import { AppError } from '../errors.js';

export const CLUSTER_PREFIX = 'aiopslab-';
/** kind refuses longer names (node container hostnames must stay short). */
export const KIND_NAME_MAX = 50;

const WORKER_ID = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function kindClusterName(workerId: string): string {
  const name = `${CLUSTER_PREFIX}${workerId}`;
  if (!WORKER_ID.test(workerId)) {
    throw new AppError('cluster_failed', `Worker id "${workerId}" cannot name a kind cluster: use lowercase letters, digits and "-" only, starting and ending with a letter or digit.`, { workerId });
  }
  if (name.length > KIND_NAME_MAX) {
    throw new AppError('cluster_failed', `Worker id "${workerId}" is too long for a kind cluster name: "${name}" has ${name.length} characters, kind allows ${KIND_NAME_MAX} (worker ids up to ${KIND_NAME_MAX - CLUSTER_PREFIX.length}).`, { workerId });
  }
  return name;
}

/** The worker id that owns a cluster, or null for clusters this service did not create. */
export function clusterOwner(clusterName: string): string | null {
  if (!clusterName.startsWith(CLUSTER_PREFIX)) return null;
  const id = clusterName.slice(CLUSTER_PREFIX.length);
  return WORKER_ID.test(id) ? id : null;
}

/** Worker ids become folder names under the state dir; refuse anything that could escape it. */
export function assertSafeWorkerId(workerId: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(workerId) || workerId.length > 200) {
    throw new AppError('cluster_failed', `Worker id "${workerId}" cannot name a folder: use letters, digits, ".", "_" and "-" only.`, { workerId });
  }
}
