/**
 * Task counts per (status, problem, worker), kept by triggers (migrations/0005): what the
 * statistics, health, metrics and the list's `total` read instead of counting the tasks table.
 * Exact: the folded counts plus the deltas not folded yet, added up in one statement.
 */
import type { Queryable } from '../store/pool.js';
import type { TaskStatus } from './taskRecord.js';

export interface CountFilter {
  status?: TaskStatus[];
  problemId?: string;
  /** Substring of the problem id (ILIKE, as the list's `q`). */
  search?: string;
  workerId?: string;
}

export type CountDimension = 'status' | 'problem_id' | 'worker_id';

const COUNTS = `(SELECT status, problem_id, worker_id, tasks, run_seconds FROM task_counts
                 UNION ALL
                 SELECT status, problem_id, worker_id, tasks, run_seconds FROM task_count_deltas) c`;

function filterSql(f: CountFilter, args: unknown[]): string {
  const where: string[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.status?.length) add('status = ANY(?::text[])', f.status);
  if (f.problemId) add('problem_id = ?', f.problemId);
  if (f.search) add('problem_id ILIKE ?', `%${f.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  if (f.workerId) add('worker_id = ?', f.workerId);
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}

/** How many tasks match; exact. */
export async function countTasks(db: Queryable, f: CountFilter = {}): Promise<number> {
  const args: unknown[] = [];
  const r = await db.query<{ n: number }>(`SELECT COALESCE(sum(tasks), 0)::bigint AS n FROM ${COUNTS} ${filterSql(f, args)}`, args);
  return r.rows[0]!.n;
}

/** Tasks (and the sum of their run times, in seconds) per value of one dimension; empty groups left out. */
export async function countTasksBy(db: Queryable, by: CountDimension, f: CountFilter = {}): Promise<Array<{ key: string; tasks: number; run_seconds: number }>> {
  const args: unknown[] = [];
  const r = await db.query<{ key: string; tasks: number; run_seconds: number }>(
    `SELECT ${by} AS key, sum(tasks)::bigint AS tasks, sum(run_seconds)::float AS run_seconds
       FROM ${COUNTS} ${filterSql(f, args)}
      GROUP BY ${by} HAVING sum(tasks) <> 0 ORDER BY ${by}`,
    args,
  );
  return r.rows;
}

/** Folds the deltas into the counts (run by the maintenance pass); returns how many were folded. */
export async function foldTaskCounts(db: Queryable): Promise<number> {
  const r = await db.query<{ n: number }>('SELECT task_counts_fold() AS n');
  return r.rows[0]?.n ?? 0;
}
