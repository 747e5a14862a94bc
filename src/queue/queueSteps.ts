/**
 * The queue's two hot steps, claim and finish, in one statement for every worker of a process
 * that takes one at the same moment (bench/RESULTS.md, round 4). Draining no-op tasks was
 * CPU-bound on the server, and most of that CPU was spent per statement (executor start-up, the
 * candidate search, the commit), not per row: the same claims and finishes made a few at a time
 * in one statement cost a fraction as much per task. On a pool, a worker's claim or finish joins
 * the next statement (store/coalescer.ts: a lone step goes at once); on a client it runs alone.
 *
 * A statement runs the halves it has steps for. They never touch the same rows: a worker has at
 * most one step in a statement (its claim follows its finish), a finish changes a running task and
 * a claim a pending one.
 */
import pg from 'pg';
import { concurrencyCappedExpression } from '../experiments/claimLimits.js';
import { Coalescer } from '../store/coalescer.js';
import { announceAfterCommit, sendDeferredEvents, type DeferredEvent } from '../store/deferredEvents.js';
import type { Queryable } from '../store/pool.js';
import { queryPrepared } from '../store/preparedQuery.js';
import { globToLike, verifyWithinCaps, type ClaimedTask, type ClaimOptions } from './claimTask.js';
import type { Finish } from './finishTask.js';
import type { TaskRow } from './taskRecord.js';

/**
 * {finishes}: a JSON array, each for a different task; a finish whose worker no longer holds its
 * task changes nothing and returns no row.
 * {workers}: the claiming workers, in the order they asked, all with the same filters ({backend},
 * {lease} seconds, {patterns}: LIKE patterns or NULL): each free one gets the next task
 * `claim_candidates()` (migrations/0007) found and locked. That function runs on a newer snapshot
 * than this statement, so a task submitted in between can be found there but not updated here;
 * and of several tasks under a concurrency cap only the first is claimed (the post-claim check
 * would hand the others back). `found` counts what was found, so a worker left without a task can
 * tell "none left" from "try again". A worker that holds a task gets none. A claim may see a task
 * created after its own transaction's now(): the transaction starts when the statement is bound,
 * its snapshot is taken after planning (milliseconds, while a connection's first executions are
 * planned one by one). Its start is then its creation, never before it (started_after_created).
 * Events are returned, to be sent after the commit (see deferredEvents.ts).
 * Every join to `tasks` looks its few rows up by id (an array of them, or one at a time behind a
 * LIMIT that keeps the planner from turning it into a join): joined to a set of unknown size, the
 * planner may read the whole table instead (test/claimPlan.test.ts). A finish must not let the
 * planner prove the predicate of a partial index either: with statistics taken before those tasks
 * ran, the index of running tasks (its dead entries) or of tasks with a worker looks empty, and
 * the planner walked all of it instead of looking the finished tasks up by id. So the status is
 * compared with a column of the materialised input, not with the constant 'running', and the
 * worker with IS NOT DISTINCT FROM, which (unlike =) does not imply worker_id IS NOT NULL.
 */
const FINISH_CTES = `finishes AS MATERIALIZED (
       SELECT *, 'running'::text AS running FROM jsonb_to_recordset({finishes}::jsonb)
         AS i(task_id uuid, worker_id text, status text, result jsonb, error_type text, error_details text)
     ), finished AS (
       UPDATE tasks SET status = i.status, result = i.result, error_type = i.error_type, error_details = i.error_details,
              completed_at = now(), lease_expires_at = NULL
       FROM finishes i, defer
       WHERE tasks.id = ANY(ARRAY(SELECT task_id FROM finishes))
         AND tasks.id = i.task_id AND tasks.worker_id IS NOT DISTINCT FROM i.worker_id AND tasks.status = i.running
       RETURNING tasks.*, task_event(tasks) AS notify_task, false AS concurrency_capped
     ), freed AS (
       UPDATE workers SET status = CASE WHEN workers.status = 'offline' THEN 'offline' ELSE 'idle' END, current_task_id = NULL, last_heartbeat = now(),
              tasks_completed = tasks_completed + (CASE WHEN f.status = 'completed' THEN 1 ELSE 0 END),
              tasks_failed = tasks_failed + (CASE WHEN f.status = 'completed' THEN 0 ELSE 1 END)
       FROM finished f WHERE workers.id = f.worker_id AND workers.current_task_id = f.id
       RETURNING workers.id AS worker, worker_event(workers) AS notify_worker
     ), finish_logs AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, CASE WHEN status = 'completed' THEN 'info' ELSE 'error' END,
              'Task ' || status || COALESCE(': ' || error_type, ''),
              jsonb_build_object('phase', 'finished', 'status', status, 'error_type', error_type,
                                 'run_ms', round(extract(epoch FROM (completed_at - started_at)) * 1000))
       FROM finished
       RETURNING task_id, task_log_event(task_logs) AS notify_log
     )`;

