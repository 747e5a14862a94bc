/**
 * Shared pieces of the property-based API tests: an app over a seeded database, the route list
 * (OpenAPI + hidden aliases), generators of hostile input, a table checksum, and `runCase`, which
 * sends one request with app.inject() and checks what must hold for every answer: no 5xx, the one
 * error envelope with a catalogued code, and no rows changed unless the request succeeded at a
 * write.
 */
import fc from 'fast-check';
import pino from 'pino';
import { expect } from 'vitest';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { ensureProblemCatalog } from '../src/catalog/problemCatalog.js';
import { ERROR_CATALOGUE } from '../src/errors.js';
import type { Pool } from '../src/store/pool.js';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';
import { allRoutes, type RouteSpec } from './securitySupport.js';

export const BODY_LIMIT = 65_536;

export interface FuzzHarness {
  h: ApiHarness;
  routes: RouteSpec[];
  /** Ids that exist, so some requests reach real rows. */
  ids: { tasks: string[]; conversation: string; worker: string; message: number };
  /** Every (method, path pattern) sent at least once, with counts. */
  coverage: Map<string, number>;
  cases: number;
  /** The checksum the database must still have unless a write succeeded. */
  known: string;
  close(): Promise<void>;
}

export async function createFuzzHarness(): Promise<FuzzHarness> {
  // A provider base URL nobody listens on: a model-catalog refresh fails at once, without the network.
  const h = await createApiHarness({ env: { SUBMIT_RATE_LIMIT: '0', BODY_LIMIT_BYTES: String(BODY_LIMIT), OPENROUTER_BASE_URL: 'http://127.0.0.1:9/api/v1', OPENROUTER_API_KEY: 'sk-or-v1-fuzz' } });
  await ensureProblemCatalog(h.db.pool, h.deps.config, pino({ level: 'silent' }), { env: {} });
  h.deps.submitValidator = createSubmitValidator(h.db.pool, h.deps.config);
  const tasks: string[] = [];
  for (const p of ['k8s_target_port-misconfig-detection-1', 'auth_miss_mongodb-detection-1', 'k8s_target_port-misconfig-mitigation-1']) {
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: { problem_id: p, parameters: { metadata: { seed: true } } } });
    if (r.statusCode !== 201) throw new Error(`seed failed: ${r.body}`);
    tasks.push(r.json().id);
  }
  await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${tasks[2]}/cancel` });
  const worker = 'worker-fuzz-001';
  await h.app.inject({ method: 'POST', url: '/api/v1/workers/register', payload: { worker_id: worker, backend_type: 'kind' } });
  const conv = await h.db.pool.query<{ id: string }>(`INSERT INTO llm_conversations (task_id, model_name, metadata) VALUES ($1, 'openai/gpt-4o-mini', '{"problem_id":"k8s_target_port-misconfig-detection-1"}') RETURNING id`, [tasks[0]]);
  await h.db.pool.query(`INSERT INTO llm_messages (conversation_id, seq, role, content) VALUES ($1, 1, 'system', 'You are an SRE'), ($1, 2, 'user', 'Go')`, [conv.rows[0]!.id]);
  const routes = await allRoutes(h.app);
  const f: FuzzHarness = {
    h, routes, ids: { tasks, conversation: conv.rows[0]!.id, worker, message: 1 }, coverage: new Map(), cases: 0, known: '',
    close: () => h.close(),
  };
  f.known = await checksum(h.db.pool);
  return f;
}

/** One md5 per table over all its rows: any insert, update or delete anywhere changes it. */
export async function checksum(pool: Pool, opts: { ignoreLiveness?: boolean } = {}): Promise<string> {
  const tables = await pool.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`);
  // Liveness and holding columns: what the worker-host endpoints record even when they answer 409
  // task_not_held — the worker is alive (heartbeat), and a worker row still naming a task that ended
  // elsewhere is freed (complete/fail/claim), which is the cleanup the 409 reports.
  const row = (t: string) => !opts.ignoreLiveness ? 'x::text'
    : t === 'tasks' ? `(to_jsonb(x) - 'lease_expires_at' - 'updated_at')::text` : t === 'workers' ? `(to_jsonb(x) - 'last_heartbeat' - 'status' - 'current_task_id')::text` : 'x::text';
  const sql = tables.rows.map(({ t }) => `SELECT '${t}' AS t, count(*) AS n, md5(coalesce(string_agg(${row(t)}, '|' ORDER BY ${row(t)}), '')) AS h FROM "${t}" x`).join(' UNION ALL ');
  const r = await pool.query<{ t: string; n: number; h: string }>(sql);
  return r.rows.map((x) => `${x.t}:${x.n}:${x.h}`).sort().join(',');
}

