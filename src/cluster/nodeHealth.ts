/** Whether a cluster answers and all its nodes are Ready, from `kubectl get nodes -o json`. */
import { describeFailure, runTool } from './runTool.js';

export interface NodeHealth {
  healthy: boolean;
  /** Why not, readable (tool error or which node is not Ready); null when healthy. */
  reason: string | null;
  nodes: Array<{ name: string; ready: boolean }>;
}

interface NodeList {
  items?: Array<{ metadata?: { name?: string }; status?: { conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }> } }>;
}

export async function checkNodes(opts: { kubeconfig: string; context: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<NodeHealth> {
  const requestTimeout = `${Math.max(1, Math.floor(opts.timeoutMs / 1000) - 1)}s`;
  const r = await runTool('kubectl', ['--kubeconfig', opts.kubeconfig, '--context', opts.context, 'get', 'nodes', '-o', 'json', '--request-timeout', requestTimeout], { env: opts.env, timeoutMs: opts.timeoutMs });
  if (r.code !== 0) return { healthy: false, reason: describeFailure(r), nodes: [] };
  let list: NodeList;
  try {
    list = JSON.parse(r.stdout) as NodeList;
  } catch {
    return { healthy: false, reason: `\`kubectl get nodes -o json\` printed something that is not JSON: ${r.stdout.slice(0, 200)}`, nodes: [] };
  }
  const nodes = (list.items ?? []).map((n) => {
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
    return { name: n.metadata?.name ?? '?', ready: ready?.status === 'True', why: ready ? `${ready.reason ?? ''}${ready.message ? `: ${ready.message}` : ''}` : 'no Ready condition' };
  });
  if (nodes.length === 0) return { healthy: false, reason: 'the cluster has no nodes', nodes: [] };
  const notReady = nodes.filter((n) => !n.ready);
  const summary = nodes.map(({ name, ready }) => ({ name, ready }));
  if (notReady.length > 0) {
    return { healthy: false, reason: notReady.map((n) => `node ${n.name} is NotReady (${n.why.slice(0, 200)})`).join('; '), nodes: summary };
  }
  return { healthy: true, reason: null, nodes: summary };
}
