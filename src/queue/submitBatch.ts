/**
 * Submissions arriving together are inserted together: one statement and one commit for all the
 * tasks submitted while the previous insert was committing. Every submission is one durable
 * commit, and the commits (WAL flushes) were what capped POST /api/v1/tasks (bench/RESULTS.md);
 * a lone submission still goes in at once, alone. Each caller gets exactly what submitTask gives
 * it — its task, an idempotent replay or its own error: a batch that fails is retried one task at
 * a time, so one bad submission never fails another.
 */
import { randomUUID } from 'node:crypto';
import { Coalescer } from '../store/coalescer.js';
import type { Pool } from '../store/pool.js';
import { queryPrepared } from '../store/preparedQuery.js';
import { idempotentReplay, requestHash, submitTask, type NewTask } from './submitTask.js';
import type { TaskRow } from './taskRecord.js';

type Result = { task: TaskRow; created: boolean };
interface Pending { t: NewTask; resolve: (r: Result) => void; reject: (e: unknown) => void }

/** Inserts in flight at once per pool; more submissions wait and go in the next insert. */
const MAX_IN_FLIGHT = 2;
const MAX_BATCH = 200;

const INSERT_MANY = `
  WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(ord int, id uuid, problem_id text, priority int, parameters jsonb, backend_type text,
      timeout_minutes int, max_steps int, max_attempts int, idempotency_key text, request_hash text, experiment_id uuid, callback_url text)
  ), t AS (
    INSERT INTO tasks (id, problem_id, priority, parameters, backend_type, timeout_minutes, max_steps, max_attempts,
                       idempotency_key, request_hash, experiment_id, callback_url)
    SELECT id, problem_id, priority, parameters, backend_type, timeout_minutes, max_steps, max_attempts,
           idempotency_key, request_hash, experiment_id, callback_url
      FROM input ORDER BY ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
  ), l AS (
    INSERT INTO task_logs (task_id, level, message, context)
    SELECT id, 'info', 'Task created', jsonb_build_object('phase', 'created', 'problem_id', problem_id, 'parameters', parameters) FROM t
  )
  SELECT * FROM t`;

class SubmitBatcher {
  private readonly batches: Coalescer<Pending>;

  constructor(private readonly pool: Pool) {
    this.batches = new Coalescer((batch) => this.insert(batch), { maxInFlight: MAX_IN_FLIGHT, maxBatch: MAX_BATCH });
  }

  submit(t: NewTask): Promise<Result> {
    return new Promise((resolve, reject) => this.batches.add({ t, resolve, reject }));
  }

  private async insert(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [p] = batch;
      await submitTask(this.pool, p!.t).then(p!.resolve, p!.reject);
      return;
    }
    const items = batch.map((p, ord) => ({ p, ord, id: randomUUID(), hash: requestHash(p.t.problemId, p.t.parameters) }));
    let rows: TaskRow[];
    try {
      rows = (await queryPrepared<TaskRow>(this.pool, 'submit_tasks', INSERT_MANY, [JSON.stringify(items.map(({ p: { t }, ord, id, hash }) => ({
        ord, id, problem_id: t.problemId, priority: t.parameters.priority, parameters: t.parameters, backend_type: t.parameters.backend_type ?? null,
        timeout_minutes: t.parameters.timeout_minutes, max_steps: t.parameters.max_steps, max_attempts: t.maxAttempts,
        idempotency_key: t.idempotencyKey ?? null, request_hash: hash, experiment_id: t.experimentId ?? null, callback_url: t.parameters.callback_url ?? null,
      })))])).rows;
    } catch {
      // Something in the batch was refused (e.g. an unknown experiment): each on its own, so only it fails.
      await Promise.all(batch.map((p) => submitTask(this.pool, p.t).then(p.resolve, p.reject)));
      return;
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    await Promise.all(items.map(async ({ p, id, hash }) => {
      const r = byId.get(id);
      if (r) {
        p.resolve({ task: r, created: true });
      } else {
        await idempotentReplay(this.pool, p.t, hash).then(p.resolve, p.reject);
      }
    }));
  }
}

const batchers = new WeakMap<Pool, SubmitBatcher>();

/** submitTask, coalesced with the other submissions on the same pool (the API's path). */
export function submitTaskCoalesced(pool: Pool, t: NewTask): Promise<Result> {
  let b = batchers.get(pool);
  if (!b) batchers.set(pool, (b = new SubmitBatcher(pool)));
  return b.submit(t);
}
