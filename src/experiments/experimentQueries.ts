/** Reading experiments: one by id or name, and the list. */
import { AppError } from '../errors.js';
import type { Queryable } from '../store/pool.js';
import type { ExperimentRow } from './experimentRecord.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

/** `ref` is an id or a name (names cannot look like uuids: they are matched as ids first). */
export async function findExperiment(db: Queryable, ref: string, opts: { forUpdate?: boolean } = {}): Promise<ExperimentRow | null> {
  const lock = opts.forUpdate ? 'FOR UPDATE' : '';
  const r = isUuid(ref)
    ? await db.query<ExperimentRow>(`SELECT * FROM experiments WHERE id = $1 ${lock}`, [ref])
    : await db.query<ExperimentRow>(`SELECT * FROM experiments WHERE name = $1 ${lock}`, [ref]);
  return r.rows[0] ?? null;
}

export async function getExperiment(db: Queryable, ref: string, opts: { forUpdate?: boolean } = {}): Promise<ExperimentRow> {
  const e = await findExperiment(db, ref, opts);
  if (!e) throw new AppError('experiment_not_found', `Experiment ${ref} not found`, { experiment: ref });
  return e;
}

export async function listExperiments(db: Queryable, q: { limit: number; offset: number; status?: 'active' | 'cancelled' }): Promise<{ rows: ExperimentRow[]; total: number }> {
  const [rows, total] = await Promise.all([
    db.query<ExperimentRow>(
      `SELECT * FROM experiments WHERE ($3::text IS NULL OR status = $3) ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`,
      [q.limit, q.offset, q.status ?? null]),
    db.query<{ n: number }>(`SELECT count(*)::int AS n FROM experiments WHERE ($1::text IS NULL OR status = $1)`, [q.status ?? null]),
  ]);
  return { rows: rows.rows, total: total.rows[0]!.n };
}
