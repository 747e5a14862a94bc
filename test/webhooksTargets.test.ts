/**
 * The webhook SSRF guard: which addresses are refused, at submission (422 webhook_target_refused,
 * nothing stored) and again at send time (DNS may have changed), and what configuration allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { ensureProblemCatalog } from '../src/catalog/problemCatalog.js';
import { classifyAddress, checkWebhookTarget, refusalFor, type Resolver } from '../src/webhooks/targetPolicy.js';
import { sendWebhook, signWebhook } from '../src/webhooks/sender.js';
import { retryDelaySeconds } from '../src/webhooks/deliveries.js';
import { createApiHarness, type ApiHarness } from './helpers/apiHarness.js';
import { startReceiver, type Receiver } from './webhooksSupport.js';
import pino from 'pino';

const fakeDns = (table: Record<string, string[]>): Resolver => async (host) => {
  const a = table[host];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return a;
};
const closed = { allowPrivate: false, allowedHosts: [] as string[] };

describe('address classes', () => {
  it.each([
    ['8.8.8.8', 'public'], ['93.184.216.34', 'public'], ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['::1', 'loopback'], ['0:0:0:0:0:0:0:1', 'loopback'],
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'private'],
    ['fc00::1', 'private'], ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link_local'], ['fe80::1', 'link_local'],
    ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'], ['255.255.255.255', 'reserved'],
    // IPv6 spellings of IPv4 addresses are judged by the IPv4 address inside.
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::ffff:169.254.169.254', 'link_local'], ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::10.0.0.1', 'private'], ['2002:7f00:0001::1', 'loopback'],
    ['172.32.0.1', 'public'], ['11.0.0.1', 'public'],
  ])('%s is %s', (addr, cls) => {
    expect(classifyAddress(addr)).toBe(cls);
  });

  it('allow-private opens loopback and private ranges but not link-local; the allow-list opens exact hosts and CIDRs', () => {
    const open = { allowPrivate: true, allowedHosts: [] };
    expect(refusalFor('127.0.0.1', 'localhost', open)).toBeNull();
    expect(refusalFor('10.0.0.5', 'hooks', open)).toBeNull();
    expect(refusalFor('169.254.169.254', 'metadata', open)).toMatch(/link-local/);
    expect(refusalFor('0.0.0.0', 'x', open)).toMatch(/unspecified/);
    expect(refusalFor('10.1.2.3', 'x', { allowPrivate: false, allowedHosts: ['10.1.0.0/16'] })).toBeNull();
    expect(refusalFor('10.2.2.3', 'x', { allowPrivate: false, allowedHosts: ['10.1.0.0/16'] })).toMatch(/private/);
    expect(refusalFor('10.2.2.3', 'hooks.internal', { allowPrivate: false, allowedHosts: ['HOOKS.internal'] })).toBeNull();
    expect(refusalFor('fd00::5', 'x', { allowPrivate: false, allowedHosts: ['fd00::/8'] })).toBeNull();
  });
});

describe('checkWebhookTarget (submission)', () => {
  const dns = fakeDns({
    'hooks.example.com': ['93.184.216.34'],
    'localhost': ['127.0.0.1', '::1'],
    'sneaky.example.com': ['93.184.216.34', '10.0.0.7'],
    'meta.example.com': ['169.254.169.254'],
    'v6.example.com': ['::ffff:127.0.0.1'],
  });
  it('accepts a host whose every address is public', async () => {
    await expect(checkWebhookTarget('https://hooks.example.com/x?y=1', closed, dns)).resolves.toBeUndefined();
    await expect(checkWebhookTarget('http://93.184.216.34:8080/', closed, dns)).resolves.toBeUndefined();
  });
  it.each([
    ['http://localhost:8080/hook', /loopback/],
    ['http://127.0.0.1/', /loopback/],
    ['http://[::1]:9000/', /loopback/],
    ['http://sneaky.example.com/', /10\.0\.0\.7.*private/],
    ['http://meta.example.com/latest/meta-data', /link-local/],
    ['http://169.254.169.254/', /link-local/],
    ['http://v6.example.com/', /loopback/],
    ['http://[::ffff:7f00:1]/', /loopback/],
    ['http://0.0.0.0:80/', /unspecified/],
    ['http://nowhere.invalid/', /cannot be resolved/],
    ['ftp://hooks.example.com/', /only http and https/],
    ['http://user:pass@hooks.example.com/', /credentials/],
    ['not a url', /not a valid URL/],
  ])('refuses %s', async (url, why) => {
    const e = await checkWebhookTarget(url, closed, dns).then(() => null, (x) => x);
    expect(e, url).not.toBeNull();
    expect(e.code).toBe('webhook_target_refused');
    expect(e.message).toMatch(why);
  });
});

describe('submission through the API', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
    await ensureProblemCatalog(h.db.pool, h.deps.config, pino({ level: 'silent' }), { env: {} });
    h.deps.submitValidator = createSubmitValidator(h.db.pool, h.deps.config);
  });
  afterAll(async () => { await h?.close(); });

  const count = async () => (await h.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks')).rows[0]!.n;

  it.each([
    ['nested', (u: string) => ({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { callback_url: u } })],
    ['flat', (u: string) => ({ problem_id: 'k8s_target_port-misconfig-detection-1', callback_url: u })],
  ])('refuses loopback, link-local and private targets with 422 webhook_target_refused and stores nothing (%s form)', async (_form, body) => {
    const before = await count();
    for (const u of ['http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://[::1]/', 'http://169.254.169.254/latest', 'http://10.0.0.1/', 'http://192.168.0.10:8080/x']) {
      const r = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: body(u) });
      expect(r.statusCode, u).toBe(422);
      expect(r.json().error.code, u).toBe('webhook_target_refused');
      expect(r.json().error.details[0].field).toBe('parameters.callback_url');
    }
    expect(await count()).toBe(before);
  });

  it('accepts a public address and stores it as the task\'s callback_url', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', payload: { problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { callback_url: 'http://93.184.216.34/hook' } } });
    expect(r.statusCode, r.body).toBe(201);
    const row = await h.db.pool.query('SELECT callback_url FROM tasks WHERE id = $1', [r.json().id]);
    expect(row.rows[0].callback_url).toBe('http://93.184.216.34/hook');
  });
});

describe('send time', () => {
  let rx: Receiver;
  beforeAll(async () => { rx = await startReceiver(); });
  afterAll(async () => { await rx?.close(); });

  it('refuses loopback at connect time too (DNS may have changed since submission), without sending anything', async () => {
    const port = new URL(rx.url).port;
    for (const url of [`http://localhost:${port}/a`, `http://127.0.0.1:${port}/b`]) {
      const r = await sendWebhook({ url, body: '{}', headers: {}, secret: null, policy: closed, timeoutMs: 2000 });
      expect(r, url).toMatchObject({ ok: false, status: null, permanent: true });
      expect(r.error).toMatch(/target refused.*loopback/);
    }
    expect(rx.received).toHaveLength(0);
    const ok = await sendWebhook({ url: `http://localhost:${port}/c`, body: '{"a":1}', headers: {}, secret: 's3cret', policy: { allowPrivate: true, allowedHosts: [] }, timeoutMs: 2000 });
    expect(ok).toMatchObject({ ok: true, status: 200 });
    expect(rx.received).toHaveLength(1);
    const got = rx.received[0]!;
    expect(got.headers['x-aiopslab-signature']).toBe(signWebhook('s3cret', String(got.headers['x-aiopslab-timestamp']), '{"a":1}'));
  });

  it('does not follow redirects and reports Retry-After', async () => {
    rx.respondWith({ status: 302, headers: { location: 'http://169.254.169.254/' } }, { status: 429, headers: { 'retry-after': '7' } });
    const policy = { allowPrivate: true, allowedHosts: [] };
    const a = await sendWebhook({ url: `${rx.url}/r`, body: '{}', headers: {}, secret: null, policy, timeoutMs: 2000 });
    expect(a).toMatchObject({ ok: false, status: 302, permanent: false });
    expect(a.error).toMatch(/redirects are not followed/);
    const b = await sendWebhook({ url: `${rx.url}/r`, body: '{}', headers: {}, secret: null, policy, timeoutMs: 2000 });
    expect(b).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 7 });
  });

  it('backs off exponentially, honours Retry-After, caps at an hour', () => {
    const none = () => 0;
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(n, 10, null, none))).toEqual([10, 20, 40, 80]);
    expect(retryDelaySeconds(1, 10, 90, none)).toBe(90);
    expect(retryDelaySeconds(20, 10, null, none)).toBe(3600);
    expect(retryDelaySeconds(1, 10, 100_000, none)).toBe(3600);
  });
});
