import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { AppError } from '../src/errors.js';
import { createLlmClient } from '../src/agent/llmClient.js';
import type { ResolvedModel } from '../src/agent/modelResolution.js';
import { startLlmServer, type LlmServer } from './fixtures/llmServer.js';

const KEY = 'sk-or-v1-client-test-0123456789abcdef';
let server: LlmServer;
let logs: string[];

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    OPENROUTER_API_KEY: KEY,
    OPENROUTER_BASE_URL: server.baseUrl,
    OPENROUTER_HTTP_REFERER: 'https://executor.example/run',
    OPENROUTER_APP_TITLE: 'Executor Tests',
    LLM_RETRY_BASE_DELAY: '0.01',
    LLM_MAX_RETRIES: '3',
    LLM_REQUEST_TIMEOUT: '5',
    ...env,
  });
}

function logger() {
  return pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logs.push(c.toString()); cb(); } }));
}

function openrouter(cfg: Config, id = 'openai/gpt-4o-mini'): ResolvedModel {
  return { requested: id, id, provider: 'openrouter', baseUrl: cfg.openrouterBaseUrl, inCatalog: true, catalogId: id };
}

const messages = [
  { role: 'system' as const, content: 'You are an SRE.' },
  { role: 'user' as const, content: 'Please take the next action' },
];

async function expectAppError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected an AppError');
}

beforeAll(async () => { server = await startLlmServer(); });
afterAll(async () => { await server.close(); });
beforeEach(() => {
  server.reset();
  server.setPolicy(() => ({ content: '```\nexec_shell("ls")\n```' }));
  logs = [];
});

