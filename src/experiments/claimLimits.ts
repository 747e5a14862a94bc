/**
 * The claim-time limits (spend caps, experiment and global concurrency caps) are applied by the
 * claim's candidate search, `claim_candidates()` in migrations/0007. Simultaneous claims see the
 * same counts, so that search alone could overshoot a concurrency cap by the number of claims
 * racing at that instant (one statement claims at most one capped task; statements of several
 * processes race). A claim of a capped task is therefore checked again after its commit, one
 * check at a time (claimTask.ts): a claim that finds its cap exceeded hands its task back, so the
 * caps hold exactly. The SQL here serves that check.
 */

/** The model a task's global limits match (migrations/0006): the resolved provider id when known, else the name given. */
export function taskModelExpression(alias: string): string {
  return `task_model(${alias}.resolved_model, ${alias}.parameters)`;
}

/** The running cap of model `model` in experiment row `e` (migrations/0006); NULL: none. */
function experimentModelCap(e: string, model: string): string {
  return `experiment_model_cap(${e}.model_max_running, ${e}.max_running_per_model, ${model})`;
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
