/** Read-side SQL for tasks: one task, filtered lists, and the statistics endpoints. */
import type { Queryable } from '../store/pool.js';
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

export async function listTasks(db: Queryable, q: TaskListQuery): Promise<{ tasks: TaskRow[]; total: number }> {
  const args: unknown[] = [];
  const where = whereClause(q, args);
  const dir = q.descending ? 'DESC' : 'ASC';
  // NULLs (never started/completed) sort last either way; id breaks ties so pages are stable.
  const order = `${q.sort} ${dir} NULLS LAST, id ${dir}`;
  const listArgs = [...args, q.limit, q.offset];
  const [rows, total] = await Promise.all([
    db.query<TaskRow>(`SELECT * FROM tasks ${where} ORDER BY ${order} LIMIT $${args.length + 1} OFFSET $${args.length + 2}`, listArgs),
    db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks ${where}`, args),
  ]);
  return { tasks: rows.rows, total: total.rows[0]!.n };
}

export async function countByStatus(db: Queryable): Promise<Record<TaskStatus, number>> {
  const r = await db.query<{ status: TaskStatus; n: number }>('SELECT status, count(*)::int AS n FROM tasks GROUP BY status');
  const out = { pending: 0, running: 0, completed: 0, failed: 0, timeout: 0, cancelled: 0 } as Record<TaskStatus, number>;
  for (const row of r.rows) out[row.status] = row.n;
  return out;
}

/** GET /api/v1/tasks/stats — the earlier executor's keys and formulas. */
export async function taskStats(db: Queryable): Promise<Record<string, unknown>> {
  const [counts, avg, byProblem, byWorker] = await Promise.all([
    countByStatus(db),
    db.query<{ s: number | null }>(`SELECT avg(extract(epoch FROM (completed_at - started_at)))::float AS s FROM tasks WHERE status = 'completed'`),
    db.query<{ problem_id: string; n: number }>('SELECT problem_id, count(*)::int AS n FROM tasks GROUP BY problem_id ORDER BY problem_id'),
    db.query<{ worker_id: string; n: number }>('SELECT worker_id, count(*)::int AS n FROM tasks WHERE worker_id IS NOT NULL GROUP BY worker_id ORDER BY worker_id'),
  ]);
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
    avg_execution_time: avg.rows[0]?.s ?? null,
    success_rate: ended === 0 ? 0.0 : counts.completed / ended,
    tasks_by_problem: Object.fromEntries(byProblem.rows.map((r) => [r.problem_id, r.n])),
    tasks_by_worker: Object.fromEntries(byWorker.rows.map((r) => [r.worker_id, r.n])),
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
