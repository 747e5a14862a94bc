/**
 * Who gets in: bearer tokens on every route (several API tokens, a separate worker token for the
 * worker-host endpoints), the dashboard's `?token=` → HttpOnly cookie flow with SSE on the cookie,
 * open health probes and dashboard shell, the loopback-only rule of the start command, the
 * submission rate limit, and no CORS / no internal error text.
 */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardServer } from '../src/api/dashboard.js';
import { TokenBuckets } from '../src/api/rateLimit.js';
import { buildServer } from '../src/api/server.js';
import { runService } from '../src/service/runService.js';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';
import { createTestDatabase } from './helpers/database.js';
import { allRoutes, type RouteSpec } from './securitySupport.js';

const API = ['tok-alpha-1f9c3e', 'tok-beta-77d2a0'];
const WORKER = 'wtok-9a8b7c6d5e';
const dashDir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-dash-'));
mkdirSync(path.join(dashDir, 'assets'));
writeFileSync(path.join(dashDir, 'index.html'), '<!doctype html><title>dash</title><script src="/assets/app.js"></script>');
writeFileSync(path.join(dashDir, 'assets', 'app.js'), 'console.log(1)');

let h: ApiHarness;
let routes: RouteSpec[];

beforeAll(async () => {
  h = await createApiHarness({ env: { API_TOKEN: API.join(','), WORKER_TOKEN: WORKER }, deps: { dashboard: createDashboardServer(dashDir) } });
  routes = await allRoutes(h.app, { authorization: `Bearer ${API[0]}` });
});
afterAll(async () => {
  await h?.close();
  rmSync(dashDir, { recursive: true, force: true });
});

const OPEN = new Set(['/health', '/ready']);
const concrete = (p: string) => p.replace(/\{task_id\}|:task_id/g, '00000000-0000-4000-8000-000000000001')
  .replace(/\{worker_id\}|:worker_id/g, 'worker-x-001').replace(/\{[a-z_]+\}|:[a-z_]+/g, 'x');

