/**
 * A tasks table the size of a long-lived deployment's, generated in one INSERT … SELECT
 * generate_series: a year-like spread of creation times, 89 problems, 24 workers, mostly ended
 * tasks with results, a pending backlog and one running task per worker. Indexes are dropped
 * for the load and rebuilt with their exact definitions afterwards (faster than maintaining 14
 * indexes row by row), then the table is vacuumed and analysed as autovacuum would have done.
 * Triggers are skipped for the load only (session_replication_role = replica): they would
 * announce a million inserts nobody listens to; the kept task counts are recounted after it.
 */
import { builtinProblems } from '../src/catalog/problemCatalog.js';
import type { Pool } from '../src/store/pool.js';

export const SEED_WORKERS = 24;
export const SEED_MODELS = ['openai/gpt-4o-mini', 'openai/gpt-4o', 'anthropic/claude-3.5-sonnet', 'meta-llama/llama-3-70b-instruct'];

const SEED_SQL = `
WITH g AS (
  SELECT i,
         ($2::text[])[1 + (i * 31) % cardinality($2::text[])] AS problem_id,
         CASE WHEN i > $1 - $3 THEN 'pending'
              WHEN i > $1 - $3 - $4 THEN 'running'
              WHEN i % 100 < 72 THEN 'completed'
              WHEN i % 100 < 92 THEN 'failed'
              WHEN i % 100 < 95 THEN 'timeout'
              ELSE 'cancelled' END AS status,
         now() - make_interval(secs => ($1 - i + 120) * (90 * 86400.0 / $1)) AS created_at
    FROM generate_series(1, $1) AS i
), h AS (
  SELECT g.*,
         CASE WHEN status = 'pending' OR (status = 'cancelled' AND i % 2 = 0) THEN NULL
              ELSE 'worker-' || lpad((1 + i % $4)::text, 3, '0') || '-internal' END AS worker_id,
         CASE WHEN status = 'pending' OR (status = 'cancelled' AND i % 2 = 0) THEN NULL
              ELSE LEAST(created_at + make_interval(secs => 5 + i % 60), now()) END AS started_at
    FROM g
), k AS (
  SELECT h.*,
         CASE WHEN status IN ('completed', 'failed', 'timeout') THEN started_at + make_interval(secs => 60 + i % 840)
              WHEN status = 'cancelled' THEN COALESCE(started_at, created_at) + interval '30 seconds' END AS completed_at
    FROM h
)
INSERT INTO tasks (problem_id, status, priority, parameters, worker_id, attempt, max_attempts, lease_expires_at, result,
                   error_type, error_details, request_hash, created_at, updated_at, started_at, completed_at)
SELECT problem_id, status, i % 11,
       jsonb_build_object('max_steps', 30, 'timeout_minutes', 30, 'priority', i % 11,
                          'agent_config', jsonb_build_object('model', ($5::text[])[1 + i % cardinality($5::text[])], 'temperature', 0.5)),
       worker_id,
       CASE WHEN started_at IS NULL THEN 0 ELSE 1 END, 2,
       CASE WHEN status = 'running' THEN now() + interval '60 seconds' END,
       CASE WHEN status IN ('completed', 'failed', 'timeout') THEN jsonb_build_object(
         'success', status = 'completed' AND i % 3 > 0, 'reward', CASE WHEN status = 'completed' AND i % 3 > 0 THEN 1 ELSE 0 END,
         'outcome', CASE WHEN status = 'completed' THEN 'submitted' ELSE 'aborted_in_init' END, 'steps', 1 + i % 12,
         'usage', jsonb_build_object('prompt_tokens', 20000 + i % 5000, 'completion_tokens', 900 + i % 300, 'total_tokens', 20900 + i % 5300,
                                     'cost_usd', 0.0042, 'llm_calls', 1 + i % 12),
         'execution_time', 180.5, 'model', ($5::text[])[1 + i % cardinality($5::text[])], 'worker_id', worker_id,
         'cluster', 'aiopslab-' || worker_id,
         'phase_durations_ms', jsonb_build_object('startup', 900, 'init', 95000, 'loop', 40000, 'eval', 300, 'teardown', 20000)) END,
       CASE WHEN status = 'failed' THEN 'aiopslab_init_failed' WHEN status = 'timeout' THEN 'timeout' END,
       CASE WHEN status = 'failed' THEN 'ApiException in init_problem: (409) Conflict: namespace is being terminated'
            WHEN status = 'timeout' THEN 'Task exceeded its timeout of 30 minute(s)' END,
       md5(i::text), created_at, COALESCE(completed_at, started_at, created_at), started_at, completed_at
  FROM k`;

export interface SeedShape { tasks: number; pending: number }

export async function seedTasks(pool: Pool, shape: SeedShape): Promise<{ ms: number }> {
  const t0 = performance.now();
  const c = await pool.connect();
  try {
    const idx = await c.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'tasks'
          AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'tasks'::regclass)`);
    await c.query(`SET maintenance_work_mem = '256MB'`);
    for (const i of idx.rows) await c.query(`DROP INDEX ${i.indexname}`);
    await c.query('SET session_replication_role = replica');
    try {
      await c.query(SEED_SQL, [shape.tasks, builtinProblems().map((p) => p.id), shape.pending, SEED_WORKERS, SEED_MODELS]);
    } finally {
      await c.query('SET session_replication_role = DEFAULT');
    }
    for (const i of idx.rows) await c.query(i.indexdef);
    // The kept task counts (migrations/0005) missed the load with the triggers off: recount.
    await c.query(`SELECT task_counts_rebuild() WHERE to_regproc('task_counts_rebuild') IS NOT NULL`);
    await c.query('VACUUM (ANALYZE) tasks');
  } finally {
    c.release();
  }
  return { ms: performance.now() - t0 };
}
