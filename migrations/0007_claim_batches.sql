-- Claims in batches (bench/RESULTS.md, round 4).
--
-- A process's idle workers claim together: one statement finds, locks and claims a task for each
-- of them. Draining no-op tasks was CPU-bound on the server, and most of that CPU was spent per
-- statement (executor start-up, the candidate search's function call and limits, the commit), not
-- per row: the same claims and finishes made eight at a time cost a quarter as much per task.
--
-- claim_candidates() is claim_candidate() (migrations/0006) for up to p_limit tasks in one walk of
-- the tasks_claim index, in claim order. Whether the claimer is free is now checked by the claim
-- statement, for each worker of the batch. The limits are applied as before; that several tasks
-- under one concurrency cap are not claimed in one batch is the claim statement's business
-- (src/queue/queueSteps.ts).
--
-- jit is switched off here as well as on the service's connections: with sequential scans
-- switched off every plan that could use one costs 10^10, which starts JIT compilation (600 ms)
-- on a connection that left JIT on.
CREATE FUNCTION claim_candidates(p_backend text, p_patterns text[], p_limit integer) RETURNS uuid[]
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
  found uuid[];
BEGIN
  IF p_limit < 1 THEN
    RETURN '{}';
  END IF;
  SELECT COALESCE(array_agg(c.id ORDER BY c.priority DESC, c.created_at ASC), '{}') INTO found FROM (
    SELECT t.id, t.priority, t.created_at FROM tasks t
     WHERE t.status = 'pending'
       AND (t.backend_type IS NULL OR t.backend_type = p_backend)
       AND (p_patterns IS NULL OR t.problem_id LIKE ANY (p_patterns))
       AND (t.experiment_id IS NULL OR t.experiment_id <> ALL (ARRAY(
             SELECT e.id FROM experiments e
              WHERE e.spend_cap_usd IS NOT NULL
                AND EXISTS (SELECT 1 FROM tasks p WHERE p.experiment_id = e.id AND p.status = 'pending')
                AND (SELECT COALESCE(sum(c.cost_usd), 0) FROM llm_conversations c JOIN tasks x ON x.id = c.task_id
                      WHERE x.experiment_id = e.id) >= e.spend_cap_usd)))
       AND (t.experiment_model IS NULL OR (t.experiment_id::text || ' ' || t.experiment_model) <> ALL (ARRAY(
             SELECT r.experiment_id::text || ' ' || r.experiment_model FROM tasks r JOIN experiments e ON e.id = r.experiment_id
              WHERE r.status = 'running' AND r.experiment_model IS NOT NULL
                AND experiment_model_cap(e.model_max_running, e.max_running_per_model, r.experiment_model) IS NOT NULL
              GROUP BY r.experiment_id, r.experiment_model, e.model_max_running, e.max_running_per_model
             HAVING count(*) >= experiment_model_cap(e.model_max_running, e.max_running_per_model, r.experiment_model))))
       AND NOT (task_model(t.resolved_model, t.parameters) LIKE ANY (ARRAY(
             SELECT l.like_pattern FROM model_concurrency_limits l
              WHERE (SELECT count(*) FROM tasks r
                      WHERE r.status = 'running' AND task_model(r.resolved_model, r.parameters) LIKE l.like_pattern) >= l.max_running)))
     ORDER BY t.priority DESC, t.created_at ASC
     FOR UPDATE OF t SKIP LOCKED
     LIMIT p_limit) c;
  RETURN found;
END $$;

DROP FUNCTION claim_candidate(text, text, text[]);