const CLAIM_CTES = `free AS (
       SELECT w.id, row_number() OVER (ORDER BY x.ord) AS n
         FROM unnest({workers}::text[]) WITH ORDINALITY AS x(id, ord) JOIN workers w ON w.id = x.id
        WHERE w.current_task_id IS NULL
     ), found AS (
       SELECT f.id, f.ord FROM unnest(claim_candidates({backend}, {patterns}::text[], (SELECT count(*)::int FROM free))) WITH ORDINALITY AS f(id, ord)
     ), ranked AS (
       SELECT t.id, f.ord, t.capped
         FROM found f, LATERAL (SELECT t.id, ${concurrencyCappedExpression('t')} AS capped FROM tasks t WHERE t.id = f.id LIMIT 1) t
     ), kept AS (
       SELECT id, capped, row_number() OVER (ORDER BY ord) AS n
         FROM (SELECT *, count(*) FILTER (WHERE capped) OVER (ORDER BY ord) AS capped_before FROM ranked) r
        WHERE NOT capped OR capped_before = 1
     ), claimed AS (
       UPDATE tasks t SET status = 'running', worker_id = free.id, started_at = greatest(now(), t.created_at),
              lease_expires_at = now() + make_interval(secs => {lease}), attempt = t.attempt + 1
       FROM kept JOIN free USING (n), defer WHERE t.id = ANY(ARRAY(SELECT id FROM kept)) AND t.id = kept.id
       RETURNING t.*, task_event(t) AS notify_task, kept.capped AS concurrency_capped
     ), busy AS (
       UPDATE workers SET status = 'busy', current_task_id = c.id, last_heartbeat = now()
       FROM claimed c WHERE workers.id = c.worker_id
       RETURNING workers.id AS worker, worker_event(workers) AS notify_worker, workers.cluster_dirty
     ), claim_logs AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'info', 'Claimed by ' || worker_id, jsonb_build_object('phase', 'claimed', 'worker_id', worker_id, 'attempt', attempt,
              'queued_ms', round(extract(epoch FROM (started_at - created_at)) * 1000)) FROM claimed
       RETURNING task_id, task_log_event(task_logs) AS notify_log
     )`;

const FINISH_ROWS = `SELECT 'finish' AS step, finished.*, freed.notify_worker, finish_logs.notify_log, NULL::boolean AS worker_cluster_dirty, NULL::int AS found
       FROM finished LEFT JOIN freed ON freed.worker = finished.worker_id LEFT JOIN finish_logs ON finish_logs.task_id = finished.id`;

const CLAIM_ROWS = `SELECT 'claim' AS step, claimed.*, busy.notify_worker, claim_logs.notify_log, busy.cluster_dirty AS worker_cluster_dirty, fc.found
       FROM (SELECT count(*)::int AS found FROM found) fc
       LEFT JOIN claimed ON true
       LEFT JOIN busy ON busy.worker = claimed.worker_id
       LEFT JOIN claim_logs ON claim_logs.task_id = claimed.id`;

type Param = 'finishes' | 'workers' | 'backend' | 'lease' | 'patterns';

