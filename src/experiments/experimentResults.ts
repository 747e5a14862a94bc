/**
 * The tables researchers publish, per model × task type, per model and per problem × model.
 *
 * Which tasks count: each combination's current (newest) task once it ended on its own —
 * completed, failed or timeout; cancelled and unfinished ones are left out. A failed or timed-out
 * task counts as not successful (the agent did not solve the problem); `errored` says how many
 * of a row's tasks ended that way, so a reader can tell infrastructure trouble from wrong answers.
 * Time-to-X and steps are means over evaluated (completed) tasks, where AIOpsLab measured them;
 * tokens and cost over every counted task, since every one of them was paid for.
 */
import type { Queryable } from '../store/pool.js';
import { TASK_TYPES, type ExperimentRow } from './experimentRecord.js';
import { mean, median, round, sum, wilsonInterval } from './resultStatistics.js';

export interface TaskOutcomeRow {
  task_id: string;
  problem_id: string;
  model: string;
  repeat: number;
  status: 'completed' | 'failed' | 'timeout';
  task_type: string;
  success: boolean;
  ttx_name: string | null;
  ttx_seconds: number | null;
  steps: number | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface StatsColumns {
  tasks: number;
  evaluated: number;
  errored: number;
  successes: number;
  success_rate: number | null;
  success_ci_low: number | null;
  success_ci_high: number | null;
  ttx_name: string | null;
  ttx_mean_s: number | null;
  ttx_median_s: number | null;
  steps_mean: number | null;
  steps_median: number | null;
  input_tokens_mean: number | null;
  output_tokens_mean: number | null;
  input_tokens_total: number;
  output_tokens_total: number;
  cost_per_task_usd: number | null;
  cost_total_usd: number;
}

export type SummaryRow = { model: string; task_type: string } & StatsColumns;
export type ModelRow = { model: string } & StatsColumns;
export type DetailRow = { problem_id: string; task_type: string; model: string } & StatsColumns;

export interface ExperimentResults {
  experiment: { id: string; name: string; models: string[]; problem_ids: string[]; repeats: number };
  confidence_level: number;
  definitions: Record<string, string>;
  summary: SummaryRow[];
  by_model: ModelRow[];
  detail: DetailRow[];
  tasks: TaskOutcomeRow[];
}

export const DEFINITIONS: Record<string, string> = {
  tasks: 'Combinations whose current task ended (completed, failed or timeout); cancelled and unfinished ones are left out.',
  evaluated: 'Tasks AIOpsLab evaluated (status completed).',
  errored: 'Tasks that failed or timed out; they count as not successful.',
  success_rate: 'successes / tasks.',
  success_ci: '95 % Wilson score interval of the success rate.',
  ttx: 'AIOpsLab time-to-detect/localize/analyse/mitigate (TTD/TTL/TTA/TTM) in seconds, over evaluated tasks.',
  steps: 'Agent steps, over evaluated tasks.',
  tokens: 'Prompt (input) and completion (output) tokens of every LLM call of the task, all attempts.',
  cost: 'USD as the provider reported it (or computed from catalog prices), summed over the task\'s LLM calls.',
};

const TTX_BY_TYPE: Record<string, string> = { detection: 'TTD', localization: 'TTL', analysis: 'TTA', mitigation: 'TTM' };

const num = (expr: string) => `CASE WHEN jsonb_typeof(${expr}) = 'number' THEN (${expr})::text::float8 END`;

export async function loadTaskOutcomes(db: Queryable, experimentId: string): Promise<TaskOutcomeRow[]> {
  const r = await db.query<TaskOutcomeRow>(
    `WITH cur AS (
       SELECT DISTINCT ON (t.problem_id, t.experiment_model, t.experiment_repeat) t.*
         FROM tasks t WHERE t.experiment_id = $1 AND t.experiment_model IS NOT NULL
        ORDER BY t.problem_id, t.experiment_model, t.experiment_repeat, t.created_at DESC, t.id DESC
     ), spend AS (
       SELECT c.task_id, sum(c.prompt_tokens)::float8 AS prompt_tokens, sum(c.completion_tokens)::float8 AS completion_tokens,
              sum(c.cost_usd)::float8 AS cost_usd
         FROM llm_conversations c WHERE c.task_id IN (SELECT id FROM cur) GROUP BY c.task_id
     )
     SELECT cur.id AS task_id, cur.problem_id, cur.experiment_model AS model, cur.experiment_repeat AS repeat, cur.status,
            COALESCE(p.task_type, cur.result->>'task_type', substring(cur.problem_id from '(detection|localization|analysis|mitigation)'), 'unknown') AS task_type,
            (cur.status = 'completed' AND cur.result->'success' = 'true'::jsonb) AS success,
            cur.result->'ttx'->>'name' AS ttx_name,
            ${num(`cur.result->'ttx'->'seconds'`)} AS ttx_seconds,
            ${num(`cur.result->'steps'`)} AS steps,
            -- Conversations are the record; a result's usage is the fallback for tasks that have none.
            COALESCE(s.prompt_tokens, ${num(`cur.result->'usage'->'prompt_tokens'`)}, 0) AS input_tokens,
            COALESCE(s.completion_tokens, ${num(`cur.result->'usage'->'completion_tokens'`)}, 0) AS output_tokens,
            COALESCE(s.cost_usd, ${num(`cur.result->'usage'->'cost_usd'`)}, 0) AS cost_usd
       FROM cur LEFT JOIN spend s ON s.task_id = cur.id LEFT JOIN problems p ON p.id = cur.problem_id
      WHERE cur.status IN ('completed', 'failed', 'timeout')`,
    [experimentId],
  );
  return r.rows;
}

export function statsOf(rows: readonly TaskOutcomeRow[], taskType: string | null): StatsColumns {
  const n = rows.length;
  const evaluated = rows.filter((r) => r.status === 'completed');
  const successes = rows.filter((r) => r.success).length;
  const ci = wilsonInterval(successes, n);
  const ttx = taskType ? evaluated.map((r) => r.ttx_seconds).filter((x): x is number => x !== null) : [];
  const steps = evaluated.map((r) => r.steps).filter((x): x is number => x !== null);
  const names = [...new Set(evaluated.map((r) => r.ttx_name).filter((x): x is string => !!x))];
  const cost = sum(rows.map((r) => r.cost_usd));
  return {
    tasks: n,
    evaluated: evaluated.length,
    errored: n - evaluated.length,
    successes,
    success_rate: n ? round(successes / n, 4) : null,
    success_ci_low: ci ? round(ci.low, 4) : null,
    success_ci_high: ci ? round(ci.high, 4) : null,
    ttx_name: taskType ? (names.length === 1 ? names[0]! : TTX_BY_TYPE[taskType] ?? null) : null,
    ttx_mean_s: round(mean(ttx), 3),
    ttx_median_s: round(median(ttx), 3),
    steps_mean: round(mean(steps), 2),
    steps_median: round(median(steps), 2),
    input_tokens_mean: round(mean(rows.map((r) => r.input_tokens)), 1),
    output_tokens_mean: round(mean(rows.map((r) => r.output_tokens)), 1),
    input_tokens_total: sum(rows.map((r) => r.input_tokens)),
    output_tokens_total: sum(rows.map((r) => r.output_tokens)),
    cost_per_task_usd: n ? round(cost / n, 8) : null,
    cost_total_usd: round(cost, 8)!,
  };
}

function typeOrder(t: string): number {
  const i = (TASK_TYPES as readonly string[]).indexOf(t);
  return i < 0 ? TASK_TYPES.length : i;
}

/** Builds the three tables from the per-task outcomes; row order follows the experiment's own order. */
export function buildResults(e: ExperimentRow, tasks: TaskOutcomeRow[]): ExperimentResults {
  const modelOrder = (m: string) => { const i = e.models.indexOf(m); return i < 0 ? e.models.length : i; };
  const problemOrder = new Map(e.problem_ids.map((p, i) => [p, i]));
  const sorted = [...tasks].sort((a, b) => modelOrder(a.model) - modelOrder(b.model)
    || (problemOrder.get(a.problem_id) ?? 1e9) - (problemOrder.get(b.problem_id) ?? 1e9) || a.repeat - b.repeat);

  const summary: SummaryRow[] = [];
  const byModel: ModelRow[] = [];
  for (const model of e.models) {
    const mine = sorted.filter((t) => t.model === model);
    const types = [...new Set(mine.map((t) => t.task_type))].sort((a, b) => typeOrder(a) - typeOrder(b) || a.localeCompare(b));
    for (const tt of types) summary.push({ model, task_type: tt, ...statsOf(mine.filter((t) => t.task_type === tt), tt) });
    byModel.push({ model, ...statsOf(mine, null) });
  }

  const detail: DetailRow[] = [];
  for (const problemId of e.problem_ids) {
    for (const model of e.models) {
      const mine = sorted.filter((t) => t.problem_id === problemId && t.model === model);
      if (!mine.length) continue;
      const tt = mine[0]!.task_type;
      detail.push({ problem_id: problemId, task_type: tt, model, ...statsOf(mine, tt) });
    }
  }

  return {
    experiment: { id: e.id, name: e.name, models: e.models, problem_ids: e.problem_ids, repeats: e.repeats },
    confidence_level: 0.95,
    definitions: DEFINITIONS,
    summary,
    by_model: byModel,
    detail,
    tasks: sorted,
  };
}

export async function experimentResults(db: Queryable, e: ExperimentRow): Promise<ExperimentResults> {
  return buildResults(e, await loadTaskOutcomes(db, e.id));
}
