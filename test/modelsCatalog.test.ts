import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../src/config.js';
import { AppError } from '../src/errors.js';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { modelRoutes } from '../src/api/routes/models.js';
import { EventHub } from '../src/store/eventHub.js';
import { createCatalogView, ensureModelCatalog, loadModelCatalog, refreshModelCatalog, type ModelCatalogView } from '../src/agent/modelCatalog.js';
import { MODEL_ALIASES, requireProviderKey, resolveModel } from '../src/agent/modelResolution.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { DEFAULT_MODELS, startLlmServer, type LlmServer } from './fixtures/llmServer.js';

const KEY = 'sk-or-v1-models-test-0011223344556677';
const log = pino({ level: 'silent' });

function cfg(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', ...env });
}

const catalog: ModelCatalogView = createCatalogView(DEFAULT_MODELS.map((m) => ({
  id: m.id, name: m.name, context_length: m.context_length, prompt_price: Number(m.pricing.prompt), completion_price: Number(m.pricing.completion),
})));

function invalid(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('invalid_model');
    return e as AppError;
  }
  throw new Error('expected invalid_model');
}

describe('resolveModel', () => {
  const withOpenRouter = cfg({ OPENROUTER_API_KEY: KEY });

  it("maps the earlier executor's short names to OpenRouter ids", () => {
    const none = cfg({ OPENROUTER_API_KEY: KEY });
    const expected: Record<string, string> = {
      'gpt-4': 'openai/gpt-4', 'gpt-4-turbo': 'openai/gpt-4-turbo', 'gpt-4o': 'openai/gpt-4o', 'gpt-4o-mini': 'openai/gpt-4o-mini',
      'gpt-3.5-turbo': 'openai/gpt-3.5-turbo', 'claude-3-opus': 'anthropic/claude-3-opus', 'claude-3-sonnet': 'anthropic/claude-3-sonnet',
      'claude-3-haiku': 'anthropic/claude-3-haiku', 'llama-3-70b': 'meta-llama/llama-3-70b-instruct', 'mixtral-8x7b': 'mistralai/mixtral-8x7b-instruct',
    };
    for (const [alias, id] of Object.entries(expected)) {
      expect(MODEL_ALIASES[alias]).toBe(id);
      expect(resolveModel(alias, { config: none, catalog: null })).toEqual({ requested: alias, id, provider: 'openrouter', baseUrl: 'https://openrouter.ai/api/v1', inCatalog: null, catalogId: null });
    }
    expect(resolveModel('GPT-4o-Mini', { config: none, catalog }).id).toBe('openai/gpt-4o-mini');
  });

  it('passes OpenRouter ids through and checks them against a known catalog', () => {
    expect(resolveModel('anthropic/claude-3.5-sonnet', { config: withOpenRouter, catalog })).toMatchObject({ id: 'anthropic/claude-3.5-sonnet', provider: 'openrouter', inCatalog: true, catalogId: 'anthropic/claude-3.5-sonnet' });
    expect(resolveModel('meta-llama/llama-3-8b-instruct:free', { config: withOpenRouter, catalog }).id).toBe('meta-llama/llama-3-8b-instruct:free');
    expect(resolveModel('openai/gpt-4o:nitro', { config: withOpenRouter, catalog }).id).toBe('openai/gpt-4o:nitro');
    expect(resolveModel('some-vendor/new-model', { config: withOpenRouter, catalog: null })).toMatchObject({ id: 'some-vendor/new-model', inCatalog: null });
    const e = invalid(() => resolveModel('openai/gpt-4o-mni', { config: withOpenRouter, catalog }));
    expect((e.details as { closest: string[] }).closest).toContain('openai/gpt-4o-mini');
    expect(e.message).toContain('Did you mean');
  });

  it('finds other short names in the catalog, and asks for the full id when several vendors match', () => {
    expect(resolveModel('claude-3.5-sonnet', { config: withOpenRouter, catalog }).id).toBe('anthropic/claude-3.5-sonnet');
    const two = createCatalogView([{ id: 'a/m1', name: null, context_length: null, prompt_price: null, completion_price: null }, { id: 'b/m1', name: null, context_length: null, prompt_price: null, completion_price: null }]);
    expect((invalid(() => resolveModel('m1', { config: withOpenRouter, catalog: two })).details as { closest: string[] }).closest).toEqual(['a/m1', 'b/m1']);
    const e = invalid(() => resolveModel('gpt-4o-mnii', { config: withOpenRouter, catalog }));
    expect((e.details as { closest: string[] }).closest.length).toBeGreaterThan(0);
  });

  it('without a catalog infers only well-known vendors', () => {
    expect(resolveModel('gpt-5', { config: withOpenRouter, catalog: null }).id).toBe('openai/gpt-5');
    expect(resolveModel('o3-mini', { config: withOpenRouter, catalog: null }).id).toBe('openai/o3-mini');
    expect(resolveModel('claude-3-7-sonnet', { config: withOpenRouter, catalog: null }).id).toBe('anthropic/claude-3-7-sonnet');
    invalid(() => resolveModel('qwen-72b', { config: withOpenRouter, catalog: null }));
    invalid(() => resolveModel('  ', { config: withOpenRouter, catalog: null }));
  });

  it('honours provider prefixes: openai:, local:, openrouter:', () => {
    const c = cfg({ OPENROUTER_API_KEY: KEY, OPENAI_COMPATIBLE_BASE_URL: 'http://127.0.0.1:11434/v1' });
    expect(resolveModel('openai:gpt-4o', { config: c, catalog })).toEqual({ requested: 'openai:gpt-4o', id: 'gpt-4o', provider: 'openai', baseUrl: 'https://api.openai.com/v1', inCatalog: null, catalogId: 'openai/gpt-4o' });
    expect(resolveModel('local:llama3:8b', { config: c, catalog })).toEqual({ requested: 'local:llama3:8b', id: 'llama3:8b', provider: 'compatible', baseUrl: 'http://127.0.0.1:11434/v1', inCatalog: null, catalogId: null });
    expect(resolveModel('openrouter:gpt-4o-mini', { config: cfg({ OPENAI_API_KEY: 'sk-x-123456' }), catalog }).provider).toBe('openrouter');
    expect(invalid(() => resolveModel('local:llama3', { config: withOpenRouter, catalog })).message).toContain('OPENAI_COMPATIBLE_BASE_URL');
  });

  it('goes to OpenAI directly for openai/* models when only an OpenAI key exists or use_openrouter is false', () => {
    const openaiOnly = cfg({ OPENAI_API_KEY: 'sk-openai-123456' });
    expect(resolveModel('gpt-4o-mini', { config: openaiOnly, catalog })).toMatchObject({ id: 'gpt-4o-mini', provider: 'openai', catalogId: 'openai/gpt-4o-mini' });
    expect(resolveModel('gpt-4o-mini', { config: openaiOnly, catalog, useOpenRouter: true })).toMatchObject({ id: 'openai/gpt-4o-mini', provider: 'openrouter' });
    expect(resolveModel('gpt-4o-mini', { config: withOpenRouter, catalog, useOpenRouter: false })).toMatchObject({ id: 'gpt-4o-mini', provider: 'openai' });
    expect(resolveModel('gpt-4o-mini', { config: withOpenRouter, catalog })).toMatchObject({ provider: 'openrouter' });
    expect(invalid(() => resolveModel('claude-3-haiku', { config: withOpenRouter, catalog, useOpenRouter: false })).message).toContain('use_openrouter is false');
  });
});