describe('API tokens', () => {
  it('enumerates the routes (OpenAPI + hidden aliases), so nothing escapes the checks below', () => {
    expect(routes.length).toBeGreaterThan(40);
    expect(routes.some((r) => r.path === '/tasks' && r.method === 'POST')).toBe(true);
    expect(routes.some((r) => r.path === '/api/v1/workers/{worker_id}/claim')).toBe(true);
  });

  it('every route but the health probes refuses a request without a token, or with a wrong one (401, WWW-Authenticate)', async () => {
    for (const r of routes.filter((x) => !OPEN.has(x.path))) {
      for (const headers of [{}, { authorization: 'Bearer nope-nope-nope' }, { authorization: `Basic ${Buffer.from(`u:${API[0]}`).toString('base64')}` }, { cookie: 'aiopslab_token=wrong' }]) {
        const res = await h.app.inject({ method: r.method, url: concrete(r.path), headers });
        expect(res.statusCode, `${r.method} ${r.path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.json().error.code).toBe('unauthorized');
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    }
  });

  it('accepts any of the API tokens, as a header (any case of "Bearer") or the cookie', async () => {
    for (const headers of [{ authorization: `Bearer ${API[0]}` }, { authorization: `bearer ${API[1]}` }, { cookie: `theme=dark; aiopslab_token=${API[1]}` }]) {
      const res = await h.app.inject({ url: '/api/v1/tasks', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(200);
    }
  });

  it('the worker token opens the worker-host endpoints only (403 elsewhere); an API token opens them too', async () => {
    const workerRoutes = routes.filter((r) => /\/workers\/(register|heartbeat|\{worker_id\}\/(heartbeat|claim|tasks\/.*))$/.test(r.path) && r.method === 'POST');
    expect(workerRoutes.length).toBeGreaterThanOrEqual(12); // 6 endpoints × 2 prefixes
    for (const r of workerRoutes) {
      const res = await h.app.inject({ method: r.method, url: concrete(r.path), headers: { authorization: `Bearer ${WORKER}` }, payload: {} });
      expect([401, 403], `${r.method} ${r.path}`).not.toContain(res.statusCode);
    }
    const reg = await h.app.inject({ method: 'POST', url: '/api/v1/workers/register', headers: { authorization: `Bearer ${WORKER}` }, payload: { worker_id: 'worker-remote-001', backend_type: 'kind' } });
    expect(reg.statusCode).toBe(201);
    for (const r of routes.filter((x) => !workerRoutes.includes(x) && !OPEN.has(x.path))) {
      const res = await h.app.inject({ method: r.method, url: concrete(r.path), headers: { authorization: `Bearer ${WORKER}` } });
      expect(res.statusCode, `${r.method} ${r.path}`).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
    }
  });

  it('health probes stay open', async () => {
    for (const url of ['/health', '/ready']) expect((await h.app.inject({ url })).statusCode, url).toBe(200);
  });
});

describe('the dashboard', () => {
  it('serves its static shell without a token (it holds no data and asks for one); the JSON root needs a token', async () => {
    for (const url of ['/', '/dashboard']) {
      const res = await h.app.inject({ url, headers: { accept: 'text/html' } });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toContain('<title>dash</title>');
    }
    expect((await h.app.inject({ url: '/assets/app.js' })).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/', headers: { accept: 'application/json' } })).statusCode).toBe(401);
  });

  it('`?token=` once: an HttpOnly SameSite=Strict cookie, and a redirect that drops the token from the address', async () => {
    const res = await h.app.inject({ url: `/dashboard?x=1&token=${API[1]}`, headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/dashboard?x=1');
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(new RegExp(`^aiopslab_token=${API[1]}; Path=/; HttpOnly; SameSite=Strict$`));
    const cookie = setCookie.split(';')[0]!;
    expect((await h.app.inject({ url: '/api/v1/tasks', headers: { cookie } })).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/', headers: { cookie, accept: 'application/json' } })).statusCode).toBe(200);
  });

  it('a wrong `?token=` or a stale cookie is refused and the cookie cleared, so the dashboard can ask again', async () => {
    const bad = await h.app.inject({ url: '/?token=wrong-token', headers: { accept: 'text/html' } });
    expect(bad.statusCode).toBe(401);
    expect(String(bad.headers['set-cookie'])).toMatch(/^aiopslab_token=; .*HttpOnly.*Max-Age=0/);
    const stale = await h.app.inject({ url: '/api/v1/tasks', headers: { cookie: 'aiopslab_token=old-token' } });
    expect(stale.statusCode).toBe(401);
    expect(String(stale.headers['set-cookie'])).toMatch(/Max-Age=0/);
  });

  it('live events (SSE) work with the cookie, and not without it', async () => {
    const app = await buildServer(h.deps);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      expect((await fetch(`${base}/api/v1/events`)).status).toBe(401);
      const ctl = new AbortController();
      const res = await fetch(`${base}/api/v1/events?types=task`, { headers: { cookie: `aiopslab_token=${API[0]}` }, signal: ctl.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const read = async (until: RegExp) => {
        const deadline = Date.now() + 10_000;
        while (!until.test(text) && Date.now() < deadline) text += new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
      };
      await read(/: connected/);
      await h.db.pool.query(`INSERT INTO tasks (problem_id) VALUES ('k8s_target_port-misconfig-detection-1')`);
      await read(/event: task/);
      expect(text).toMatch(/event: task\ndata: .*"status":"pending"/);
      ctl.abort();
    } finally {
      await app.close();
    }
  });
});

describe('only WORKER_TOKEN set', () => {
  it('guards the worker-host endpoints and leaves the rest as without tokens', async () => {
    const w = await createApiHarness({ env: { WORKER_TOKEN: WORKER } });
    try {
      expect((await w.app.inject({ url: '/api/v1/tasks' })).statusCode).toBe(200);
      const body = { worker_id: 'worker-remote-002', backend_type: 'kind' };
      expect((await w.app.inject({ method: 'POST', url: '/api/v1/workers/register', payload: body })).statusCode).toBe(401);
      expect((await w.app.inject({ method: 'POST', url: '/workers/register', payload: body })).statusCode).toBe(401);
      expect((await w.app.inject({ method: 'POST', url: '/api/v1/workers/register/', payload: body })).statusCode).toBe(401);
      expect((await w.app.inject({ method: 'POST', url: '/api/v1/workers/register', payload: body, headers: { authorization: `Bearer ${WORKER}` } })).statusCode).toBe(201);
    } finally {
      await w.close();
    }
  });
});

describe('listening address', () => {
  it('refuses a non-loopback address without API_TOKEN before touching anything, unless --insecure; loopback and API_TOKEN are fine', async () => {
    const db = await createTestDatabase();
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-sec-state-'));
    const base = { DATABASE_URL: db.url, PORT: '0', LOG_LEVEL: 'silent', NUM_INTERNAL_WORKERS: '0', ENABLE_DOCS: 'false', EXECUTOR_STATE_DIR: stateDir };
    const sink = new (await import('node:stream')).PassThrough();
    sink.resume();
    try {
      for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
        await expect(runService('serve', { host, logDestination: sink }, base), host).rejects.toThrow(/Refusing to listen on .* without API_TOKEN/);
      }
      for (const [host, overrides, env] of [
        ['0.0.0.0', { insecure: true }, {}],
        ['0.0.0.0', {}, { API_TOKEN: API[0] }],
        ['127.0.0.1', {}, {}],
        ['::1', {}, {}],
      ] as const) {
        const s = await runService('serve', { host, logDestination: sink, ...overrides }, { ...base, ...env });
        expect(s.url, host).toMatch(/^http/);
        await s.close();
      }
    } finally {
      await db.drop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('submission rate limit', () => {
  it('refills at SUBMIT_RATE_LIMIT per minute with bursts of the same size', () => {
    let now = 0;
    const b = new TokenBuckets({ perMinute: 3, now: () => now });
    expect([1, 2, 3].map(() => b.take('a').retryAfterSeconds)).toEqual([null, null, null]);
    expect(b.take('a').retryAfterSeconds).toBe(20);
    expect(b.take('b').retryAfterSeconds).toBeNull(); // its own bucket
    now += 19_000;
    expect(b.take('a').retryAfterSeconds).toBe(1);
    now += 1_000;
    expect(b.take('a').retryAfterSeconds).toBeNull();
    now += 3_600_000;
    expect([1, 2, 3, 4].map(() => b.take('a').retryAfterSeconds)).toEqual([null, null, null, 20]); // the burst never exceeds the size
  });

  it('answers 429 rate_limited with Retry-After per token; reads and other tokens are unaffected', async () => {
    const r = await createApiHarness({ env: { API_TOKEN: API.join(','), SUBMIT_RATE_LIMIT: '3' } });
    try {
      const submit = (token: string, url = '/api/v1/tasks') => r.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: { problem_id: 'k8s_target_port-misconfig-detection-1' } });
      for (let i = 0; i < 2; i++) expect((await submit(API[0]!)).statusCode).toBe(201);
      expect((await submit(API[0]!, '/tasks')).statusCode).toBe(201); // the alias shares the bucket
      const limited = await submit(API[0]!);
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe('rate_limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(20);
      expect((await r.app.inject({ url: '/api/v1/tasks', headers: { authorization: `Bearer ${API[0]}` } })).statusCode).toBe(200);
      expect((await submit(API[1]!)).statusCode).toBe(201);
      const n = await r.db.pool.query('SELECT count(*)::int AS n FROM tasks');
      expect(n.rows[0].n).toBe(4);
      // Unauthenticated floods are refused by auth before they can use anyone's budget.
      expect((await r.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: {} })).statusCode).toBe(401);
    } finally {
      await r.close();
    }
  });
});

describe('responses', () => {
  it('send no CORS headers (the earlier executor allowed any origin with credentials)', async () => {
    const res = await h.app.inject({ url: '/api/v1/tasks', headers: { origin: 'https://evil.example', authorization: `Bearer ${API[0]}` } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await h.app.inject({ method: 'OPTIONS', url: '/api/v1/tasks', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a body above BODY_LIMIT_BYTES is refused with 413 payload_too_large, also when streamed without a length', async () => {
    const r = await createApiHarness({ env: { BODY_LIMIT_BYTES: '2048' } });
    const base = await r.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const big = JSON.stringify({ problem_id: 'k8s_target_port-misconfig-detection-1', metadata: { x: 'y'.repeat(4096) } });
      const declared = await fetch(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
      expect(declared.status).toBe(413);
      expect((await declared.json()).error).toMatchObject({ code: 'payload_too_large', details: { limit_bytes: 2048 } });
      // Chunked: the server cannot know the size up front and must stop reading at the limit.
      const chunks = new ReadableStream({ start(c) { for (let i = 0; i < 64; i++) c.enqueue(new TextEncoder().encode(i === 0 ? '{"problem_id":"' : 'y'.repeat(1024))); c.close(); } });
      const streamed = await fetch(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunks, duplex: 'half' } as RequestInit);
      expect(streamed.status).toBe(413);
      expect((await streamed.json()).error.code).toBe('payload_too_large');
      expect((await r.db.pool.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n).toBe(0);
    } finally {
      await r.close();
    }
  });

  it('a 500 names the request id, never the internal exception text', async () => {
    const lines: string[] = [];
    const app = await buildServer({ ...h.deps, config: { ...h.deps.config, apiTokens: [], workerTokens: [] }, logger: pino({ level: 'error' }, { write: (l: string) => lines.push(l) }) });
    app.get('/boom', async () => { throw new Error('pg: relation "secret_table" at /srv/app/x.ts:12'); });
    await app.ready();
    const res = await app.inject({ url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe('internal');
    expect(res.body).not.toContain('secret_table');
    expect(lines.join('')).toContain('secret_table'); // the operator finds it in the logs by request id
    expect(lines.join('')).toContain(res.json().error.request_id);
    await app.close();
  });
});