/** Each placeholder of the parts above becomes the parameter of its position in `params`. */
function statement(name: string, parts: string[], rows: string[], params: Param[]): { name: string; text: string; params: Param[] } {
  const text = `WITH defer AS (SELECT defer_notify()), ${parts.join(', ')}\n     ${rows.join('\n     UNION ALL\n     ')}`;
  return { name, params, text: text.replace(/\{(finishes|workers|backend|lease|patterns)\}/g, (_, p: Param) => `$${params.indexOf(p) + 1}`) };
}

/**
 * A batch runs only the halves it has steps for: a lone claim (submit to start) or a batch of
 * finishes does not pay for starting the other half's plan.
 */
const STATEMENTS = {
  both: statement('queue_steps', [FINISH_CTES, CLAIM_CTES], [FINISH_ROWS, CLAIM_ROWS], ['finishes', 'workers', 'backend', 'lease', 'patterns']),
  finishes: statement('queue_finishes', [FINISH_CTES], [FINISH_ROWS], ['finishes']),
  claims: statement('queue_claims', [CLAIM_CTES], [CLAIM_ROWS], ['workers', 'backend', 'lease', 'patterns']),
};

type StepRow = TaskRow & {
  step: 'finish' | 'claim'; notify_task: string; notify_worker: string | null; notify_log: string | null;
  concurrency_capped: boolean; worker_cluster_dirty: boolean | null; found: number | null;
};

/** The post-claim cap check of a capped claim failed (the claim statement itself committed). */
export class CapCheckFailed {
  constructor(readonly error: unknown) {}
}

/** A claim's outcome: the task, none left, worth another try (see the claim half above), or a failed cap check. */
export type ClaimOutcome = ClaimedTask | null | 'retry' | CapCheckFailed;

/** Runs finishes and claims (all with the same filters) in one statement; outcomes in input order. */
export async function runSteps(db: Queryable, finishes: Finish[], claims: ClaimOptions[]): Promise<{ finished: Array<TaskRow | null>; claimed: ClaimOutcome[] }> {
  const o = claims[0];
  const patterns = o?.supportedProblems.length ? o.supportedProblems.map(globToLike) : null;
  const values: Record<Param, unknown> = {
    finishes: JSON.stringify(finishes.map((f) => ({
      task_id: f.taskId, worker_id: f.workerId, status: f.status, result: f.result, error_type: f.errorType, error_details: f.errorDetails,
    }))),
    workers: claims.map((c) => c.workerId), backend: o?.backendType ?? '', lease: o?.leaseSeconds ?? 0, patterns,
  };
  const s = !o ? STATEMENTS.finishes : finishes.length === 0 ? STATEMENTS.claims : STATEMENTS.both;
  const r = await queryPrepared<StepRow>(db, s.name, s.text, s.params.map((p) => values[p]));
  const finishedRows = new Map<string, TaskRow>();
  // Each claiming worker's outcome; a capped claim is checked below, after its events are out.
  const outcomes = new Map<string, ClaimOutcome>();
  const capped: Array<{ task: ClaimedTask; events: DeferredEvent[] }> = [];
  const events: DeferredEvent[] = [];
  let found = 0;
  for (const row of r.rows) {
    const { step, notify_task, notify_worker, notify_log, concurrency_capped, worker_cluster_dirty, found: f, ...task } = row;
    if (step === 'claim') found = f ?? 0;
    if (task.id === null) continue;
    const own: DeferredEvent[] = [['task_events', notify_task], ['worker_events', notify_worker], ['task_log_events', notify_log]];
    if (step === 'finish') {
      finishedRows.set(task.id, task as TaskRow);
      events.push(...own);
      continue;
    }
    const claimed = { ...task, worker_cluster_dirty: worker_cluster_dirty ?? false } as ClaimedTask;
    outcomes.set(claimed.worker_id!, claimed);
    if (concurrency_capped) capped.push({ task: claimed, events: own });
    else events.push(...own);
  }
  // Found on the function's newer snapshot but not visible to the update, or a capped task left
  // for a later statement: the workers that got nothing try again.
  const missed = found > outcomes.size;
  // On a pool, not waited for: the workers go on while the events go out, in order.
  await announceAfterCommit(db, events);
  for (const c of capped) {
    // Sent before the check, so a hand-back (announced by the triggers) is never seen before the claim.
    await sendDeferredEvents(db, c.events);
    const stands = await verifyWithinCaps(db, c.task.id, c.task.worker_id!).catch((e: unknown) => new CapCheckFailed(e));
    if (stands !== true) outcomes.set(c.task.worker_id!, stands === false ? 'retry' : stands);
  }
  return {
    finished: finishes.map((f) => finishedRows.get(f.taskId) ?? null),
    claimed: claims.map((c) => outcomes.get(c.workerId) ?? (missed ? 'retry' : null)),
  };
}

