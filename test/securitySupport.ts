/** Every route of the app: the OpenAPI document's paths plus the hidden aliases, each checked to exist. */
import type { FastifyInstance } from 'fastify';

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** OpenAPI style: /api/v1/tasks/{task_id} */
  path: string;
  hidden: boolean;
}

const toFastify = (p: string) => p.replace(/\{([^}]+)\}/g, ':$1');

/** Hidden routes that are not in the OpenAPI document: the unprefixed copies of tasks/workers, and a few more. */
const EXTRA: Array<Omit<RouteSpec, 'hidden'>> = [
  { method: 'POST', path: '/workers/heartbeat' }, { method: 'POST', path: '/api/v1/workers/heartbeat' },
  { method: 'GET', path: '/' }, { method: 'GET', path: '/openapi.json' }, { method: 'GET', path: '/redoc' }, { method: 'GET', path: '/docs' },
];

export async function allRoutes(app: FastifyInstance, headers: Record<string, string> = {}): Promise<RouteSpec[]> {
  const res = await app.inject({ url: '/openapi.json', headers });
  if (res.statusCode !== 200) throw new Error(`/openapi.json answered ${res.statusCode}`);
  const doc = res.json() as { paths: Record<string, Record<string, unknown>> };
  const out: RouteSpec[] = [];
  const seen = new Set<string>();
  const add = (r: RouteSpec) => {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) return;
    if (!app.hasRoute({ method: r.method, url: toFastify(r.path) })) throw new Error(`route list is stale: ${key} does not exist`);
    seen.add(key);
    out.push(r);
  };
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const m of Object.keys(ops)) {
      const method = m.toUpperCase() as RouteSpec['method'];
      if (!['GET', 'POST', 'PUT', 'DELETE', 'PATCH'].includes(method)) continue;
      add({ method, path: p, hidden: false });
      // The earlier spec's unprefixed paths are registered for tasks and workers, hidden from the docs.
      if (/^\/api\/v1\/(tasks|workers)(\/|$)/.test(p) && app.hasRoute({ method, url: toFastify(p.slice('/api/v1'.length)) })) {
        add({ method, path: p.slice('/api/v1'.length), hidden: true });
      }
    }
  }
  for (const e of EXTRA) if (app.hasRoute({ method: e.method, url: toFastify(e.path) })) add({ ...e, hidden: true });
  return out;
}
