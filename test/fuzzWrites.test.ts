/**
 * Property-based, on the endpoints that write: near-valid bodies with one or more fields made
 * hostile (wrong types, out of range, huge, unicode, NUL bytes, injection strings), against live
 * state (real task and worker ids, replayed idempotency keys, workers claiming and finishing).
 * Never a 5xx; a refused request changes no row; what is accepted keeps the data consistent.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksum, createFuzzHarness, enc, expectUnchanged, nastyString, nastyValue, runCase, type FuzzHarness, type FuzzRequest } from './fuzzSupport.js';

const RUNS = 4000;
let f: FuzzHarness;
const workers = ['worker-fuzz-001', 'worker-fuzz-002', 'worker-fuzz-003'];

beforeAll(async () => { f = await createFuzzHarness(); });
afterAll(async () => { await f?.close(); });

const PROBLEMS = ['k8s_target_port-misconfig-detection-1', 'auth_miss_mongodb-detection-1', 'k8s_target_port-misconfig-mitigation-1'];
/** A field that is valid most of the time and hostile otherwise. */
const maybe = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: nastyValue });
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const parameters = fc.record({
  max_steps: optional(maybe(fc.integer({ min: 1, max: 1000 }))),
  timeout_minutes: optional(maybe(fc.integer({ min: 1, max: 180 }))),
  timeout: optional(maybe(fc.integer({ min: 1, max: 10_800 }))),
  priority: optional(maybe(fc.integer({ min: 0, max: 10 }))),
  agent_config: optional(maybe(fc.record({
    model: optional(maybe(fc.constantFrom('gpt-4o-mini', 'openai/gpt-4o', 'anthropic/claude-3-haiku', 'openai:gpt-4o', 'gpt-4o-mini-typo'))),
    temperature: optional(maybe(fc.double({ min: 0, max: 2, noNaN: true }))),
    max_tokens: optional(maybe(fc.integer({ min: 1, max: 100_000 }))),
    top_p: optional(maybe(fc.double({ min: 0.01, max: 1, noNaN: true }))),
  }))),
  metadata: optional(maybe(fc.dictionary(nastyString, nastyValue, { maxKeys: 4 }))),
  callback_url: optional(maybe(fc.constantFrom('http://93.184.216.34/hook', 'https://[2606:4700:4700::1111]/x', 'http://127.0.0.1:9/x', 'http://localhost/x', 'http://169.254.169.254/latest', 'http://10.0.0.1/', 'ftp://93.184.216.34/', 'http://user:pw@93.184.216.34/'))),
  backend_type: optional(maybe(fc.constantFrom('kind', 'existing'))),
  max_total_tokens: optional(maybe(fc.integer({ min: 1, max: 10_000_000 }))),
  max_cost_usd: optional(maybe(fc.double({ min: 0.001, max: 100, noNaN: true }))),
}, { requiredKeys: [] });

type Build = (s: { tasks: string[] }) => FuzzRequest;
const route = (method: FuzzRequest['route']['method'], path: string) => f.routes.find((r) => r.method === method && r.path === path)!;
const json = (v: unknown) => ({ payload: JSON.stringify(v), headers: { 'content-type': 'application/json' } as Record<string, string> });
const pickTask = fc.oneof({ weight: 4, arbitrary: fc.nat().map((n) => (s: { tasks: string[] }) => s.tasks[n % s.tasks.length]!) }, { weight: 1, arbitrary: nastyString.map((x) => () => enc(x)) }, { weight: 1, arbitrary: fc.uuid().map((u) => () => u) });
const pickWorker = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...workers) }, { weight: 1, arbitrary: nastyString.map(enc) });

