/**
 * Progress of experiments: counts by status (of each combination's current task), spend so far
 * and an estimate of the cost still to come.
 *
 * A combination's current task is its newest one: after a retry the failed task is history, but
 * its spend still counts, since it was paid. Spend of a task is the sum of its conversations'
 * cost_usd, which grows as messages are appended, so running tasks count with what they spent.
 *
 * Estimate per model: cost per ended task observed so far for that model; before any ended, the
 * mean prompt and completion tokens of the experiment's ended tasks at the model's catalog prices;
 * before anything ended, unknown (null). Remaining = that × combinations not started (or not yet
 * created) + what running tasks are still expected to spend beyond what they have spent.
 */
import { loadModelCatalog, type ModelPrice } from '../agent/modelCatalog.js';
import { resolveModel } from '../agent/modelResolution.js';
import { roundUsd } from '../agent/usageCost.js';
import type { Config } from '../config.js';
import type { TaskStatus } from '../queue/taskRecord.js';
import type { Queryable } from '../store/pool.js';
import { combinationCount, type ExperimentRow } from './experimentRecord.js';

export type StatusCounts = Record<TaskStatus | 'not_created', number>;

export type EstimateBasis = 'observed' | 'prices' | 'unknown';

export interface ModelProgress {
  model: string;
  combinations: number;
  counts: StatusCounts;
  spend_usd: number;
  max_running: number | null;
  cost_per_task_usd: number | null;
  estimate_basis: EstimateBasis;
  estimated_remaining_cost_usd: number | null;
}

export type DerivedStatus = 'queued' | 'running' | 'spend_cap_reached' | 'completed' | 'incomplete' | 'cancelled';

export interface ExperimentProgress {
  status: DerivedStatus;
  combinations: number;
  tasks_total: number;
  counts: StatusCounts;
  finished: number;
  percent_finished: number;
  spend_usd: number;
  spend_cap_usd: number | null;
  spend_cap_reached: boolean;
  /** Null when some model with work left has no basis for an estimate yet. */
  estimated_remaining_cost_usd: number | null;
  by_model: ModelProgress[];
}

interface ModelAggregate {
  experiment_id: string;
  model: string | null;
  pending: number; running: number; completed: number; failed: number; timeout: number; cancelled: number;
  tasks_total: number;
  spend_usd: number;
  running_spend_usd: number;
  ended_tasks: number;
  ended_cost_usd: number;
  ended_prompt_tokens: number;
  ended_completion_tokens: number;
}

const ENDED = `t.status IN ('completed', 'failed', 'timeout')`;

/** One row per experiment and model; current-task counts and spend over all tasks. */
async function aggregates(db: Queryable, ids: string[]): Promise<ModelAggregate[]> {
  const r = await db.query<ModelAggregate>(
    `WITH cur AS (
       SELECT DISTINCT ON (t.experiment_id, t.problem_id, t.experiment_model, t.experiment_repeat) t.id
         FROM tasks t WHERE t.experiment_id = ANY($1::uuid[]) AND t.experiment_model IS NOT NULL
        ORDER BY t.experiment_id, t.problem_id, t.experiment_model, t.experiment_repeat, t.created_at DESC, t.id DESC
     ), spend AS (
       SELECT c.task_id, sum(c.cost_usd) AS cost, sum(c.prompt_tokens) AS pt, sum(c.completion_tokens) AS ct
         FROM llm_conversations c JOIN tasks t ON t.id = c.task_id
        WHERE t.experiment_id = ANY($1::uuid[]) GROUP BY c.task_id
     )
     SELECT t.experiment_id, t.experiment_model AS model,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'pending')::int AS pending,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'running')::int AS running,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'completed')::int AS completed,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'failed')::int AS failed,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'timeout')::int AS timeout,
            count(*) FILTER (WHERE cur.id IS NOT NULL AND t.status = 'cancelled')::int AS cancelled,
            count(*)::int AS tasks_total,
            COALESCE(sum(s.cost), 0)::float8 AS spend_usd,
            COALESCE(sum(s.cost) FILTER (WHERE t.status = 'running'), 0)::float8 AS running_spend_usd,
            count(*) FILTER (WHERE ${ENDED})::int AS ended_tasks,
            COALESCE(sum(s.cost) FILTER (WHERE ${ENDED}), 0)::float8 AS ended_cost_usd,
            COALESCE(sum(s.pt) FILTER (WHERE ${ENDED}), 0)::float8 AS ended_prompt_tokens,
            COALESCE(sum(s.ct) FILTER (WHERE ${ENDED}), 0)::float8 AS ended_completion_tokens
       FROM tasks t LEFT JOIN cur ON cur.id = t.id LEFT JOIN spend s ON s.task_id = t.id
      WHERE t.experiment_id = ANY($1::uuid[])
      GROUP BY t.experiment_id, t.experiment_model`,
    [ids],
  );
  return r.rows;
}

function emptyCounts(): StatusCounts {
  return { pending: 0, running: 0, completed: 0, failed: 0, timeout: 0, cancelled: 0, not_created: 0 };
}

