/**
 * Global caps on running tasks by model glob (`anthropic/*` for a provider, `openai/gpt-4o` for one
 * model), applied at claim time to every task whether or not it belongs to an experiment.
 */
import { withTransaction, type Pool, type Queryable } from '../store/pool.js';
import { taskModelExpression } from './claimLimits.js';

export interface ModelConcurrencyLimit {
  model_pattern: string;
  max_running: number;
  /** Tasks running now whose model matches the pattern. */
  running: number;
  updated_at: Date;
}

export async function listModelConcurrencyLimits(db: Queryable): Promise<ModelConcurrencyLimit[]> {
  const r = await db.query<ModelConcurrencyLimit>(
    `SELECT l.model_pattern, l.max_running, l.updated_at,
            (SELECT count(*)::int FROM tasks r WHERE r.status = 'running' AND ${taskModelExpression('r')} LIKE l.like_pattern) AS running
       FROM model_concurrency_limits l ORDER BY l.model_pattern`);
  return r.rows;
}

/** Replaces the whole set (what PUT means): patterns not given are removed. */
export async function replaceModelConcurrencyLimits(pool: Pool, limits: Array<{ model_pattern: string; max_running: number }>): Promise<void> {
  await withTransaction(pool, async (db) => {
    await db.query('DELETE FROM model_concurrency_limits WHERE NOT (model_pattern = ANY($1::text[]))', [limits.map((l) => l.model_pattern)]);
    if (!limits.length) return;
    await db.query(
      `INSERT INTO model_concurrency_limits (model_pattern, max_running)
       SELECT * FROM unnest($1::text[], $2::int[])
       ON CONFLICT (model_pattern) DO UPDATE SET max_running = EXCLUDED.max_running, updated_at = now()
        WHERE model_concurrency_limits.max_running <> EXCLUDED.max_running`,
      [limits.map((l) => l.model_pattern), limits.map((l) => l.max_running)],
    );
  });
}