// ---------------------------------------------------------------------------------------------
// Generators

export const INJECTION = [
  "' OR '1'='1", "1' OR 1=1 --", "'; DROP TABLE tasks; --", '"; DROP TABLE workers; --', "1; SELECT pg_sleep(10)",
  "' UNION SELECT * FROM llm_conversations --", "\\'; TRUNCATE task_logs; --", '%27%20OR%201%3D1', "admin'--", '$1', '$$; DELETE FROM tasks; $$',
  '../../../../etc/passwd', '..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2f', '/etc/shadow', '..\\..\\windows\\win.ini', '....//....//', '%00', '\u0000', 'a\u0000b',
  '%', '%%', '%ZZ', '*', '?', '#', '&', '=', '\\', '/', '//', '.', '..', '~', '${HOME}', '$(id)', '`id`', '{{7*7}}', '<script>alert(1)</script>', '\r\nSet-Cookie: x=1',
  '\u202e\u0644\u0627', '日本語', '🧨💥', '\ud800', '\uffff', 'ǅ', 'ﬀ', 'İ', '\u00a0', ' ', '', 'null', 'undefined', 'NaN', 'true', '-1', '0', '1e309', '9223372036854775808', '0x10',
  '00000000-0000-0000-0000-000000000000', '00000000-0000-4000-8000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-4000-8000-00000000000g',
  '0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '2024-02-30T00:00:00Z', '2024-01-01', '1970-01-01T00:00:00+25:00',
  'worker-001-internal', 'internal', 'stats', 'k8s_target_port-misconfig-detection-1',
];

export const huge = (n: number, c = 'A') => c.repeat(n);

/** encodeURIComponent that survives lone surrogates (they become U+FFFD, as a browser would send). */
export const enc = (s: string) => encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));

/** Text that ends up in a path segment, a query value or a JSON string. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...INJECTION) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.constantFrom(huge(300), huge(5000, 'é'), huge(20_000, 'x'), huge(256, 'a'), huge(255, 'b')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...INJECTION), fc.string({ maxLength: 10 })).map(([a, b]) => a + b) },
);

/** Any JSON value, biased to the types and sizes validation must refuse. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 0.5, 1e-320, -0, 11, 181, 1001, 10_801) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(fc.oneof(nastyString, fc.integer()), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(nastyString, nastyString, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

export interface FuzzRequest {
  route: RouteSpec;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** What the body is meant to be, for the assertions. */
  bodyKind: 'none' | 'json' | 'malformed' | 'other_type' | 'huge';
}

/** A path with its parameters replaced by hostile text (or, sometimes, real ids). */
export function pathArb(route: RouteSpec, f: FuzzHarness, opts: { realIds: boolean }): fc.Arbitrary<string> {
  const params = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const real = (name: string): string[] => {
    if (!opts.realIds) return [];
    if (name === 'task_id') return f.ids.tasks;
    if (name === 'worker_id') return [f.ids.worker];
    if (name === 'conversation_id' || name === 'id') return [f.ids.conversation];
    return [];
  };
  const seg = (name: string) => fc.oneof(
    { weight: 6, arbitrary: nastyString.map(enc) },
    { weight: 2, arbitrary: fc.constantFrom("'%20OR%201=1", '..%2F..%2Fetc', '%2e%2e', '..', '.', '%00', '%ZZ', '%', 'a%2Fb', '%E2%80%AE', '%F0%9F%A7%A8', 'x;y', 'x,y', '(', ')', '[]', '{}', '@', '!', '$', "'", '"') },
    { weight: real(name).length ? 3 : 0, arbitrary: real(name).length ? fc.constantFrom(...real(name)) : fc.constant('x') },
  );
  return fc.tuple(...params.map(seg)).map((values) => {
    let i = 0;
    return route.path.replace(/\{[^}]+\}/g, () => values[i++] || 'x');
  });
}