describe('llmClient: the request', () => {
  it('posts to {baseUrl}/chat/completions with the key, attribution headers and exactly the given sampling parameters', async () => {
    const cfg = config();
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const r = await client.complete({ model: 'openai/gpt-4o-mini', messages, params: { temperature: 0.25, max_tokens: 77, top_p: 0.9 } });
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/api/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['http-referer']).toBe('https://executor.example/run');
    expect(req.headers['x-title']).toBe('Executor Tests');
    expect(req.body).toEqual({ model: 'openai/gpt-4o-mini', messages, temperature: 0.25, max_tokens: 77, top_p: 0.9 });

    const sent = server.responses[0]!;
    expect(r.content).toBe('```\nexec_shell("ls")\n```');
    expect(r.generationId).toBe(sent.id);
    expect(r.servedModel).toBe('openai/gpt-4o-mini');
    expect(r.finishReason).toBe('stop');
    expect(r.usage).toEqual(sent.usage);
    expect(r.attempts).toBe(1);
    expect(r.retries).toEqual([]);
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('omits parameters that are not given, and sends no attribution headers to OpenAI', async () => {
    const cfg = config({ OPENAI_API_KEY: 'sk-openai-test-key-000000', OPENAI_BASE_URL: `${server.url}/v1` });
    const client = createLlmClient({ model: { requested: 'openai:gpt-4o', id: 'gpt-4o', provider: 'openai', baseUrl: cfg.openaiBaseUrl, inCatalog: null, catalogId: null }, config: cfg, logger: logger() });
    await client.complete({ model: 'gpt-4o', messages, params: { temperature: 0 } });
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-openai-test-key-000000');
    expect(req.headers['http-referer']).toBeUndefined();
    expect(req.headers['x-title']).toBeUndefined();
    expect(req.body).toEqual({ model: 'gpt-4o', messages, temperature: 0 });
  });

  it('never sends a key from the environment to a compatible server configured without one', async () => {
    const before = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-from-the-environment-must-not-travel';
    try {
      const cfg = config({ OPENAI_COMPATIBLE_BASE_URL: `${server.url}/v1` });
      const client = createLlmClient({ model: { requested: 'local:llama3', id: 'llama3', provider: 'compatible', baseUrl: cfg.compatibleBaseUrl!, inCatalog: null, catalogId: null }, config: cfg, logger: logger() });
      await client.complete({ model: 'llama3', messages, params: {} });
      expect(server.requests[0]!.headers.authorization).toBe('Bearer no-key');
    } finally {
      if (before === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = before;
    }
  });
});

describe('llmClient: transient failures are retried', () => {
  it('honours Retry-After on 429, then succeeds', async () => {
    const cfg = config();
    server.enqueue({ kind: 'rateLimit', retryAfter: '1' });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const t0 = Date.now();
    const r = await client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    const elapsed = Date.now() - t0;
    expect(r.attempts).toBe(2);
    expect(server.chatRequests()).toHaveLength(2);
    expect(r.retries).toHaveLength(1);
    expect(r.retries[0]).toMatchObject({ attempt: 1, status: 429 });
    expect(r.retries[0]!.wait_ms).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(r.totalMs).toBeGreaterThanOrEqual(1000);
    // The gap between the two requests is the provider's requested pause, not our 10 ms base backoff.
    const [a, b] = server.chatRequests();
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(990);
    expect(logs.join('')).toContain('retrying');
  });

  it('retries 500, a connection reset and a 200 carrying an error object, then succeeds', async () => {
    const cfg = config();
    server.enqueue({ kind: 'status', status: 500, message: 'upstream exploded' }, { kind: 'reset' }, { kind: 'errorBody', code: 502, message: 'provider returned error' });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const r = await client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(r.attempts).toBe(4);
    expect(r.retries.map((x) => x.status)).toEqual([500, null, 502]);
    expect(r.retries[0]!.reason).toContain('upstream exploded');
    expect(r.retries[1]!.reason).toMatch(/connection/i);
    expect(r.content).toContain('exec_shell');
  });

  it('waits for a slow answer within LLM_REQUEST_TIMEOUT and reports its latency', async () => {
    const cfg = config({ LLM_REQUEST_TIMEOUT: '5' });
    server.enqueue({ kind: 'slow', delayMs: 300, reply: { content: 'late' } });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const r = await client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(r).toMatchObject({ content: 'late', attempts: 1 });
    expect(r.latencyMs).toBeGreaterThanOrEqual(290);
  });

  it('abandons a request that hangs past LLM_REQUEST_TIMEOUT and retries it', async () => {
    const cfg = config({ LLM_REQUEST_TIMEOUT: '0.3' });
    server.enqueue({ kind: 'hang' });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const r = await client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(r.attempts).toBe(2);
    expect(r.retries[0]!.reason).toMatch(/timed out/);
  });

  it('waits with exponential backoff and jitter between retries', async () => {
    const cfg = config({ LLM_RETRY_BASE_DELAY: '0.02' });
    server.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    const high = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger(), random: () => 0.999999 });
    const r1 = await high.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(r1.retries.map((x) => x.wait_ms)).toEqual([20, 40, 80]);
    server.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    const low = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger(), random: () => 0 });
    const r2 = await low.complete({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(r2.retries.map((x) => x.wait_ms)).toEqual([10, 20, 40]);
  });

  it('gives up with llm_unavailable after LLM_MAX_RETRIES retries', async () => {
    const cfg = config({ LLM_MAX_RETRIES: '2' });
    server.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503, message: 'overloaded' })));
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const e = await expectAppError(client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} }));
    expect(e.code).toBe('llm_unavailable');
    expect(e.message).toContain('overloaded');
    expect(server.chatRequests()).toHaveLength(3);
    expect((e.details as { attempts: number }).attempts).toBe(3);
  });

  it('stops waiting when the caller aborts', async () => {
    const cfg = config({ LLM_RETRY_BASE_DELAY: '10' });
    server.enqueue({ kind: 'status', status: 503 });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const ctrl = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ctrl.abort(new Error('task cancelled')), 200);
    await expect(client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} }, { signal: ctrl.signal })).rejects.toThrow('task cancelled');
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('llmClient: permanent failures fail at once with a typed error and the provider message', () => {
  const cases: Array<[number, string, string]> = [
    [400, 'This model\'s maximum context length is 8192 tokens', 'llm_bad_request'],
    [400, 'openai/gpt-9 is not a valid model ID', 'llm_model_not_found'],
    [401, 'No auth credentials found', 'llm_auth'],
    [402, 'Insufficient credits. Add more using https://openrouter.ai/credits', 'llm_credits'],
    [403, 'Key is disabled', 'llm_auth'],
    [404, 'No endpoints found for openai/gpt-9.', 'llm_model_not_found'],
  ];
  for (const [status, message, code] of cases) {
    it(`${status} "${message.slice(0, 30)}…" → ${code}`, async () => {
      const cfg = config();
      server.enqueue({ kind: 'status', status, message });
      const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
      const e = await expectAppError(client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} }));
      expect(e.code).toBe(code);
      expect(e.message).toContain(message);
      expect(e.message).toContain(`HTTP ${status}`);
      expect(server.chatRequests()).toHaveLength(1);
    });
  }

  it('treats a 200 with an OpenRouter error object of code 402 as out of credits', async () => {
    const cfg = config();
    server.enqueue({ kind: 'errorBody', code: 402, message: 'Insufficient credits' });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const e = await expectAppError(client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} }));
    expect(e.code).toBe('llm_credits');
    expect(server.chatRequests()).toHaveLength(1);
  });

  it('redacts the key when a provider echoes it in its message', async () => {
    const cfg = config();
    server.enqueue({ kind: 'status', status: 401, message: `Invalid key ${KEY} for this account` });
    const client = createLlmClient({ model: openrouter(cfg), config: cfg, logger: logger() });
    const e = await expectAppError(client.complete({ model: 'openai/gpt-4o-mini', messages, params: {} }));
    expect(e.code).toBe('llm_auth');
    expect(e.message).toContain('Invalid key [redacted] for this account');
    expect(e.message).not.toContain(KEY);
    expect(JSON.stringify(e.details)).not.toContain(KEY);
  });
});
