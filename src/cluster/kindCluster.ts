/**
 * The cluster layer of the worker pipeline: a kind cluster per worker (or an existing cluster),
 * each worker confined to its own kubeconfig and HOME. Other layers import from here.
 */
export { clusterProcessEnv, privateKubeEnv, type ClusterAction, type ClusterHandle } from './clusterHandle.js';
export { CLUSTER_PREFIX, clusterOwner, kindClusterName } from './clusterNaming.js';
export { gcClusters, listClusters, type ClusterEntry, type ClusterInventoryOptions, type GcOptions, type GcResult } from './clusterInventory.js';
export { existingClusterHandle, type ExistingClusterOptions } from './existingCluster.js';
export { KindClusterManager, type EnsureResult, type KindClusterManagerOptions } from './kindClusterManager.js';
export { checkNodes, type NodeHealth } from './nodeHealth.js';
export { workerFiles, type WorkerFiles } from './workerFiles.js';
