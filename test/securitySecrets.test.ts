/**
 * Secrets after a complete run through the service (API tokens, a worker token, a webhook secret
 * and the LLM key all set): none of them appears in any table, in the service's logs, in any API
 * response (every GET route, error answers, the live event stream) or in the webhook sent. And the
 * agent's shell command, which asks for them, reaches the worker's own cluster node verbatim
 * (no host-shell expansion) from a bridge whose environment holds none of them.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedSolver, type ChatRequestBody } from './fixtures/llmServer.js';
import { startServiceHarness, TEST_LLM_KEY, type ServiceHarness } from './helpers/serviceHarness.js';
import { allRoutes } from './securitySupport.js';
import { startReceiver, type Receiver } from './webhooksSupport.js';

const API_TOKENS = ['api-tok-5c1e9b7f2d', 'api-tok-0a8d6e4c3b'];
const WORKER_TOKEN = 'wrk-tok-93be71c05a';
const WEBHOOK_SECRET = 'whsec-4d2f8a61e0c7';
const SECRETS: Record<string, string> = {
  llm_key: TEST_LLM_KEY, llm_key_tail: TEST_LLM_KEY.slice(-16), api_token_1: API_TOKENS[0]!, api_token_2: API_TOKENS[1]!, worker_token: WORKER_TOKEN, webhook_secret: WEBHOOK_SECRET,
};
const PROBLEM = 'k8s_target_port-misconfig-detection-1';
// Asks the node's shell for the service's secrets and to run host-side expansions.
const PROBE = 'echo "key=[$OPENROUTER_API_KEY] tok=[$API_TOKEN] wtok=[$WORKER_TOKEN] hook=[$WEBHOOK_SECRET] db=[$DATABASE_URL]" $(echo SUBST) `echo TICKS`; env';

let h: ServiceHarness;
let rx: Receiver;
const auth = { authorization: `Bearer ${API_TOKENS[1]}` };
const collected: Array<{ where: string; text: string }> = [];
let taskId = '';
let bridgeEnv = '';
let sse = '';

function findLeaks(text: string): string[] {
  return Object.entries(SECRETS).filter(([, v]) => text.includes(v)).map(([k]) => k);
}

beforeAll(async () => {
  rx = await startReceiver();
  h = await startServiceHarness({
    workers: 1,
    env: { API_TOKEN: API_TOKENS.join(','), WORKER_TOKEN, WEBHOOK_SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_INTERVAL: '0.2', SUBMIT_RATE_LIMIT: '0' },
  });
  // First the probe command (slowly, so the bridge can be inspected while it runs), then the usual solver.
  h.llm.setPolicy((req) => {
    const body = req.body as ChatRequestBody;
    const turns = body.messages.filter((m) => m.role === 'assistant').length;
    if (turns === 0) return { kind: 'slow', delayMs: 1500, reply: { content: `Action: \`\`\`\nexec_shell(${JSON.stringify(PROBE)})\n\`\`\`` } };
    return scriptedSolver(req);
  });

  // The live stream, read during the whole run.
  const ctl = new AbortController();
  const stream = await fetch(`${h.url}/api/v1/events`, { headers: auth, signal: ctl.signal });
  expect(stream.status).toBe(200);
  const reader = stream.body!.getReader();
  const reading = (async () => { try { for (;;) { const { value, done } = await reader.read(); if (done) break; sse += new TextDecoder().decode(value); } } catch { /* aborted */ } })();

  const sub = await h.api('/api/v1/tasks', { body: { problem_id: PROBLEM, parameters: { max_steps: 5, callback_url: `${rx.url}/hook`, metadata: { note: 'secrets scan' } } }, headers: auth });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  taskId = sub.body.id;

  // While the agent waits for its first answer, read the bridge's environment from /proc.
  const deadline = Date.now() + 60_000;
  while (!bridgeEnv && Date.now() < deadline) {
    const ps = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
    const pid = ps.split('\n').map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/)).find((m) => m && Number(m[2]) === process.pid && m[3]!.includes('aiopslab_bridge.py'))?.[1];
    if (pid) { try { bridgeEnv = readFileSync(`/proc/${pid}/environ`, 'utf8'); } catch { /* ended */ } }
    if (!bridgeEnv) await new Promise((r) => setTimeout(r, 100));
  }

  for (;;) {
    const t = (await h.api(`/api/v1/tasks/${taskId}`, { headers: auth })).body;
    if (['completed', 'failed', 'timeout', 'cancelled'].includes(t.status)) break;
    if (Date.now() > deadline + 60_000) throw new Error(`task did not end: ${JSON.stringify(t)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await rx.waitFor((r) => r.length >= 1, 20_000);
  await new Promise((r) => setTimeout(r, 500));
  ctl.abort();
  await reading;

  // Every GET route with real ids, and a few error answers.
  const conv = (await h.api(`/api/v1/llm-conversations/task/${taskId}/conversations`, { headers: auth })).body[0]?.id ?? 'x';
  const fill = (p: string) => p.replace('{task_id}', taskId).replace('{worker_id}', 'worker-001-internal').replace(/\{(conversation_id|id)\}/, conv)
    .replace('{problem_id}', PROBLEM).replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
  const routes = await allRoutes(await fakeAppFor(h), auth);
  for (const r of routes.filter((x) => x.method === 'GET' && !/\/events$/.test(x.path))) {
    const url = fill(r.path);
    const res = await h.api(url, { headers: { ...auth, accept: 'application/json' } });
    expect(res.status, url).toBeLessThan(500);
    collected.push({ where: `GET ${url}`, text: `${JSON.stringify(Object.fromEntries(res.headers))} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}` });
  }
  for (const [url, init] of [
    ['/api/v1/tasks', { headers: { authorization: 'Bearer wrong' } }],
    ['/api/v1/tasks', { headers: { authorization: `Bearer ${WORKER_TOKEN}` } }],
    ['/api/v1/tasks', { body: { problem_id: 'nope!' }, headers: auth }],
    ['/api/v1/tasks', { body: { problem_id: PROBLEM, parameters: { callback_url: 'http://169.254.169.254/' } }, headers: auth }],
    [`/api/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: auth }],
    ['/api/v1/models/resolve?model=nope-model', { headers: auth }],
    ['/api/v1/workers/worker-001-internal/claim', { method: 'POST', headers: { authorization: `Bearer ${WORKER_TOKEN}` } }],
  ] as const) {
    const res = await h.api(url, init as never);
    collected.push({ where: `${(init as { method?: string }).method ?? 'GET/POST'} ${url}`, text: `${res.status} ${JSON.stringify(Object.fromEntries(res.headers))} ${JSON.stringify(res.body)}` });
  }
}, 240_000);

