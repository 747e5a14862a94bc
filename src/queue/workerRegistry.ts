/** SQL for the workers table: registration, heartbeats, lookups and statistics. */
import type { Queryable } from '../store/pool.js';

export interface WorkerRow {
  id: string;
  backend_type: string;
  status: 'idle' | 'busy' | 'offline';
  last_heartbeat: Date;
  current_task_id: string | null;
  capabilities: Record<string, unknown>;
  metadata: Record<string, unknown>;
  cluster_dirty: boolean;
  registered_at: Date;
  tasks_completed: number;
  tasks_failed: number;
}

export function workerToJson(w: WorkerRow, now = Date.now()): Record<string, unknown> {
  return {
    id: w.id,
    backend_type: w.backend_type,
    status: w.status,
    last_heartbeat: w.last_heartbeat,
    heartbeat_age_seconds: Math.max(0, Math.round((now - new Date(w.last_heartbeat).getTime()) / 100) / 10),
    current_task_id: w.current_task_id,
    capabilities: w.capabilities,
    metadata: w.metadata,
    cluster_dirty: w.cluster_dirty,
    tasks_completed: w.tasks_completed,
    tasks_failed: w.tasks_failed,
    registered_at: w.registered_at,
  };
}

export interface Registration {
  id: string;
  backendType: string;
  capabilities: Record<string, unknown>;
  metadata: Record<string, unknown>;
  /** Identifies the registering process; a live row owned by another instance is not taken over. */
  instanceId: string | null;
  offlineAfterSeconds: number;
}

/**
 * Upsert. When `instanceId` is given, an existing row is only taken over if it is offline, stale,
 * or already ours — two processes can never run the same worker id (and so the same cluster).
 * Returns null when the id is live elsewhere. A task the row still points at is left to lease expiry.
 */
export async function registerWorker(db: Queryable, r: Registration): Promise<WorkerRow | null> {
  const meta = { ...r.metadata, ...(r.instanceId ? { instance_id: r.instanceId } : {}) };
  const res = await db.query<WorkerRow>(
    `INSERT INTO workers (id, backend_type, capabilities, metadata, status, last_heartbeat)
     VALUES ($1, $2, $3, $4, 'idle', now())
     ON CONFLICT (id) DO UPDATE SET backend_type = EXCLUDED.backend_type, capabilities = EXCLUDED.capabilities,
       metadata = EXCLUDED.metadata, status = 'idle', current_task_id = NULL, last_heartbeat = now()
     WHERE $5::text IS NULL OR workers.status = 'offline'
        OR workers.last_heartbeat < now() - make_interval(secs => $6)
        OR workers.metadata->>'instance_id' = $5::text
        OR workers.metadata->>'instance_id' IS NULL
     RETURNING *`,
    [r.id, r.backendType, JSON.stringify(r.capabilities), JSON.stringify(meta), r.instanceId, r.offlineAfterSeconds],
  );
  return res.rows[0] ?? null;
}

export interface HeartbeatResult {
  worker: WorkerRow;
  /** Status of the task the worker holds, if any ('running' while it still holds it). */
  heldTaskStatus: string | null;
}

/**
 * Records liveness and renews the lease of the task the worker holds. An in-process worker passes
 * `runningTaskId` (the task it is really running, or null): only that lease is renewed, so a task
 * the row still names after its end could not be recorded (database outage) expires and is
 * requeued, instead of being kept alive forever by a worker that is no longer running it.
 */
export async function heartbeat(db: Queryable, workerId: string, leaseSeconds: number, runningTaskId?: string | null): Promise<HeartbeatResult | null> {
  // The task row is locked before the worker row, the order claim and finish take them: the
  // opposite order deadlocked with the worker's own finishTask (bench/RESULTS.md).
  const res = await db.query<WorkerRow & { held_status: string | null }>(
    `WITH t AS (
       UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $2)
       WHERE tasks.id = (SELECT current_task_id FROM workers WHERE id = $1) AND tasks.worker_id = $1 AND tasks.status = 'running'
         AND (NOT $4::boolean OR tasks.id = $3::uuid)
       RETURNING tasks.id
     ), w AS (
       -- Reading t here makes the task update run (and lock) first.
       UPDATE workers SET last_heartbeat = now(),
              status = CASE WHEN current_task_id IS NULL THEN 'idle' ELSE 'busy' END
       FROM (SELECT count(*) FROM t) AS renewed
       WHERE id = $1 RETURNING workers.*
     )
     SELECT w.*, (SELECT status FROM tasks WHERE id = w.current_task_id) AS held_status FROM w`,
    [workerId, leaseSeconds, runningTaskId ?? null, runningTaskId !== undefined],
  );
  const row = res.rows[0];
  if (!row) return null;
  const { held_status, ...worker } = row;
  return { worker: worker as WorkerRow, heldTaskStatus: held_status };
}

export async function markWorkerOffline(db: Queryable, workerId: string): Promise<void> {
  await db.query(`UPDATE workers SET status = 'offline', current_task_id = NULL WHERE id = $1`, [workerId]);
}

export async function setClusterDirty(db: Queryable, workerId: string, dirty: boolean): Promise<void> {
  await db.query('UPDATE workers SET cluster_dirty = $2 WHERE id = $1', [workerId, dirty]);
}

export async function updateWorkerMetadata(db: Queryable, workerId: string, patch: Record<string, unknown>): Promise<void> {
  await db.query('UPDATE workers SET metadata = metadata || $2::jsonb WHERE id = $1', [workerId, JSON.stringify(patch)]);
}

export async function getWorker(db: Queryable, id: string): Promise<WorkerRow | null> {
  const r = await db.query<WorkerRow>('SELECT * FROM workers WHERE id = $1', [id]);
  return r.rows[0] ?? null;
}

export async function listWorkers(db: Queryable, f: { status?: string; backendType?: string }): Promise<WorkerRow[]> {
  const r = await db.query<WorkerRow>(
    `SELECT * FROM workers WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR backend_type = $2) ORDER BY id`,
    [f.status ?? null, f.backendType ?? null],
  );
  return r.rows;
}

export async function workerStats(db: Queryable, id: string): Promise<Record<string, unknown> | null> {
  const r = await db.query(
    `SELECT w.id AS worker_id, w.status AS current_status,
            (w.tasks_completed + w.tasks_failed) AS total_tasks,
            w.tasks_completed, w.tasks_failed,
            CASE WHEN w.tasks_completed + w.tasks_failed = 0 THEN 0.0
                 ELSE w.tasks_completed::float / (w.tasks_completed + w.tasks_failed) END AS success_rate,
            (SELECT avg(extract(epoch FROM (completed_at - started_at)))::float FROM tasks
              WHERE worker_id = w.id AND completed_at IS NOT NULL AND started_at IS NOT NULL) AS average_task_duration,
            extract(epoch FROM (now() - w.registered_at))::float AS uptime_seconds
     FROM workers w WHERE w.id = $1`,
    [id],
  );
  return r.rows[0] ?? null;
}