function arbitraries(): fc.Arbitrary<Build> {
  const submit = fc.record({
    prefix: fc.constantFrom('/api/v1', ''),
    problem: maybe(fc.constantFrom(...PROBLEMS)),
    nested: fc.boolean(),
    params: parameters,
    key: fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k-' + 'x'.repeat(300)), { nil: undefined }),
    extra: fc.option(fc.dictionary(fc.constantFrom('unknown', 'experiment_id', 'status', 'id', 'worker_id'), nastyValue, { maxKeys: 2 }), { nil: undefined }),
  }).map(({ prefix, problem, nested, params, key, extra }): Build => () => {
    const body = nested ? { problem_id: problem, parameters: params, ...extra } : { problem_id: problem, ...params, ...extra };
    const b = json(body);
    return { route: route('POST', `${prefix}/tasks`), method: 'POST', url: `${prefix}/tasks`, headers: { ...b.headers, ...(key ? { 'idempotency-key': key } : {}) }, payload: b.payload, bodyKind: 'json' };
  });

  const register = fc.record({
    worker_id: maybe(fc.constantFrom(...workers)),
    backend_type: maybe(fc.constantFrom('kind', 'existing')),
    capabilities: optional(maybe(fc.record({ supported_problems: optional(fc.array(maybe(fc.constantFrom('k8s_*', '*-detection-*', '*')), { maxLength: 3 })), max_parallel_tasks: optional(maybe(fc.integer({ min: 1, max: 4 }))) }, { requiredKeys: [] }))),
    metadata: optional(maybe(fc.dictionary(nastyString, nastyValue, { maxKeys: 3 }))),
  }, { requiredKeys: [] }).map((body): Build => () => ({ route: route('POST', '/api/v1/workers/register'), method: 'POST', url: '/api/v1/workers/register', ...json(body), bodyKind: 'json' }));

  const heartbeat = fc.tuple(pickWorker, fc.record({ status: optional(maybe(fc.constantFrom('idle', 'busy', 'offline'))), current_task_id: optional(fc.oneof(fc.constant(null), pickTask)) }, { requiredKeys: [] }))
    .map(([w, body]): Build => (s) => {
      const b = { ...body, current_task_id: typeof body.current_task_id === 'function' ? body.current_task_id(s) : body.current_task_id };
      return { route: route('POST', '/api/v1/workers/{worker_id}/heartbeat'), method: 'POST', url: `/api/v1/workers/${w}/heartbeat`, ...json(b), bodyKind: 'json' };
    });

  const claim = pickWorker.map((w): Build => () => ({ route: route('POST', '/api/v1/workers/{worker_id}/claim'), method: 'POST', url: `/api/v1/workers/${w}/claim`, headers: {}, bodyKind: 'none' }));

  const finish = fc.tuple(pickWorker, pickTask, fc.constantFrom('complete', 'fail'),
    fc.oneof(fc.dictionary(fc.constantFrom('error_type', 'error_details', 'result', 'success', 'reward', 'message'), fc.oneof(nastyValue, fc.constantFrom('cluster_failed', 'llm_auth', 'worker_failed', 'not_a_code')), { maxKeys: 4 }), nastyValue))
    .map(([w, t, kind, body]): Build => (s) => ({ route: route('POST', `/api/v1/workers/{worker_id}/tasks/{task_id}/${kind}`), method: 'POST', url: `/api/v1/workers/${w}/tasks/${t(s)}/${kind}`, ...json(body), bodyKind: 'json' }));

  const cancel = fc.tuple(pickTask, fc.constantFrom(['POST', '/api/v1/tasks/{task_id}/cancel'], ['PUT', '/api/v1/tasks/{task_id}/cancel'], ['DELETE', '/api/v1/tasks/{task_id}'], ['POST', '/tasks/{task_id}/cancel'], ['DELETE', '/tasks/{task_id}']) as fc.Arbitrary<[FuzzRequest['route']['method'], string]>)
    .map(([t, [method, path]]): Build => (s) => ({ route: route(method, path), method, url: path.replace('{task_id}', t(s)), headers: {}, bodyKind: 'none' }));

  const scale = fc.tuple(fc.option(nastyValue, { nil: undefined }), fc.option(nastyString, { nil: undefined }))
    .map(([body, q]): Build => () => ({ route: route('POST', '/api/v1/workers/internal/scale'), method: 'POST', url: `/api/v1/workers/internal/scale${q === undefined ? '' : `?num_workers=${enc(q)}`}`, ...(body === undefined ? { headers: {} } : json({ num_workers: body })), bodyKind: 'json' }));

  return fc.oneof({ weight: 6, arbitrary: submit }, { weight: 2, arbitrary: register }, { weight: 2, arbitrary: heartbeat }, { weight: 2, arbitrary: claim }, { weight: 3, arbitrary: finish }, { weight: 2, arbitrary: cancel }, { weight: 1, arbitrary: scale });
}

describe('hostile values in near-valid writes', () => {
  it('the checksum sees a single changed row (so the property below can fail)', async () => {
    const before = await checksum(f.h.db.pool);
    await f.h.db.pool.query(`UPDATE workers SET metadata = metadata || '{"probe":1}' WHERE id = $1`, [f.ids.worker]);
    expect(await checksum(f.h.db.pool)).not.toBe(before);
    f.known = await checksum(f.h.db.pool);
  });

  it(`${RUNS} cases: no 5xx, refused writes change nothing, accepted ones keep the data consistent`, async () => {
    const statuses = new Map<number, number>();
    const tasks = [...f.ids.tasks];
    await fc.assert(fc.asyncProperty(arbitraries(), async (build) => {
      const req = build({ tasks });
      const status = await runCase(f, req);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 201 && req.route.path.endsWith('/tasks')) {
        const r = await f.h.db.pool.query<{ id: string }>('SELECT id FROM tasks ORDER BY created_at DESC LIMIT 1');
        tasks.push(r.rows[0]!.id);
      }
    }), { numRuns: RUNS, endOnFailure: true });
    await expectUnchanged(f, 'after the run');
    expect(f.cases).toBe(RUNS);
    // Both sides were exercised: writes accepted and writes refused.
    const ok = [...statuses].filter(([s]) => s < 300).reduce((a, [, n]) => a + n, 0);
    const refused = [...statuses].filter(([s]) => s >= 400).reduce((a, [, n]) => a + n, 0);
    expect(ok, JSON.stringify([...statuses])).toBeGreaterThan(RUNS / 20);
    expect(refused, JSON.stringify([...statuses])).toBeGreaterThan(RUNS / 5);
    // The data is consistent: a busy worker holds a task assigned to it that is running, or that was
    // cancelled or timed out under it (the worker learns that at its next heartbeat, stops, and is
    // freed by its complete/fail call), and a running task names a registered worker. (A running
    // task its worker row no longer names is legitimate: the worker re-registered or said it went
    // offline; lease expiry resolves that.)
    const orphan = await f.h.db.pool.query(`SELECT t.id FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id WHERE t.status = 'running' AND w.id IS NULL`);
    expect(orphan.rows).toEqual([]);
    const busy = await f.h.db.pool.query(`SELECT w.id, t.status, t.worker_id FROM workers w JOIN tasks t ON t.id = w.current_task_id
      WHERE t.status NOT IN ('running', 'cancelled', 'timeout') OR t.worker_id IS DISTINCT FROM w.id`);
    expect(busy.rows).toEqual([]);
  }, 600_000);
});
