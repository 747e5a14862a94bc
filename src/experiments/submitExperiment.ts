/**
 * Creating, resuming and cancelling experiments. An experiment is its definition plus one task per
 * (problem, model, repeat) combination; resuming inserts tasks only for combinations that have no
 * pending, running or completed task (and, unless retry_failed, no failed or timed-out one either),
 * so a killed service or a cancelled run picks up where it stopped without repeating paid work.
 */
import { AppError } from '../errors.js';
import { withTransaction, type Pool, type Queryable } from '../store/pool.js';
import type { ExperimentLimits, ExperimentRow, ProblemSelectors, SharedParameters } from './experimentRecord.js';
import { findExperiment } from './experimentQueries.js';

export interface ExperimentDefinition {
  name: string;
  description: string | null;
  selectors: ProblemSelectors;
  /** The selectors expanded against the catalog. */
  problemIds: string[];
  models: string[];
  repeats: number;
  parameters: SharedParameters;
}

export interface TaskCreation {
  /** Provider model id per entry of the experiment's models (same order); null when unresolvable. */
  resolvedModels: Array<string | null>;
  maxAttempts: number;
  retryFailed: boolean;
}

export interface SubmitOutcome {
  experiment: ExperimentRow;
  /** Whether the experiment row was created by this call (false: resumed). */
  created: boolean;
  tasksCreated: number;
}

/** Inserts the missing combinations' tasks (with their "Task created" timeline rows); returns how many. */
export async function createMissingTasks(db: Queryable, experimentId: string, c: TaskCreation): Promise<number> {
  const r = await db.query<{ n: number }>(
    `WITH e AS (
       SELECT * FROM experiments WHERE id = $1
     ), combos AS (
       SELECT p.problem_id, p.pord, m.model, m.resolved, m.mord, r.rep
         FROM e,
              unnest(e.problem_ids) WITH ORDINALITY AS p(problem_id, pord),
              unnest(e.models, $2::text[]) WITH ORDINALITY AS m(model, resolved, mord),
              generate_series(1, e.repeats) AS r(rep)
     ), missing AS (
       SELECT c.*, row_number() OVER (ORDER BY c.rep, c.pord, c.mord) AS ord, count(*) OVER () AS total FROM combos c
        WHERE NOT EXISTS (
          SELECT 1 FROM tasks t
           WHERE t.experiment_id = $1 AND t.problem_id = c.problem_id AND t.experiment_model = c.model AND t.experiment_repeat = c.rep
             AND (t.status IN ('pending', 'running', 'completed') OR (NOT $4::boolean AND t.status IN ('failed', 'timeout'))))
     ), ins AS (
       -- Claims take equal priorities oldest first, so created_at spaces the tasks 1 µs apart in
       -- repeat-major order (with a spend cap, every problem × model runs once before any runs
       -- twice). Spaced backwards from now(), never ahead of a later claim's started_at.
       INSERT INTO tasks (problem_id, priority, parameters, backend_type, timeout_minutes, max_steps, max_attempts,
                          experiment_id, callback_url, experiment_model, experiment_repeat, resolved_model, created_at)
       SELECT m.problem_id, (e.parameters->>'priority')::int,
              jsonb_set(e.parameters, '{agent_config}', COALESCE(e.parameters->'agent_config', '{}'::jsonb) || jsonb_build_object('model', m.model)),
              e.parameters->>'backend_type', (e.parameters->>'timeout_minutes')::int, (e.parameters->>'max_steps')::int, $3,
              e.id, e.parameters->>'callback_url', m.model, m.rep, m.resolved,
              now() - make_interval(secs => (m.total - m.ord)::float8 / 1e6)
         FROM missing m CROSS JOIN e
        ORDER BY m.ord
       ON CONFLICT (experiment_id, problem_id, experiment_model, experiment_repeat)
          WHERE experiment_model IS NOT NULL AND status IN ('pending', 'running', 'completed') DO NOTHING
       RETURNING id, problem_id, parameters, experiment_id, experiment_repeat
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'info', 'Task created', jsonb_build_object('phase', 'created', 'problem_id', problem_id, 'parameters', parameters,
              'experiment_id', experiment_id, 'repeat', experiment_repeat) FROM ins
     )
     SELECT count(*)::int AS n FROM ins`,
    [experimentId, c.resolvedModels, c.maxAttempts, c.retryFailed],
  );
  return r.rows[0]!.n;
}

