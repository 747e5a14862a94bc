/**
 * The webhook_deliveries table: rows are written by a trigger when a task with a callback_url
 * ends (migrations/0004_webhooks.sql); here they are claimed (SKIP LOCKED, so several processes
 * share the work without sending one twice), and each attempt's outcome is recorded.
 */
import type { Queryable } from '../store/pool.js';

export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'failed';

export interface DeliveryRow {
  id: string;
  task_id: string;
  event: string;
  url: string;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  locked_until: Date | null;
  last_attempt_at: Date | null;
  response_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * Claims up to `limit` due deliveries: pending ones whose time has come, and 'delivering' ones
 * whose claim expired (their process died mid-send). Each claim counts as an attempt.
 */
export async function claimDueDeliveries(db: Queryable, limit: number, lockSeconds: number): Promise<DeliveryRow[]> {
  const r = await db.query<DeliveryRow>(
    `WITH due AS (
       SELECT id FROM webhook_deliveries
       WHERE (status = 'pending' AND next_attempt_at <= now()) OR (status = 'delivering' AND locked_until < now())
       ORDER BY next_attempt_at
       FOR UPDATE SKIP LOCKED
       LIMIT $1
     )
     UPDATE webhook_deliveries d SET status = 'delivering', attempts = d.attempts + 1, last_attempt_at = now(),
            locked_until = now() + make_interval(secs => $2)
     FROM due WHERE d.id = due.id
     RETURNING d.*`,
    [limit, lockSeconds],
  );
  return r.rows;
}

export interface AttemptOutcome {
  ok: boolean;
  responseCode: number | null;
  error: string | null;
  /** Seconds until the next attempt, or null for no further attempt (delivered, or given up). */
  retryInSeconds: number | null;
}

/** Records an attempt; only the claim holder (same attempt number, still delivering) may. */
export async function recordAttempt(db: Queryable, d: Pick<DeliveryRow, 'id' | 'attempts'>, o: AttemptOutcome): Promise<DeliveryStatus | null> {
  const status: DeliveryStatus = o.ok ? 'delivered' : o.retryInSeconds === null ? 'failed' : 'pending';
  const r = await db.query<{ status: DeliveryStatus }>(
    `UPDATE webhook_deliveries SET status = $3, response_code = $4, last_error = $5, locked_until = NULL,
            delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE NULL END,
            next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $6) ELSE next_attempt_at END
     WHERE id = $1 AND attempts = $2 AND status = 'delivering'
     RETURNING status`,
    [d.id, d.attempts, status, o.responseCode, o.error === null ? null : o.error.slice(0, 2000), o.retryInSeconds ?? 0],
  );
  return r.rows[0]?.status ?? null;
}

export async function listDeliveriesForTask(db: Queryable, taskId: string): Promise<DeliveryRow[]> {
  const r = await db.query<DeliveryRow>('SELECT * FROM webhook_deliveries WHERE task_id = $1 ORDER BY created_at, id', [taskId]);
  return r.rows;
}

/** The API view: no payload (it is the task, readable at /tasks/{id}). */
export function deliveryToJson(d: DeliveryRow): Record<string, unknown> {
  return {
    id: d.id,
    task_id: d.task_id,
    event: d.event,
    url: d.url,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' || d.status === 'delivering' ? d.next_attempt_at : null,
    last_attempt_at: d.last_attempt_at,
    response_code: d.response_code,
    last_error: d.last_error,
    delivered_at: d.delivered_at,
    created_at: d.created_at,
  };
}

/** Seconds before attempt n+1 after n failed ones: base·2^(n−1), at least what the receiver asked for, at most an hour. */
export function retryDelaySeconds(attempts: number, baseSeconds: number, retryAfter: number | null, random = Math.random): number {
  const backoff = baseSeconds * 2 ** Math.max(0, attempts - 1);
  const jittered = backoff * (1 + 0.1 * random());
  return Math.min(3600, Math.max(jittered, retryAfter ?? 0));
}
