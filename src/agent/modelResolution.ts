/**
 * Turns what users type in `agent_config.model` into the provider model id actually called.
 *
 * Accepted forms:
 * - an OpenRouter id (`openai/gpt-4o-mini`, `meta-llama/llama-3-70b-instruct:free`): passed through;
 * - a short name from the earlier executor's table (`gpt-4o-mini`, `claude-3-haiku`, `llama-3-70b` …);
 * - another short name, found in the catalog when exactly one `vendor/<name>` id matches;
 * - `openai:<model>`: OpenAI's own API; `local:<model>` (or `compatible:<model>`): the server at
 *   OPENAI_COMPATIBLE_BASE_URL; `openrouter:<name>`: OpenRouter whatever keys are configured.
 *
 * Provider of the other forms: OpenRouter, unless `use_openrouter` is false or only an OpenAI key is
 * configured, in which case `openai/*` models go to OpenAI directly (as the earlier executor did).
 * With a known catalog, a name that resolves to no listed id is rejected with close matches.
 */
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { closestMatches } from '../catalog/closestMatches.js';
import type { ModelCatalogView } from './modelCatalog.js';

export type Provider = 'openrouter' | 'openai' | 'compatible';

export interface ResolvedModel {
  /** The name as the user gave it. */
  requested: string;
  /** The id sent as `model` to the provider. */
  id: string;
  provider: Provider;
  baseUrl: string;
  /** Whether the OpenRouter catalog lists the model; null when the catalog is unknown or does not apply. */
  inCatalog: boolean | null;
  /** The catalog id whose prices and context length apply (e.g. `openai/gpt-4o` for `openai:gpt-4o`), if listed. */
  catalogId: string | null;
}

/** Short names the earlier executor mapped (REFERENCE-EXECUTOR §1.8), kept so existing clients keep working. */
export const MODEL_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  'gpt-4': 'openai/gpt-4',
  'gpt-4-turbo': 'openai/gpt-4-turbo',
  'gpt-4o': 'openai/gpt-4o',
  'gpt-4o-mini': 'openai/gpt-4o-mini',
  'gpt-3.5-turbo': 'openai/gpt-3.5-turbo',
  'claude-3-opus': 'anthropic/claude-3-opus',
  'claude-3-sonnet': 'anthropic/claude-3-sonnet',
  'claude-3-haiku': 'anthropic/claude-3-haiku',
  'llama-3-70b': 'meta-llama/llama-3-70b-instruct',
  'mixtral-8x7b': 'mistralai/mixtral-8x7b-instruct',
  claude: 'anthropic/claude-3-opus',
});

const PREFIX = /^(openai|local|compatible|openrouter):(.+)$/i;

function invalid(name: string, reason: string, closest: string[] = []): AppError {
  const hint = closest.length ? ` Did you mean: ${closest.join(', ')}?` : '';
  return new AppError('invalid_model', `Unknown model "${name}": ${reason}.${hint}`, { model: name, closest });
}

/** Maps a name to an OpenRouter id (without choosing the provider yet). */
function toOpenRouterId(name: string, catalog: ModelCatalogView | null): string {
  if (name.includes('/')) {
    if (catalog && !catalog.has(name)) throw invalid(name, 'not in the OpenRouter model catalog', closestMatches(name, catalog.ids()));
    return name;
  }
  const alias = MODEL_ALIASES[name.toLowerCase()];
  if (alias) {
    if (catalog && !catalog.has(alias)) throw invalid(name, `it maps to ${alias}, which the OpenRouter model catalog does not list`, closestMatches(alias, catalog.ids()));
    return alias;
  }
  if (catalog) {
    const lc = name.toLowerCase();
    const hits = catalog.ids().filter((id) => id.slice(id.indexOf('/') + 1).toLowerCase() === lc);
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw invalid(name, 'several providers serve a model of this name; give the full id', hits.sort());
    throw invalid(name, 'not in the OpenRouter model catalog', closestMatches(name, [...catalog.ids(), ...Object.keys(MODEL_ALIASES)]));
  }
  // No catalog to search: only the vendor of the well-known families can be inferred.
  if (/^(gpt-|chatgpt-|o[1-9](-|$))/i.test(name)) return `openai/${name}`;
  if (/^claude-/i.test(name)) return `anthropic/${name}`;
  throw invalid(name, 'the model catalog is not loaded, so only vendor/model ids and known short names can be resolved', closestMatches(name, Object.keys(MODEL_ALIASES)));
}