describe('requireProviderKey', () => {
  it('names the variable to set, never a value', () => {
    const c = cfg({ OPENAI_API_KEY: 'sk-openai-secret-value-999' });
    const m = resolveModel('anthropic/claude-3-haiku', { config: c, catalog: null });
    let err: AppError | null = null;
    try { requireProviderKey(m, c); } catch (e) { err = e as AppError; }
    expect(err?.code).toBe('missing_api_key');
    expect(err?.message).toBe('No API key for provider openrouter: set OPENROUTER_API_KEY');
    expect(JSON.stringify(err?.details)).not.toContain('sk-openai-secret-value-999');
    expect(() => requireProviderKey(resolveModel('openai:gpt-4o', { config: c, catalog: null }), c)).not.toThrow();
    expect(() => requireProviderKey(resolveModel('openai:gpt-4o', { config: cfg(), catalog: null }), cfg())).toThrow('set OPENAI_API_KEY');
    const local = cfg({ OPENAI_COMPATIBLE_BASE_URL: 'http://127.0.0.1:8001/v1' });
    expect(() => requireProviderKey(resolveModel('local:qwen', { config: local, catalog: null }), local)).not.toThrow();
  });
});

describe('the model catalog cache and GET /api/v1/models', () => {
  let db: TestDatabase;
  let server: LlmServer;
  let config: Config;
  let app: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startLlmServer();
    config = cfg({ OPENROUTER_API_KEY: KEY, OPENROUTER_BASE_URL: server.baseUrl, LLM_REQUEST_TIMEOUT: '2' });
    const deps: AppDeps = { pool: db.pool, config, logger: log, events: new EventHub(db.url), workers: null, version: 'test' };
    app = await buildServer(deps);
    if (!app.hasRoute({ method: 'GET', url: '/api/v1/models' })) await modelRoutes(app, deps);
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await server.close();
    await db.drop();
  });
  beforeEach(async () => {
    server.reset();
    await db.pool.query('DELETE FROM models');
  });

  it('fetches the models endpoint without the API key and caches ids, context lengths and per-token prices', async () => {
    expect((await loadModelCatalog(db.pool)).view).toBeNull();
    const before = Date.now();
    expect(await refreshModelCatalog(db.pool, config, log)).toEqual({ count: DEFAULT_MODELS.length });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/api/v1/models' });
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    const { view, fetchedAt } = await loadModelCatalog(db.pool);
    expect(view!.ids().sort()).toEqual(DEFAULT_MODELS.map((m) => m.id).sort());
    expect(view!.price('openai/gpt-4o-mini')).toEqual({ prompt: 0.00000015, completion: 0.0000006 });
    expect(view!.price('openrouter/auto')).toBeNull(); // "-1": variable price
    expect(view!.contextLength('meta-llama/llama-3-70b-instruct')).toBe(8192);
    expect(fetchedAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    const raw = await db.pool.query(`SELECT raw->>'description' AS d FROM models WHERE id = 'openai/gpt-4o'`);
    expect(raw.rows[0].d).toBe('OpenAI: GPT-4o (fixture)');
  });

  it('reports, never throws, when the endpoint fails, and keeps the previous cache', async () => {
    await refreshModelCatalog(db.pool, config, log);
    server.setModels(null); // the fixture answers 503
    const r = await refreshModelCatalog(db.pool, config, log);
    expect(r).toEqual({ error: expect.stringContaining('HTTP 503') });
    expect((await loadModelCatalog(db.pool)).view!.ids()).toHaveLength(DEFAULT_MODELS.length);
    const down = cfg({ OPENROUTER_BASE_URL: 'http://127.0.0.1:1/api/v1', LLM_REQUEST_TIMEOUT: '1' });
    expect(await refreshModelCatalog(db.pool, down, log)).toEqual({ error: expect.stringContaining('failed') });
  });

  it('ensureModelCatalog refreshes only a missing or stale cache', async () => {
    expect((await ensureModelCatalog(db.pool, config, log)).view).not.toBeNull();
    expect(server.requests).toHaveLength(1);
    await ensureModelCatalog(db.pool, config, log);
    expect(server.requests).toHaveLength(1);
    await ensureModelCatalog(db.pool, { ...config, modelCatalogMaxAge: 0 }, log);
    await new Promise((r) => setTimeout(r, 5));
    await ensureModelCatalog(db.pool, { ...config, modelCatalogMaxAge: 0 }, log);
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
  });

  it('GET /api/v1/models serves the catalog, its age, the short names and refresh=true', async () => {
    const empty = await app.inject({ url: '/api/v1/models' });
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({ models: [], total: 0, fetched_at: null, age_seconds: null, stale: true, refresh: null, default_model: 'openai/gpt-4o-mini' });
    expect(server.requests).toHaveLength(0); // a plain GET does not reach the provider

    const r = await app.inject({ url: '/api/v1/models?refresh=true' });
    const body = r.json();
    expect(body.refresh).toEqual({ count: DEFAULT_MODELS.length });
    expect(body.total).toBe(DEFAULT_MODELS.length);
    expect(body.stale).toBe(false);
    expect(body.age_seconds).toBeLessThan(5);
    expect(body.models.find((m: { id: string }) => m.id === 'openai/gpt-4o-mini')).toEqual({ id: 'openai/gpt-4o-mini', name: 'OpenAI: GPT-4o-mini', context_length: 128000, pricing: { prompt: 0.00000015, completion: 0.0000006 } });
    expect(body.aliases['llama-3-70b']).toBe('meta-llama/llama-3-70b-instruct');

    const s = await app.inject({ url: '/api/v1/models?search=claude' });
    expect(s.json().models.map((m: { id: string }) => m.id).sort()).toEqual(['anthropic/claude-3-haiku', 'anthropic/claude-3.5-sonnet']);
    const bad = await app.inject({ url: '/api/v1/models?refresh=maybe' });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details[0].field).toBe('query.refresh');
  });

  it('GET /api/v1/models/resolve explains a name, and rejects unknown ones with close matches', async () => {
    await refreshModelCatalog(db.pool, config, log);
    const ok = await app.inject({ url: '/api/v1/models/resolve?model=claude-3-haiku' });
    expect(ok.json()).toEqual({ requested: 'claude-3-haiku', id: 'anthropic/claude-3-haiku', provider: 'openrouter', in_catalog: true, catalog_id: 'anthropic/claude-3-haiku', context_length: 200000, pricing: { prompt: 0.00000025, completion: 0.00000125 }, key_configured: true });
    expect(ok.body).not.toContain(KEY);
    const bad = await app.inject({ url: '/api/v1/models/resolve?model=gpt-4o-mni' });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.code).toBe('invalid_model');
    expect(bad.json().error.details.closest).toContain('gpt-4o-mini');
    const missing = await app.inject({ url: '/api/v1/models/resolve' });
    expect(missing.statusCode).toBe(422);
    expect(missing.json().error.details[0].field).toBe('query.model');
  });
});
