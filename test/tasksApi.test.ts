import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';

let h: ApiHarness;
beforeAll(async () => { h = await createApiHarness(); });
afterAll(async () => { await h.close(); });

const post = (url: string, payload: unknown, headers: Record<string, string> = {}) => h.app.inject({ method: 'POST', url, payload: payload as object, headers });

describe('POST /api/v1/tasks', () => {
  it('creates a task from the nested form with defaults filled in', async () => {
    const r = await post('/api/v1/tasks', { problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { agent_config: { model: 'openai/gpt-4o-mini', temperature: 0.2 } } });
    expect(r.statusCode).toBe(201);
    const t = r.json();
    expect(t).toMatchObject({
      problem_id: 'k8s_target_port-misconfig-detection-1', status: 'pending', priority: 5, worker_id: null, result: null, error_details: null,
      parameters: { max_steps: 30, timeout_minutes: 30, priority: 5, agent_config: { model: 'openai/gpt-4o-mini', temperature: 0.2 } },
    });
    expect(Object.keys(t)).toEqual(expect.arrayContaining(['id', 'created_at', 'updated_at', 'started_at', 'completed_at']));
    expect(r.headers['x-request-id']).toBeTruthy();
    const logs = await h.app.inject({ url: `/api/v1/tasks/${t.id}/logs` });
    expect(logs.json().logs.map((l: { message: string }) => l.message)).toEqual(['Task created']);
  });

  it('accepts the flat form and the legacy timeout in seconds', async () => {
    const r = await post('/api/v1/tasks', { problem_id: 'auth_miss_mongodb-detection-1', max_steps: 12, timeout: 600, priority: 9, agent_config: { model: 'gpt-4o-mini' }, metadata: { run: 'a' } });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ priority: 9, parameters: { max_steps: 12, timeout_minutes: 10, priority: 9, metadata: { run: 'a' }, agent_config: { model: 'gpt-4o-mini' } } });
  });

  it('rejects unknown fields by name, out-of-range values, wrong types and conflicts', async () => {
    const unknown = await post('/api/v1/tasks', { problem_id: 'x1', parameters: { max_step: 3 }, foo: 1 });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().error.code).toBe('unknown_field');
    expect(unknown.json().error.details.map((d: { field: string }) => d.field).sort()).toEqual(['foo', 'parameters.max_step']);

    const range = await post('/api/v1/tasks', { problem_id: 'x1', parameters: { max_steps: 1001, timeout_minutes: 0, priority: 11 } });
    expect(range.statusCode).toBe(422);
    expect(range.json().error.code).toBe('validation_failed');
    expect(range.json().error.details.map((d: { field: string }) => d.field).sort()).toEqual(['parameters.max_steps', 'parameters.priority', 'parameters.timeout_minutes']);

    const type = await post('/api/v1/tasks', { problem_id: 'x1', max_steps: '5' });
    expect(type.statusCode).toBe(422);
    expect(type.json().error.details[0]).toEqual({ field: 'max_steps', reason: 'must be integer' });

    const missing = await post('/api/v1/tasks', { parameters: {} });
    expect(missing.json().error.details).toEqual([{ field: 'problem_id', reason: 'is required' }]);

    const badId = await post('/api/v1/tasks', { problem_id: '../etc/passwd' });
    expect(badId.statusCode).toBe(422);
    expect(badId.json().error.details[0].field).toBe('problem_id');

    const conflict = await post('/api/v1/tasks', { problem_id: 'x1', max_steps: 5, parameters: { max_steps: 6 } });
    expect(conflict.statusCode).toBe(422);
    expect(conflict.json().error.details[0].field).toBe('max_steps');

    const json = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: '{"problem_id":', headers: { 'content-type': 'application/json' } });
    expect(json.statusCode).toBe(400);
    expect(json.json().error.code).toBe('invalid_json');
    expect(json.json().detail).toBe(json.json().error.message);
  });

  it('returns the same task for the same Idempotency-Key and 409 for a different body', async () => {
    const body = { problem_id: 'noop_detection_hotel_reservation-1' };
    const a = await post('/api/v1/tasks', body, { 'idempotency-key': 'k-1' });
    const b = await post('/api/v1/tasks', body, { 'idempotency-key': 'k-1' });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(200);
    expect(b.json().id).toBe(a.json().id);
    const c = await post('/api/v1/tasks', { problem_id: 'noop_detection_hotel_reservation-1', priority: 1 }, { 'idempotency-key': 'k-1' });
    expect(c.statusCode).toBe(409);
    expect(c.json().error.code).toBe('idempotency_conflict');
    const n = await h.db.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE idempotency_key = 'k-1'`);
    expect(n.rows[0].n).toBe(1);
  });
});

describe('reading and cancelling tasks', () => {
  it('lists with filters, both pagination styles and sorting', async () => {
    for (let i = 0; i < 5; i++) await post('/api/v1/tasks', { problem_id: `sortcase-${i}`, priority: i });
    const byPrio = await h.app.inject({ url: '/api/v1/tasks?q=sortcase&sort=-priority&page_size=2&page=1' });
    expect(byPrio.statusCode).toBe(200);
    expect(byPrio.json()).toMatchObject({ total: 5, page: 1, page_size: 2 });
    expect(byPrio.json().tasks.map((t: { priority: number }) => t.priority)).toEqual([4, 3]);
    const off = await h.app.inject({ url: '/api/v1/tasks?q=sortcase&sort=priority&limit=2&offset=2' });
    expect(off.json().tasks.map((t: { priority: number }) => t.priority)).toEqual([2, 3]);
    const exact = await h.app.inject({ url: '/api/v1/tasks?problem_id=sortcase-3&status=pending' });
    expect(exact.json().total).toBe(1);
    const bad = await h.app.inject({ url: '/api/v1/tasks?sort=-name&page_size=500&status=done' });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details).toContainEqual({ field: 'query.status', reason: 'must be one or more of pending, running, completed, failed, timeout, cancelled, comma-separated' });
    expect(bad.json().error.details.map((d: { field: string }) => d.field).sort()).toEqual(['query.page_size', 'query.sort', 'query.status']);
    const mixed = await h.app.inject({ url: '/api/v1/tasks?page=2&limit=5' });
    expect(mixed.statusCode).toBe(422);
  });

  it('cancels via POST, PUT and DELETE; 409 once terminal; 404 unknown; 422 malformed id', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await post('/api/v1/tasks', { problem_id: 'cancel-me' })).json().id);
    const a = await post(`/api/v1/tasks/${ids[0]}/cancel`, undefined);
    const b = await h.app.inject({ method: 'PUT', url: `/api/v1/tasks/${ids[1]}/cancel` });
    const c = await h.app.inject({ method: 'DELETE', url: `/api/v1/tasks/${ids[2]}` });
    for (const r of [a, b, c]) {
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ status: 'cancelled' });
      expect(r.json().completed_at).toBeTruthy();
    }
    const again = await post(`/api/v1/tasks/${ids[0]}/cancel`, undefined);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('task_terminal');
    const missing = await post('/api/v1/tasks/00000000-0000-4000-8000-000000000000/cancel', undefined);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('task_not_found');
    const malformed = await h.app.inject({ url: '/api/v1/tasks/not-a-uuid' });
    expect(malformed.statusCode).toBe(422);
    expect(malformed.json().error.details).toEqual([{ field: 'path.task_id', reason: 'must be a UUID' }]);
    const withLogs = await h.app.inject({ url: `/api/v1/tasks/${ids[0]}?include_logs=true` });
    expect(withLogs.json().logs.map((l: { message: string }) => l.message)).toEqual(['Task created', 'Task cancelled: Cancelled by user']);
  });

  it('serves the statistics endpoints with the earlier keys', async () => {
    const s = (await h.app.inject({ url: '/api/v1/tasks/stats' })).json();
    expect(Object.keys(s).sort()).toEqual(['avg_execution_time', 'cancelled_tasks', 'completed_tasks', 'failed_tasks', 'pending_tasks', 'running_tasks', 'success_rate', 'tasks_by_problem', 'tasks_by_worker', 'timeout_tasks', 'total_tasks']);
    expect(s.cancelled_tasks).toBe(3);
    const q = (await h.app.inject({ url: '/queue/stats' })).json();
    expect(q).toMatchObject({ cancelled: 3, total: s.total_tasks, success_rate: 0 });
    const unprefixed = await h.app.inject({ url: '/tasks/stats' });
    expect(unprefixed.statusCode).toBe(200);
  });

  it('answers health, ready, metrics, docs and unknown routes', async () => {
    const health = await h.app.inject({ url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'degraded', database: { connected: true }, workers: { total: 0 }, queue: { pending: expect.any(Number) } });
    expect((await h.app.inject({ url: '/ready' })).json()).toMatchObject({ ready: true, migrations_applied: true });
    const metrics = await h.app.inject({ url: '/metrics' });
    expect(metrics.body).toContain('task_queue_size{status="pending"}');
    expect(metrics.body).toContain('http_requests_total{method="GET",endpoint="/health",status="200"}');
    const spec = (await h.app.inject({ url: '/openapi.json' })).json();
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/api/v1/tasks', '/api/v1/tasks/{task_id}/cancel', '/health']));
    expect(Object.keys(spec.paths)).not.toContain('/tasks');
    expect((await h.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
    // HEAD on a live stream answers with the stream's headers and ends (it used to stay open).
    const head = await h.app.inject({ method: 'HEAD', url: '/api/v1/events?types=task' });
    expect([head.statusCode, head.headers['content-type'], head.body]).toEqual([200, 'text/event-stream; charset=utf-8', '']);
    const nf = await h.app.inject({ url: '/api/v1/nope', headers: { 'x-request-id': 'req-123' } });
    expect(nf.statusCode).toBe(404);
    expect(nf.headers['x-request-id']).toBe('req-123');
    expect(nf.json().error).toEqual({ code: 'not_found', message: 'No route GET /api/v1/nope', details: null, request_id: 'req-123' });
    const root = await h.app.inject({ url: '/', headers: { accept: 'application/json' } });
    expect(root.json()).toMatchObject({ name: 'AIOpsLab Task Executor', docs: '/docs', health: '/health' });
  });
});
