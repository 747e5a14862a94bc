/** The task timeline: every phase and AIOpsLab's captured output are rows in task_logs. */
import type { Queryable } from './pool.js';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'error', 'critical'];

export interface TaskLogRow {
  id: number;
  task_id: string;
  timestamp: Date;
  level: LogLevel;
  message: string;
  context: Record<string, unknown>;
}

export async function writeTaskLog(db: Queryable, taskId: string, level: LogLevel, message: string, context: Record<string, unknown> = {}): Promise<void> {
  await db.query('INSERT INTO task_logs (task_id, level, message, context) VALUES ($1, $2, $3, $4)', [taskId, level, message, JSON.stringify(context)]);
}

/** Many lines in one statement (captured output arrives in bursts). */
export async function writeTaskLogs(db: Queryable, taskId: string, rows: Array<{ level: LogLevel; message: string; context?: Record<string, unknown> }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO task_logs (task_id, level, message, context)
     SELECT $1, l, m, c FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS t(l, m, c)`,
    [taskId, rows.map((r) => r.level), rows.map((r) => r.message), rows.map((r) => JSON.stringify(r.context ?? {}))],
  );
}

export interface LogQuery {
  level?: LogLevel;
  since?: Date;
  afterId?: number;
  /** `timeline`: the executor's own rows; `aiopslab`: AIOpsLab's captured output. */
  source?: 'timeline' | 'aiopslab';
  limit: number;
}

/** The newest `limit` entries matching the filter, in ascending order, plus the matching total. */
export async function listTaskLogs(db: Queryable, taskId: string, q: LogQuery): Promise<{ logs: TaskLogRow[]; total: number }> {
  const where = ['task_id = $1'];
  const args: unknown[] = [taskId];
  if (q.level) { args.push(q.level); where.push(`level = $${args.length}`); }
  if (q.since) { args.push(q.since); where.push(`timestamp > $${args.length}`); }
  if (q.afterId !== undefined) { args.push(q.afterId); where.push(`id > $${args.length}`); }
  if (q.source === 'aiopslab') where.push(`context->>'source' = 'aiopslab'`);
  if (q.source === 'timeline') where.push(`(context->>'source') IS DISTINCT FROM 'aiopslab'`);
  const cond = where.join(' AND ');
  args.push(q.limit);
  const rows = await db.query<TaskLogRow>(
    `SELECT * FROM (SELECT id, task_id, timestamp, level, message, context FROM task_logs WHERE ${cond} ORDER BY id DESC LIMIT $${args.length}) x ORDER BY id ASC`,
    args,
  );
  const total = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM task_logs WHERE ${cond}`, args.slice(0, -1));
  return { logs: rows.rows, total: total.rows[0]!.n };
}
