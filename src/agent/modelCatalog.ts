/**
 * The model catalog: OpenRouter's models endpoint (ids, context lengths, per-token prices),
 * cached in the `models` table with the time it was fetched. Resolution of model names, price
 * fallbacks for cost and the context-length guard all read it through `ModelCatalogView`.
 */
import { secretValues, type Config } from '../config.js';
import { redactSecrets, type Logger } from '../logger.js';
import { withTransaction, type Pool, type Queryable } from '../store/pool.js';

export interface ModelPrice { prompt: number; completion: number }

export interface ModelCatalogView {
  has(id: string): boolean;
  ids(): string[];
  /** USD per token; null when the catalog gives no usable price for the id. */
  price(id: string): ModelPrice | null;
  contextLength(id: string): number | null;
}

export interface CatalogModel {
  id: string;
  name: string | null;
  context_length: number | null;
  prompt_price: number | null;
  completion_price: number | null;
}

/** OpenRouter variants such as `:free` are listed as their own ids; shortcuts such as `:nitro` are not. */
function baseId(id: string): string {
  const i = id.indexOf(':');
  return i > 0 ? id.slice(0, i) : id;
}

export function createCatalogView(models: readonly CatalogModel[]): ModelCatalogView {
  const byId = new Map(models.map((m) => [m.id, m]));
  const find = (id: string): CatalogModel | undefined => byId.get(id) ?? byId.get(baseId(id));
  return {
    has: (id) => find(id) !== undefined,
    ids: () => [...byId.keys()],
    price(id) {
      const m = find(id);
      if (!m || m.prompt_price === null || m.completion_price === null) return null;
      return { prompt: m.prompt_price, completion: m.completion_price };
    },
    contextLength: (id) => find(id)?.context_length ?? null,
  };
}

export async function listCatalogModels(db: Queryable): Promise<{ models: CatalogModel[]; fetchedAt: Date | null }> {
  const r = await db.query<CatalogModel & { fetched_at: Date }>(
    `SELECT id, name, context_length, prompt_price, completion_price, fetched_at
       FROM models WHERE provider = 'openrouter' ORDER BY id`,
  );
  let fetchedAt: Date | null = null;
  for (const row of r.rows) if (!fetchedAt || row.fetched_at < fetchedAt) fetchedAt = row.fetched_at;
  return {
    models: r.rows.map(({ id, name, context_length, prompt_price, completion_price }) => ({ id, name, context_length, prompt_price, completion_price })),
    fetchedAt,
  };
}

/** The cached catalog; `view` is null when it was never fetched (resolution then cannot reject names). */
export async function loadModelCatalog(pool: Queryable): Promise<{ view: ModelCatalogView | null; fetchedAt: Date | null }> {
  const { models, fetchedAt } = await listCatalogModels(pool);
  return { view: models.length ? createCatalogView(models) : null, fetchedAt };
}

/** OpenRouter prices are decimal strings in USD per token; "-1" marks variable-priced routers. */
function parsePrice(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : null;
}

function parseModels(body: unknown): CatalogModel[] {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new Error('the response has no data[] array');
  const out: CatalogModel[] = [];
  for (const m of data) {
    if (!m || typeof m !== 'object') continue;
    const o = m as Record<string, unknown>;
    if (typeof o.id !== 'string' || o.id === '') continue;
    const pricing = (o.pricing ?? {}) as Record<string, unknown>;
    const ctx = typeof o.context_length === 'number' && Number.isInteger(o.context_length) && o.context_length > 0 ? o.context_length : null;
    out.push({
      id: o.id,
      name: typeof o.name === 'string' ? o.name : null,
      context_length: ctx,
      prompt_price: parsePrice(pricing.prompt),
      completion_price: parsePrice(pricing.completion),
    });
  }
  return out;
}

/**
 * Fetches the catalog and replaces the cached copy in one transaction. Network and format
 * failures are returned, never thrown: a missing catalog only means names cannot be checked.
 * No API key is sent; the endpoint is public.
 */
export async function refreshModelCatalog(pool: Pool, config: Config, log: Logger): Promise<{ count: number } | { error: string }> {
  const url = `${config.openrouterBaseUrl.replace(/\/+$/, '')}/models`;
  let rawModels: unknown[];
  let models: CatalogModel[];
  try {
    const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(config.llmRequestTimeout * 1000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} from the models endpoint`);
    const body = (await res.json()) as { data?: unknown[] };
    models = parseModels(body);
    rawModels = Array.isArray(body.data) ? body.data : [];
    if (models.length === 0) throw new Error('the models endpoint returned no models');
  } catch (e) {
    const error = redactSecrets(`model catalog refresh from ${url} failed: ${(e as Error).message}`, secretValues(config));
    log.warn({ err_message: error }, 'model catalog refresh failed');
    return { error };
  }
  const rawById = new Map<string, unknown>();
  for (const r of rawModels) if (r && typeof r === 'object' && typeof (r as { id?: unknown }).id === 'string') rawById.set((r as { id: string }).id, r);
  await withTransaction(pool, async (c) => {
    await c.query(`DELETE FROM models WHERE provider = 'openrouter'`);
    await c.query(
      `INSERT INTO models (id, name, provider, context_length, prompt_price, completion_price, raw, fetched_at)
       SELECT id, name, 'openrouter', ctx, pp, cp, raw, now()
         FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[], $5::numeric[], $6::jsonb[]) AS t(id, name, ctx, pp, cp, raw)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, provider = EXCLUDED.provider, context_length = EXCLUDED.context_length,
         prompt_price = EXCLUDED.prompt_price, completion_price = EXCLUDED.completion_price, raw = EXCLUDED.raw, fetched_at = EXCLUDED.fetched_at`,
      [
        models.map((m) => m.id),
        models.map((m) => m.name),
        models.map((m) => m.context_length),
        models.map((m) => m.prompt_price),
        models.map((m) => m.completion_price),
        models.map((m) => JSON.stringify(rawById.get(m.id) ?? {})),
      ],
    );
  });
  log.info({ count: models.length }, 'model catalog refreshed');
  return { count: models.length };
}

/** Loads the cache, refreshing it first when it is missing or older than MODEL_CATALOG_MAX_AGE. */
export async function ensureModelCatalog(pool: Pool, config: Config, log: Logger): Promise<{ view: ModelCatalogView | null; fetchedAt: Date | null; refreshError: string | null }> {
  const cached = await loadModelCatalog(pool);
  const age = cached.fetchedAt ? (Date.now() - cached.fetchedAt.getTime()) / 1000 : Infinity;
  if (cached.view && age <= config.modelCatalogMaxAge) return { ...cached, refreshError: null };
  const r = await refreshModelCatalog(pool, config, log);
  if ('error' in r) return { ...cached, refreshError: r.error };
  return { ...(await loadModelCatalog(pool)), refreshError: null };
}