afterAll(async () => {
  await h?.close();
  await rx?.close();
});

/** allRoutes needs the app; the harness runs a real server, so read its OpenAPI over HTTP into an inject-like shim. */
async function fakeAppFor(s: ServiceHarness) {
  return {
    inject: async ({ url, headers }: { url: string; headers?: Record<string, string> }) => {
      const r = await fetch(`${s.url}${url}`, { headers });
      const text = await r.text();
      return { statusCode: r.status, json: () => JSON.parse(text) };
    },
    // Every route of the document exists on the real server; the shim cannot check that.
    hasRoute: () => true,
  } as never;
}

describe('after a full run', () => {
  it('the secrets were really in use (so the scans below can find them)', () => {
    expect(h.llm.chatRequests().every((r) => r.headers.authorization === `Bearer ${TEST_LLM_KEY}`)).toBe(true);
    const hook = rx.received[0]!;
    expect(hook.headers['x-aiopslab-signature']).toBe(`sha256=${createHmac('sha256', WEBHOOK_SECRET).update(`${hook.headers['x-aiopslab-timestamp']}.${hook.raw}`).digest('hex')}`);
    expect(findLeaks(`x ${API_TOKENS[0]} ${TEST_LLM_KEY}`)).toEqual(['llm_key', 'llm_key_tail', 'api_token_1']);
  });

  it('the task completed, with the probe command run on the worker\'s node verbatim (no host-shell expansion)', async () => {
    const t = (await h.api(`/api/v1/tasks/${taskId}`, { headers: auth })).body;
    expect(t.status, JSON.stringify(t)).toBe('completed');
    const execs = h.standins.calls('docker').filter((c) => c.argv[0] === 'exec' && c.argv.some((a) => a.includes('SUBST')));
    expect(execs).toHaveLength(1);
    expect(execs[0]!.argv).toEqual(['exec', 'aiopslab-worker-001-internal-control-plane', 'sh', '-c', PROBE]);
    // What the node's shell saw and printed: its own environment, none of the service's.
    const conv = (await h.api(`/api/v1/llm-conversations/task/${taskId}/conversations`, { headers: auth })).body[0];
    const msgs = (await h.api(`/api/v1/llm-conversations/${conv.id}/messages`, { headers: auth })).body.messages as Array<{ role: string; content: string }>;
    const observation = msgs.find((m) => m.role === 'user' && m.content.includes('key=['))!.content;
    expect(observation).toContain('key=[] tok=[] wtok=[] hook=[] db=[]');
    expect(observation).toContain('SUBST TICKS'); // expanded by the node's shell, not the host's
  });

  it('the bridge process held none of the secrets, by name or by value', () => {
    expect(bridgeEnv).toContain('KUBECONFIG=');
    const names = bridgeEnv.split('\0').map((kv) => kv.split('=')[0]);
    for (const n of ['OPENROUTER_API_KEY', 'API_TOKEN', 'WORKER_TOKEN', 'WEBHOOK_SECRET', 'DATABASE_URL']) expect(names).not.toContain(n);
    expect(findLeaks(bridgeEnv)).toEqual([]);
    expect(bridgeEnv).not.toContain(h.db.url);
  });

  it('no secret in any table', async () => {
    const tables = await h.db.pool.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
    let dump = '';
    for (const { t } of tables.rows) dump += `${t}: ${(await h.db.pool.query<{ j: string }>(`SELECT coalesce(string_agg(row_to_json(x)::text, '\n'), '') AS j FROM "${t}" x`)).rows[0]!.j}\n`;
    expect(dump).toContain('webhook_deliveries: {');
    expect(dump).toContain('key=[]');
    expect(findLeaks(dump)).toEqual([]);
  });

  it('no secret in the service\'s logs', () => {
    const logs = h.logs();
    expect(logs).toContain('webhook delivered');
    expect(findLeaks(logs)).toEqual([]);
  });

  it('no secret in any API response, the event stream, or the webhook', () => {
    expect(collected.length).toBeGreaterThan(30);
    for (const c of collected) expect(findLeaks(c.text), c.where).toEqual([]);
    expect(sse).toMatch(/event: task/);
    expect(sse).toMatch(/event: message/);
    expect(findLeaks(sse)).toEqual([]);
    for (const r of rx.received) expect(findLeaks(`${JSON.stringify(r.headers)} ${r.raw}`)).toEqual([]);
  });
});