const QUERY_KEYS = ['status', 'problem_id', 'q', 'worker_id', 'backend_type', 'experiment_id', 'created_after', 'created_before', 'page', 'page_size', 'limit',
  'offset', 'sort', 'include_logs', 'level', 'since', 'after_id', 'task_id', 'model_name', 'model', 'search', 'refresh', 'use_openrouter', 'num_workers', 'types',
  'application', 'task_type', 'group_by', 'from', 'to', 'include_unfinished', 'role', 'format', 'token', '__proto__', 'constructor', 'a[b]', 'x'];

export const queryArb: fc.Arbitrary<string> = fc.array(
  fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...QUERY_KEYS) }, { weight: 1, arbitrary: nastyString }), nastyValue.map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? ''))),
  { maxLength: 4 },
).map((pairs) => pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&'));

const MALFORMED = ['{', '}', '{"', '{"problem_id":', '{"problem_id":"x",}', '[1,2', 'nul', 'tru', '{"a":1}}', "{'a':1}", '{"a":NaN}', '{"a":Infinity}', '{"a":01}', '{"a":1e999999}',
  '\u0000', '\ufeff{}', '{"a":"\\ud800"}', '{"a":"\\u0000"}', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '[]', '""', '0', 'null', ' ', '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}'];

/** Known top-level body fields of a route, from its OpenAPI schema, so values reach field validation. */
export function bodyFields(doc: any, route: RouteSpec): string[] {
  const p = doc?.paths?.[route.hidden ? `/api/v1${route.path}` : route.path]?.[route.method.toLowerCase()];
  const schema = p?.requestBody?.content?.['application/json']?.schema;
  return Object.keys(schema?.properties ?? {});
}

export function bodyArb(fields: string[]): fc.Arbitrary<Pick<FuzzRequest, 'payload' | 'headers' | 'bodyKind'>> {
  const json = (v: unknown) => ({ payload: JSON.stringify(v), headers: { 'content-type': 'application/json' }, bodyKind: 'json' as const });
  const shaped = fc.tuple(
    fc.dictionary(fields.length ? fc.constantFrom(...fields, 'unknown_field', 'parameters', 'agent_config') : nastyString, nastyValue, { maxKeys: 5 }),
    fc.option(fc.record({ agent_config: fc.dictionary(fc.constantFrom('model', 'temperature', 'max_tokens', 'top_p', 'x'), nastyValue, { maxKeys: 3 }) }), { freq: 3 }),
  ).map(([o, nested]) => (nested ? { ...o, parameters: nested } : o));
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({ payload: undefined, headers: {}, bodyKind: 'none' as const }) },
    { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...MALFORMED), fc.string({ unit: 'binary', maxLength: 60 })).map((s) => ({ payload: s, headers: { 'content-type': 'application/json' }, bodyKind: 'malformed' as const })) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(json) },
    { weight: 4, arbitrary: shaped.map(json) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=utf-16', 'application/octet-stream', 'application/jsonx', ''), fc.string({ maxLength: 60 }))
      .map(([ct, s]) => ({ payload: s, headers: ct ? { 'content-type': ct } : {}, bodyKind: 'other_type' as const })) },
    { weight: 1, arbitrary: fc.constantFrom(BODY_LIMIT + 1, BODY_LIMIT * 3).map((n) => ({ payload: JSON.stringify({ problem_id: huge(n) }), headers: { 'content-type': 'application/json' }, bodyKind: 'huge' as const })) },
  );
}

const SSE = /\/events$/;

// ---------------------------------------------------------------------------------------------
// The checks

