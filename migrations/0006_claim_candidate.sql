-- The claim's candidate search, as a function whose plan cannot degrade (bench/RESULTS.md).
--
-- A claim must walk the tasks_claim index (pending tasks in claim order) and stop at the first
-- task the worker may take. The planner takes that path only while it expects many pending rows to
-- pass the claim's filters. Right after a burst of submissions (statistics not yet refreshed) or
-- in a prepared statement's generic plan (filters on unknown parameters read as rare), it expected
-- one, and chose to read every pending task and sort them: every claim cost O(backlog). Inside this
-- function sorting and whole-table scans are switched off, so the index walk is the plan whatever
-- the statistics say; the other statements of a claim are unaffected.

-- The model a task's global limits match: the resolved provider id when known, else the name given.
CREATE FUNCTION task_model(resolved_model text, parameters jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE(resolved_model, parameters->'agent_config'->>'model', '')
$$;

-- The running cap of `model` in an experiment: its own, else the experiment's; NULL: none.
CREATE FUNCTION experiment_model_cap(model_max_running jsonb, max_running_per_model integer, model text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE((model_max_running->>model)::int, max_running_per_model)
$$;

-- The pending task worker p_worker may claim next (priority, then age), locked for the caller's
-- transaction; NULL when there is none or the worker holds a task. p_patterns: LIKE patterns of
-- the problems the worker runs, NULL for all. A task is skipped, and the next one considered, when
--   1. its experiment's spend (every LLM call of its tasks so far) has reached the spend cap;
--   2. its model already has as many running tasks in its experiment as the experiment allows;
--   3. a global limit (model_concurrency_limits) matching its model is full.
-- Each limit is an uncorrelated ARRAY(subquery), computed once per claim and only when a candidate
-- needs it. The spend check is driven by the few capped experiments, not by the backlog.
-- Simultaneous claims see the same counts, so a concurrency cap is checked again after the claim
-- commits (src/queue/claimTask.ts).
CREATE FUNCTION claim_candidate(p_worker text, p_backend text, p_patterns text[]) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
-- Planned once per connection: with the settings above the plan is the index walk whatever the
-- parameters, and re-planning it per call (PostgreSQL's default at first) cost more than running it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  found uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = p_worker AND w.current_task_id IS NULL) THEN
    RETURN NULL;
  END IF;
  SELECT t.id INTO found FROM tasks t
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
   LIMIT 1;
  RETURN found;
END $$;
