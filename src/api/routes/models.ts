/**
 * GET /api/v1/models: the cached OpenRouter model catalog with its age, the short-name table and
 * the default model (`refresh=true` fetches the catalog first). GET /api/v1/models/resolve shows
 * what a model name would run as, and whether its provider has a key, without revealing the key.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../appDeps.js';
import { translateDbError } from '../../store/pool.js';
import { createCatalogView, listCatalogModels, refreshModelCatalog } from '../../agent/modelCatalog.js';
import { MODEL_ALIASES, providerApiKey, resolveModel } from '../../agent/modelResolution.js';

export async function modelRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { pool, config, logger } = deps;
  const tags = ['models'];

  app.get<{ Querystring: { refresh: boolean; search?: string } }>('/api/v1/models', {
    schema: {
      tags,
      summary: 'The model catalog (ids, context lengths, USD-per-token prices), its age, and the short-name table',
      querystring: {
        type: 'object',
        properties: {
          refresh: { type: 'boolean', default: false },
          search: { type: 'string', minLength: 1, maxLength: 200 },
        },
      },
    },
  }, async (req) => {
    let refresh: { count: number } | { error: string } | null = null;
    if (req.query.refresh) refresh = await refreshModelCatalog(pool, config, logger).catch(translateDbError);
    const { models, fetchedAt } = await listCatalogModels(pool).catch(translateDbError);
    const search = req.query.search?.toLowerCase();
    const shown = search ? models.filter((m) => m.id.toLowerCase().includes(search) || (m.name ?? '').toLowerCase().includes(search)) : models;
    const ageSeconds = fetchedAt ? Math.max(0, Math.round((Date.now() - fetchedAt.getTime()) / 1000)) : null;
    return {
      source: 'openrouter',
      models: shown.map((m) => ({
        id: m.id,
        name: m.name,
        context_length: m.context_length,
        pricing: { prompt: m.prompt_price, completion: m.completion_price },
      })),
      total: shown.length,
      fetched_at: fetchedAt ? fetchedAt.toISOString() : null,
      age_seconds: ageSeconds,
      stale: ageSeconds === null || ageSeconds > config.modelCatalogMaxAge,
      max_age_seconds: config.modelCatalogMaxAge,
      refresh,
      aliases: MODEL_ALIASES,
      default_model: config.defaultModel,
    };
  });

  app.get<{ Querystring: { model: string; use_openrouter?: boolean } }>('/api/v1/models/resolve', {
    schema: {
      tags,
      summary: 'What a model name resolves to (provider, id, catalog entry) and whether its provider has a key',
      querystring: {
        type: 'object',
        required: ['model'],
        properties: {
          model: { type: 'string', minLength: 1, maxLength: 300 },
          use_openrouter: { type: 'boolean' },
        },
      },
    },
  }, async (req) => {
    const { models } = await listCatalogModels(pool).catch(translateDbError);
    const catalog = models.length ? createCatalogView(models) : null;
    const m = resolveModel(req.query.model, { config, catalog, useOpenRouter: req.query.use_openrouter });
    const price = m.catalogId && catalog ? catalog.price(m.catalogId) : null;
    return {
      requested: m.requested,
      id: m.id,
      provider: m.provider,
      in_catalog: m.inCatalog,
      catalog_id: m.catalogId,
      context_length: m.catalogId && catalog ? catalog.contextLength(m.catalogId) : null,
      pricing: price,
      key_configured: m.provider === 'compatible' ? true : providerApiKey(m, config) !== null,
    };
  });
}
