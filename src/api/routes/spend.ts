/**
 * GET /api/v1/stats/spend: what the dashboard's "models and spend" charts draw — tokens and cost
 * per day and model, today's totals by model, and success rate per task type and per model.
 * Days are calendar days in the caller's time zone (`tz`), so "today" matches the viewer's clock.
 */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { translateDbError } from '../../store/pool.js';
import type { AppDeps } from '../appDeps.js';
import type { CallCounters } from '../../store/conversations.js';

export interface SpendRow extends CallCounters {
  model: string;
  conversations: number;
  llm_calls: number;
}

export interface SuccessRow {
  key: string;
  ended: number;
  succeeded: number;
  success_rate: number | null;
  avg_reward: number | null;
}

/** PostgreSQL's "invalid_parameter_value", raised for an unknown time zone name. */
const PG_INVALID_PARAMETER = '22023';

const SUM_COLUMNS = `count(*)::int AS conversations,
  COALESCE(sum(llm_calls), 0)::float8 AS llm_calls,
  COALESCE(sum(prompt_tokens), 0)::float8 AS prompt_tokens,
  COALESCE(sum(completion_tokens), 0)::float8 AS completion_tokens,
  COALESCE(sum(cached_tokens), 0)::float8 AS cached_tokens,
  COALESCE(sum(reasoning_tokens), 0)::float8 AS reasoning_tokens,
  COALESCE(sum(total_tokens), 0)::float8 AS total_tokens,
  COALESCE(sum(cost_usd), 0)::float8 AS cost_usd`;

// Tasks that ended on their own (cancelled ones say nothing about the model or the problem).
// The task type comes from the problem catalog, else from the result, else from the id's suffix.
const SUCCESS_SQL = (groupBy: string) => `
  SELECT ${groupBy} AS key,
         count(*)::int AS ended,
         count(*) FILTER (WHERE t.result->'success' = 'true'::jsonb)::int AS succeeded,
         avg((t.result->>'reward')::float8) FILTER (WHERE jsonb_typeof(t.result->'reward') = 'number') AS avg_reward
    FROM tasks t LEFT JOIN problems p ON p.id = t.problem_id
   WHERE t.status IN ('completed', 'failed', 'timeout') AND t.completed_at >= $1
   GROUP BY 1 ORDER BY 1`;

const TASK_TYPE_EXPR = `COALESCE(p.task_type, t.result->>'task_type', substring(t.problem_id from '(detection|localization|analysis|mitigation)'), 'unknown')`;
const MODEL_EXPR = `COALESCE(t.result->>'model', t.parameters->'agent_config'->>'model', 'unknown')`;

function successRows(rows: Array<Omit<SuccessRow, 'success_rate'>>): SuccessRow[] {
  return rows.map((r) => ({ ...r, success_rate: r.ended ? r.succeeded / r.ended : null, avg_reward: r.avg_reward ?? null }));
}

export function spendRoutes(deps: AppDeps) {
  return async function (app: FastifyInstance) {
    app.get('/stats/spend', {
      schema: {
        tags: ['stats'],
        summary: 'Tokens and cost per day and model, today\'s totals by model, and success rate per task type and model over the last `days` days (calendar days in `tz`).',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            days: { type: 'integer', minimum: 1, maximum: 366, default: 30 },
            tz: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+\\-/]{0,63}$', default: 'UTC', description: 'IANA time zone name, e.g. Europe/Paris.' },
          },
        },
      },
    }, async (req) => {
      const { days, tz } = req.query as { days: number; tz: string };
      let bounds;
      try {
        bounds = await deps.pool.query<{ since: Date; today: string }>(
          `SELECT (date_trunc('day', now() AT TIME ZONE $1) - make_interval(days => $2 - 1)) AT TIME ZONE $1 AS since,
                  to_char(now() AT TIME ZONE $1, 'YYYY-MM-DD') AS today`,
          [tz, days],
        );
      } catch (e) {
        if ((e as { code?: string }).code === PG_INVALID_PARAMETER) {
          throw new AppError('validation_failed', `Unknown time zone "${tz}"`, [{ field: 'query.tz', reason: 'not a time zone the database knows (use an IANA name such as Europe/Paris)' }]);
        }
        return translateDbError(e);
      }
      const { since, today } = bounds.rows[0]!;
      const [daily, byType, byModel] = await Promise.all([
        deps.pool.query<SpendRow & { day: string }>(
          `SELECT to_char(started_at AT TIME ZONE $2, 'YYYY-MM-DD') AS day, model_name AS model, ${SUM_COLUMNS}
             FROM llm_conversations WHERE started_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2`,
          [since, tz],
        ),
        deps.pool.query<Omit<SuccessRow, 'success_rate'>>(SUCCESS_SQL(TASK_TYPE_EXPR), [since]),
        deps.pool.query<Omit<SuccessRow, 'success_rate'>>(SUCCESS_SQL(MODEL_EXPR), [since]),
      ]).catch(translateDbError);

      const totals = new Map<string, SpendRow>();
      for (const { day: _day, ...r } of daily.rows) {
        const t = totals.get(r.model) ?? { model: r.model, conversations: 0, llm_calls: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0, cost_usd: 0 };
        for (const k of ['conversations', 'llm_calls', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens', 'total_tokens', 'cost_usd'] as const) t[k] += r[k];
        totals.set(r.model, t);
      }
      return {
        days,
        tz,
        since: since.toISOString(),
        today,
        daily: daily.rows,
        today_by_model: daily.rows.filter((r) => r.day === today).map(({ day: _day, ...r }) => r),
        totals_by_model: [...totals.values()].sort((a, b) => b.cost_usd - a.cost_usd || a.model.localeCompare(b.model)),
        success_by_task_type: successRows(byType.rows),
        success_by_model: successRows(byModel.rows),
      };
    });
  };
}
