/** Read-side SQL for tasks: one task, filtered lists, and the statistics endpoints. */
import type { Queryable } from '../store/pool.js';
import { countTasks, countTasksBy } from './taskCounts.js';
import type { TaskRow, TaskStatus } from './taskRecord.js';

export const TASK_SORT_FIELDS = ['created_at', 'updated_at', 'started_at', 'completed_at', 'priority'] as const;
export type TaskSortField = (typeof TASK_SORT_FIELDS)[number];

export interface TaskFilter {
  status?: TaskStatus[];
  problemId?: string;
  /** Substring search over problem ids (dashboard search box). */
  search?: string;
  workerId?: string;
  backendType?: string;
  experimentId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

export interface TaskListQuery extends TaskFilter {
  sort: TaskSortField;
  descending: boolean;
  limit: number;
  offset: number;
}

function whereClause(f: TaskFilter, args: unknown[]): string {
  const where: string[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.status?.length) add('status = ANY(?::text[])', f.status);
  if (f.problemId) add('problem_id = ?', f.problemId);
  if (f.search) add(`problem_id ILIKE ?`, `%${f.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  if (f.workerId) add('worker_id = ?', f.workerId);
  if (f.backendType) add('backend_type = ?', f.backendType);
  if (f.experimentId) add('experiment_id = ?', f.experimentId);
  if (f.createdAfter) add('created_at >= ?', f.createdAfter);
  if (f.createdBefore) add('created_at < ?', f.createdBefore);
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}

export async function getTask(db: Queryable, id: string): Promise<TaskRow | null> {
  const r = await db.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id]);
  return r.rows[0] ?? null;
}

/** Above this many matches, a filter the kept counts do not cover reports the planner's estimate as its total. */
export const EXACT_TOTAL_LIMIT = 10_000;

/**
 * The list's total. Status, problem, search and worker filters are answered exactly from the kept
 * counts (taskCounts.ts); the others count matching rows up to EXACT_TOTAL_LIMIT, and beyond it
 * give the planner's estimate, flagged — counting every match made a list of 1,000,000 tasks
 * take longer than the list itself (bench/RESULTS.md).
 */
async function countMatching(db: Queryable, f: TaskFilter): Promise<{ n: number; estimate: boolean }> {
  if (!f.backendType && !f.experimentId && !f.createdAfter && !f.createdBefore) {
    return { n: await countTasks(db, { status: f.status, problemId: f.problemId, search: f.search, workerId: f.workerId }), estimate: false };
  }
  const args: unknown[] = [];
  const where = whereClause(f, args);
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM tasks ${where} LIMIT ${EXACT_TOTAL_LIMIT + 1}) s`, args);
  const n = r.rows[0]!.n;
  if (n <= EXACT_TOTAL_LIMIT) return { n, estimate: false };
  const plan = await db.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(`EXPLAIN (FORMAT JSON) SELECT 1 FROM tasks ${where}`, args);
  return { n: Math.max(n, Math.round(plan.rows[0]!['QUERY PLAN'][0]!.Plan['Plan Rows'])), estimate: true };
}

export async function listTasks(db: Queryable, q: TaskListQuery): Promise<{ tasks: TaskRow[]; total: number; totalIsEstimate: boolean }> {
  const args: unknown[] = [];
  const where = whereClause(q, args);
  const dir = q.descending ? 'DESC' : 'ASC';
  // NULLs (never started/completed) sort last either way; id breaks ties so pages are stable.
  // Only started_at and completed_at can be NULL: NULLS LAST on the other columns would keep
  // PostgreSQL from reading their indexes in order (a sort of every matching task instead).
  const nulls = q.sort === 'started_at' || q.sort === 'completed_at' ? ' NULLS LAST' : '';
  const order = `${q.sort} ${dir}${nulls}, id ${dir}`;
  const listArgs = [...args, q.limit, q.offset];
  const [rows, total] = await Promise.all([
    db.query<TaskRow>(`SELECT * FROM tasks ${where} ORDER BY ${order} LIMIT $${args.length + 1} OFFSET $${args.length + 2}`, listArgs),
    countMatching(db, q),
  ]);
  return { tasks: rows.rows, total: total.n, totalIsEstimate: total.estimate };
}

export async function countByStatus(db: Queryable): Promise<Record<TaskStatus, number>> {
  const out = { pending: 0, running: 0, completed: 0, failed: 0, timeout: 0, cancelled: 0 } as Record<TaskStatus, number>;
  for (const row of await countTasksBy(db, 'status')) out[row.key as TaskStatus] = row.tasks;
  return out;
}

/** GET /api/v1/tasks/stats — the earlier executor's keys and formulas, from the kept counts. */
export async function taskStats(db: Queryable): Promise<Record<string, unknown>> {
  const [byStatus, byProblem, byWorker] = await Promise.all([
    countTasksBy(db, 'status'),
    countTasksBy(db, 'problem_id'),
    countTasksBy(db, 'worker_id'),
  ]);
  const counts = { pending: 0, running: 0, completed: 0, failed: 0, timeout: 0, cancelled: 0 } as Record<TaskStatus, number>;
  for (const row of byStatus) counts[row.key as TaskStatus] = row.tasks;
  const completed = byStatus.find((r) => r.key === 'completed');
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ended = counts.completed + counts.failed + counts.timeout;
  return {
    total_tasks: total,
    pending_tasks: counts.pending,
    running_tasks: counts.running,
    completed_tasks: counts.completed,
    failed_tasks: counts.failed,
    timeout_tasks: counts.timeout,
    cancelled_tasks: counts.cancelled,
    avg_execution_time: completed ? completed.run_seconds / completed.tasks : null,
    success_rate: ended === 0 ? 0.0 : counts.completed / ended,
    tasks_by_problem: Object.fromEntries(byProblem.map((r) => [r.key, r.tasks])),
    tasks_by_worker: Object.fromEntries(byWorker.filter((r) => r.key !== '').map((r) => [r.key, r.tasks])),
  };
}

/** GET /queue/stats — kept with its own formula (completed / (completed + failed)), as before. */
export async function queueStats(db: Queryable): Promise<Record<string, unknown>> {
  const [counts, times] = await Promise.all([
    countByStatus(db),
    db.query<{ wait: number | null; exec: number | null }>(
      `SELECT avg(extract(epoch FROM (started_at - created_at))) FILTER (WHERE started_at IS NOT NULL)::float AS wait,
              avg(extract(epoch FROM (completed_at - started_at))) FILTER (WHERE status = 'completed')::float AS exec
       FROM tasks`),
  ]);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const denom = counts.completed + counts.failed;
  return {
    ...counts,
    total,
    success_rate: denom === 0 ? 0.0 : counts.completed / denom,
    average_wait_time: times.rows[0]?.wait ?? null,
    average_execution_time: times.rows[0]?.exec ?? null,
  };
}