/** Sends one request and checks the invariants; returns the status. */
export async function runCase(f: FuzzHarness, r: FuzzRequest, opts: { readOnly?: boolean } = {}): Promise<number> {
  let url = r.url;
  // A valid request to a live stream never ends: make sure it is refused (an unknown query field).
  if (SSE.test(r.route.path) && (r.method === 'GET' || r.method === 'HEAD')) url += (url.includes('?') ? '&' : '?') + 'fuzz_unknown=1';
  const label = `${r.method} ${url.slice(0, 300)} [${r.bodyKind}] ${typeof r.payload === 'string' ? r.payload.slice(0, 200) : ''}`;
  // Worker-host calls record liveness / free a stale holding even when refused with 409 task_not_held.
  const isWorkerHost = r.method === 'POST' && /\/(heartbeat|claim|complete|fail)$/.test(r.route.path);
  const beforeSansLiveness = isWorkerHost ? await checksum(f.h.db.pool, { ignoreLiveness: true }) : null;
  const res = await Promise.race([
    f.h.app.inject({ method: r.method as 'GET', url, headers: r.headers, payload: r.payload }),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no answer within 10 s: ${label}`)), 10_000)),
  ]);
  f.cases++;
  const key = `${r.route.method} ${r.route.path}`;
  f.coverage.set(key, (f.coverage.get(key) ?? 0) + 1);

  expect(res.statusCode, `${label} -> ${res.body.slice(0, 500)}`).toBeLessThan(500);
  if (res.statusCode >= 400 && r.method !== 'HEAD') {
    const body = res.json();
    expect(body.error, label).toBeDefined();
    expect(Object.keys(ERROR_CATALOGUE), label).toContain(body.error.code);
    expect(ERROR_CATALOGUE[body.error.code as keyof typeof ERROR_CATALOGUE].status, label).toBe(res.statusCode);
    expect(typeof body.error.request_id).toBe('string');
    expect(typeof body.detail).toBe('string');
  }
  // Routing errors (no such path or method, a malformed or overlong path) come before the body is read.
  const routingError = [404, 405, 414].includes(res.statusCode) || (res.statusCode === 400 && res.body !== '' && res.json().error?.code === 'invalid_url');
  if (r.bodyKind === 'huge' && r.method !== 'GET' && r.method !== 'HEAD' && !routingError) {
    expect(res.statusCode, label).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
  }
  const isRead = r.method === 'GET' || r.method === 'HEAD';
  const succeeded = res.statusCode >= 200 && res.statusCode < 300;
  if (isWorkerHost && res.statusCode === 409) {
    expect(await checksum(f.h.db.pool, { ignoreLiveness: true }), `${label} -> 409 changed more than liveness/holding`).toBe(beforeSansLiveness);
    f.known = await checksum(f.h.db.pool);
  } else if (!isRead && succeeded && !opts.readOnly) {
    f.known = await checksum(f.h.db.pool); // a legitimate write
  } else if (!isRead) {
    // Refused (or read-only phase): not one row may have changed.
    const now = await checksum(f.h.db.pool);
    expect(now, `${label} -> ${res.statusCode} changed rows`).toBe(f.known);
  }
  return res.statusCode;
}

/** Reads never write: checked every `every` reads and at the end. */
export async function expectUnchanged(f: FuzzHarness, what: string): Promise<void> {
  expect(await checksum(f.h.db.pool), what).toBe(f.known);
}

const OTHER_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

/** A hostile request to one of `routes`: its own method mostly, sometimes another. */
export function requestArb(f: FuzzHarness, doc: unknown, routes: RouteSpec[], opts: { realIds: boolean }): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...routes).chain((route) => fc.record({
    route: fc.constant(route),
    method: fc.oneof({ weight: 5, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_METHODS) }),
    path: pathArb(route, f, opts),
    query: fc.oneof({ weight: 1, arbitrary: fc.constant('') }, { weight: 2, arbitrary: queryArb }),
    body: bodyArb(bodyFields(doc, route)),
    extraHeaders: fc.dictionary(fc.constantFrom('idempotency-key', 'x-request-id', 'accept', 'cookie', 'authorization', 'x-forwarded-for'), nastyString.map((s) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)), { maxKeys: 2 }),
  })).map(({ route, method, path, query, body, extraHeaders }) => ({
    route, method,
    url: query ? `${path}?${query}` : path,
    headers: { ...extraHeaders, ...body.headers },
    payload: method === 'GET' || method === 'HEAD' ? undefined : body.payload,
    bodyKind: method === 'GET' || method === 'HEAD' ? 'none' : body.bodyKind,
  }));
}
