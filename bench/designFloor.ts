/**
 * The design floor of goal 2 (no-op throughput): a drain in which a claim and a finish do only
 * what DESIGN.md's claim itself requires of the task row, one update each of a table with the
 * `tasks` table's columns, checks and indexes (every index the API's filters and sorts need),
 * and nothing the service adds on top: no triggers (state machine, counts, events), no timeline
 * rows, no worker rows, no wake-ups (the tasks are queued before the clock starts). Each worker
 * is a bare loop on the product's pool: claim, finish, claim again.
 *
 * Measured beside the product and graphile-worker on the same server in the same run, it says
 * how much of the gap tuning what we add could ever close: if this floor drains slower than
 * graphile-worker, the task-row design itself is the limit (bench/RESULTS.md).
 */
import type { BenchDatabase } from './benchDatabase.js';

/** `tasks` as it stands after every migration: columns, defaults, checks and indexes; no triggers or foreign keys. */
const CREATE = 'CREATE TABLE floor_tasks (LIKE tasks INCLUDING ALL)';

/** DESIGN.md's claim: the best pending task (priority, then age), skipping locked rows, set running under a lease. */
const CLAIM = `
  UPDATE floor_tasks t SET status = 'running', worker_id = $1, started_at = greatest(now(), t.created_at),
         lease_expires_at = now() + interval '300 seconds', attempt = t.attempt + 1
   WHERE t.id = (SELECT id FROM floor_tasks WHERE status = 'pending' ORDER BY priority DESC, created_at ASC FOR UPDATE SKIP LOCKED LIMIT 1)
  RETURNING t.*`;

const FINISH = `
  UPDATE floor_tasks SET status = 'completed', result = '{}'::jsonb, completed_at = now(), lease_expires_at = NULL
   WHERE id = $1 AND worker_id = $2 AND status = 'running'`;

/** Creates the floor's table in a product database and queues `tasks` rows in it, as `fillRows` makes them. */
export async function fillFloor(db: BenchDatabase, fillRows: string, tasks: number): Promise<void> {
  await db.pool.query(CREATE);
  await db.pool.query(`INSERT INTO floor_tasks (problem_id, priority, parameters, timeout_minutes, max_steps, max_attempts, request_hash) ${fillRows}`, [tasks]);
  await db.pool.query('ANALYZE floor_tasks');
}

/** Drains the floor's table with `workers` bare loops; resolves with the number of tasks each finished. */
export async function drainFloor(db: BenchDatabase, workers: number): Promise<number[]> {
  return Promise.all(Array.from({ length: workers }, async (_, n) => {
    const id = `floor-${n + 1}`;
    let finished = 0;
    for (;;) {
      const { rows: [task] } = await db.pool.query<{ id: string }>({ name: 'floor_claim', text: CLAIM, values: [id] });
      if (!task) return finished;
      const r = await db.pool.query({ name: 'floor_finish', text: FINISH, values: [task.id, id] });
      if (r.rowCount !== 1) throw new Error(`floor task ${task.id} was not finished by ${id}`);
      finished++;
    }
  }));
}