export function progressFromAggregates(
  e: ExperimentRow,
  rows: ModelAggregate[],
  priceOf: (model: string) => ModelPrice | null,
): ExperimentProgress {
  const perModelCombos = e.problem_ids.length * e.repeats;
  const byName = new Map(rows.filter((r) => r.model !== null).map((r) => [r.model!, r]));
  const endedAll = rows.reduce((a, r) => a + r.ended_tasks, 0);
  const tokensPerTask = endedAll
    ? { prompt: rows.reduce((a, r) => a + r.ended_prompt_tokens, 0) / endedAll, completion: rows.reduce((a, r) => a + r.ended_completion_tokens, 0) / endedAll }
    : null;
  const active = e.status === 'active';

  const byModel: ModelProgress[] = e.models.map((model) => {
    const r = byName.get(model);
    const counts = emptyCounts();
    if (r) for (const k of ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'] as const) counts[k] = r[k];
    const present = counts.pending + counts.running + counts.completed + counts.failed + counts.timeout + counts.cancelled;
    counts.not_created = Math.max(0, perModelCombos - present);
    let perTask: number | null = null;
    let basis: EstimateBasis = 'unknown';
    if (r && r.ended_tasks > 0) {
      perTask = r.ended_cost_usd / r.ended_tasks;
      basis = 'observed';
    } else {
      const price = tokensPerTask ? priceOf(model) : null;
      if (price && tokensPerTask) {
        perTask = tokensPerTask.prompt * price.prompt + tokensPerTask.completion * price.completion;
        basis = 'prices';
      }
    }
    const notStarted = active ? counts.pending + counts.not_created + counts.cancelled : 0;
    const hasWork = notStarted + counts.running > 0;
    const remaining = !hasWork ? 0
      : perTask === null ? null
        : perTask * notStarted + Math.max(0, perTask * counts.running - (r?.running_spend_usd ?? 0));
    return {
      model,
      combinations: perModelCombos,
      counts,
      spend_usd: roundUsd(r?.spend_usd ?? 0),
      max_running: e.model_max_running[model] ?? e.max_running_per_model,
      cost_per_task_usd: perTask === null ? null : roundUsd(perTask),
      estimate_basis: basis,
      estimated_remaining_cost_usd: remaining === null ? null : roundUsd(remaining),
    };
  });

  const counts = emptyCounts();
  for (const m of byModel) for (const k of Object.keys(counts) as Array<keyof StatusCounts>) counts[k] += m.counts[k];
  const spend = roundUsd(rows.reduce((a, r) => a + r.spend_usd, 0));
  const combinations = combinationCount(e);
  const finished = counts.completed + counts.failed + counts.timeout;
  const capReached = e.spend_cap_usd !== null && spend >= e.spend_cap_usd;
  const estimates = byModel.map((m) => m.estimated_remaining_cost_usd);
  let status: DerivedStatus;
  if (!active) status = 'cancelled';
  else if (counts.pending === 0 && counts.running === 0) status = finished === combinations ? 'completed' : 'incomplete';
  else if (counts.running === 0 && capReached) status = 'spend_cap_reached';
  else if (counts.running > 0 || finished > 0) status = 'running';
  else status = 'queued';
  return {
    status,
    combinations,
    tasks_total: rows.reduce((a, r) => a + r.tasks_total, 0),
    counts,
    finished,
    percent_finished: combinations ? Math.round((finished / combinations) * 1000) / 10 : 0,
    spend_usd: spend,
    spend_cap_usd: e.spend_cap_usd,
    spend_cap_reached: capReached,
    estimated_remaining_cost_usd: estimates.includes(null) ? null : roundUsd(estimates.reduce<number>((a, x) => a + (x ?? 0), 0)),
    by_model: byModel,
  };
}

/** Catalog prices of the experiments' models (USD per token), for estimates before any of a model's tasks ended. */
export async function catalogPriceLookup(db: Queryable, config: Config, experiments: ExperimentRow[]): Promise<(model: string) => ModelPrice | null> {
  const { view } = await loadModelCatalog(db);
  const cache = new Map<string, ModelPrice | null>();
  return (model) => {
    if (!view) return null;
    if (!cache.has(model)) {
      let price: ModelPrice | null = null;
      try {
        const useOpenRouter = experiments.find((e) => e.models.includes(model))?.parameters.agent_config.use_openrouter;
        const m = resolveModel(model, { config, catalog: view, useOpenRouter });
        price = view.price(m.catalogId ?? m.id);
      } catch { /* not resolvable now: no price-based estimate */ }
      cache.set(model, price);
    }
    return cache.get(model)!;
  };
}

/** Progress of several experiments in one query. */
export async function experimentsProgress(
  db: Queryable,
  experiments: ExperimentRow[],
  priceOf: (model: string) => ModelPrice | null,
): Promise<Map<string, ExperimentProgress>> {
  const rows = experiments.length ? await aggregates(db, experiments.map((e) => e.id)) : [];
  const out = new Map<string, ExperimentProgress>();
  for (const e of experiments) out.set(e.id, progressFromAggregates(e, rows.filter((r) => r.experiment_id === e.id), priceOf));
  return out;
}