function limitAssignments(l: Partial<ExperimentLimits>, args: unknown[]): string[] {
  const sets: string[] = [];
  const set = (col: string, v: unknown, cast = '') => { args.push(v); sets.push(`${col} = $${args.length}${cast}`); };
  if (l.spend_cap_usd !== undefined) set('spend_cap_usd', l.spend_cap_usd);
  if (l.max_running_per_model !== undefined) set('max_running_per_model', l.max_running_per_model);
  if (l.model_max_running !== undefined) set('model_max_running', JSON.stringify(l.model_max_running), '::jsonb');
  return sets;
}

/** Changes only the limits given (null clears one). */
export async function updateExperimentLimits(db: Queryable, id: string, limits: Partial<ExperimentLimits>): Promise<ExperimentRow> {
  const args: unknown[] = [id];
  const sets = limitAssignments(limits, args);
  const r = await db.query<ExperimentRow>(
    `UPDATE experiments SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING *`, args);
  if (!r.rows[0]) throw new AppError('experiment_not_found', `Experiment ${id} not found`);
  return r.rows[0];
}

/**
 * A new experiment with its tasks, in one transaction. Returns null when the name was taken
 * meanwhile (the caller then resumes that experiment instead).
 */
export async function createExperiment(pool: Pool, def: ExperimentDefinition, limits: ExperimentLimits, c: TaskCreation): Promise<SubmitOutcome | null> {
  return withTransaction(pool, async (db) => {
    const r = await db.query<ExperimentRow>(
      `INSERT INTO experiments (name, description, problem_selectors, problem_ids, models, repeats, parameters,
                                spend_cap_usd, max_running_per_model, model_max_running)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [def.name, def.description, JSON.stringify(def.selectors), def.problemIds, def.models, def.repeats, JSON.stringify(def.parameters),
        limits.spend_cap_usd, limits.max_running_per_model, JSON.stringify(limits.model_max_running)],
    );
    const experiment = r.rows[0];
    if (!experiment) return null;
    const tasksCreated = await createMissingTasks(db, experiment.id, c);
    return { experiment, created: true, tasksCreated };
  });
}

/**
 * Reactivates the experiment (after a cancel), applies the limits given and creates the missing
 * combinations. The row lock makes two resubmissions of one experiment take turns.
 */
export async function resumeExperiment(pool: Pool, experimentId: string, limits: Partial<ExperimentLimits>, c: TaskCreation): Promise<SubmitOutcome> {
  return withTransaction(pool, async (db) => {
    const locked = await findExperiment(db, experimentId, { forUpdate: true });
    if (!locked) throw new AppError('experiment_not_found', `Experiment ${experimentId} not found`);
    const args: unknown[] = [experimentId];
    const sets = [...limitAssignments(limits, args), `status = 'active'`, 'updated_at = now()'];
    const r = await db.query<ExperimentRow>(`UPDATE experiments SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, args);
    const tasksCreated = await createMissingTasks(db, experimentId, c);
    return { experiment: r.rows[0]!, created: false, tasksCreated };
  });
}

/**
 * Marks the experiment cancelled and cancels its pending and running tasks the way cancelTask
 * does (a running task's worker sees the cancel at its next heartbeat and stops the run).
 */
export async function cancelExperiment(db: Queryable, experimentId: string, reason = 'Experiment cancelled'): Promise<{ experiment: ExperimentRow; cancelledTasks: number }> {
  const r = await db.query<ExperimentRow & { cancelled_tasks: number }>(
    `WITH e AS (
       UPDATE experiments SET status = 'cancelled', updated_at = now() WHERE id = $1 RETURNING *
     ), t AS (
       UPDATE tasks SET status = 'cancelled', completed_at = now(), lease_expires_at = NULL,
              error_type = 'cancelled', error_details = $2
        WHERE experiment_id = $1 AND status IN ('pending', 'running') AND EXISTS (SELECT 1 FROM e)
       RETURNING id, worker_id
     ), l AS (
       INSERT INTO task_logs (task_id, level, message, context)
       SELECT id, 'warning', 'Task cancelled: ' || $2, jsonb_build_object('phase', 'cancelled', 'worker_id', worker_id) FROM t
     )
     SELECT e.*, (SELECT count(*)::int FROM t) AS cancelled_tasks FROM e`,
    [experimentId, reason],
  );
  const row = r.rows[0];
  if (!row) throw new AppError('experiment_not_found', `Experiment ${experimentId} not found`);
  const { cancelled_tasks, ...experiment } = row;
  return { experiment: experiment as ExperimentRow, cancelledTasks: cancelled_tasks };
}