export function resolveModel(name: string, ctx: { config: Config; catalog: ModelCatalogView | null; useOpenRouter?: boolean | undefined }): ResolvedModel {
  const { config, catalog } = ctx;
  const requested = name;
  const trimmed = name.trim();
  if (trimmed === '') throw new AppError('invalid_model', 'The model name is empty.', { model: name, closest: [] });

  const prefixed = PREFIX.exec(trimmed);
  if (prefixed) {
    const kind = prefixed[1]!.toLowerCase();
    const rest = prefixed[2]!.trim();
    if (kind === 'openai') {
      const catalogId = catalog?.has(`openai/${rest}`) ? `openai/${rest}` : null;
      return { requested, id: rest, provider: 'openai', baseUrl: config.openaiBaseUrl, inCatalog: null, catalogId };
    }
    if (kind === 'local' || kind === 'compatible') {
      if (!config.compatibleBaseUrl) throw invalid(trimmed, 'no OpenAI-compatible server is configured (set OPENAI_COMPATIBLE_BASE_URL)');
      return { requested, id: rest, provider: 'compatible', baseUrl: config.compatibleBaseUrl, inCatalog: null, catalogId: null };
    }
    const id = toOpenRouterId(rest, catalog);
    return { requested, id, provider: 'openrouter', baseUrl: config.openrouterBaseUrl, inCatalog: catalog ? true : null, catalogId: catalog ? id : null };
  }

  const id = toOpenRouterId(trimmed, catalog);
  const inCatalog = catalog ? true : null;
  const catalogId = catalog ? id : null;
  const isOpenAiModel = id.startsWith('openai/');
  const direct =
    ctx.useOpenRouter === false || (ctx.useOpenRouter === undefined && !config.openrouterApiKey && Boolean(config.openaiApiKey));
  if (direct && isOpenAiModel) {
    return { requested, id: id.slice('openai/'.length), provider: 'openai', baseUrl: config.openaiBaseUrl, inCatalog, catalogId };
  }
  if (ctx.useOpenRouter === false) {
    throw invalid(trimmed, `${id} is only reachable through OpenRouter but use_openrouter is false (use openai:<model> or local:<model>)`);
  }
  return { requested, id, provider: 'openrouter', baseUrl: config.openrouterBaseUrl, inCatalog, catalogId };
}

const KEY_VARIABLE: Record<Provider, string> = {
  openrouter: 'OPENROUTER_API_KEY',
  openai: 'OPENAI_API_KEY',
  compatible: 'OPENAI_COMPATIBLE_API_KEY',
};

/** The key for the model's provider; compatible servers (vLLM, Ollama) often need none. */
export function providerApiKey(m: Pick<ResolvedModel, 'provider'>, config: Config): string | null {
  if (m.provider === 'openrouter') return config.openrouterApiKey;
  if (m.provider === 'openai') return config.openaiApiKey;
  return config.compatibleApiKey;
}

/** Preflight: fails with the variable to set, never with a value. */
export function requireProviderKey(m: ResolvedModel, config: Config): void {
  if (m.provider === 'compatible') return;
  if (!providerApiKey(m, config)) {
    throw new AppError('missing_api_key', `No API key for provider ${m.provider}: set ${KEY_VARIABLE[m.provider]}`, { provider: m.provider, variable: KEY_VARIABLE[m.provider] });
  }
}
