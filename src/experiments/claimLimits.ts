/**
 * The claim-time limits, as one SQL condition the claim statement adds to its candidate filter:
 * a pending task is skipped (and the next one considered, so nothing else stalls) when
 *   1. its experiment's spend — every LLM call of every task of the experiment so far, running ones
 *      included — has reached the experiment's spend cap;
 *   2. its model already has as many running tasks in its experiment as the experiment allows
 *      (model_max_running[model], else max_running_per_model);
 *   3. a global limit in model_concurrency_limits whose glob matches its model is full
 *      (running tasks of any experiment, or none, whose model matches the same glob).
 *
 * Each check is an uncorrelated ARRAY(subquery), which PostgreSQL runs once per claim (an
 * InitPlan) rather than once per candidate row; the per-row work is a comparison against it.
 *
 * Simultaneous claims see the same counts, so the condition alone could overshoot a concurrency
 * cap by the number of claims racing at that instant. A claim of a capped task is therefore checked
 * again after its commit, one check at a time (claimTask.ts): a claim that finds its cap exceeded
 * hands its task back, so the caps hold exactly.
 */

/** The model a task's global limits match: the resolved provider id when known, else the name given. */
export function taskModelExpression(alias: string): string {
  return `COALESCE(${alias}.resolved_model, ${alias}.parameters->'agent_config'->>'model', '')`;
}

/**
 * The experiments whose spend has reached their cap, among those with pending tasks. Driven by
 * the (few) capped experiments: an IN over every pending task made each claim read the whole
 * backlog (49 ms per claim with 20,000 pending; bench/RESULTS.md).
 */
export const SPEND_CAPPED_EXPERIMENTS_SQL = `
  SELECT e.id FROM experiments e
   WHERE e.spend_cap_usd IS NOT NULL
     AND EXISTS (SELECT 1 FROM tasks p WHERE p.experiment_id = e.id AND p.status = 'pending')
     AND (SELECT COALESCE(sum(c.cost_usd), 0) FROM llm_conversations c JOIN tasks x ON x.id = c.task_id
           WHERE x.experiment_id = e.id) >= e.spend_cap_usd`;

/** The running cap of model `model` in experiment row `e`: its own, else the experiment's; NULL: none. */
function experimentModelCap(e: string, model: string): string {
  return `COALESCE((${e}.model_max_running->>${model})::int, ${e}.max_running_per_model)`;
}

/** "<experiment id> <model>" of every experiment model whose running tasks fill its cap. */
export const FULL_EXPERIMENT_MODELS_SQL = `
  SELECT r.experiment_id::text || ' ' || r.experiment_model FROM tasks r JOIN experiments e ON e.id = r.experiment_id
   WHERE r.status = 'running' AND r.experiment_model IS NOT NULL
     AND ${experimentModelCap('e', 'r.experiment_model')} IS NOT NULL
   GROUP BY r.experiment_id, r.experiment_model, e.model_max_running, e.max_running_per_model
  HAVING count(*) >= ${experimentModelCap('e', 'r.experiment_model')}`;

/** LIKE patterns of the global model limits that are full. */
export const FULL_GLOBAL_LIMITS_SQL = `
  SELECT l.like_pattern FROM model_concurrency_limits l
   WHERE (SELECT count(*) FROM tasks r WHERE r.status = 'running' AND ${taskModelExpression('r')} LIKE l.like_pattern) >= l.max_running`;

/**
 * The condition for the claim statement's candidate query, where `alias` names the tasks row
 * being considered (`t` in claimTask). Uses no parameters.
 */
export function claimLimitsCondition(alias = 't'): string {
  const t = alias;
  return `(
    (${t}.experiment_id IS NULL OR ${t}.experiment_id <> ALL (ARRAY(${SPEND_CAPPED_EXPERIMENTS_SQL})))
    AND (${t}.experiment_model IS NULL
         OR (${t}.experiment_id::text || ' ' || ${t}.experiment_model) <> ALL (ARRAY(${FULL_EXPERIMENT_MODELS_SQL})))
    AND NOT (${taskModelExpression(t)} LIKE ANY (ARRAY(${FULL_GLOBAL_LIMITS_SQL})))
  )`;
}

/** True when the task `alias` is subject to a concurrency cap (its experiment's or a global one). */
export function concurrencyCappedExpression(alias: string): string {
  const t = alias;
  return `(
    (${t}.experiment_model IS NOT NULL AND EXISTS (
       SELECT 1 FROM experiments e WHERE e.id = ${t}.experiment_id
          AND ${experimentModelCap('e', `${t}.experiment_model`)} IS NOT NULL))
    OR EXISTS (SELECT 1 FROM model_concurrency_limits l WHERE ${taskModelExpression(t)} LIKE l.like_pattern)
  )`;
}

/**
 * For the running task $1: whether the running tasks now exceed one of its caps (it is counted).
 * Run after the claim committed, under the cap-check lock, in a statement of its own, so it sees
 * every claim committed before it.
 */
export const OVER_CONCURRENCY_CAP_SQL = `
  SELECT
    (SELECT count(*) FROM tasks r WHERE r.status = 'running' AND r.experiment_id = t.experiment_id AND r.experiment_model = t.experiment_model)
      > COALESCE((SELECT ${experimentModelCap('e', 't.experiment_model')} FROM experiments e WHERE e.id = t.experiment_id), 2147483647)
    OR EXISTS (
      SELECT 1 FROM model_concurrency_limits l
       WHERE ${taskModelExpression('t')} LIKE l.like_pattern
         AND (SELECT count(*) FROM tasks r WHERE r.status = 'running' AND ${taskModelExpression('r')} LIKE l.like_pattern) > l.max_running)
    AS over
  FROM tasks t WHERE t.id = $1`;
