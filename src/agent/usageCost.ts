/**
 * Token usage and cost of one LLM call, read from the response's `usage` block — never estimated
 * from text. Cost is what the provider reported (OpenRouter's `usage.cost`, in USD); without it,
 * it is computed from the catalog's per-token prices and marked so; otherwise it is unknown (0
 * in the totals, `cost_source: 'unknown'` on the message).
 */
import type { ModelCatalogView } from './modelCatalog.js';

export interface CallUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
}

export type CostSource = 'provider' | 'catalog' | 'unknown';

export interface CallAccounting {
  usage: CallUsage;
  /** False when the response carried no usage block at all (then every count is 0). */
  usage_reported: boolean;
  cost_usd: number;
  cost_source: CostSource;
  /** OpenRouter's cost breakdown (e.g. upstream_inference_cost for bring-your-own-key calls), as sent. */
  cost_details: Record<string, unknown> | null;
}

export interface UsageTotals extends CallUsage {
  cost_usd: number;
  llm_calls: number;
}

export function emptyTotals(): UsageTotals {
  return { prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0, cost_usd: 0, llm_calls: 0 };
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0;
}

function obj(v: unknown): Record<string, unknown> | null {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

export function accountCall(rawUsage: unknown, priceId: string | null, catalog: ModelCatalogView | null): CallAccounting {
  const u = obj(rawUsage);
  const prompt = count(u?.prompt_tokens);
  const completion = count(u?.completion_tokens);
  const usage: CallUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    cached_tokens: count(obj(u?.prompt_tokens_details)?.cached_tokens),
    reasoning_tokens: count(obj(u?.completion_tokens_details)?.reasoning_tokens),
    // Providers report total_tokens; when one omits it, the sum is what it bills.
    total_tokens: u && typeof u.total_tokens === 'number' ? count(u.total_tokens) : prompt + completion,
  };
  const costDetails = obj(u?.cost_details);
  if (u && typeof u.cost === 'number' && Number.isFinite(u.cost) && u.cost >= 0) {
    return { usage, usage_reported: true, cost_usd: u.cost, cost_source: 'provider', cost_details: costDetails };
  }
  const price = priceId && catalog ? catalog.price(priceId) : null;
  if (u && price) {
    // Cached-read discounts are not in the catalog view, so this is an upper bound for cached prompts.
    const cost = prompt * price.prompt + completion * price.completion;
    return { usage, usage_reported: true, cost_usd: roundUsd(cost), cost_source: 'catalog', cost_details: costDetails };
  }
  return { usage, usage_reported: u !== null, cost_usd: 0, cost_source: 'unknown', cost_details: costDetails };
}

/** The database keeps 8 decimals (numeric(14,8)); rounding here keeps memory and database equal. */
export function roundUsd(v: number): number {
  return Math.round(v * 1e8) / 1e8;
}

export function addToTotals(t: UsageTotals, a: CallAccounting): void {
  t.prompt_tokens += a.usage.prompt_tokens;
  t.completion_tokens += a.usage.completion_tokens;
  t.cached_tokens += a.usage.cached_tokens;
  t.reasoning_tokens += a.usage.reasoning_tokens;
  t.total_tokens += a.usage.total_tokens;
  t.cost_usd = roundUsd(t.cost_usd + roundUsd(a.cost_usd));
  t.llm_calls += 1;
}