/**
 * Claims that found their cap taken by a simultaneous claim, or their candidate submitted after the
 * claim statement began, or left for a later statement, are retried this often before giving up
 * for this round.
 */
export const CLAIM_RETRIES = 5;

type Step =
  | { kind: 'finish'; f: Finish; resolve: (t: TaskRow | null) => void; reject: (e: unknown) => void }
  | { kind: 'claim'; o: ClaimOptions; tries: number; resolve: (t: ClaimedTask | null) => void; reject: (e: unknown) => void };

/** Statements in flight per pool (the server's two CPUs here measured best with two); the steps that arrive meanwhile go together in the next. */
const STEPS_IN_FLIGHT = 2;
const MAX_STEPS = 64;
const coalescers = new WeakMap<pg.Pool, Coalescer<Step>>();

async function runStepBatch(pool: pg.Pool, batch: Step[], again: (s: Step) => void): Promise<void> {
  const finishes = batch.filter((s) => s.kind === 'finish');
  const claims = batch.filter((s) => s.kind === 'claim');
  let out: Awaited<ReturnType<typeof runSteps>>;
  try {
    out = await runSteps(pool, finishes.map((s) => s.f), claims.map((s) => s.o));
  } catch (e) {
    // The statement failed, so nothing of it committed. One step the database refuses (say, a
    // result it cannot store) must not fail the others: each is made again on its own.
    if (batch.length === 1) batch[0]!.reject(e);
    else await Promise.all(batch.map((s) => runStepBatch(pool, [s], again)));
    return;
  }
  finishes.forEach((s, i) => s.resolve(out.finished[i]!));
  claims.forEach((s, i) => {
    const got = out.claimed[i]!;
    if (got === 'retry') {
      if (++s.tries < CLAIM_RETRIES) again(s);
      else s.resolve(null);
    } else if (got instanceof CapCheckFailed) {
      s.reject(got.error);
    } else {
      s.resolve(got);
    }
  });
}

function coalescer(pool: pg.Pool): Coalescer<Step> {
  let c = coalescers.get(pool);
  if (!c) {
    const made: Coalescer<Step> = new Coalescer((batch) => runStepBatch(pool, batch, (s) => made.add(s)), {
      maxInFlight: STEPS_IN_FLIGHT, maxBatch: MAX_STEPS,
      // Claims share a statement only with claims of the same filters; finishes go with any.
      groupKey: (s) => s.kind === 'claim' ? JSON.stringify([s.o.backendType, s.o.supportedProblems, s.o.leaseSeconds]) : null,
      // A worker's steps, and a task's finishes, one at a time.
      exclusiveKeys: (s) => s.kind === 'claim' ? [`worker:${s.o.workerId}`] : [`worker:${s.f.workerId}`, `task:${s.f.taskId}`],
    });
    coalescers.set(pool, (c = made));
  }
  return c;
}

export function coalescedClaim(pool: pg.Pool, o: ClaimOptions): Promise<ClaimedTask | null> {
  return new Promise((resolve, reject) => coalescer(pool).add({ kind: 'claim', o, tries: 0, resolve, reject }));
}

export function coalescedFinish(pool: pg.Pool, f: Finish): Promise<TaskRow | null> {
  return new Promise((resolve, reject) => coalescer(pool).add({ kind: 'finish', f, resolve, reject }));
}
